#pragma once
// Cluster metadata as Sluice's brokers see it, read from Kafka's ZooKeeper layout.
// Plain value types: a cluster_snapshot is immutable once published and may be shared
// by any number of threads (reactors keep a shared_ptr to the one they serve with).
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sluice::coord {

// Kafka's Uuid: 16 bytes, most significant long first (big-endian), as in
// java.util.UUID. Printed as URL-safe base64 without padding (22 chars).
using uuid = std::array<uint8_t, 16>;

// One advertised listener: "LISTENER_NAME://host:port" in /brokers/ids/<id>.
struct endpoint {
    std::string listener_name;      // e.g. "PLAINTEXT", "INTERNAL"
    std::string security_protocol;  // PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
    std::string host;
    int32_t port = -1;
    bool operator==(const endpoint&) const = default;
};

struct broker_info {
    int32_t id = -1;
    std::vector<endpoint> endpoints;
    std::string rack;   // empty = no rack
    int64_t epoch = 0;  // czxid of /brokers/ids/<id> (KIP-380 broker epoch)
    bool operator==(const broker_info&) const = default;
};

// /brokers/topics/<t>/partitions/<p>/state; zk_version is the znode's version (Kafka's
// "partition epoch"), needed for conditional updates.
struct partition_state {
    int32_t leader = -1;
    int32_t leader_epoch = 0;
    std::vector<int32_t> isr;
    int32_t controller_epoch = 0;
    int32_t zk_version = 0;
    bool operator==(const partition_state&) const = default;
};

struct topic_info {
    std::string name;
    uuid topic_id{};
    std::map<int32_t, std::vector<int32_t>> assignment;  // partition -> replicas, preferred first
    std::map<int32_t, partition_state> partitions;       // only partitions whose state znode exists
    std::map<std::string, std::string> configs;          // /config/topics/<t> overrides
    bool marked_for_deletion = false;                    // /admin/delete_topics/<t> exists
    bool operator==(const topic_info&) const = default;
};

struct cluster_snapshot {
    std::string cluster_id;
    int32_t controller_id = -1;
    std::map<int32_t, broker_info> brokers;  // live brokers only
    std::map<std::string, std::shared_ptr<const topic_info>> topics;
    uint64_t version = 0;  // increases by one with every published snapshot
};

struct zk_config {
    std::string connect;  // "host:port,host:port/chroot"
    int32_t session_timeout_ms = 18000;
    int32_t connection_timeout_ms = 18000;
    int32_t broker_id = -1;
    std::vector<endpoint> advertised;
    std::string rack;
};

}  // namespace sluice::coord
