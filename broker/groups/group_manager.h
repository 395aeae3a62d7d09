#pragma once
// The group coordinator's share on one shard: the __consumer_offsets partitions this
// broker leads that hash to this shard, the groups and committed offsets they hold, and
// the writes of __consumer_offsets records (records.h) through the partition's log.
//
// Lifecycle of a partition: after every metadata snapshot, partitions this shard now
// leads are loaded by replaying the log in slices of at most load_slice_bytes (one
// slice per reactor turn, so loading never stalls the shard); requests for their groups
// get COORDINATOR_LOAD_IN_PROGRESS meanwhile. Partitions lost are unloaded: parked
// requests get NOT_COORDINATOR.
//
// Writes are answered after partition_log::append returned (page cache), as a Produce
// with acks=1 is; a kill -9 keeps them, a power loss keeps what was flushed.
//
// Concurrency: owned by its shard; every method runs on that shard's thread. Handlers on
// other shards reach it through server::invoke_on / shard::post.
#include "broker/groups/group.h"
#include "broker/protocol/messages.h"

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <tuple>
#include <string>
#include <unordered_map>
#include <vector>

namespace sluice::broker {
class shard;
struct broker_config;
}  // namespace sluice::broker

namespace sluice::coord {
struct cluster_snapshot;
}

namespace sluice::broker::groups {

group_config group_config_from(const broker_config& cfg);

// Set when the shards are being destroyed (after every reactor thread stopped): requests
// still parked in groups are then leaked rather than released on a thread that no
// longer owns their (possibly already destroyed) shard.
inline std::atomic<bool> shards_stopping{false};

// Partitions of __consumer_offsets: the topic's real count once it exists (Kafka reads
// it back from ZooKeeper too), else offsets.topic.num.partitions.
int32_t offsets_partition_count(const coord::cluster_snapshot& snap, const broker_config& cfg);

struct commit_entry {
    std::string topic;
    int32_t partition = 0;
    committed_offset value;
};

struct fetched_offset {
    std::string topic;
    int32_t partition = 0;
    std::optional<committed_offset> value;  // nullopt: nothing committed
};

struct group_listing {
    std::string group_id;
    std::string protocol_type;
    group_state state;
};

class group_manager final : public group_host {
public:
    static constexpr int32_t load_slice_bytes = 1 << 20;

    explicit group_manager(shard& sh);
    ~group_manager() override;
    group_manager(const group_manager&) = delete;
    group_manager& operator=(const group_manager&) = delete;

    // Shard thread, after each snapshot was applied: load and unload partitions.
    void on_snapshot();

    // 0 when this shard coordinates groups of __consumer_offsets partition `p` now, else
    // NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS.
    int16_t coordinator_error(int32_t p) const;

    void join(int32_t p, const std::string& group_id, join_request req, join_callback cb);
    void sync(int32_t p, const std::string& group_id, sync_request req, sync_callback cb);
    int16_t heartbeat(int32_t p, const std::string& group_id, int32_t generation, const std::string& member_id,
                      const std::optional<std::string>& instance_id);
    // One error per member identity (member_id, group_instance_id).
    std::vector<int16_t> leave(int32_t p, const std::string& group_id,
                               const std::vector<std::pair<std::string, std::optional<std::string>>>& members);
    // Returns one error per entry, in order (validation, then the append).
    std::vector<int16_t> commit(int32_t p, const std::string& group_id, int32_t generation,
                                const std::string& member_id, const std::optional<std::string>& instance_id,
                                std::vector<commit_entry> entries);
    // Kafka's offsets.commit.required.acks=-1: done(error) runs on this shard once the
    // high watermark of __consumer_offsets partition p has passed everything appended to
    // it so far (at once when it has; NOT_COORDINATOR if leadership is lost first). The
    // bound is replica.lag.time.max.ms, after which a silent follower leaves the ISR.
    void when_replicated(int32_t p, std::function<void(int16_t error)> done);
    // `wanted` nullopt: every committed offset of the group. Second: group-level error.
    std::pair<std::vector<fetched_offset>, int16_t> fetch_offsets(
        int32_t p, const std::string& group_id,
        const std::optional<std::vector<std::pair<std::string, std::vector<int32_t>>>>& wanted);
    proto::describe_groups_response::described_group describe(int32_t p, const std::string& group_id);
    // Every group of every loaded partition; the error is COORDINATOR_LOAD_IN_PROGRESS
    // while any partition is loading.
    std::pair<std::vector<group_listing>, int16_t> list() const;
    int16_t delete_group(int32_t p, const std::string& group_id);
    // Top-level error, then one error per (topic, partition) in order.
    std::pair<int16_t, std::vector<int16_t>> delete_offsets(int32_t p, const std::string& group_id,
                                                            const std::vector<std::pair<std::string, int32_t>>& tps);

    // group_host
    int64_t now_ms() override;
    uint64_t schedule(int64_t delay_ms, std::function<void()> fn) override;
    void cancel(uint64_t timer) override;
    const group_config& config() const override { return _config; }
    std::string new_member_id(const std::string& client_id) override;
    void store_group(group& g, std::function<void(int16_t error)> done) override;

private:
    enum class load_status { loading, ready };
    struct load_state {
        std::unordered_map<std::string, std::optional<proto::group_metadata_value>> groups;
        std::map<std::tuple<std::string, std::string, int32_t>, std::optional<committed_offset>> offsets;
        int64_t records = 0;
        int64_t started_ms = 0;
    };
    struct offsets_partition {
        int32_t leader_epoch = 0;
        load_status status = load_status::loading;
        int64_t position = 0;
        std::unique_ptr<load_state> loading;
    };
    using record = std::pair<std::vector<uint8_t>, std::optional<std::vector<uint8_t>>>;

    void start_load(int32_t p, int32_t leader_epoch);
    void load_step(int32_t p, int32_t leader_epoch);
    void load_batch(load_state& st, std::span<const uint8_t> batch);
    void finish_load(int32_t p);
    void unload(int32_t p);
    int16_t append(int32_t p, const std::vector<record>& records);
    std::shared_ptr<group> find_group(const std::string& id) const;
    std::shared_ptr<group> get_or_create(int32_t p, const std::string& id);
    void remove_group(const std::string& id);
    void schedule_expiry();
    void expire_offsets();
    bool expire_group(group& g, int64_t now);

    shard& _shard;
    group_config _config;
    std::map<int32_t, offsets_partition> _partitions;
    std::unordered_map<std::string, std::shared_ptr<group>> _groups;
    std::mt19937_64 _random;
    bool _expiry_scheduled = false;
};

}  // namespace sluice::broker::groups
