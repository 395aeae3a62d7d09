#pragma once
// A shard's background log duties, driven by its reactor's timers (never inline in a
// request):
//  - retention: every log.retention.check.interval.ms, enforce retention.ms /
//    retention.bytes on the shard's partitions, a bounded slice per reactor turn;
//  - flushing: every second, hand partitions whose unflushed data is due (flush.messages,
//    flush.ms, or a segment rolled since the last flush) to the server's background_io
//    thread, which fdatasyncs their segments; the flushed offset comes back by post()
//    and feeds the recovery-point checkpoint;
//  - live settings: when a snapshot brings new topic configs, the partition's log gets
//    them (retention, segment size, timestamps...) without a restart.
//
// Concurrency: shard thread only, like the partitions it looks after. Flush jobs carry
// shared_ptrs to the segments they sync and report back to the shard by post().
#include "broker/configs/config_table.h"
#include "broker/partition.h"

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace sluice::broker {

class shard;

class log_duties {
public:
    explicit log_duties(shard& sh) : _shard(sh) {}
    log_duties(const log_duties&) = delete;
    log_duties& operator=(const log_duties&) = delete;

    // Arms the timers (shard thread, once the reactor runs).
    void start();
    // A partition opened, or a snapshot arrived: adopt the settings from the topic's
    // overrides (and server.properties) when they changed.
    void track(partition& p, const std::map<std::string, std::string>& overrides);
    void forget(const topic_partition& tp);
    // Everything below is on disk: max(log recovery point, last background flush).
    int64_t recovery_point(const partition& p) const;
    const configs::partition_settings* settings(const topic_partition& tp) const;

    // One pass of each duty now (tests and the timers).
    void run_retention();
    void run_flush_check();
    // A background flush finished (posted back by the job).
    void flush_done(const topic_partition& tp, uint64_t generation, int64_t target, bool ok);

private:
    struct state {
        std::map<std::string, std::string> overrides;
        configs::partition_settings settings;
        int64_t flushed_offset = 0;
        int64_t last_flush_ms = 0;
        uint64_t generation = 0;  // changes when the partition is re-opened
        bool flush_in_flight = false;
    };
    void retention_slice(std::vector<topic_partition> todo, size_t from);
    void arm_retention();
    void arm_flush();
    bool flush_due(const partition& p, const state& st, int64_t now_ms) const;
    void submit_flush(partition& p, state& st, int64_t now_ms);

    shard& _shard;
    std::unordered_map<topic_partition, state, topic_partition_hash> _states;
    uint64_t _next_generation = 1;
    bool _started = false;
};

// Applies settings to a log: partition_log::set_config when storage provides it
// (returns true), else false and only retention is honoured (by log_duties).
bool apply_log_config(storage::partition_log& log, const storage::log_config& cfg);

}  // namespace sluice::broker
