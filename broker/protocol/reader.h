#pragma once
// Bounds-checked decoder over one request (or record) buffer.
//
// Every read checks the bytes left. The first failure is recorded (what was being
// read, the byte offset, bytes wanted vs remaining, and the api key/version set by the
// caller) and is sticky: later reads return zeros and do nothing, so generated
// decoders can run straight-line and check ok() at the end. Lengths read from the
// wire are validated against the remaining bytes before anything is allocated, so a
// hostile length cannot make us allocate more than the frame could hold.
//
// Wire encodings (Kafka's, all integers big-endian):
//   classic string: int16 length (-1 = null) + bytes; bytes/records: int32 length (-1 = null)
//   classic array:  int32 count (-1 = null)
//   compact string/bytes/array (flexible versions): unsigned varint (length + 1), 0 = null
//   unsigned varint: 7 bits per byte, low groups first, high bit = more (max 5 bytes)
//   varint/varlong: zigzag-encoded signed values over unsigned varints
//   tagged fields: uvarint count, then per field uvarint tag, uvarint size, value
//
// Concurrency: a reader belongs to the one thread that decodes the frame.
#include "broker/protocol/types.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace sluice::proto {

class reader {
public:
    explicit reader(std::span<const uint8_t> data) : _data(data) {}

    // Context for error messages only.
    void set_context(int16_t api_key, int16_t api_version) {
        _api_key = api_key;
        _api_version = api_version;
    }

    bool ok() const { return !_failed; }
    size_t offset() const { return _pos; }
    size_t remaining() const { return _data.size() - _pos; }
    // The unread tail of the buffer (e.g. a request body after its header).
    std::span<const uint8_t> rest() const { return _data.subspan(_pos); }
    // "api_key 1 v11: string length at offset 37: wanted 8 bytes, 3 remaining", or "".
    std::string error() const;

    // Records the first error; later reads do nothing.
    void fail(const char* what, size_t wanted);

    int8_t read_int8() { return static_cast<int8_t>(read_be<uint8_t>("int8")); }
    int16_t read_int16() { return static_cast<int16_t>(read_be<uint16_t>("int16")); }
    int32_t read_int32() { return static_cast<int32_t>(read_be<uint32_t>("int32")); }
    int64_t read_int64() { return static_cast<int64_t>(read_be<uint64_t>("int64")); }
    uint16_t read_uint16() { return read_be<uint16_t>("uint16"); }
    uint32_t read_uint32() { return read_be<uint32_t>("uint32"); }
    double read_float64();
    bool read_bool() { return read_be<uint8_t>("bool") != 0; }
    uuid read_uuid();

    uint32_t read_uvarint();
    uint64_t read_uvarlong();
    int32_t read_varint();
    int64_t read_varlong();

    // Strings and bytes: `compact` selects the flexible encoding; a null on the wire
    // fails unless `nullable` (and the optional is reset).
    void read_string(std::string& out, bool compact);
    void read_string(std::optional<std::string>& out, bool compact, bool nullable);
    void read_bytes(std::vector<uint8_t>& out, bool compact);
    void read_bytes(std::optional<std::vector<uint8_t>>& out, bool compact, bool nullable);
    void read_records(records& out, bool compact, bool nullable);
    // Array count: -1 for null (only when nullable), else a count whose elements, at
    // `min_element_size` bytes each, fit in the remaining bytes.
    int32_t read_array_length(bool compact, bool nullable, size_t min_element_size);

    std::span<const uint8_t> read_raw(size_t n, const char* what = "raw bytes");
    void skip(size_t n) { (void)read_raw(n, "skipped bytes"); }

    // The tagged-field section. `known(tag)` decodes a tag it knows and returns true, or
    // returns false to have it skipped. A known field must consume exactly its size.
    template <typename F>
    void read_tagged_fields(F&& known) {
        uint32_t count = read_uvarint();
        if (count > remaining()) return fail("tagged field count", count);
        for (uint32_t i = 0; i < count && ok(); ++i) {
            uint32_t tag = read_uvarint();
            uint32_t size = read_uvarint();
            if (!ok()) return;
            if (size > remaining()) return fail("tagged field", size);
            size_t start = _pos;
            if (!known(tag)) {
                skip(size);
            } else if (ok() && _pos - start != size) {
                return fail("tagged field size mismatch", size);
            }
        }
    }

private:
    template <typename T>
    T read_be(const char* what) {
        if (!need(sizeof(T), what)) return T{};
        T v = 0;
        for (size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>((v << 8) | _data[_pos + i]);
        _pos += sizeof(T);
        return v;
    }
    bool need(size_t n, const char* what) {
        if (_failed) return false;
        if (n <= remaining()) return true;
        fail(what, n);
        return false;
    }
    // Length of a string/bytes/records; -1 for null. Validated against remaining().
    int64_t read_length(bool compact, bool wide, bool nullable, const char* what);

    std::span<const uint8_t> _data;
    size_t _pos = 0;
    bool _failed = false;
    int16_t _api_key = -1;
    int16_t _api_version = -1;
    const char* _what = nullptr;
    size_t _error_offset = 0;
    size_t _wanted = 0;
    size_t _remaining = 0;
};

}  // namespace sluice::proto
