#include "coord/connect_string.h"

#include <doctest/doctest.h>

using namespace sluice::coord;

TEST_CASE("connect string without chroot") {
    auto c = parse_connect_string("127.0.0.1:2181");
    REQUIRE(c.has_value());
    CHECK(c->hosts == "127.0.0.1:2181");
    CHECK(c->chroot.empty());
    CHECK(c->full() == "127.0.0.1:2181");
}

TEST_CASE("connect string with several hosts and a chroot") {
    auto c = parse_connect_string("h1:2181,h2:2182/kafka/a");
    REQUIRE(c.has_value());
    CHECK(c->hosts == "h1:2181,h2:2182");
    CHECK(c->chroot == "/kafka/a");
    CHECK(c->full() == "h1:2181,h2:2182/kafka/a");
    auto root = parse_connect_string("h1:2181/");
    REQUIRE(root.has_value());
    CHECK(root->chroot.empty());
}

TEST_CASE("bad connect strings are rejected with a reason") {
    std::string why;
    CHECK_FALSE(parse_connect_string("", &why).has_value());
    CHECK_FALSE(why.empty());
    CHECK_FALSE(parse_connect_string("/chroot", &why).has_value());
    CHECK_FALSE(parse_connect_string("h1", &why).has_value());
    CHECK(why.find("host:port") != std::string::npos);
    CHECK_FALSE(parse_connect_string("h1:abc", &why).has_value());
    CHECK_FALSE(parse_connect_string("h1:70000", &why).has_value());
    CHECK_FALSE(parse_connect_string("h1:2181,", &why).has_value());
    CHECK_FALSE(parse_connect_string("h1:2181/a/", &why).has_value());
    CHECK_FALSE(parse_connect_string("h1:2181/a//b", &why).has_value());
}

TEST_CASE("path_prefixes lists the znodes to create for a chroot") {
    CHECK(path_prefixes("/a/b/c") == std::vector<std::string>{"/a", "/a/b", "/a/b/c"});
    CHECK(path_prefixes("/kafka") == std::vector<std::string>{"/kafka"});
}
