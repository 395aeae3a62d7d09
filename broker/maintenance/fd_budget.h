#pragma once
// A shard's share of the server-wide limit on open segment descriptors
// (log.max.open.files, default half of RLIMIT_NOFILE), so that 10,000 partitions run
// under a modest `ulimit -n`. Segments open their .log descriptor lazily (storage
// reopens on the next read or append); this class decides when to close them again:
// when the shard's count goes over its share, the least recently used partitions
// release theirs (partition_log::release_idle_fds, which skips segments a file_slice or
// a background job still holds) until the count is a quarter of the share below it, so one
// eviction pass pays for many cheap uses.
//
// Counting is exact for what the shard sees (note_use after an open or an append) and
// caught up by sweep(), which also treats a partition whose descriptors reappeared since
// the last sweep (a fetch reopened it) as used then.
//
// Limit: a descriptor reopened for a file_slice (fetch.send.strategy=splice or a buffered
// read) stays open while the response holds the segment, and nothing here can release it
// before then. One fetch spanning more partitions than the free descriptors can exhaust
// RLIMIT_NOFILE; the send path should fall back to the segment's mapping when fd() fails.
//
// Concurrency: the owning shard's thread only, like the partitions it looks at.
#include "broker/partition.h"

#include <cstddef>
#include <cstdint>
#include <functional>

namespace sluice::broker {

class fd_budget {
public:
    // Calls its argument once for every partition of the shard.
    using partition_walk = std::function<void(const std::function<void(partition&)>&)>;

    fd_budget(size_t share, partition_walk walk);
    fd_budget(const fd_budget&) = delete;
    fd_budget& operator=(const fd_budget&) = delete;

    size_t share() const { return _share; }
    void set_share(size_t share);
    // Descriptors counted as open by this shard's partitions (exact after sweep()).
    size_t open_count() const { return _open; }
    // Descriptors closed by evictions so far, and the number of eviction passes.
    uint64_t released_total() const { return _released; }
    uint64_t evictions() const { return _evictions; }

    // p was just opened, appended to or read: it becomes the most recently used, its
    // descriptors are recounted, and an eviction runs when the share is exceeded.
    void note_use(partition& p);
    // p is about to be closed and destroyed: its descriptors leave the count.
    void forget(partition& p);
    // Periodic: recount every partition, then evict if over the share.
    void sweep();

private:
    void recount(partition& p, bool reopened_is_use);
    void evict();

    size_t _share;
    partition_walk _walk;
    size_t _open = 0;
    uint64_t _clock = 0;
    uint64_t _released = 0;
    uint64_t _evictions = 0;
};

}  // namespace sluice::broker
