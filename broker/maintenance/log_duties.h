#pragma once
// A shard's background log duties, driven by its reactor's timers (never inline in a
// request):
//  - retention: every log.retention.check.interval.ms, partition_log::enforce_retention
//    (retention.ms / retention.bytes) on the shard's partitions, a bounded slice per
//    reactor turn;
//  - housekeeping, every second: unlink `.deleted` segment files whose
//    file.delete.delay.ms has passed (also when no further retention happens), hand
//    partitions whose unflushed data is due (flush.messages / flush.ms -- maybe_flush's
//    rule -- or a segment rolled since the last flush) to the server's background_io
//    thread, which fdatasyncs them (the flushed offset comes back by post() and feeds
//    the recovery-point checkpoint), and recount open descriptors (fd_budget);
//  - compaction: every log.cleaner.backoff.ms, ask each compacted partition for a
//    clean_task (partition_log::prepare_cleaning decides whether it is due) and submit it
//    to the server's log_cleaner thread; the result is posted back here and installed
//    (install_cleaned) or dropped (abort_cleaning);
//  - live settings: when a snapshot brings new topic configs, the partition's log gets
//    them (partition_log::set_config) without a restart.
//
// Background work that reports back carries the partition's generation: a partition
// deleted or re-opened meanwhile gets a new one, and a stale report is discarded.
//
// Concurrency: shard thread only, like the partitions it looks after. Flush jobs and
// clean tasks hold shared_ptrs to the segments they touch and report back by post().
#include "base/result.h"
#include "broker/configs/config_table.h"
#include "broker/partition.h"
#include "storage/log_cleaner.h"

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
    // overrides (and server.properties) when they changed. p must stay alive until
    // forget(p.id).
    void track(partition& p, const std::map<std::string, std::string>& overrides);
    void forget(const topic_partition& tp);
    // Everything below is on disk: max(log recovery point, last background flush).
    int64_t recovery_point(const partition& p) const;
    const configs::partition_settings* settings(const topic_partition& tp) const;

    // One pass of each duty now (tests and the timers).
    void run_retention();
    void run_housekeeping();
    void run_cleaner_check();
    // A background flush finished (posted back by the job).
    void flush_done(const topic_partition& tp, uint64_t generation, int64_t target, bool ok);
    // A clean task finished (posted back from the cleaner thread).
    void cleaning_done(const topic_partition& tp, uint64_t generation, result<storage::clean_result> r);

    // Totals since start, for logs and tests.
    struct counters {
        uint64_t cleanings_installed = 0;
        uint64_t cleanings_failed = 0;
        uint64_t records_compacted_away = 0;
        uint64_t deleted_files_removed = 0;
    };
    const counters& totals() const { return _totals; }

private:
    struct state {
        partition* part = nullptr;
        std::map<std::string, std::string> overrides;
        configs::partition_settings settings;
        int64_t flushed_offset = 0;
        int64_t last_flush_ms = 0;
        uint64_t generation = 0;  // changes when the partition is re-opened
        bool flush_in_flight = false;
    };
    void retention_slice(std::vector<topic_partition> todo, size_t from);
    void arm_retention();
    void arm_housekeeping();
    void arm_cleaner();
    void remove_expired_files(state& st, int64_t now_ms);
    bool flush_due(const state& st, int64_t now_ms) const;
    void submit_flush(state& st, int64_t now_ms);
    void submit_cleaning(state& st, storage::clean_task task);
    void report_descriptors();

    shard& _shard;
    std::unordered_map<topic_partition, state, topic_partition_hash> _states;
    uint64_t _next_generation = 1;
    bool _started = false;
    uint64_t _housekeeping_ticks = 0;
    uint64_t _evictions_reported = 0;
    counters _totals;
};

}  // namespace sluice::broker
