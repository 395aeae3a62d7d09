#pragma once
// The broker process: configuration, ZooKeeper coordinator and one shard per reactor
// thread. Owns startup (log dirs, ZooKeeper registration, listeners) and clean
// shutdown (flush, checkpoints, clean-shutdown marker).
//
// Concurrency: constructed and run() on the main thread; shards run on their own
// threads; the coordinator calls back on its session thread and only posts to shards.
#include "broker/config.h"
#include "broker/maintenance/background_io.h"
#include "broker/partition.h"
#include "broker/shard.h"
#include "coord/coordinator.h"
#include "storage/log_cleaner.h"

#include <atomic>
#include <map>
#include <thread>
#include <mutex>
#include <set>
#include <memory>
#include <string_view>
#include <vector>

namespace sluice::broker {

namespace replication {
class replica_fetcher;
}

class server {
public:
    explicit server(broker_config cfg);
    ~server();

    // Runs until SIGINT/SIGTERM. Returns the process exit status.
    int run();

    const broker_config& config() const { return _config; }
    unsigned shard_count() const { return static_cast<unsigned>(_shards.size()); }
    shard& shard_at(unsigned i) { return *_shards[i]; }
    // The shard that owns a partition: stable for the life of the process.
    unsigned shard_of(std::string_view topic, int32_t partition) const;
    coord::coordinator& coordinator() { return *_coordinator; }

    // Runs work on the owner shard of `target`, then done(result) back on `origin`.
    // Call on origin's thread. Crossing shards costs two posts (a closure on each
    // reactor's MPSC queue, plus an eventfd wake-up when the receiver has none pending).
    template <typename Work, typename Done>
    void invoke_on(unsigned origin, unsigned target, Work work, Done done) {
        if (origin == target) {
            done(work(shard_at(target)));
            return;
        }
        shard_at(origin).note_invoke_sent();
        shard_at(target).post([this, origin, target, work = std::move(work), done = std::move(done)]() mutable {
            auto r = work(shard_at(target));
            shard_at(origin).post([r = std::move(r), done = std::move(done)]() mutable { done(std::move(r)); });
        });
    }

    // Producer ids for InitProducerId: unique per broker run (see note in the handler).
    int64_t next_producer_id();

    storage::log_config log_config_for(const coord::topic_info* topic) const;
    // Recovery inputs found at startup for a partition in log dir `dir` (read-only
    // after startup, so any shard may ask).
    storage::open_options open_options_for(const std::string& dir, const topic_partition& tp) const;

    // Blocking file work off the reactors (log flushes, checkpoints).
    background_io& background() { return _background; }
    // The compaction thread; null when log.cleaner.enable=false. Shards submit clean
    // tasks (log_duties) and get the results posted back.
    storage::log_cleaner* cleaner() { return _cleaner.get(); }
    // Each shard's share of log.max.open.files (fixed before the shards start).
    size_t fd_share() const { return _fd_share; }

    // Auto-creation de-duplication across shards: true if the caller should create.
    bool mark_topic_creating(const std::string& name);
    void unmark_topic_creating(const std::string& name);

private:
    // What a log dir's checkpoint files held at startup (storage/log_dir.h).
    struct log_dir_state {
        bool clean = false;
        std::map<topic_partition, int64_t> recovery_points;
        std::map<topic_partition, int64_t> log_starts;
        std::map<topic_partition, int64_t> cleaner_offsets;
        std::map<topic_partition, int64_t> high_watermarks;  // replication-offset-checkpoint
    };
    // The checkpoint files fall in two groups with their own periods (as in Kafka):
    // log_offsets = recovery point, log start and cleaner offset
    // (log.flush.offset.checkpoint.interval.ms / log.flush.start.offset.checkpoint.interval.ms);
    // high_watermarks = replication-offset-checkpoint
    // (replica.high.watermark.checkpoint.interval.ms, 5 s: a restarted replica truncates
    // to it, so it should be recent).
    enum class checkpoint_kind { log_offsets, high_watermarks };
    bool prepare_log_dirs();
    // Raises the soft RLIMIT_NOFILE to the hard limit and derives the descriptor budget.
    void size_fd_budget();
    // Creates one shard per reactor thread, joins their reactors into one group (accepted
    // connections go to the shard with the fewest), listens, then starts the threads.
    bool start_shards();
    bool listen_all();
    void stop_shards();
    // One line per shard: connections (and how they were spread), partitions, stalls.
    void log_shard_stats(shard& sh, std::string_view when);
    void arm_stats_timer(shard& sh);  // shard thread, every reactor.stats.interval.ms
    int64_t stats_interval_ms() const;
    void publish_snapshot(std::shared_ptr<const coord::cluster_snapshot> snap);
    void write_checkpoints_and_marker();
    // One group of checkpoint files in every log dir; partitions not open this run keep
    // their startup entries. Blocking file I/O: shutdown or the background thread.
    // Returns the log dirs whose files were written.
    std::set<std::string> write_checkpoints(checkpoint_kind kind, const std::vector<shard::partition_offsets>& all) const;
    // Shard 0, once per period of `kind`: gather every shard's offsets, then write the
    // files on the background thread.
    void arm_checkpoint_timer(checkpoint_kind kind);
    void checkpoint_now(checkpoint_kind kind);
    int64_t checkpoint_interval_ms(checkpoint_kind kind) const;

    broker_config _config;
    std::unique_ptr<coord::coordinator> _coordinator;
    std::unique_ptr<net::reactor_group> _reactors;  // outlives the shards' reactors
    std::vector<std::unique_ptr<shard>> _shards;
    std::vector<std::thread> _threads;
    std::map<std::string, log_dir_state> _log_dirs;
    int64_t _producer_id_base = 0;
    std::atomic<int64_t> _producer_id_next{0};
    std::atomic<bool> _serving{false};
    std::mutex _creating_mutex;  // cold path only: topic auto-creation
    std::set<std::string> _creating;
    background_io _background;
    std::unique_ptr<storage::log_cleaner> _cleaner;
    size_t _fd_share = 0;
    // Follower side of replication (broker/replication/replica_fetcher.h): created before
    // snapshots are published, started once the shards serve, stopped first at shutdown.
    std::unique_ptr<replication::replica_fetcher> _fetcher;
};

}  // namespace sluice::broker
