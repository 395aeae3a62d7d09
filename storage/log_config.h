#pragma once
// Per-partition log settings, named and defaulted as Kafka's broker/topic configs.
#include "storage/record_batch.h"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

namespace sluice::storage {

// cleanup.policy: a set of "delete" (retention by time/size) and "compact" (keep the last
// record per key), written "delete", "compact" or "compact,delete".
enum cleanup_policy : uint8_t { cleanup_none = 0, cleanup_delete = 1, cleanup_compact = 2 };
// nullopt for anything but a comma list of those two words.
std::optional<uint8_t> parse_cleanup_policy(std::string_view s);

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
    // cleanup.policy (cleanup_policy bits).
    uint8_t cleanup_policy = cleanup_delete;
    // delete.retention.ms: how long a tombstone (null value) survives compaction, counted
    // from when its segment was last written, so slow consumers still see the delete.
    int64_t delete_retention_ms = 24ll * 3600 * 1000;
    // min.cleanable.dirty.ratio: compact when dirty bytes / cleanable bytes reach it.
    double min_cleanable_dirty_ratio = 0.5;
    // min.compaction.lag.ms: records younger than this are never compacted.
    int64_t min_compaction_lag_ms = 0;
    // max.compaction.lag.ms: a dirty segment older than this is compacted whatever the ratio.
    int64_t max_compaction_lag_ms = std::numeric_limits<int64_t>::max();
    // file.delete.delay.ms: a segment removed by retention is renamed to .deleted and
    // unlinked this much later (readers that opened it by name get time to finish).
    int64_t file_delete_delay_ms = 60000;
    // flush.messages / flush.ms: fsync after this many appended records / this long since
    // the last flush (Kafka's defaults: never; rely on replication and the page cache).
    int64_t flush_interval_messages = std::numeric_limits<int64_t>::max();
    int64_t flush_interval_ms = std::numeric_limits<int64_t>::max();

    // log.append.strategy=direct (broker-wide): appends go to disk with O_DIRECT from
    // reused, pre-faulted chunks that also serve the newest bytes to fetches
    // (tail_cache.h); false: through the page cache.
    bool direct_append = false;

    bool compacted() const { return cleanup_policy & cleanup_compact; }
    bool deletes() const { return cleanup_policy & cleanup_delete; }
};

}  // namespace sluice::storage
