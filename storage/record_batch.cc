#include "storage/record_batch.h"

#include "base/assert.h"
#include "storage/crc32c.h"
#include "storage/endian.h"
#include "storage/errors.h"

#include <limits>

namespace sluice::storage {

std::string_view compression_name(compression c) {
    switch (c) {
        case compression::none: return "none";
        case compression::gzip: return "gzip";
        case compression::snappy: return "snappy";
        case compression::lz4: return "lz4";
        case compression::zstd: return "zstd";
    }
    return "unknown";
}

batch_header parse_batch_header(const uint8_t* p) {
    namespace o = batch_offset;
    batch_header h;
    h.base_offset = static_cast<int64_t>(load_be64(p + o::base_offset));
    h.batch_length = static_cast<int32_t>(load_be32(p + o::batch_length));
    h.partition_leader_epoch = static_cast<int32_t>(load_be32(p + o::partition_leader_epoch));
    h.magic = static_cast<int8_t>(p[o::magic]);
    h.crc = load_be32(p + o::crc);
    h.attributes = static_cast<int16_t>(load_be16(p + o::attributes));
    h.last_offset_delta = static_cast<int32_t>(load_be32(p + o::last_offset_delta));
    h.base_timestamp = static_cast<int64_t>(load_be64(p + o::base_timestamp));
    h.max_timestamp = static_cast<int64_t>(load_be64(p + o::max_timestamp));
    h.producer_id = static_cast<int64_t>(load_be64(p + o::producer_id));
    h.producer_epoch = static_cast<int16_t>(load_be16(p + o::producer_epoch));
    h.base_sequence = static_cast<int32_t>(load_be32(p + o::base_sequence));
    h.record_count = static_cast<int32_t>(load_be32(p + o::record_count));
    return h;
}

uint32_t compute_batch_crc(std::span<const uint8_t> batch) {
    SLUICE_ASSERT(batch.size() >= batch_header_size, "batch of {} bytes", batch.size());
    return crc32c(batch.subspan(batch_offset::attributes));
}

namespace {

// Structure shared by produce validation and stored-batch checks: the header fits, the
// magic is 2, batchLength is sane and inside `buf`, the CRC matches. On success *size
// is the whole batch size.
std::error_code check_frame(std::span<const uint8_t> buf, size_t max_batch_bytes, size_t* size) {
    if (buf.size() < batch_offset::magic + 1) return log_errc::corrupt_message;
    if (static_cast<int8_t>(buf[batch_offset::magic]) != current_magic)
        return log_errc::unsupported_magic;
    if (buf.size() < batch_header_size) return log_errc::corrupt_message;
    int32_t length = static_cast<int32_t>(load_be32(buf.data() + batch_offset::batch_length));
    if (length < static_cast<int32_t>(batch_header_size - log_overhead))
        return log_errc::corrupt_message;
    size_t total = log_overhead + static_cast<size_t>(length);
    if (total > buf.size() || total > max_batch_bytes) return log_errc::corrupt_message;
    auto batch = buf.first(total);
    if (compute_batch_crc(batch) != load_be32(batch.data() + batch_offset::crc))
        return log_errc::corrupt_message;
    *size = total;
    return {};
}

std::error_code check_client_batch(const batch_header& h, validate_origin origin) {
    if (h.codec() > compression::zstd) return log_errc::unsupported_compression_type;
    if (h.record_count < 1 || h.last_offset_delta < 0 ||
        static_cast<int64_t>(h.record_count) != static_cast<int64_t>(h.last_offset_delta) + 1)
        return log_errc::invalid_record;
    if (origin == validate_origin::client) {
        if (h.is_control()) return log_errc::invalid_record;
        if (h.producer_id >= 0 && h.base_sequence < 0) return log_errc::invalid_record;
    }
    return {};
}

}  // namespace

result<batch_summary> validate_batches(std::span<const uint8_t> records, validate_origin origin) {
    if (records.empty()) return make_error_code(log_errc::corrupt_message);
    batch_summary summary;
    size_t pos = 0;
    while (pos < records.size()) {
        size_t size = 0;
        auto rest = records.subspan(pos);
        if (auto ec = check_frame(rest, std::numeric_limits<size_t>::max(), &size)) return ec;
        batch_header h = parse_batch_header(rest.data());
        if (auto ec = check_client_batch(h, origin)) return ec;
        summary.batch_count++;
        summary.offset_count += static_cast<int64_t>(h.last_offset_delta) + 1;
        summary.max_timestamp = std::max(summary.max_timestamp, h.max_timestamp);
        summary.max_batch_bytes = std::max(summary.max_batch_bytes, size);
        pos += size;
    }
    return summary;
}

std::error_code check_stored_batch(std::span<const uint8_t> batch_and_more, size_t max_batch_bytes) {
    size_t size = 0;
    if (auto ec = check_frame(batch_and_more, max_batch_bytes, &size)) return ec;
    batch_header h = parse_batch_header(batch_and_more.data());
    if (h.last_offset_delta < 0 || h.record_count < 0 ||
        static_cast<int64_t>(h.record_count) > static_cast<int64_t>(h.last_offset_delta) + 1 ||
        h.base_offset < 0)
        return log_errc::corrupt_message;
    return {};
}

void set_base_offset(uint8_t* batch, int64_t base_offset) {
    store_be64(batch + batch_offset::base_offset, static_cast<uint64_t>(base_offset));
}

void set_partition_leader_epoch(uint8_t* batch, int32_t epoch) {
    store_be32(batch + batch_offset::partition_leader_epoch, static_cast<uint32_t>(epoch));
}

void set_log_append_time(std::span<uint8_t> batch, int64_t now_ms) {
    SLUICE_ASSERT(batch.size() >= batch_header_size, "batch of {} bytes", batch.size());
    uint8_t* p = batch.data();
    auto attrs = static_cast<uint16_t>(load_be16(p + batch_offset::attributes));
    store_be16(p + batch_offset::attributes, attrs | batch_attr::log_append_time);
    store_be64(p + batch_offset::max_timestamp, static_cast<uint64_t>(now_ms));
    store_be32(p + batch_offset::crc, compute_batch_crc(batch));
}

// ---- varints -------------------------------------------------------------------------

void put_varlong(std::vector<uint8_t>& out, int64_t v) {
    uint64_t z = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
    while (z >= 0x80) {
        out.push_back(static_cast<uint8_t>(z | 0x80));
        z >>= 7;
    }
    out.push_back(static_cast<uint8_t>(z));
}

std::optional<int64_t> get_varlong(const uint8_t*& p, const uint8_t* end) {
    uint64_t z = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (p >= end) return std::nullopt;
        uint8_t b = *p++;
        z |= static_cast<uint64_t>(b & 0x7f) << shift;
        if (!(b & 0x80)) return static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1));
    }
    return std::nullopt;
}

namespace {

// A bounds-checked cursor over one record; the first failure sticks.
struct record_cursor {
    const uint8_t* p;
    const uint8_t* end;
    bool ok = true;

    int64_t varlong() {
        if (!ok) return 0;
        auto v = get_varlong(p, end);
        if (!v) ok = false;
        return v.value_or(0);
    }
    int32_t varint() {
        int64_t v = varlong();
        if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
            ok = false;
        return static_cast<int32_t>(v);
    }
    // A length-prefixed byte string; length -1 is null.
    std::optional<std::span<const uint8_t>> bytes() {
        int32_t n = varint();
        if (!ok || n < -1 || (n > 0 && end - p < n)) {
            ok = false;
            return std::nullopt;
        }
        if (n == -1) return std::nullopt;
        std::span<const uint8_t> s{p, static_cast<size_t>(n)};
        p += n;
        return s;
    }
};

std::optional<record_view> decode_one(record_cursor& c) {
    int32_t length = c.varint();
    if (!c.ok || length < 0 || c.end - c.p < length) return std::nullopt;
    record_cursor r{c.p, c.p + length};
    c.p += length;
    record_view v;
    if (r.p >= r.end) return std::nullopt;
    v.attributes = static_cast<int8_t>(*r.p++);
    v.timestamp_delta = r.varlong();
    v.offset_delta = r.varint();
    v.key = r.bytes();
    v.value = r.bytes();
    int32_t headers = r.varint();
    if (!r.ok || headers < 0 || headers > r.end - r.p) return std::nullopt;
    for (int32_t i = 0; i < headers && r.ok; ++i) {
        auto key = r.bytes();
        if (!key) return std::nullopt;  // header keys are never null
        auto value = r.bytes();
        v.headers.push_back({*key, value});
    }
    if (!r.ok || r.p != r.end) return std::nullopt;
    return v;
}

}  // namespace

result<std::vector<record_view>> decode_records(std::span<const uint8_t> batch) {
    size_t size = 0;
    if (auto ec = check_frame(batch, batch.size(), &size)) return ec;
    batch_header h = parse_batch_header(batch.data());
    if (h.codec() != compression::none) return make_error_code(log_errc::invalid_record);
    if (h.record_count < 0) return make_error_code(log_errc::corrupt_message);
    record_cursor c{batch.data() + batch_header_size, batch.data() + size};
    std::vector<record_view> out;
    out.reserve(static_cast<size_t>(std::min<int32_t>(h.record_count, 4096)));
    for (int32_t i = 0; i < h.record_count; ++i) {
        auto r = decode_one(c);
        if (!r) return make_error_code(log_errc::corrupt_message);
        out.push_back(std::move(*r));
    }
    if (c.p != c.end) return make_error_code(log_errc::corrupt_message);
    return out;
}

result<std::vector<uint8_t>> filter_records(
    std::span<const uint8_t> batch,
    const std::function<bool(int64_t offset, const record_view& record)>& keep) {
    size_t size = 0;
    if (auto ec = check_frame(batch, batch.size(), &size)) return ec;
    batch_header h = parse_batch_header(batch.data());
    if (h.codec() != compression::none) return make_error_code(log_errc::invalid_record);
    if (h.record_count < 0) return make_error_code(log_errc::corrupt_message);
    std::vector<uint8_t> out(batch.begin(), batch.begin() + batch_header_size);
    record_cursor c{batch.data() + batch_header_size, batch.data() + size};
    int32_t kept = 0;
    for (int32_t i = 0; i < h.record_count; ++i) {
        const uint8_t* start = c.p;
        auto r = decode_one(c);
        if (!r) return make_error_code(log_errc::corrupt_message);
        if (!keep(h.base_offset + r->offset_delta, *r)) continue;
        out.insert(out.end(), start, c.p);
        ++kept;
    }
    if (c.p != c.end) return make_error_code(log_errc::corrupt_message);
    if (kept == 0) return std::vector<uint8_t>{};
    store_be32(out.data() + batch_offset::batch_length, static_cast<uint32_t>(out.size() - log_overhead));
    store_be32(out.data() + batch_offset::record_count, static_cast<uint32_t>(kept));
    store_be32(out.data() + batch_offset::crc, compute_batch_crc(out));
    return out;
}

// ---- builder -------------------------------------------------------------------------

namespace {
void put_bytes(std::vector<uint8_t>& out, std::optional<std::string_view> s) {
    if (!s) {
        put_varlong(out, -1);
        return;
    }
    put_varlong(out, static_cast<int64_t>(s->size()));
    out.insert(out.end(), s->begin(), s->end());
}
}  // namespace

batch_builder& batch_builder::add(std::optional<std::string_view> key,
                                  std::optional<std::string_view> value, int64_t timestamp_ms,
                                  std::vector<header_kv> headers) {
    int64_t ts = timestamp_ms >= 0 ? timestamp_ms : _base_timestamp;
    _max_timestamp = std::max(_max_timestamp, ts);
    std::vector<uint8_t> body;
    body.push_back(0);  // record attributes: unused
    put_varlong(body, ts - _base_timestamp);
    put_varlong(body, static_cast<int64_t>(_count));
    put_bytes(body, key);
    put_bytes(body, value);
    put_varlong(body, static_cast<int64_t>(headers.size()));
    for (auto& kv : headers) {
        put_bytes(body, kv.key);
        put_bytes(body, kv.value ? std::optional<std::string_view>(*kv.value) : std::nullopt);
    }
    put_varlong(_records, static_cast<int64_t>(body.size()));
    _records.insert(_records.end(), body.begin(), body.end());
    ++_count;
    return *this;
}

batch_builder& batch_builder::producer(int64_t id, int16_t epoch, int32_t base_sequence) {
    _producer_id = id;
    _producer_epoch = epoch;
    _base_sequence = base_sequence;
    return *this;
}

batch_builder& batch_builder::codec(compression c) {
    _attributes = static_cast<int16_t>((_attributes & ~batch_attr::codec_mask) |
                                       static_cast<int16_t>(c));
    return *this;
}

batch_builder& batch_builder::attributes(int16_t extra_bits) {
    _attributes = static_cast<int16_t>(_attributes | extra_bits);
    return *this;
}

batch_builder& batch_builder::partition_leader_epoch(int32_t epoch) {
    _leader_epoch = epoch;
    return *this;
}

std::vector<uint8_t> batch_builder::build(int64_t base_offset) const {
    namespace o = batch_offset;
    SLUICE_ASSERT(_count > 0, "a v2 batch needs at least one record");
    std::vector<uint8_t> b(batch_header_size + _records.size());
    uint8_t* p = b.data();
    store_be64(p + o::base_offset, static_cast<uint64_t>(base_offset));
    store_be32(p + o::batch_length, static_cast<uint32_t>(b.size() - log_overhead));
    store_be32(p + o::partition_leader_epoch, static_cast<uint32_t>(_leader_epoch));
    p[o::magic] = static_cast<uint8_t>(current_magic);
    store_be16(p + o::attributes, static_cast<uint16_t>(_attributes));
    store_be32(p + o::last_offset_delta, static_cast<uint32_t>(_count - 1));
    store_be64(p + o::base_timestamp, static_cast<uint64_t>(_base_timestamp));
    store_be64(p + o::max_timestamp, static_cast<uint64_t>(_max_timestamp));
    store_be64(p + o::producer_id, static_cast<uint64_t>(_producer_id));
    store_be16(p + o::producer_epoch, static_cast<uint16_t>(_producer_epoch));
    store_be32(p + o::base_sequence, static_cast<uint32_t>(_base_sequence));
    store_be32(p + o::record_count, static_cast<uint32_t>(_count));
    std::copy(_records.begin(), _records.end(), b.begin() + batch_header_size);
    store_be32(p + o::crc, compute_batch_crc(b));
    return b;
}

}  // namespace sluice::storage
