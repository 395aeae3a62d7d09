#pragma once
// Per-partition log settings, named and defaulted as Kafka's broker/topic configs.
#include "storage/record_batch.h"

#include <cstddef>
#include <cstdint>

namespace sluice::storage {

struct log_config {
    // log.segment.bytes / segment.bytes: roll when the active segment would grow past it.
    uint64_t segment_bytes = 1ull << 30;
    // log.roll.ms / segment.ms: roll a non-empty segment this old (7 days).
    int64_t segment_ms = 7ll * 24 * 3600 * 1000;
    // log.index.interval.bytes: bytes of batches between two offset-index entries.
    uint32_t index_interval_bytes = 4096;
    // log.index.size.max.bytes / segment.index.bytes: preallocated size of each index.
    size_t index_max_bytes = 10 * 1024 * 1024;
    // message.max.bytes / max.message.bytes: largest batch accepted (record batch overhead
    // included, hence 1 MiB + 12).
    uint32_t max_message_bytes = 1048588;
    // log.message.timestamp.type / message.timestamp.type.
    timestamp_type message_timestamp_type = timestamp_type::create_time;
    // log.retention.ms / retention.ms (-1: unlimited) and retention.bytes (-1: unlimited);
    // applied by partition_log::enforce_retention.
    int64_t retention_ms = 7ll * 24 * 3600 * 1000;
    int64_t retention_bytes = -1;
};

}  // namespace sluice::storage
