#include "bench/kafka_wire.h"

#include "base/assert.h"

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

// ---- requests --------------------------------------------------------------------

namespace {
// Starts a frame: size placeholder and request header v1. Returns the frame's start.
size_t begin_request(std::vector<uint8_t>& out, int16_t key, int16_t version, int32_t correlation_id,
                     std::string_view client_id) {
    size_t start = out.size();
    writer w(out);
    w.i32(0);
    w.i16(key);
    w.i16(version);
    w.i32(correlation_id);
    w.string(client_id);
    return start;
}

void end_request(std::vector<uint8_t>& out, size_t start) {
    writer(out).patch_i32(start, static_cast<int32_t>(out.size() - start - 4));
}
}  // namespace

void encode_api_versions_v0(std::vector<uint8_t>& out, int32_t correlation_id, std::string_view client_id) {
    end_request(out, begin_request(out, api::api_versions, 0, correlation_id, client_id));
}

void encode_metadata(std::vector<uint8_t>& out, int16_t version, int32_t correlation_id, std::string_view client_id,
                     const std::vector<std::string>& topics, bool allow_auto_create) {
    SLUICE_ASSERT(version >= 1 && version <= 4, "metadata v{}", version);
    size_t start = begin_request(out, api::metadata, version, correlation_id, client_id);
    writer w(out);
    w.i32(static_cast<int32_t>(topics.size()));
    for (auto& t : topics) w.string(t);
    if (version >= 4) w.i8(allow_auto_create ? 1 : 0);
    end_request(out, start);
}

void encode_create_topics_v0(std::vector<uint8_t>& out, int32_t correlation_id, std::string_view client_id,
                             std::string_view topic, int32_t partitions, int16_t replication_factor,
                             int32_t timeout_ms) {
    size_t start = begin_request(out, api::create_topics, 0, correlation_id, client_id);
    writer w(out);
    w.i32(1);
    w.string(topic);
    w.i32(partitions);
    w.i16(replication_factor);
    w.i32(0);  // no manual assignment
    w.i32(0);  // no configs
    w.i32(timeout_ms);
    end_request(out, start);
}

void encode_produce(std::vector<uint8_t>& out, int16_t version, int32_t correlation_id, std::string_view client_id,
                    int16_t acks, int32_t timeout_ms, std::string_view topic, std::span<const produce_partition> parts) {
    SLUICE_ASSERT(version >= 3 && version <= 8, "produce v{}", version);
    size_t start = begin_request(out, api::produce, version, correlation_id, client_id);
    writer w(out);
    w.null_string();  // transactional id
    w.i16(acks);
    w.i32(timeout_ms);
    w.i32(1);
    w.string(topic);
    w.i32(static_cast<int32_t>(parts.size()));
    for (auto& p : parts) {
        w.i32(p.partition);
        w.i32(static_cast<int32_t>(p.batch.size()));
        w.raw(p.batch.data(), p.batch.size());
    }
    end_request(out, start);
}

void encode_list_offsets_v1(std::vector<uint8_t>& out, int32_t correlation_id, std::string_view client_id,
                            std::string_view topic, std::span<const list_offsets_query> parts) {
    size_t start = begin_request(out, api::list_offsets, 1, correlation_id, client_id);
    writer w(out);
    w.i32(-1);  // replica id: a consumer
    w.i32(1);
    w.string(topic);
    w.i32(static_cast<int32_t>(parts.size()));
    for (auto& p : parts) {
        w.i32(p.partition);
        w.i64(p.timestamp);
    }
    end_request(out, start);
}

void encode_fetch(std::vector<uint8_t>& out, int16_t version, int32_t correlation_id, std::string_view client_id,
                  int32_t max_wait_ms, int32_t min_bytes, int32_t max_bytes, std::string_view topic,
                  std::span<const fetch_partition> parts) {
    SLUICE_ASSERT(version >= 4 && version <= 11, "fetch v{}", version);
    size_t start = begin_request(out, api::fetch, version, correlation_id, client_id);
    writer w(out);
    w.i32(-1);  // replica id: a consumer
    w.i32(max_wait_ms);
    w.i32(min_bytes);
    w.i32(max_bytes);
    w.i8(0);  // read_uncommitted
    if (version >= 7) {
        w.i32(0);   // session id: sessionless
        w.i32(-1);  // session epoch: full fetch, no session
    }
    w.i32(1);
    w.string(topic);
    w.i32(static_cast<int32_t>(parts.size()));
    for (auto& p : parts) {
        w.i32(p.partition);
        if (version >= 9) w.i32(-1);  // current leader epoch: unknown
        w.i64(p.offset);
        if (version >= 5) w.i64(-1);  // log start offset: only followers send it
        w.i32(p.max_bytes);
    }
    if (version >= 7) w.i32(0);      // forgotten topics
    if (version >= 11) w.string("");  // rack id
    end_request(out, start);
}

// ---- responses -------------------------------------------------------------------

namespace {
std::error_code malformed() { return std::make_error_code(std::errc::bad_message); }

// Array counts are bounded by what the remaining bytes could hold, so a corrupt count
// cannot make a decoder reserve gigabytes.
bool sane_count(const reader& r, int32_t n, size_t min_element_bytes) {
    return n >= 0 && static_cast<size_t>(n) <= r.remaining() / min_element_bytes;
}
}  // namespace

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
    reader r(body);
    api_versions_response out;
    out.error = r.i16();
    int32_t n = r.i32();
    if (!r.ok() || !sane_count(r, n, 6)) return malformed();
    for (int32_t i = 0; i < n; ++i) out.apis.push_back({r.i16(), r.i16(), r.i16()});
    if (!r.ok()) return malformed();
    return out;
}

result<metadata_response> decode_metadata(int16_t version, std::span<const uint8_t> body) {
    reader r(body);
    metadata_response out;
    if (version >= 3) r.i32();  // throttle
    int32_t nb = r.i32();
    if (!r.ok() || !sane_count(r, nb, 10)) return malformed();
    for (int32_t i = 0; i < nb; ++i) {
        metadata_response::broker b;
        b.id = r.i32();
        b.host = r.string();
        b.port = r.i32();
        r.string();  // rack (v1+)
        out.brokers.push_back(std::move(b));
    }
    if (version >= 2) r.string();  // cluster id
    out.controller_id = r.i32();
    int32_t nt = r.i32();
    if (!r.ok() || !sane_count(r, nt, 9)) return malformed();
    for (int32_t i = 0; i < nt; ++i) {
        metadata_response::topic t;
        t.error = r.i16();
        t.name = r.string();
        r.i8();  // is internal
        int32_t np = r.i32();
        if (!r.ok() || !sane_count(r, np, 18)) return malformed();
        for (int32_t j = 0; j < np; ++j) {
            metadata_response::partition p;
            p.error = r.i16();
            p.index = r.i32();
            p.leader = r.i32();
            int32_t replicas = r.i32();
            if (sane_count(r, replicas, 4)) r.skip(4 * static_cast<size_t>(replicas));
            int32_t isr = r.i32();
            if (sane_count(r, isr, 4)) r.skip(4 * static_cast<size_t>(isr));
            t.partitions.push_back(p);
        }
        out.topics.push_back(std::move(t));
    }
    if (!r.ok()) return malformed();
    return out;
}

result<std::vector<create_topic_result>> decode_create_topics_v0(std::span<const uint8_t> body) {
    reader r(body);
    int32_t n = r.i32();
    if (!r.ok() || !sane_count(r, n, 4)) return malformed();
    std::vector<create_topic_result> out;
    for (int32_t i = 0; i < n; ++i) {
        create_topic_result t;
        t.name = r.string();
        t.error = r.i16();
        out.push_back(std::move(t));
    }
    if (!r.ok()) return malformed();
    return out;
}

result<std::vector<produce_result>> decode_produce(int16_t version, std::span<const uint8_t> body) {
    reader r(body);
    std::vector<produce_result> out;
    int32_t nt = r.i32();
    if (!r.ok() || !sane_count(r, nt, 6)) return malformed();
    for (int32_t i = 0; i < nt; ++i) {
        r.string();
        int32_t np = r.i32();
        if (!r.ok() || !sane_count(r, np, 14)) return malformed();
        for (int32_t j = 0; j < np; ++j) {
            produce_result p;
            p.partition = r.i32();
            p.error = r.i16();
            p.base_offset = r.i64();
            if (version >= 2) r.i64();  // log append time
            if (version >= 5) r.i64();  // log start offset
            if (version >= 8) {
                int32_t ne = r.i32();
                if (!r.ok() || !sane_count(r, ne, 6)) return malformed();
                for (int32_t k = 0; k < ne; ++k) {
                    r.i32();
                    r.string();
                }
                r.string();  // error message
            }
            out.push_back(p);
        }
    }
    r.i32();  // throttle
    if (!r.ok()) return malformed();
    return out;
}

result<std::vector<list_offsets_result>> decode_list_offsets_v1(std::span<const uint8_t> body) {
    reader r(body);
    std::vector<list_offsets_result> out;
    int32_t nt = r.i32();
    if (!r.ok() || !sane_count(r, nt, 6)) return malformed();
    for (int32_t i = 0; i < nt; ++i) {
        r.string();
        int32_t np = r.i32();
        if (!r.ok() || !sane_count(r, np, 22)) return malformed();
        for (int32_t j = 0; j < np; ++j) {
            list_offsets_result p;
            p.partition = r.i32();
            p.error = r.i16();
            r.i64();  // timestamp
            p.offset = r.i64();
            out.push_back(p);
        }
    }
    if (!r.ok()) return malformed();
    return out;
}

result<fetch_response> decode_fetch(int16_t version, std::span<const uint8_t> body) {
    reader r(body);
    fetch_response out;
    r.i32();  // throttle
    if (version >= 7) {
        out.error = r.i16();
        r.i32();  // session id
    }
    int32_t nt = r.i32();
    if (!r.ok() || !sane_count(r, nt, 6)) return malformed();
    for (int32_t i = 0; i < nt; ++i) {
        r.string();
        int32_t np = r.i32();
        if (!r.ok() || !sane_count(r, np, 18)) return malformed();
        for (int32_t j = 0; j < np; ++j) {
            fetch_result p;
            p.partition = r.i32();
            p.error = r.i16();
            p.high_watermark = r.i64();
            r.i64();  // last stable offset (v4+)
            if (version >= 5) p.log_start_offset = r.i64();
            int32_t aborted = r.i32();  // -1: null
            if (aborted > 0 && sane_count(r, aborted, 16)) r.skip(16 * static_cast<size_t>(aborted));
            if (version >= 11) r.i32();  // preferred read replica
            p.records = r.bytes();
            out.partitions.push_back(p);
        }
    }
    if (!r.ok()) return malformed();
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
