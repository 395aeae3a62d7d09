#pragma once
// Kafka's ZooKeeper layout (ZkData.scala, 3.x): znode paths and the exact JSON each
// one holds. We use nlohmann::json (Debian nlohmann-json3-dev, header-only) rather than
// a home-made parser: znode contents come from other processes (Kafka tooling, older
// brokers) and a well-fuzzed parser is worth the dependency. Encoders use ordered_json
// so fields come out in Kafka's order. Decoders never throw: bad input -> nullopt.
//
// Formats (all under the optional chroot):
//   /cluster/id                        {"version":"1","id":"<22-char base64 uuid>"}
//   /controller (ephemeral)            {"version":1,"brokerid":1,"timestamp":"1699999999999"}
//   /controller_epoch                  plain integer text, e.g. "5"; its zkVersion fences writes
//   /brokers/ids/<id> (ephemeral, v5)  {"version":5,"host":"h1","port":9092,"jmx_port":-1,
//                                       "timestamp":"...","endpoints":["PLAINTEXT://h1:9092"],
//                                       "listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},
//                                       "rack":"r1","features":{}}   (rack only when set;
//                                       host/port from the first PLAINTEXT endpoint, else null/-1)
//   /brokers/topics/<t>                {"version":3,"partitions":{"0":[1,2]},"adding_replicas":{},
//                                       "removing_replicas":{},"topic_id":"<base64 uuid>"}
//   /brokers/topics/<t>/partitions     null data; Sluice bumps its version whenever a state
//                                       znode of the topic changes (see coordinator.h)
//   .../partitions/<p>/state           {"version":1,"leader":1,"leader_epoch":4,
//                                       "controller_epoch":5,"isr":[1,2]}
//   /config/topics/<t>                 {"version":1,"config":{"retention.ms":"86400000"}}
//   /admin/delete_topics/<t>           null data; its existence requests deletion
//   /config/changes/config_change_<seq> (persistent sequential, 10-digit seq)
//                                      {"version":2,"entity_path":"topics/<t>"}: written with
//                                       every config change so Kafka brokers re-read it
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coord/types.h"

namespace sluice::coord::znodes {

// Persistent paths every broker creates at startup (ZkData.PersistentZkPaths).
const std::vector<std::string>& persistent_paths();

inline constexpr std::string_view cluster_id_path = "/cluster/id";
inline constexpr std::string_view controller_path = "/controller";
inline constexpr std::string_view controller_epoch_path = "/controller_epoch";
inline constexpr std::string_view broker_ids_path = "/brokers/ids";
inline constexpr std::string_view topics_path = "/brokers/topics";
inline constexpr std::string_view delete_topics_path = "/admin/delete_topics";
inline constexpr std::string_view config_topics_path = "/config/topics";
inline constexpr std::string_view config_change_prefix = "/config/changes/config_change_";

std::string broker_path(int32_t id);
std::string topic_path(std::string_view topic);
std::string topic_partitions_path(std::string_view topic);
std::string partition_path(std::string_view topic, int32_t partition);
std::string partition_state_path(std::string_view topic, int32_t partition);
std::string topic_config_path(std::string_view topic);
std::string delete_topic_path(std::string_view topic);

std::string encode_cluster_id(std::string_view id);
std::optional<std::string> decode_cluster_id(std::string_view json);

std::string encode_controller(int32_t broker_id, int64_t timestamp_ms);
std::optional<int32_t> decode_controller(std::string_view json);  // v1 and v2

// "LISTENER://host:port"; IPv6 hosts in brackets, as Kafka's EndPoint.connectionString.
std::string endpoint_string(const endpoint& ep);
std::string encode_broker(const broker_info& b, int64_t timestamp_ms);
// Accepts v1..v5; czxid is not in the JSON, so epoch is left 0 for the caller to fill.
std::optional<broker_info> decode_broker(int32_t id, std::string_view json);

std::string encode_topic(const std::map<int32_t, std::vector<int32_t>>& assignment, const uuid& topic_id);
struct topic_znode {
    std::map<int32_t, std::vector<int32_t>> assignment;
    uuid topic_id{};  // zero when absent (topics written by pre-2.8 tooling)
};
std::optional<topic_znode> decode_topic(std::string_view json);

std::string encode_partition_state(const partition_state& s);
// zk_version is not in the JSON; the caller fills it from the Stat.
std::optional<partition_state> decode_partition_state(std::string_view json);

std::string encode_config(const std::map<std::string, std::string>& config);
std::optional<std::map<std::string, std::string>> decode_config(std::string_view json);
// entity_path: "topics/<t>", "brokers/<id>", "users/<u>" ...
std::string encode_config_change(std::string_view entity_path);

std::optional<int32_t> decode_controller_epoch(std::string_view text);

}  // namespace sluice::coord::znodes
