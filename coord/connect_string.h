#pragma once
// zookeeper.connect parsing: "h1:2181,h2:2181/kafka-a" -> hosts "h1:2181,h2:2181" and
// chroot "/kafka-a". As in Kafka, the chroot is one suffix after the last host.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::coord {

struct connect_string {
    std::string hosts;   // what zookeeper_init gets for the chroot-less handle
    std::string chroot;  // "" or "/a/b" (no trailing slash)
    std::string full() const { return hosts + chroot; }
};

// nullopt with a reason for: empty host list, a host without ":port", bad port,
// a chroot that is "/" only, ends with '/', or has empty components.
std::optional<connect_string> parse_connect_string(std::string_view text, std::string* error = nullptr);

// "/a/b/c" -> {"/a", "/a/b", "/a/b/c"}: the znodes to create for a chroot, in order.
std::vector<std::string> path_prefixes(std::string_view path);

}  // namespace sluice::coord
