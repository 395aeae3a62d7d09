#pragma once
// Helpers over the cluster snapshot that several handlers share: finding topics and
// partition leaders, the endpoint a client should use, and topic auto-creation.
//
// Concurrency: shard thread only (reads the shard's snapshot).
#include "broker/shard.h"
#include "coord/types.h"

#include <functional>
#include <optional>
#include <string>

namespace sluice::broker {

const coord::topic_info* find_topic(const coord::cluster_snapshot& snap, const std::string& name);
const coord::topic_info* find_topic_by_id(const coord::cluster_snapshot& snap, const coord::uuid& id);

// The endpoint of `broker` for the listener the client came in on (Kafka answers with
// the same listener name), or nullopt if that broker has no such listener.
std::optional<coord::endpoint> endpoint_for(const coord::broker_info& broker, const std::string& listener_name);

enum class leadership { leader, not_leader, unknown_partition, no_leader };
// Whether this broker leads topic/partition according to the shard's snapshot.
leadership check_leader(shard& sh, const std::string& topic, int32_t partition);

// Asks ZooKeeper to create `name` with the broker defaults (num.partitions,
// default.replication.factor) unless a creation is already under way. Returns false
// when the name is invalid (the caller answers INVALID_TOPIC_EXCEPTION).
bool auto_create_topic(shard& sh, const std::string& name);

bool is_internal_topic(const std::string& name);

}  // namespace sluice::broker

namespace sluice::broker {
// Re-checks cond every 10 ms on the shard (its snapshot changes as ZooKeeper does)
// until it holds or timeout_ms passes; then done(held). Timer-driven, never blocks.
void wait_for_metadata(shard& sh, int64_t timeout_ms, std::function<bool()> cond, std::function<void(bool)> done);
}  // namespace sluice::broker
