#include "coord/znodes.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "coord/uuid.h"

using namespace sluice::coord;
using json = nlohmann::json;

TEST_CASE("paths follow Kafka's ZkData") {
    CHECK(znodes::broker_path(3) == "/brokers/ids/3");
    CHECK(znodes::topic_path("t") == "/brokers/topics/t");
    CHECK(znodes::partition_state_path("t", 2) == "/brokers/topics/t/partitions/2/state");
    CHECK(znodes::topic_config_path("t") == "/config/topics/t");
    CHECK(znodes::delete_topic_path("t") == "/admin/delete_topics/t");
    CHECK(znodes::persistent_paths().size() == 14);
}

TEST_CASE("/cluster/id: version is a string") {
    auto text = znodes::encode_cluster_id("AAAAAAAAAAAAAAAAAAAAAQ");
    CHECK(text == R"({"version":"1","id":"AAAAAAAAAAAAAAAAAAAAAQ"})");
    CHECK(znodes::decode_cluster_id(text) == std::optional<std::string>("AAAAAAAAAAAAAAAAAAAAAQ"));
    CHECK_FALSE(znodes::decode_cluster_id("{").has_value());
    CHECK_FALSE(znodes::decode_cluster_id(R"({"version":"1"})").has_value());
}

TEST_CASE("/controller v1, and v2 as written by Kafka 3.4+") {
    CHECK(znodes::encode_controller(2, 1699999999999) == R"({"version":1,"brokerid":2,"timestamp":"1699999999999"})");
    CHECK(znodes::decode_controller(R"({"version":1,"brokerid":5,"timestamp":"1"})") == std::optional<int32_t>(5));
    CHECK(znodes::decode_controller(R"({"version":2,"brokerid":6,"timestamp":"1","kraftControllerEpoch":-1})") ==
          std::optional<int32_t>(6));
    CHECK_FALSE(znodes::decode_controller(R"({"version":1,"brokerid":"x"})").has_value());
    CHECK(znodes::decode_controller_epoch("12") == std::optional<int32_t>(12));
    CHECK_FALSE(znodes::decode_controller_epoch("x").has_value());
}

TEST_CASE("/brokers/ids/<id> v5 as Kafka's BrokerIdZNode.encode") {
    broker_info b{1, {{"PLAINTEXT", "PLAINTEXT", "h1", 9092}, {"SSL", "SSL", "h1", 9093}}, "r1", 0};
    auto text = znodes::encode_broker(b, 1699999999999);
    CHECK(text ==
          R"({"version":5,"host":"h1","port":9092,"jmx_port":-1,"timestamp":"1699999999999",)"
          R"("endpoints":["PLAINTEXT://h1:9092","SSL://h1:9093"],)"
          R"("listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT","SSL":"SSL"},"rack":"r1","features":{}})");
    auto back = znodes::decode_broker(1, text);
    REQUIRE(back.has_value());
    CHECK(*back == b);
}

TEST_CASE("/brokers/ids: no PLAINTEXT listener -> host null, port -1; no rack key when unset; IPv6") {
    broker_info b{2, {{"INTERNAL", "SSL", "::1", 9093}}, "", 0};
    auto j = json::parse(znodes::encode_broker(b, 1));
    CHECK(j["host"].is_null());
    CHECK(j["port"] == -1);
    CHECK_FALSE(j.contains("rack"));
    CHECK(j["endpoints"][0] == "INTERNAL://[::1]:9093");
    CHECK(j["listener_security_protocol_map"]["INTERNAL"] == "SSL");
    auto back = znodes::decode_broker(2, j.dump());
    REQUIRE(back.has_value());
    CHECK(*back == b);
}

TEST_CASE("/brokers/ids: older versions decode") {
    // v1 (host/port only) and v2 (endpoints without a protocol map: name = protocol)
    auto v1 = znodes::decode_broker(0, R"({"version":1,"host":"a","port":9092,"jmx_port":-1})");
    REQUIRE(v1.has_value());
    CHECK(v1->endpoints == std::vector<endpoint>{{"PLAINTEXT", "PLAINTEXT", "a", 9092}});
    auto v2 = znodes::decode_broker(0, R"({"version":2,"host":"a","port":9092,"endpoints":["SSL://a:9093"]})");
    REQUIRE(v2.has_value());
    CHECK(v2->endpoints == std::vector<endpoint>{{"SSL", "SSL", "a", 9093}});
    CHECK_FALSE(znodes::decode_broker(0, R"({"version":5,"endpoints":["nonsense"]})").has_value());
    CHECK_FALSE(znodes::decode_broker(0, "not json").has_value());
}

TEST_CASE("/brokers/topics/<t> v3 with topic_id") {
    uuid id = random_uuid();
    std::map<int32_t, std::vector<int32_t>> a{{0, {1, 2, 3}}, {1, {2, 3, 1}}};
    auto text = znodes::encode_topic(a, id);
    CHECK(text == R"({"version":3,"partitions":{"0":[1,2,3],"1":[2,3,1]},"adding_replicas":{},)"
                  R"("removing_replicas":{},"topic_id":")" +
                      uuid_to_base64(id) + R"("})");
    auto back = znodes::decode_topic(text);
    REQUIRE(back.has_value());
    CHECK(back->assignment == a);
    CHECK(back->topic_id == id);
    // pre-2.8 tooling writes version 1 without topic_id
    auto old = znodes::decode_topic(R"({"version":1,"partitions":{"0":[1]}})");
    REQUIRE(old.has_value());
    CHECK(is_zero(old->topic_id));
    CHECK_FALSE(znodes::decode_topic(R"({"version":1,"partitions":{"x":[1]}})").has_value());
    CHECK_FALSE(znodes::decode_topic(R"({"version":1,"partitions":{"0":["1"]}})").has_value());
}

TEST_CASE("partition state znode") {
    partition_state s{.leader = 1, .leader_epoch = 4, .isr = {1, 2}, .controller_epoch = 5};
    auto text = znodes::encode_partition_state(s);
    CHECK(text == R"({"version":1,"leader":1,"leader_epoch":4,"controller_epoch":5,"isr":[1,2]})");
    auto back = znodes::decode_partition_state(text);
    REQUIRE(back.has_value());
    CHECK(*back == s);
    // KIP-704's optional field is accepted
    CHECK(znodes::decode_partition_state(
              R"({"version":1,"leader":-1,"leader_epoch":0,"controller_epoch":1,"isr":[],"leader_recovery_state":1})")
              .has_value());
    CHECK_FALSE(znodes::decode_partition_state(R"({"version":1,"leader":1})").has_value());
}

TEST_CASE("config znode") {
    std::map<std::string, std::string> c{{"cleanup.policy", "compact"}, {"retention.ms", "86400000"}};
    auto text = znodes::encode_config(c);
    CHECK(text == R"({"version":1,"config":{"cleanup.policy":"compact","retention.ms":"86400000"}})");
    CHECK(znodes::decode_config(text) == std::optional(c));
    CHECK(znodes::encode_config({}) == R"({"version":1,"config":{}})");
    CHECK_FALSE(znodes::decode_config(R"({"version":1,"config":{"a":1}})").has_value());
}
