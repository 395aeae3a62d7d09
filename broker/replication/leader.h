#pragma once
// The leader side of replication, as Kafka's Partition does it in ZooKeeper mode:
// followers fetch with their broker id (replica_id); the leader records how far each
// has come, moves the high watermark to the smallest log end in the ISR, adds a
// follower to the ISR once it has everything up to the high watermark, drops one that
// has not caught up for replica.lag.time.max.ms, and answers acks=-1 produces when the
// high watermark passes their records. ISR changes are written by the leader itself
// (coordinator::update_isr, compare-and-set on the state znode), so a controller that
// moved leadership meanwhile wins.
//
// Concurrency: every function runs on the shard that owns the partition.
#include "broker/partition.h"
#include "coord/types.h"

#include <cstdint>

namespace sluice::broker {
class shard;
}

namespace sluice::broker::replication {

// shard::apply_snapshot, for each hosted partition: adopt the partition's state
// (nullptr: none yet). Becoming leader (or a new leader epoch) resets follower progress;
// losing leadership fails waiting acks=-1 produces with NOT_LEADER_OR_FOLLOWER.
void on_snapshot(shard& sh, partition& p, const std::vector<int32_t>& replicas, const coord::partition_state* st,
                 int64_t now_ms);

// A follower's Fetch at fetch_offset (before its read). Returns false when `replica` is
// not an assigned follower of this partition (the fetch is refused).
bool on_follower_fetch(shard& sh, partition& p, int32_t replica, int64_t fetch_offset, int64_t now_ms);

// After an append on the leader: the high watermark follows the ISR (with no other ISR
// member it is the log end), and parked fetches are woken.
void after_append(partition& p);

// Moves the high watermark up to the smallest log end of the (maximal) ISR; wakes parked
// fetches and answers acks=-1 waiters it satisfied. Never moves it down.
void update_high_watermark(partition& p);

// acks=-1: `done(error)` runs (on this shard) once the high watermark reaches offset, or
// with NOT_LEADER_OR_FOLLOWER if leadership is lost first. Answers at once if it is there.
void wait_for_ack(partition& p, int64_t offset, int64_t min_insync, std::weak_ptr<void> alive,
                  std::function<void(int16_t)> done);

// Periodic (every replica.lag.time.max.ms / 2): drop followers that have not caught up
// for lag_ms from the ISR.
void expire_lagging(shard& sh, partition& p, int64_t now_ms, int64_t lag_ms);

}  // namespace sluice::broker::replication
