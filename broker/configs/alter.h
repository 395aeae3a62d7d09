#pragma once
// What AlterConfigs (33) and IncrementalAlterConfigs (44) share: the edits each makes
// to a topic's override map (pure, so they can run on the coordinator's session thread
// against the map read from ZooKeeper), the broker-resource answer, and the round trip
// that writes the change and waits until this shard's snapshot shows it, so a client
// that describes right after altering reads its own write.
//
// Concurrency: alter_topic() is called on a shard thread and calls done there.
#include "coord/coordinator.h"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice::broker {
class shard;
}

namespace sluice::broker::configs {

// An error code and message for one resource (code 0: success, message null).
struct alter_outcome {
    int16_t error_code = 0;
    std::optional<std::string> message;
};

// AlterConfigs: the request's entries replace every override.
struct full_entry {
    std::string name;
    std::optional<std::string> value;
};
coord::coordinator::config_edit_fn replace_all_edit(std::vector<full_entry> entries);

// IncrementalAlterConfigs operations (AlterConfigOp.OpType).
enum class op_type : int8_t { set = 0, remove = 1, append = 2, subtract = 3 };
struct incremental_entry {
    std::string name;
    int8_t op = 0;
    std::optional<std::string> value;
};
// Checks that need no ZooKeeper state (op codes, duplicates, list-only ops).
std::optional<alter_outcome> precheck_incremental(const std::vector<incremental_entry>& entries);
coord::coordinator::config_edit_fn incremental_edit(std::vector<incremental_entry> entries);

// Broker resources: Sluice has no dynamic broker configs. Empty alterations succeed;
// anything else is INVALID_REQUEST naming the keys, as Kafka answers for static keys.
// resource_name must be this broker's id or "" (cluster default).
alter_outcome alter_broker(int32_t broker_id, const std::string& resource_name,
                           const std::vector<std::string>& keys);

// Writes through the coordinator, then waits (bounded) for the shard's snapshot to
// carry the new overrides before calling done (on the shard thread).
void alter_topic(shard& sh, const std::string& topic, coord::coordinator::config_edit_fn edit, bool validate_only,
                 std::function<void(alter_outcome)> done);

}  // namespace sluice::broker::configs
