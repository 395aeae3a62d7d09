#pragma once
// What the replica fetcher does to a follower's log, run on the partition's owner shard
// (the only thread that may touch it). Every operation first checks, against the
// shard's own snapshot, that this broker still follows `id.leader` at `id.leader_epoch`
// (and the topic id is unchanged): a response from a deposed leader, or work that lost
// a race with a newer snapshot, is refused as `stale` and never written. In particular
// nothing is ever appended to a partition this broker leads.
//
// Concurrency: functions run on the owner shard's thread; their inputs are values (the
// fetched bytes are held by a shared buffer) so work that outlives the fetcher's wait
// is still safe.
#include "broker/replication/fetch_plan.h"

#include <cstdint>
#include <memory>
#include <span>
#include <system_error>
#include <vector>

namespace sluice::broker {
class shard;
}

namespace sluice::broker::replication {

enum class op_status {
    ok,
    stale,          // the shard's snapshot no longer has us following this leader/epoch
    not_hosted,     // the shard has no open log for the partition (failed to open, deleted)
    invalid,        // the leader's bytes did not validate (CRC, structure); retried later
    storage_error,  // the log could not be written: the partition stops being fetched
};

struct log_position {
    op_status status = op_status::ok;
    int64_t log_start = 0;
    int64_t log_end = 0;
    int64_t high_watermark = 0;
    int64_t truncated = 0;  // offsets removed by this operation
    uint64_t bytes = 0;     // appended
    int32_t batches = 0;    // appended
    std::error_code error;  // for invalid / storage_error
};

// Becoming a follower: truncate to the local high watermark.
log_position become_follower(shard& sh, const followed_partition& id);

// OFFSET_OUT_OF_RANGE, leader's log shorter: drop every offset >= offset.
log_position truncate_follower(shard& sh, const followed_partition& id, int64_t offset);

// OFFSET_OUT_OF_RANGE, our log ends below the leader's log start: empty the log. The
// next append starts at the leader's log start and moves our log start there.
log_position empty_follower(shard& sh, const followed_partition& id);

// One partition of a Fetch response.
struct fetched_partition {
    followed_partition id;
    std::shared_ptr<const std::vector<uint8_t>> frame;  // owns `records`
    std::span<const uint8_t> records;
    int64_t leader_high_watermark = 0;
    int64_t leader_log_start = 0;
};

// Appends the whole batches at or past our log end, then high watermark =
// min(leader's, our log end), log start follows the leader's, fetch waiters wake.
log_position apply_fetched(shard& sh, const fetched_partition& f, int64_t now_ms);

}  // namespace sluice::broker::replication
