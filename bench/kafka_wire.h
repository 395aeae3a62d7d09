#pragma once
// The load generator's view of the Kafka wire: request builders and response readers
// for the few APIs it uses, on top of the project's generated codec (broker/protocol,
// proto_dep), plus what that codec leaves alone: CRC32C and building/scanning magic-2
// record batches. The tests check these frames against real clients' captured frames,
// so the bench also cross-checks the codec the broker uses.
//
// Framing (all integers big-endian):
//   request  = int32 size | int16 api_key | int16 api_version | int32 correlation_id
//              | int16 client_id length + bytes | [tagged fields, flexible versions] | body
//   response = int32 size | int32 correlation_id | [tagged fields, flexible versions] | body
//
// Record batch v2 (magic 2), as stored and sent by the broker; 61-byte header:
//   0 int64 base_offset | 8 int32 batch_length (bytes after this field) | 12 int32 leader_epoch
//   16 int8 magic=2 | 17 uint32 crc (CRC32C of bytes 21..end) | 21 int16 attributes
//   23 int32 last_offset_delta | 27 int64 base_timestamp | 35 int64 max_timestamp
//   43 int64 producer_id | 51 int16 producer_epoch | 53 int32 base_sequence | 57 int32 record_count
//   61 records: varint length | int8 attributes | varlong timestamp_delta | varint offset_delta
//      | varint key_length (-1: null) | key | varint value_length | value | varint header_count
//
// Concurrency: stateless functions; a writer/reader is used by one thread.
#include "base/result.h"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::bench::wire {

constexpr size_t batch_header_bytes = 61;
constexpr size_t batch_crc_offset = 17;
constexpr size_t batch_attributes_offset = 21;
constexpr size_t batch_record_count_offset = 57;
constexpr size_t batch_length_offset = 8;
constexpr size_t batch_last_offset_delta_offset = 23;
constexpr size_t batch_magic_offset = 16;

namespace api {
constexpr int16_t produce = 0;
constexpr int16_t fetch = 1;
constexpr int16_t list_offsets = 2;
constexpr int16_t metadata = 3;
constexpr int16_t api_versions = 18;
constexpr int16_t create_topics = 19;
}  // namespace api

uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);

// Appends big-endian fields to a byte vector (record batches; tests build responses with it).
class writer {
public:
    explicit writer(std::vector<uint8_t>& out) : _out(out) {}
    void i8(int8_t v) { _out.push_back(static_cast<uint8_t>(v)); }
    void i16(int16_t v);
    void i32(int32_t v);
    void i64(int64_t v);
    void varint(int64_t v);  // zig-zag, as in record bodies
    void string(std::string_view s);
    void null_string() { i16(-1); }
    void raw(const void* data, size_t n);
    size_t size() const { return _out.size(); }
    void patch_i32(size_t at, int32_t v);

private:
    std::vector<uint8_t>& _out;
};

// Bounds-checked big-endian reader with a sticky error (record walks in tests): after the
// first short read every later read returns 0 and ok() stays false.
class reader {
public:
    explicit reader(std::span<const uint8_t> data) : _data(data) {}
    int8_t i8();
    int16_t i16();
    int32_t i32();
    int64_t i64();
    int64_t varint();
    std::string string();           // int16 length; null reads as ""
    std::span<const uint8_t> bytes();  // int32 length; null reads as empty
    void skip(size_t n);
    bool ok() const { return _ok; }
    size_t remaining() const { return _data.size() - _pos; }
    size_t position() const { return _pos; }

private:
    bool take(size_t n);
    std::span<const uint8_t> _data;
    size_t _pos = 0;
    bool _ok = true;
};

// Appends one magic-2 batch of `record_count` keyless, header-less records, each with
// `value` as its value; offsets are relative (the broker assigns the base offset).
void append_record_batch(std::vector<uint8_t>& out, int32_t record_count, std::span<const uint8_t> value,
                         int64_t timestamp_ms);

// Request builders: each appends one whole frame (size prefix included) to out.
void encode_api_versions_v0(std::vector<uint8_t>& out, int32_t correlation_id, std::string_view client_id);
// Any version the codec knows; version >= 4 carries allow_auto_topic_creation.
void encode_metadata(std::vector<uint8_t>& out, int16_t version, int32_t correlation_id, std::string_view client_id,
                     const std::vector<std::string>& topics, bool allow_auto_create);
void encode_create_topics(std::vector<uint8_t>& out, int16_t version, int32_t correlation_id,
                          std::string_view client_id, std::string_view topic, int32_t partitions,
                          int16_t replication_factor, int32_t timeout_ms);

struct produce_partition {
    int32_t partition = 0;
    std::span<const uint8_t> batch;
};
// version 3.. (record batch v2).
void encode_produce(std::vector<uint8_t>& out, int16_t version, int32_t correlation_id, std::string_view client_id,
                    int16_t acks, int32_t timeout_ms, std::string_view topic, std::span<const produce_partition> parts);

struct list_offsets_query {
    int32_t partition = 0;
    int64_t timestamp = -1;  // -1: latest (log end), -2: earliest (log start)
};
void encode_list_offsets(std::vector<uint8_t>& out, int16_t version, int32_t correlation_id,
                         std::string_view client_id, std::string_view topic, std::span<const list_offsets_query> parts);

struct fetch_partition {
    int32_t partition = 0;
    int64_t offset = 0;
    int32_t max_bytes = 0;
};
// version 4..12 (v13+ names topics by id); sessionless (session id 0, epoch -1),
// read_uncommitted.
void encode_fetch(std::vector<uint8_t>& out, int16_t version, int32_t correlation_id, std::string_view client_id,
                  int32_t max_wait_ms, int32_t min_bytes, int32_t max_bytes, std::string_view topic,
                  std::span<const fetch_partition> parts);

// Response decoders take the body after the correlation id; std::errc::bad_message when
// it does not decode as that version.
struct api_range {
    int16_t key = 0, min = 0, max = 0;
};
struct api_versions_response {
    int16_t error = 0;
    std::vector<api_range> apis;
    // Highest version both sides speak, or -1.
    int16_t pick(int16_t key, int16_t ours_min, int16_t ours_max) const;
};
result<api_versions_response> decode_api_versions_v0(std::span<const uint8_t> body);

struct metadata_response {
    struct broker {
        int32_t id = -1;
        std::string host;
        int32_t port = 0;
    };
    struct partition {
        int16_t error = 0;
        int32_t index = 0;
        int32_t leader = -1;
    };
    struct topic {
        int16_t error = 0;
        std::string name;
        std::vector<partition> partitions;
    };
    std::vector<broker> brokers;
    int32_t controller_id = -1;
    std::vector<topic> topics;
};
result<metadata_response> decode_metadata(int16_t version, std::span<const uint8_t> body);

struct create_topic_result {
    std::string name;
    int16_t error = 0;
};
result<std::vector<create_topic_result>> decode_create_topics(int16_t version, std::span<const uint8_t> body);

struct produce_result {
    int32_t partition = 0;
    int16_t error = 0;
    int64_t base_offset = -1;
};
result<std::vector<produce_result>> decode_produce(int16_t version, std::span<const uint8_t> body);

struct list_offsets_result {
    int32_t partition = 0;
    int16_t error = 0;
    int64_t offset = -1;
};
result<std::vector<list_offsets_result>> decode_list_offsets(int16_t version, std::span<const uint8_t> body);

struct fetch_result {
    int32_t partition = 0;
    int16_t error = 0;
    int64_t high_watermark = -1;
    int64_t log_start_offset = -1;
    std::span<const uint8_t> records;  // points into the body
};
struct fetch_response {
    int16_t error = 0;  // v7+
    std::vector<fetch_result> partitions;  // of the single topic we fetch
};
result<fetch_response> decode_fetch(int16_t version, std::span<const uint8_t> body);

// Walks the batches in a fetched records blob without copying. A trailing partial batch
// (the broker may cut one at max_bytes) is not counted.
struct batch_scan {
    uint64_t batches = 0;
    uint64_t records = 0;
    uint64_t bytes = 0;         // of complete batches
    int64_t next_offset = -1;   // last offset of the last complete batch + 1, or -1
    uint64_t crc_failures = 0;  // only when verify_crc
    bool malformed = false;     // a batch header that cannot be a v2 batch
};
batch_scan scan_batches(std::span<const uint8_t> records, bool verify_crc);

// Kafka error code names for messages ("UNKNOWN_TOPIC_OR_PARTITION (3)").
std::string error_name(int16_t code);

}  // namespace sluice::bench::wire
