#pragma once
// Idempotent producers (KIP-98 without transactions): per partition, the last five
// batches of each producer id, so a retried batch is answered with its original offset
// instead of being written twice. Leaders fill it from Produce; followers from the
// batches they replicate, so a new leader after a failover recognises retries of batches
// that reached it before the old leader died.
//
// State is in memory only: after a restart the first batch of a known producer is
// accepted as is (Kafka rebuilds it from the log and .snapshot files).
//
// Concurrency: runs on the shard that owns the partition.
#include "broker/partition.h"
#include "storage/record_batch.h"

#include <optional>
#include <span>
#include <string>

namespace sluice::broker {

struct sequence_verdict {
    int16_t error = 0;            // INVALID_PRODUCER_EPOCH, OUT_OF_ORDER_SEQUENCE_NUMBER, or 0
    int64_t duplicate_of = -1;    // >= 0: a retry of the batch written at this base offset
    std::string message;
};

// What to do with a batch (header as the client sent it) before appending it; nullopt:
// append it.
std::optional<sequence_verdict> check_sequence(const partition& p, const storage::batch_header& h);

// After a batch was written at base_offset.
void remember_sequence(partition& p, const storage::batch_header& h, int64_t base_offset);

// After a follower appended replicated batches (which carry their leader-assigned offsets).
void remember_replicated(partition& p, std::span<const uint8_t> records);

}  // namespace sluice::broker
