#pragma once
// A shard: one reactor thread with the connections it accepted and the partitions
// hashed to it (server::shard_of). Nothing here is locked: other threads reach a shard
// only through invoke_on()/post(), which run closures on its reactor thread.
//
// Concurrency: every member is touched only on the shard's own thread, except post().
#include "broker/partition.h"
#include "coord/types.h"
#include "net/reactor.h"

#include <array>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

namespace sluice::broker {

class server;
class log_duties;
class fd_budget;
namespace groups {
class group_manager;
}

class shard {
public:
    shard(server& srv, unsigned id, std::unique_ptr<net::reactor> r);
    shard(const shard&) = delete;
    shard& operator=(const shard&) = delete;

    unsigned id() const { return _id; }
    server& srv() { return _srv; }
    net::reactor& reactor() { return *_reactor; }

    // Any thread: runs fn on this shard's thread.
    void post(std::function<void()> fn) { _reactor->post(std::move(fn)); }
    // Work this shard sent to other shards with server::invoke_on (shard thread only).
    void note_invoke_sent() { ++_invokes_sent; }
    uint64_t invokes_sent() const { return _invokes_sent; }
    // Broker-side service time of the requests this shard's connections received: from the
    // complete frame to the response queued (log2 buckets of microseconds). Tells a slow
    // broker from a slow network or client when the client sees latency tails.
    void note_service(std::chrono::microseconds t);
    // "p50 <= X us, p99 <= Y us, p99.9 <= Z us, max W us over N requests" (bucket bounds).
    std::string service_summary() const;

    // The cluster metadata this shard serves with (replaced as ZooKeeper changes).
    const std::shared_ptr<const coord::cluster_snapshot>& metadata() const { return _metadata; }
    // Shard thread: adopt a new snapshot, open logs of partitions this broker now hosts
    // and that hash to this shard, close and delete logs of topics that are gone.
    void apply_snapshot(std::shared_ptr<const coord::cluster_snapshot> snap);

    // The group coordinator's state for the __consumer_offsets partitions this shard
    // leads (broker/groups); reloaded after every apply_snapshot.
    groups::group_manager& groups() { return *_groups; }

    // Retention, background flushes and live log settings (broker/maintenance).
    log_duties& duties() { return *_duties; }
    // Shard thread, once the reactor runs: arms the duty timers (and ISR expiry).
    void start_duties();
    // This shard's share of the open segment descriptor limit (broker/maintenance).
    fd_budget& fds() { return *_fds; }
    // The request path used p (append, read, DeleteRecords): keeps the descriptor
    // budget's LRU order and count current.
    void note_use(partition& p);

    partition* find(const topic_partition& tp);
    // Clean shutdown (shard thread, reactor stopped or stopping), in two steps: close_all
    // seals every log without an fsync; after the caller made the log dirs durable
    // (storage::sync_log_dir, one syncfs each), mark_synced moves the recovery points of
    // the logs in `synced_dirs` to their log ends. Logs elsewhere keep what they had.
    void close_all();
    void mark_synced(const std::vector<std::filesystem::path>& synced_dirs);
    size_t partition_count() const { return _partitions.size(); }
    // For the shutdown checkpoints, after close_all().
    struct partition_offsets {
        topic_partition tp;
        std::string log_dir;
        int64_t log_start;
        int64_t recovery_point;
        int64_t cleaner_checkpoint;  // -1: not compacted, no cleaner-offset-checkpoint entry
        int64_t high_watermark;      // replication-offset-checkpoint
        bool close_failed;
    };
    void collect_offsets(std::vector<partition_offsets>& out) const;
    // While serving (periodic checkpoints): what is on disk now, logs stay open.
    void collect_live_offsets(std::vector<partition_offsets>& out) const;

private:
    void arm_isr_expiry();
    partition* open_partition(const topic_partition& tp, const coord::topic_info* topic);
    std::string dir_for(const topic_partition& tp) const;

    server& _srv;
    unsigned _id;
    std::unique_ptr<net::reactor> _reactor;
    std::shared_ptr<const coord::cluster_snapshot> _metadata;
    std::unordered_map<topic_partition, std::unique_ptr<partition>, topic_partition_hash> _partitions;
    std::shared_ptr<groups::group_manager> _groups;  // shared_ptr: the type is incomplete here
    std::shared_ptr<log_duties> _duties;             // likewise
    std::shared_ptr<fd_budget> _fds;                 // likewise
    uint64_t _invokes_sent = 0;
    std::array<uint64_t, 32> _service_buckets{};  // bucket b: [2^(b-1), 2^b) us; b = 0: < 1 us
    uint64_t _service_count = 0;
    int64_t _service_max_us = 0;
};

}  // namespace sluice::broker
