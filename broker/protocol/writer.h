#pragma once
// Encoder that appends Kafka wire encodings (see reader.h for the formats) to an
// out_message. Records pieces that are file slices are appended as file pieces, so a
// fetch response carries segment bytes without copying them.
//
// Concurrency: a writer and its out_message belong to one thread.
#include "base/out_message.h"
#include "broker/protocol/types.h"

#include <bit>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::proto {

class writer {
public:
    explicit writer(out_message& out) : _out(out) {}

    size_t size() const { return _out.size(); }
    out_message& message() { return _out; }

    // Reserves the int32 frame size prefix; end_frame patches it with the number of
    // bytes written after it.
    size_t begin_frame() {
        _frame_start = _out.size();
        return _out.reserve(4);
    }
    void end_frame(size_t prefix_at) {
        size_t body = _out.size() - _frame_start - 4;
        SLUICE_ASSERT(body <= INT32_MAX, "frame of {} bytes", body);
        uint8_t* p = _out.at(prefix_at);
        for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(body >> (24 - 8 * i));
    }

    void write_int8(int8_t v) { put<uint8_t>(static_cast<uint8_t>(v)); }
    void write_int16(int16_t v) { put<uint16_t>(static_cast<uint16_t>(v)); }
    void write_int32(int32_t v) { put<uint32_t>(static_cast<uint32_t>(v)); }
    void write_int64(int64_t v) { put<uint64_t>(static_cast<uint64_t>(v)); }
    void write_uint16(uint16_t v) { put<uint16_t>(v); }
    void write_uint32(uint32_t v) { put<uint32_t>(v); }
    void write_float64(double v) { put<uint64_t>(std::bit_cast<uint64_t>(v)); }
    void write_bool(bool v) { put<uint8_t>(v ? 1 : 0); }
    void write_uuid(const uuid& u) { _out.append(u.data(), u.size()); }
    void write_raw(std::span<const uint8_t> b) { _out.append(b.data(), b.size()); }

    void write_uvarlong(uint64_t v) {
        uint8_t buf[10];
        size_t n = 0;
        while (v >= 0x80) {
            buf[n++] = static_cast<uint8_t>(v | 0x80);
            v >>= 7;
        }
        buf[n++] = static_cast<uint8_t>(v);
        _out.append(buf, n);
    }
    void write_uvarint(uint32_t v) { write_uvarlong(v); }
    void write_varint(int32_t v) {
        write_uvarint((static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31));
    }
    void write_varlong(int64_t v) {
        write_uvarlong((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
    }

    // Lengths: compact = uvarint(n + 1) with 0 for null; else int16 (strings) or int32.
    void write_length(int64_t n, bool compact, bool wide) {
        if (compact) write_uvarint(static_cast<uint32_t>(n + 1));
        else if (wide) write_int32(static_cast<int32_t>(n));
        else write_int16(static_cast<int16_t>(n));
    }
    void write_string(std::string_view s, bool compact) {
        SLUICE_ASSERT(s.size() <= INT16_MAX, "string of {} bytes", s.size());
        write_length(static_cast<int64_t>(s.size()), compact, false);
        _out.append(s.data(), s.size());
    }
    // A null where the version has no null is written as empty (Kafka would refuse to
    // serialize; an empty value is the closest thing the peer can parse).
    void write_string(const std::optional<std::string>& s, bool compact, bool nullable) {
        if (s) return write_string(*s, compact);
        if (nullable) return write_length(-1, compact, false);
        write_string(std::string_view{}, compact);
    }
    void write_bytes(std::span<const uint8_t> b, bool compact) {
        write_length(static_cast<int64_t>(b.size()), compact, true);
        write_raw(b);
    }
    void write_bytes(const std::optional<std::vector<uint8_t>>& b, bool compact, bool nullable) {
        if (b) return write_bytes(*b, compact);
        if (nullable) return write_length(-1, compact, true);
        write_bytes(std::span<const uint8_t>{}, compact);
    }
    void write_records(const records& r, bool compact, bool nullable) {
        if (r.is_null && nullable) return write_length(-1, compact, true);
        uint64_t n = r.size();
        SLUICE_ASSERT(n <= INT32_MAX, "records of {} bytes", n);
        write_length(static_cast<int64_t>(n), compact, true);
        if (r.pieces.empty()) return write_raw(r.view);
        for (const auto& p : r.pieces) {
            if (auto* b = std::get_if<std::vector<uint8_t>>(&p)) write_raw(*b);
            else _out.append_file(std::get<file_slice>(p));
        }
    }
    void write_array_length(int64_t n, bool compact) { write_length(n, compact, true); }

    // One tagged field: uvarint tag, uvarint size, value. The value is encoded into a
    // scratch message first because its size precedes it; tagged values are small.
    template <typename F>
    void write_tagged(uint32_t tag, F&& encode_value) {
        out_message scratch;
        writer w(scratch);
        encode_value(w);
        SLUICE_ASSERT(!scratch.has_files(), "tagged field {} holds a file slice", tag);
        write_uvarint(tag);
        write_uvarint(static_cast<uint32_t>(scratch.size()));
        write_raw(scratch.memory_bytes());
    }

private:
    template <typename T>
    void put(T v) {
        uint8_t buf[sizeof(T)];
        for (size_t i = 0; i < sizeof(T); ++i) buf[i] = static_cast<uint8_t>(v >> (8 * (sizeof(T) - 1 - i)));
        _out.append(buf, sizeof(T));
    }

    out_message& _out;
    size_t _frame_start = 0;
};

}  // namespace sluice::proto
