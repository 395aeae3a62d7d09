#include "bench/kafka_wire.h"

#include "base/assert.h"
#include "base/out_message.h"
#include "broker/protocol/header.h"
#include "broker/protocol/messages.h"
#include "broker/protocol/reader.h"
#include "broker/protocol/writer.h"

#include <fmt/format.h>

#include <array>
#include <cstring>

namespace sluice::bench::wire {

// ---- CRC32C (Castagnoli, reflected polynomial 0x82f63b78) -------------------------

namespace {

constexpr uint32_t castagnoli = 0x82f63b78u;

struct crc_tables {
    std::array<std::array<uint32_t, 256>, 8> t{};
    constexpr crc_tables() {
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ castagnoli : c >> 1;
            t[0][i] = c;
        }
        for (uint32_t i = 0; i < 256; ++i)
            for (size_t s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    }
};
constexpr crc_tables tables;

uint32_t crc32c_portable(const uint8_t* p, size_t n, uint32_t c) {
    while (n >= 8) {  // slicing-by-8
        uint64_t w;
        std::memcpy(&w, p, 8);
        w ^= c;
        c = tables.t[7][w & 0xff] ^ tables.t[6][(w >> 8) & 0xff] ^ tables.t[5][(w >> 16) & 0xff] ^
            tables.t[4][(w >> 24) & 0xff] ^ tables.t[3][(w >> 32) & 0xff] ^ tables.t[2][(w >> 40) & 0xff] ^
            tables.t[1][(w >> 48) & 0xff] ^ tables.t[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--) c = (c >> 8) ^ tables.t[0][(c ^ *p++) & 0xff];
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(const uint8_t* p, size_t n, uint32_t c) {
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        c64 = __builtin_ia32_crc32di(c64, w);
        p += 8;
        n -= 8;
    }
    c = static_cast<uint32_t>(c64);
    while (n--) c = __builtin_ia32_crc32qi(c, *p++);
    return c;
}
const bool have_sse42 = __builtin_cpu_supports("sse4.2");
#endif

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
    auto* p = static_cast<const uint8_t*>(data);
    uint32_t c = ~crc;
#if defined(__x86_64__)
    if (have_sse42) return ~crc32c_sse42(p, n, c);
#endif
    return ~crc32c_portable(p, n, c);
}

// ---- writer / reader -------------------------------------------------------------

void writer::i16(int16_t v) {
    auto u = static_cast<uint16_t>(v);
    _out.push_back(static_cast<uint8_t>(u >> 8));
    _out.push_back(static_cast<uint8_t>(u));
}

void writer::i32(int32_t v) {
    auto u = static_cast<uint32_t>(v);
    for (int s = 24; s >= 0; s -= 8) _out.push_back(static_cast<uint8_t>(u >> s));
}

void writer::i64(int64_t v) {
    auto u = static_cast<uint64_t>(v);
    for (int s = 56; s >= 0; s -= 8) _out.push_back(static_cast<uint8_t>(u >> s));
}

void writer::varint(int64_t v) {
    uint64_t z = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
    while (z >= 0x80) {
        _out.push_back(static_cast<uint8_t>(z | 0x80));
        z >>= 7;
    }
    _out.push_back(static_cast<uint8_t>(z));
}

void writer::string(std::string_view s) {
    SLUICE_ASSERT(s.size() <= 0x7fff, "string of {} bytes", s.size());
    i16(static_cast<int16_t>(s.size()));
    raw(s.data(), s.size());
}

void writer::raw(const void* data, size_t n) {
    auto* p = static_cast<const uint8_t*>(data);
    _out.insert(_out.end(), p, p + n);
}

void writer::patch_i32(size_t at, int32_t v) {
    SLUICE_ASSERT(at + 4 <= _out.size(), "patch at {} of {}", at, _out.size());
    auto u = static_cast<uint32_t>(v);
    for (int i = 0; i < 4; ++i) _out[at + static_cast<size_t>(i)] = static_cast<uint8_t>(u >> (24 - 8 * i));
}

bool reader::take(size_t n) {
    if (!_ok || _data.size() - _pos < n) {
        _ok = false;
        return false;
    }
    return true;
}

int8_t reader::i8() {
    if (!take(1)) return 0;
    return static_cast<int8_t>(_data[_pos++]);
}

int16_t reader::i16() {
    if (!take(2)) return 0;
    auto v = static_cast<uint16_t>((_data[_pos] << 8) | _data[_pos + 1]);
    _pos += 2;
    return static_cast<int16_t>(v);
}

int32_t reader::i32() {
    if (!take(4)) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | _data[_pos++];
    return static_cast<int32_t>(v);
}

int64_t reader::i64() {
    if (!take(8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | _data[_pos++];
    return static_cast<int64_t>(v);
}

int64_t reader::varint() {
    uint64_t z = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (!take(1)) return 0;
        uint8_t b = _data[_pos++];
        z |= static_cast<uint64_t>(b & 0x7f) << shift;
        if (!(b & 0x80)) return static_cast<int64_t>(z >> 1) ^ -static_cast<int64_t>(z & 1);
    }
    _ok = false;
    return 0;
}

std::string reader::string() {
    int16_t n = i16();
    if (n <= 0 || !take(static_cast<size_t>(n))) return {};
    std::string s(reinterpret_cast<const char*>(_data.data() + _pos), static_cast<size_t>(n));
    _pos += static_cast<size_t>(n);
    return s;
}

std::span<const uint8_t> reader::bytes() {
    int32_t n = i32();
    if (n <= 0 || !take(static_cast<size_t>(n))) return {};
    auto s = _data.subspan(_pos, static_cast<size_t>(n));
    _pos += static_cast<size_t>(n);
    return s;
}

void reader::skip(size_t n) {
    if (take(n)) _pos += n;
}

// ---- record batches --------------------------------------------------------------

namespace {
void put_be32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
uint32_t get_be32(const uint8_t* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
int64_t get_be64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
    return static_cast<int64_t>(v);
}

size_t varint_size(int64_t v) {
    uint64_t z = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
    size_t n = 1;
    while (z >= 0x80) {
        z >>= 7;
        ++n;
    }
    return n;
}
}  // namespace

void append_record_batch(std::vector<uint8_t>& out, int32_t record_count, std::span<const uint8_t> value,
                         int64_t timestamp_ms) {
    SLUICE_ASSERT(record_count > 0, "empty batch");
    size_t start = out.size();
    writer w(out);
    w.i64(0);   // base offset: assigned by the broker
    w.i32(0);   // batch length, patched below
    w.i32(-1);  // partition leader epoch
    w.i8(2);    // magic
    w.i32(0);   // crc, patched below
    w.i16(0);   // attributes: no compression, CreateTime, not transactional
    w.i32(record_count - 1);
    w.i64(timestamp_ms);
    w.i64(timestamp_ms);
    w.i64(-1);  // producer id: not idempotent
    w.i16(-1);
    w.i32(-1);
    w.i32(record_count);
    SLUICE_ASSERT(out.size() - start == batch_header_bytes, "header {}", out.size() - start);
    auto value_len = static_cast<int64_t>(value.size());
    for (int32_t i = 0; i < record_count; ++i) {
        // body: attributes, timestamp delta 0, offset delta, null key, value, 0 headers
        int64_t body = 1 + 1 + static_cast<int64_t>(varint_size(i)) + 1 +
                       static_cast<int64_t>(varint_size(value_len)) + value_len + 1;
        w.varint(body);
        w.i8(0);
        w.varint(0);
        w.varint(i);
        w.varint(-1);
        w.varint(value_len);
        w.raw(value.data(), value.size());
        w.varint(0);
    }
    uint8_t* batch = out.data() + start;
    size_t total = out.size() - start;
    put_be32(batch + batch_length_offset, static_cast<uint32_t>(total - 12));
    put_be32(batch + batch_crc_offset, crc32c(batch + batch_attributes_offset, total - batch_attributes_offset));
}

batch_scan scan_batches(std::span<const uint8_t> records, bool verify_crc) {
    batch_scan s;
    size_t pos = 0;
    while (records.size() - pos >= batch_header_bytes) {
        const uint8_t* b = records.data() + pos;
        uint32_t length = get_be32(b + batch_length_offset);
        if (b[batch_magic_offset] != 2 || length < batch_header_bytes - 12) {
            s.malformed = true;
            break;
        }
        size_t total = static_cast<size_t>(length) + 12;
        if (records.size() - pos < total) break;  // partial trailing batch
        if (verify_crc && crc32c(b + batch_attributes_offset, total - batch_attributes_offset) != get_be32(b + batch_crc_offset))
            ++s.crc_failures;
        int64_t base = get_be64(b);
        s.next_offset = base + static_cast<int32_t>(get_be32(b + batch_last_offset_delta_offset)) + 1;
        s.records += get_be32(b + batch_record_count_offset);
        s.bytes += total;
        ++s.batches;
        pos += total;
    }
    return s;
}

// ---- requests and responses: the project's generated codec ----------------------

namespace {

std::error_code malformed() { return std::make_error_code(std::errc::bad_message); }

// One whole request frame: size prefix, header (v1 or v2 by the API's flexible
// versions), body. Copied out of the out_message because the load generator patches
// correlation ids in place and sends the same bytes many times.
template <typename Message>
void encode_request(std::vector<uint8_t>& out, int16_t version, int32_t correlation_id, std::string_view client_id,
                    const Message& message) {
    SLUICE_ASSERT(version >= Message::min_version && version <= Message::max_version, "api {} v{}",
                  Message::api_key, version);
    out_message frame;
    proto::writer w(frame);
    size_t prefix = w.begin_frame();
    proto::request_header header;
    header.api_key = Message::api_key;
    header.api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = std::string(client_id);
    header.header_version = proto::request_header_version(Message::api_key, version);
    proto::encode_request_header(w, header);
    message.encode(w, version);
    w.end_frame(prefix);
    auto bytes = frame.memory_bytes();
    out.insert(out.end(), bytes.begin(), bytes.end());
}

// `body` starts after the correlation id: flexible versions still have the response
// header's tagged fields to skip.
template <typename Message>
result<Message> decode_response(int16_t version, std::span<const uint8_t> body) {
    if (version < Message::min_version || version > Message::max_version) return std::errc::invalid_argument;
    proto::reader r(body);
    r.set_context(Message::api_key, version);
    if (proto::response_header_version(Message::api_key, version) == 1)
        r.read_tagged_fields([](uint32_t) { return false; });
    Message m;
    if (!m.decode(r, version) || !r.ok()) return malformed();
    return m;
}

}  // namespace

void encode_api_versions_v0(std::vector<uint8_t>& out, int32_t correlation_id, std::string_view client_id) {
    encode_request(out, 0, correlation_id, client_id, proto::api_versions_request{});
}

void encode_metadata(std::vector<uint8_t>& out, int16_t version, int32_t correlation_id, std::string_view client_id,
                     const std::vector<std::string>& topics, bool allow_auto_create) {
    proto::metadata_request m;
    for (auto& t : topics) m.topics->push_back({proto::uuid{}, t});
    m.allow_auto_topic_creation = allow_auto_create;
    encode_request(out, version, correlation_id, client_id, m);
}

void encode_create_topics(std::vector<uint8_t>& out, int16_t version, int32_t correlation_id,
                          std::string_view client_id, std::string_view topic, int32_t partitions,
                          int16_t replication_factor, int32_t timeout_ms) {
    proto::create_topics_request m;
    proto::create_topics_request::creatable_topic t;
    t.name = std::string(topic);
    t.num_partitions = partitions;
    t.replication_factor = replication_factor;
    m.topics.push_back(std::move(t));
    m.timeout_ms = timeout_ms;
    encode_request(out, version, correlation_id, client_id, m);
}

void encode_list_offsets(std::vector<uint8_t>& out, int16_t version, int32_t correlation_id,
                         std::string_view client_id, std::string_view topic,
                         std::span<const list_offsets_query> parts) {
    proto::list_offsets_request m;
    m.replica_id = -1;  // a consumer
    proto::list_offsets_request::list_offsets_topic t;
    t.name = std::string(topic);
    for (auto& p : parts) {
        proto::list_offsets_request::list_offsets_partition q;
        q.partition_index = p.partition;
        q.timestamp = p.timestamp;
        t.partitions.push_back(q);
    }
    m.topics.push_back(std::move(t));
    encode_request(out, version, correlation_id, client_id, m);
}

void encode_produce(std::vector<uint8_t>& out, int16_t version, int32_t correlation_id, std::string_view client_id,
                    int16_t acks, int32_t timeout_ms, std::string_view topic, std::span<const produce_partition> parts) {
    SLUICE_ASSERT(version >= 3, "produce v{} predates record batch v2", version);
    proto::produce_request m;
    m.acks = acks;
    m.timeout_ms = timeout_ms;
    proto::produce_request::topic_produce_data t;
    t.name = std::string(topic);
    for (auto& p : parts) t.partition_data.push_back({p.partition, proto::records::of(p.batch)});
    m.topic_data.push_back(std::move(t));
    encode_request(out, version, correlation_id, client_id, m);
}

void encode_fetch(std::vector<uint8_t>& out, int16_t version, int32_t correlation_id, std::string_view client_id,
                  int32_t max_wait_ms, int32_t min_bytes, int32_t max_bytes, std::string_view topic,
                  std::span<const fetch_partition> parts) {
    // v4: record batch v2 and isolation levels; v13 replaces topic names by ids.
    SLUICE_ASSERT(version >= 4 && version <= 12, "fetch v{}", version);
    proto::fetch_request m;
    m.replica_id = -1;  // a consumer
    m.max_wait_ms = max_wait_ms;
    m.min_bytes = min_bytes;
    m.max_bytes = max_bytes;
    m.isolation_level = 0;  // read_uncommitted
    m.session_id = 0;       // sessionless: every request is a full fetch
    m.session_epoch = -1;
    proto::fetch_request::fetch_topic t;
    t.topic = std::string(topic);
    for (auto& p : parts) {
        proto::fetch_request::fetch_partition q;
        q.partition = p.partition;
        q.fetch_offset = p.offset;
        q.partition_max_bytes = p.max_bytes;
        t.partitions.push_back(q);
    }
    m.topics.push_back(std::move(t));
    encode_request(out, version, correlation_id, client_id, m);
}

int16_t api_versions_response::pick(int16_t key, int16_t ours_min, int16_t ours_max) const {
    for (auto& a : apis) {
        if (a.key != key) continue;
        int16_t hi = std::min(a.max, ours_max);
        int16_t lo = std::max(a.min, ours_min);
        return hi >= lo ? hi : -1;
    }
    return -1;
}

result<api_versions_response> decode_api_versions_v0(std::span<const uint8_t> body) {
    auto m = decode_response<proto::api_versions_response>(0, body);
    if (!m) return m.error();
    api_versions_response out;
    out.error = m->error_code;
    for (auto& a : m->api_keys) out.apis.push_back({a.api_key, a.min_version, a.max_version});
    return out;
}

result<metadata_response> decode_metadata(int16_t version, std::span<const uint8_t> body) {
    auto m = decode_response<proto::metadata_response>(version, body);
    if (!m) return m.error();
    metadata_response out;
    for (auto& b : m->brokers) out.brokers.push_back({b.node_id, b.host, b.port});
    out.controller_id = m->controller_id;
    for (auto& t : m->topics) {
        metadata_response::topic topic{t.error_code, t.name.value_or(""), {}};
        for (auto& p : t.partitions) topic.partitions.push_back({p.error_code, p.partition_index, p.leader_id});
        out.topics.push_back(std::move(topic));
    }
    return out;
}

result<std::vector<create_topic_result>> decode_create_topics(int16_t version, std::span<const uint8_t> body) {
    auto m = decode_response<proto::create_topics_response>(version, body);
    if (!m) return m.error();
    std::vector<create_topic_result> out;
    for (auto& t : m->topics) out.push_back({t.name, t.error_code});
    return out;
}

result<std::vector<list_offsets_result>> decode_list_offsets(int16_t version, std::span<const uint8_t> body) {
    auto m = decode_response<proto::list_offsets_response>(version, body);
    if (!m) return m.error();
    std::vector<list_offsets_result> out;
    for (auto& t : m->topics)
        for (auto& p : t.partitions) out.push_back({p.partition_index, p.error_code, p.offset});
    return out;
}

result<std::vector<produce_result>> decode_produce(int16_t version, std::span<const uint8_t> body) {
    auto m = decode_response<proto::produce_response>(version, body);
    if (!m) return m.error();
    std::vector<produce_result> out;
    for (auto& t : m->responses)
        for (auto& p : t.partition_responses) out.push_back({p.index, p.error_code, p.base_offset});
    return out;
}

result<fetch_response> decode_fetch(int16_t version, std::span<const uint8_t> body) {
    auto m = decode_response<proto::fetch_response>(version, body);
    if (!m) return m.error();
    fetch_response out;
    out.error = m->error_code;
    for (auto& t : m->responses) {
        for (auto& p : t.partitions) {
            // records.view borrows `body` (no copy); is_null reads as empty.
            out.partitions.push_back({p.partition_index, p.error_code, p.high_watermark, p.log_start_offset,
                                      p.records.view});
        }
    }
    return out;
}

std::string error_name(int16_t code) {
    const char* name = "";
    switch (code) {
        case 0: name = "NONE"; break;
        case 1: name = "OFFSET_OUT_OF_RANGE"; break;
        case 2: name = "CORRUPT_MESSAGE"; break;
        case 3: name = "UNKNOWN_TOPIC_OR_PARTITION"; break;
        case 5: name = "LEADER_NOT_AVAILABLE"; break;
        case 6: name = "NOT_LEADER_OR_FOLLOWER"; break;
        case 7: name = "REQUEST_TIMED_OUT"; break;
        case 10: name = "MESSAGE_TOO_LARGE"; break;
        case 19: name = "NOT_ENOUGH_REPLICAS"; break;
        case 35: name = "UNSUPPORTED_VERSION"; break;
        case 36: name = "TOPIC_ALREADY_EXISTS"; break;
        case 37: name = "INVALID_PARTITIONS"; break;
        case 38: name = "INVALID_REPLICATION_FACTOR"; break;
        case 41: name = "NOT_CONTROLLER"; break;
        case 87: name = "INVALID_RECORD"; break;
        default: name = "ERROR"; break;
    }
    return fmt::format("{} ({})", name, code);
}

}  // namespace sluice::bench::wire
