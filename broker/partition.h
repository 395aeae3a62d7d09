#pragma once
// A partition replica as one shard serves it: the log plus what the request path
// needs around it (leader epoch, fetch requests parked until data arrives).
//
// Concurrency: owned by exactly one shard; only that shard's thread touches it. Other
// shards reach it by posting work to the owner (shard::invoke_on).
#include "coord/types.h"
#include "storage/log_dir.h"
#include "storage/partition_log.h"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace sluice::broker {

using topic_partition = storage::topic_partition;

struct topic_partition_hash {
    size_t operator()(const topic_partition& tp) const {
        return std::hash<std::string>{}(tp.topic) * 31 + static_cast<size_t>(tp.partition);
    }
};

// What a producer with idempotence last wrote to this partition (Kafka keeps five
// batches; a retry of any of them is answered with its original offsets).
struct producer_entry {
    int16_t epoch = -1;
    struct batch {
        int32_t first_sequence;
        int32_t last_sequence;
        int64_t base_offset;
    };
    std::vector<batch> recent;  // oldest first, at most 5
};

// Leader side of replication (broker/replication/leader.h): what this broker, as the
// partition's leader, knows of each follower. A follower's position is the offset of its
// last Fetch (everything below it is on its log).
struct follower_progress {
    int64_t log_end = -1;            // -1: no fetch since this broker became leader
    int64_t last_caught_up_ms = 0;   // last fetch that asked for the leader's log end
};

// A produce with acks=-1 waiting until the high watermark reaches `offset` (its last
// offset + 1). `done(error)` runs on the partition's shard; it must post elsewhere.
struct ack_waiter {
    int64_t offset;
    int64_t min_insync;
    std::weak_ptr<void> alive;
    std::function<void(int16_t error)> done;
};

struct leader_state {
    bool leading = false;
    coord::partition_state state;                // as the last snapshot had it (zk_version for CAS)
    std::vector<int32_t> replicas;               // the assignment
    std::map<int32_t, follower_progress> followers;
    int64_t epoch_start_offset = 0;              // log end when this leader epoch began
    // An ISR change sent to ZooKeeper and not yet seen in a snapshot: the high watermark
    // counts the union of both ISRs meanwhile (Kafka's "maximal ISR", KIP-497).
    std::optional<std::vector<int32_t>> pending_isr;
    std::vector<ack_waiter> ack_waiters;
};

struct partition {
    topic_partition id;
    coord::uuid topic_id{};
    int32_t leader_epoch = 0;
    std::unique_ptr<storage::partition_log> log;
    // Fetch requests parked until data arrives: each runs once after the next append.
    // `alive` expires when the fetch has been answered (timer or another partition),
    // so idle partitions do not accumulate dead waiters.
    struct waiter {
        std::weak_ptr<void> alive;
        std::function<void()> wake;
    };
    std::vector<waiter> append_waiters;
    std::unordered_map<int64_t, producer_entry> producers;
    // Filled by shard::close_all for the shutdown checkpoints.
    int64_t recovery_point = 0;
    int64_t log_start = 0;
    int64_t cleaner_checkpoint = -1;  // -1: not a compacted partition (no checkpoint entry)
    bool close_failed = false;
    // fd_budget bookkeeping (broker/maintenance/fd_budget.h): when the partition was last
    // used (the budget's logical clock) and how many open segment descriptors the budget
    // has counted for it.
    uint64_t last_use = 0;
    size_t fds_counted = 0;
    leader_state leader;

    void add_append_waiter(std::weak_ptr<void> alive, std::function<void()> wake) {
        std::erase_if(append_waiters, [](const waiter& w) { return w.alive.expired(); });
        append_waiters.push_back({std::move(alive), std::move(wake)});
    }
    void notify_appended() {
        if (append_waiters.empty()) return;
        auto waiters = std::move(append_waiters);
        append_waiters.clear();
        for (auto& w : waiters)
            if (!w.alive.expired()) w.wake();
    }
};

}  // namespace sluice::broker
