#pragma once
// Kafka record batch v2 (magic 2): parsing the header, validating Produce payloads
// without decompressing, rewriting the broker-assigned header fields in place, walking
// the records of an uncompressed batch, and building batches (tests, tools).
//
// Disk and wire format (identical; every integer big-endian). Offsets from batch start:
//    0  baseOffset            i64  assigned by the broker     \ outside the CRC, so the
//    8  batchLength           i32  bytes after this field      | broker rewrites them
//   12  partitionLeaderEpoch  i32  assigned by the broker     /  without re-checksumming
//   16  magic                 i8   2 (v0/v1 message sets also keep magic at byte 16)
//   17  crc                   u32  CRC32C of bytes [21, 12 + batchLength)
//   21  attributes            i16  bits 0-2 codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd),
//                                  bit 3 timestamp type (1 = LogAppendTime), bit 4
//                                  transactional, bit 5 control, bit 6 delete horizon set
//   23  lastOffsetDelta       i32  offset of the last record - baseOffset
//   27  baseTimestamp         i64
//   35  maxTimestamp          i64
//   43  producerId            i64  -1 without idempotence
//   51  producerEpoch         i16
//   53  baseSequence          i32
//   57  recordCount           i32
//   61  records: recordCount records (compressed as one blob when codec != 0)
//
// A record (uncompressed form), varints are zig-zag (Kafka's ByteUtils):
//   length varint (bytes after it), attributes i8, timestampDelta varlong,
//   offsetDelta varint, keyLength varint (-1 null), key, valueLength varint (-1 null),
//   value, headerCount varint, then per header: keyLength varint, key,
//   valueLength varint (-1 null), value.
//
// Concurrency: free functions on caller-owned bytes; batch_builder is single-threaded.
#include "base/result.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace sluice::storage {

namespace batch_offset {
inline constexpr size_t base_offset = 0;
inline constexpr size_t batch_length = 8;
inline constexpr size_t partition_leader_epoch = 12;
inline constexpr size_t magic = 16;
inline constexpr size_t crc = 17;
inline constexpr size_t attributes = 21;
inline constexpr size_t last_offset_delta = 23;
inline constexpr size_t base_timestamp = 27;
inline constexpr size_t max_timestamp = 35;
inline constexpr size_t producer_id = 43;
inline constexpr size_t producer_epoch = 51;
inline constexpr size_t base_sequence = 53;
inline constexpr size_t record_count = 57;
inline constexpr size_t records = 61;
}  // namespace batch_offset

// Bytes before batchLength's count starts (Kafka's LOG_OVERHEAD).
inline constexpr size_t log_overhead = 12;
inline constexpr size_t batch_header_size = 61;
static_assert(batch_offset::record_count + 4 == batch_header_size, "v2 batch header is 61 bytes");
static_assert(batch_offset::crc + 4 == batch_offset::attributes, "crc covers attributes..end");
inline constexpr int8_t current_magic = 2;

enum class compression : uint8_t { none = 0, gzip = 1, snappy = 2, lz4 = 3, zstd = 4 };
enum class timestamp_type : uint8_t { create_time = 0, log_append_time = 1 };
std::string_view compression_name(compression c);

namespace batch_attr {
inline constexpr int16_t codec_mask = 0x07;
inline constexpr int16_t log_append_time = 0x08;
inline constexpr int16_t transactional = 0x10;
inline constexpr int16_t control = 0x20;
inline constexpr int16_t delete_horizon = 0x40;
}  // namespace batch_attr

// A decoded copy of the 61-byte header.
struct batch_header {
    int64_t base_offset = 0;
    int32_t batch_length = 0;
    int32_t partition_leader_epoch = 0;
    int8_t magic = 0;
    uint32_t crc = 0;
    int16_t attributes = 0;
    int32_t last_offset_delta = 0;
    int64_t base_timestamp = 0;
    int64_t max_timestamp = 0;
    int64_t producer_id = -1;
    int16_t producer_epoch = -1;
    int32_t base_sequence = -1;
    int32_t record_count = 0;

    int64_t last_offset() const { return base_offset + last_offset_delta; }
    size_t size_bytes() const { return log_overhead + static_cast<uint32_t>(batch_length); }
    compression codec() const { return static_cast<compression>(attributes & batch_attr::codec_mask); }
    timestamp_type ts_type() const {
        return (attributes & batch_attr::log_append_time) ? timestamp_type::log_append_time
                                                          : timestamp_type::create_time;
    }
    bool is_transactional() const { return attributes & batch_attr::transactional; }
    bool is_control() const { return attributes & batch_attr::control; }
};

// Requires at least batch_header_size bytes; does not validate anything.
batch_header parse_batch_header(const uint8_t* p);

// CRC32C over [attributes, end) of one whole batch (size >= batch_header_size).
uint32_t compute_batch_crc(std::span<const uint8_t> batch);

// What validate_batches learned about a Produce records field.
struct batch_summary {
    int32_t batch_count = 0;
    int64_t offset_count = 0;        // sum of lastOffsetDelta + 1: offsets the append consumes
    int64_t max_timestamp = -1;      // largest maxTimestamp over the batches
    size_t max_batch_bytes = 0;      // largest single batch (for max.message.bytes)
};

// client: a Produce from a client (Kafka's AppendOrigin.CLIENT): control batches and
// producer ids without sequence numbers are rejected. replica: batches copied from a
// leader, which may carry those.
enum class validate_origin : uint8_t { client, replica };

// Validates a buffer holding one or more v2 batches back to back, WITHOUT decompressing:
// each batch has magic 2 (else unsupported_magic), a batchLength that covers the header
// and stays inside the buffer, a matching CRC32C, a known codec, recordCount >= 1 and
// recordCount == lastOffsetDelta + 1; no trailing bytes. Errors are log_errc values
// (corrupt_message, invalid_record, unsupported_magic, unsupported_compression_type).
// Never reads outside `records`; safe on arbitrary input (this is the fuzz target).
result<batch_summary> validate_batches(std::span<const uint8_t> records,
                                       validate_origin origin = validate_origin::client);

// Looser check for a batch already in a log (recovery, dump tool): structure and CRC, but
// compaction may have removed records, so only 0 <= recordCount <= lastOffsetDelta + 1.
// `batch_and_more` starts at the batch and holds whatever the caller has after it;
// a batch that does not fit in it, or is larger than max_batch_bytes, is corrupt.
std::error_code check_stored_batch(std::span<const uint8_t> batch_and_more, size_t max_batch_bytes);

// In-place header rewrites. The first two are outside the CRC range.
void set_base_offset(uint8_t* batch, int64_t base_offset);
void set_partition_leader_epoch(uint8_t* batch, int32_t epoch);
// LogAppendTime: sets the timestamp-type bit and maxTimestamp, then recomputes the CRC.
void set_log_append_time(std::span<uint8_t> batch, int64_t now_ms);

// One record of an uncompressed batch; spans point into the batch bytes.
struct record_view {
    struct header {
        std::span<const uint8_t> key;
        std::optional<std::span<const uint8_t>> value;
    };
    int8_t attributes = 0;
    int64_t timestamp_delta = 0;
    int32_t offset_delta = 0;
    std::optional<std::span<const uint8_t>> key;
    std::optional<std::span<const uint8_t>> value;
    std::vector<header> headers;
};

// The records of one whole uncompressed batch. corrupt_message if the records do not
// parse, their count differs from recordCount, or bytes are left over; invalid_record
// if the batch is compressed (decompression is not the storage layer's business).
result<std::vector<record_view>> decode_records(std::span<const uint8_t> batch);

// Compaction: the batch rebuilt with only the records keep(offset, record) accepts. The
// header keeps baseOffset, lastOffsetDelta (so offsets and producer sequence state stay
// as they were), timestamps, producer fields and attributes; recordCount and
// batchLength shrink and the CRC is recomputed. The surviving records' bytes are copied
// unchanged. An empty vector when no record survives; invalid_record for a compressed
// batch (its records are opaque here), corrupt_message when the records do not parse.
// Safe on arbitrary input (fuzzed with validate_batches).
result<std::vector<uint8_t>> filter_records(
    std::span<const uint8_t> batch,
    const std::function<bool(int64_t offset, const record_view& record)>& keep);

// Builds v2 batches in memory; used by tests, tools and benchmarks (clients build the
// real ones). Records are stored uncompressed; codec() only sets the attribute bits so
// tests can exercise "compressed" batches whose record bytes are opaque to the broker.
class batch_builder {
public:
    struct header_kv {
        std::string key;
        std::optional<std::string> value;
    };

    explicit batch_builder(int64_t base_timestamp_ms = 0) : _base_timestamp(base_timestamp_ms) {}

    batch_builder& add(std::optional<std::string_view> key, std::optional<std::string_view> value,
                       int64_t timestamp_ms = -1, std::vector<header_kv> headers = {});
    batch_builder& producer(int64_t id, int16_t epoch, int32_t base_sequence);
    batch_builder& codec(compression c);
    batch_builder& attributes(int16_t extra_bits);
    batch_builder& partition_leader_epoch(int32_t epoch);

    size_t record_count() const { return _count; }
    std::vector<uint8_t> build(int64_t base_offset = 0) const;

private:
    int64_t _base_timestamp;
    int64_t _max_timestamp = -1;
    int64_t _producer_id = -1;
    int16_t _producer_epoch = -1;
    int32_t _base_sequence = -1;
    int16_t _attributes = 0;
    int32_t _leader_epoch = -1;
    size_t _count = 0;
    std::vector<uint8_t> _records;  // encoded records, back to back
};

// Zig-zag varint helpers (exposed for the dump tool and tests).
void put_varlong(std::vector<uint8_t>& out, int64_t v);
// Decodes at p (advancing it) without passing end; nullopt when truncated or too long.
std::optional<int64_t> get_varlong(const uint8_t*& p, const uint8_t* end);

}  // namespace sluice::storage
