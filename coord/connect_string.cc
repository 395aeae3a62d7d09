#include "coord/connect_string.h"

#include <charconv>

namespace sluice::coord {
namespace {

bool fail(std::string* error, std::string message) {
    if (error) *error = std::move(message);
    return false;
}

bool valid_host(std::string_view hp, std::string* error) {
    auto colon = hp.rfind(':');
    if (hp.empty() || colon == std::string_view::npos || colon == 0)
        return fail(error, "expected host:port, got '" + std::string(hp) + "'");
    std::string_view port = hp.substr(colon + 1);
    int v = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc{} || p != port.data() + port.size() || v <= 0 || v > 65535)
        return fail(error, "bad port in '" + std::string(hp) + "'");
    return true;
}

}  // namespace

std::optional<connect_string> parse_connect_string(std::string_view text, std::string* error) {
    connect_string out;
    auto slash = text.find('/');
    std::string_view hosts = text.substr(0, slash);
    if (slash != std::string_view::npos) {
        std::string_view chroot = text.substr(slash);
        if (chroot == "/") {
            chroot = {};  // Kafka treats a bare "/" as no chroot
        } else if (chroot.back() == '/' || chroot.find("//") != std::string_view::npos) {
            fail(error, "bad chroot '" + std::string(chroot) + "'");
            return std::nullopt;
        }
        out.chroot = std::string(chroot);
    }
    if (hosts.empty()) {
        fail(error, "no ZooKeeper hosts in '" + std::string(text) + "'");
        return std::nullopt;
    }
    size_t start = 0;
    while (start <= hosts.size()) {
        auto comma = hosts.find(',', start);
        std::string_view hp = hosts.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        if (!valid_host(hp, error)) return std::nullopt;
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    out.hosts = std::string(hosts);
    return out;
}

std::vector<std::string> path_prefixes(std::string_view path) {
    std::vector<std::string> out;
    for (size_t i = 1; i <= path.size(); ++i)
        if (i == path.size() || path[i] == '/') out.emplace_back(path.substr(0, i));
    return out;
}

}  // namespace sluice::coord
