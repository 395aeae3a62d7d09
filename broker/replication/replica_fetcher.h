#pragma once
// The follower side of replication (Kafka's ReplicaFetcherThread): for every partition
// this broker hosts but does not lead, copy the leader's batches into the local log
// with Fetch requests that carry this broker's id as replica_id, keeping the leader's
// offsets and epochs byte for byte.
//
// One thread for the whole broker (num.replica.fetchers=1), one connection per leader
// broker, at most one request in flight per connection; the connections are
// multiplexed with poll(2), so a leader that is slow to answer never delays another.
// Requests: Fetch v12 (topic names, sessionless) and ListOffsets v7 when a fetch offset
// is out of range.
//
// Becoming a follower (a partition appears, or its leader or leader epoch changes):
// the log is truncated to its high watermark before the first fetch, because records
// past it may never have been committed by the old leader. Sluice has no leader-epoch
// cache yet (KIP-101/279), so this is Kafka's pre-0.11 rule: records below the high
// watermark are trusted, and a restarted broker's high watermark is its log end (no
// replication-offset-checkpoint is read back), so after a restart only an
// OFFSET_OUT_OF_RANGE from the leader (our log longer than its) triggers truncation.
//
// Concurrency: start()/stop() from the server's main thread; update() from any thread
// (the ZooKeeper session thread); everything else runs on the fetcher thread. Logs are
// touched only on their owner shard, through shard::post: the fetcher thread waits for
// the result (bounded, and cut short by stop()); the work re-checks on the shard that
// this broker still follows that leader at that epoch before writing anything.
#include "coord/types.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

namespace sluice::broker {
class server;
}

namespace sluice::broker::replication {

class fetcher_loop;

class replica_fetcher {
public:
    // Reads its settings from srv.config() (replica.fetch.* keys, Kafka's defaults).
    explicit replica_fetcher(server& srv);
    ~replica_fetcher();  // stop()s
    replica_fetcher(const replica_fetcher&) = delete;
    replica_fetcher& operator=(const replica_fetcher&) = delete;

    // Starts the thread; call once the shards serve.
    void start();
    // Any thread: the newest cluster snapshot (only the latest pending one is kept).
    // Call after the shards were handed the same snapshot, so that their copy is at
    // least as new as the fetcher's when its work reaches them.
    void update(std::shared_ptr<const coord::cluster_snapshot> snap);
    // Wakes the thread, which closes its connections; joins (bounded by the longest
    // single wait for a shard, a few seconds at most). Logs the counters. Idempotent.
    void stop();

    struct counters {
        uint64_t fetches = 0;             // Fetch requests sent
        uint64_t bytes_replicated = 0;    // batch bytes appended to local logs
        uint64_t batches_replicated = 0;
        uint64_t truncations = 0;         // logs truncated (becoming follower, out of range)
        uint64_t connection_failures = 0;
    };
    counters stats() const;

private:
    std::unique_ptr<fetcher_loop> _loop;
    std::thread _thread;
    bool _started = false;
    bool _stopped = false;
};

}  // namespace sluice::broker::replication
