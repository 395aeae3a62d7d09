#include "broker/protocol/reader.h"

#include <fmt/format.h>

#include <bit>
#include <climits>
#include <cstring>

namespace sluice::proto {

std::string reader::error() const {
    if (!_failed) return {};
    return fmt::format("api_key {} v{}: {} at offset {}: wanted {} bytes, {} remaining", _api_key,
                       _api_version, _what, _error_offset, _wanted, _remaining);
}

void reader::fail(const char* what, size_t wanted) {
    if (_failed) return;
    _failed = true;
    _what = what;
    _error_offset = _pos;
    _wanted = wanted;
    _remaining = remaining();
}

double reader::read_float64() {
    return std::bit_cast<double>(read_be<uint64_t>("float64"));
}

uuid reader::read_uuid() {
    uuid u{};
    auto raw = read_raw(u.size(), "uuid");
    if (!raw.empty()) std::memcpy(u.data(), raw.data(), u.size());
    return u;
}

uint64_t reader::read_uvarlong() {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (!need(1, "varint")) return 0;
        uint8_t b = _data[_pos++];
        v |= static_cast<uint64_t>(b & 0x7f) << shift;
        if ((b & 0x80) == 0) return v;
    }
    fail("varint longer than 10 bytes", 0);
    return 0;
}

uint32_t reader::read_uvarint() {
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (!need(1, "varint")) return 0;
        uint8_t b = _data[_pos++];
        if (shift == 28 && (b & 0xf0) != 0) break;  // more than 32 bits
        v |= static_cast<uint32_t>(b & 0x7f) << shift;
        if ((b & 0x80) == 0) return v;
    }
    fail("varint longer than 5 bytes", 0);
    return 0;
}

int32_t reader::read_varint() {
    uint32_t u = read_uvarint();
    return static_cast<int32_t>((u >> 1) ^ (~(u & 1) + 1));
}

int64_t reader::read_varlong() {
    uint64_t u = read_uvarlong();
    return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
}

std::span<const uint8_t> reader::read_raw(size_t n, const char* what) {
    if (!need(n, what)) return {};
    auto s = _data.subspan(_pos, n);
    _pos += n;
    return s;
}

int64_t reader::read_length(bool compact, bool wide, bool nullable, const char* what) {
    int64_t n;
    if (compact) n = static_cast<int64_t>(read_uvarint()) - 1;
    else if (wide) n = read_int32();
    else n = read_int16();
    if (!ok()) return 0;
    if (n < -1 || (n == -1 && !nullable)) {
        fail(what, 0);
        return 0;
    }
    if (n > static_cast<int64_t>(remaining())) {
        fail(what, static_cast<size_t>(n));
        return 0;
    }
    return n;
}

// Kafka caps strings at int16 range in both encodings; a longer compact string is
// malformed (and could not be echoed back in a classic response).
static constexpr int64_t string_length_max = INT16_MAX;

void reader::read_string(std::string& out, bool compact) {
    int64_t n = read_length(compact, false, false, "string");
    if (n > string_length_max) return fail("string longer than 32767", static_cast<size_t>(n));
    auto raw = read_raw(static_cast<size_t>(n), "string");
    out.assign(reinterpret_cast<const char*>(raw.data()), raw.size());
}

void reader::read_string(std::optional<std::string>& out, bool compact, bool nullable) {
    int64_t n = read_length(compact, false, nullable, "string");
    if (n > string_length_max) return fail("string longer than 32767", static_cast<size_t>(n));
    if (n < 0) {
        out.reset();
        return;
    }
    auto raw = read_raw(static_cast<size_t>(n), "string");
    out.emplace(reinterpret_cast<const char*>(raw.data()), raw.size());
}

void reader::read_bytes(std::vector<uint8_t>& out, bool compact) {
    int64_t n = read_length(compact, true, false, "bytes");
    auto raw = read_raw(static_cast<size_t>(n), "bytes");
    out.assign(raw.begin(), raw.end());
}

void reader::read_bytes(std::optional<std::vector<uint8_t>>& out, bool compact, bool nullable) {
    int64_t n = read_length(compact, true, nullable, "bytes");
    if (n < 0) {
        out.reset();
        return;
    }
    auto raw = read_raw(static_cast<size_t>(n), "bytes");
    out.emplace(raw.begin(), raw.end());
}

void reader::read_records(records& out, bool compact, bool nullable) {
    int64_t n = read_length(compact, true, nullable, "records");
    out.pieces.clear();
    out.is_null = n < 0 || !ok();
    out.view = out.is_null ? std::span<const uint8_t>{} : read_raw(static_cast<size_t>(n), "records");
}

int32_t reader::read_array_length(bool compact, bool nullable, size_t min_element_size) {
    int64_t n = compact ? static_cast<int64_t>(read_uvarint()) - 1 : read_int32();
    if (!ok()) return 0;
    if (n < -1 || (n == -1 && !nullable)) {
        fail("array length", 0);
        return 0;
    }
    if (n > 0 && static_cast<uint64_t>(n) * min_element_size > remaining()) {
        fail("array length", static_cast<size_t>(n) * min_element_size);
        return 0;
    }
    return static_cast<int32_t>(n);
}

}  // namespace sluice::proto
