#include "broker/config.h"

#include <doctest/doctest.h>

#include <variant>

using namespace sluice::broker;

namespace {
std::map<std::string, std::string> base_props() {
    return {{"broker.id", "3"}, {"log.dirs", "/tmp/a,/tmp/b"}, {"zookeeper.connect", "127.0.0.1:2181/sluice"}};
}
config_error expect_error(std::map<std::string, std::string> props) {
    auto r = make_config(std::move(props));
    REQUIRE(std::holds_alternative<config_error>(r));
    return std::get<config_error>(r);
}
broker_config expect_ok(std::map<std::string, std::string> props) {
    auto r = make_config(std::move(props));
    if (auto* e = std::get_if<config_error>(&r)) FAIL(e->message);
    return std::get<broker_config>(r);
}
}  // namespace

TEST_CASE("properties parsing: separators, comments, escapes, continuations") {
    auto p = parse_properties(
        "# comment\n! also comment\n a=1\nb : 2\nc 3\nd=x\\\n    y\ne=tab\\there\nf=\\u0041\ng\n  \nh=with = sign\n");
    REQUIRE(p);
    CHECK(p->at("a") == "1");
    CHECK(p->at("b") == "2");
    CHECK(p->at("c") == "3");
    CHECK(p->at("d") == "xy");
    CHECK(p->at("e") == "tab\there");
    CHECK(p->at("f") == "A");
    CHECK(p->at("g") == "");
    CHECK(p->at("h") == "with = sign");
    CHECK(p->size() == 8);
}

TEST_CASE("required keys name themselves when missing") {
    for (const char* key : {"broker.id", "log.dirs", "zookeeper.connect"}) {
        auto props = base_props();
        props.erase(key);
        auto e = expect_error(props);
        CHECK(e.key == key);
        CHECK(e.message.find(key) != std::string::npos);
        CHECK(e.message.find('\n') == std::string::npos);
    }
}

TEST_CASE("malformed values are rejected with the key") {
    auto props = base_props();
    props["broker.id"] = "abc";
    CHECK(expect_error(props).key == "broker.id");
    props = base_props();
    props["broker.id"] = "-1";
    CHECK(expect_error(props).key == "broker.id");
    props = base_props();
    props["zookeeper.connect"] = "localhost";
    CHECK(expect_error(props).key == "zookeeper.connect");
    props = base_props();
    props["zookeeper.connect"] = "h:2181/chroot/";
    CHECK(expect_error(props).key == "zookeeper.connect");
    props = base_props();
    props["log.dirs"] = "relative/dir";
    CHECK(expect_error(props).key == "log.dirs");
    props = base_props();
    props["listeners"] = "PLAINTEXT://nohostport";
    CHECK(expect_error(props).key == "listeners");
    props = base_props();
    props["auto.create.topics.enable"] = "yes";
    CHECK(expect_error(props).key == "auto.create.topics.enable");
    props = base_props();
    props["fetch.send.strategy"] = "teleport";
    CHECK(expect_error(props).key == "fetch.send.strategy");
}

TEST_CASE("defaults follow Kafka") {
    auto c = expect_ok(base_props());
    CHECK(c.broker_id == 3);
    CHECK(c.log_dirs == std::vector<std::string>{"/tmp/a", "/tmp/b"});
    CHECK(c.auto_create_topics_enable);
    CHECK(c.num_partitions == 1);
    CHECK(c.log_segment_bytes == 1073741824);
    CHECK(c.message_max_bytes == 1048588);
    CHECK(c.socket_request_max_bytes == 104857600);
    CHECK(c.offsets_topic_replication_factor == 3);
    CHECK(c.zookeeper_session_timeout_ms == 18000);
    REQUIRE(c.listeners.size() == 1);
    CHECK(c.listeners[0].port == 9092);
    CHECK(c.advertised_listeners[0].host == "127.0.0.1");
}

TEST_CASE("listeners and advertised listeners") {
    auto props = base_props();
    props["listeners"] = "PLAINTEXT://0.0.0.0:19092";
    props["advertised.listeners"] = "PLAINTEXT://broker1.example:29092";
    auto c = expect_ok(props);
    CHECK(c.listeners[0].host == "0.0.0.0");
    CHECK(c.listeners[0].port == 19092);
    CHECK(c.advertised_listeners[0].host == "broker1.example");
    CHECK(c.advertised_listeners[0].port == 29092);
    CHECK(c.advertised_listeners[0].security_protocol == "PLAINTEXT");
}

TEST_CASE("unknown keys are accepted") {
    auto props = base_props();
    props["some.future.key"] = "1";
    auto c = expect_ok(props);
    CHECK(c.raw.count("some.future.key") == 1);
}
