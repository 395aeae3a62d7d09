#include "bench/fetch_stream.h"

#include "base/assert.h"

#include <algorithm>
#include <cstring>

namespace sluice::bench {

namespace {
uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t be32(const uint8_t* p) { return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]; }
uint64_t be64(const uint8_t* p) { return (uint64_t{be32(p)} << 32) | be32(p + 4); }

std::error_code bad() { return std::make_error_code(std::errc::bad_message); }
}  // namespace

fetch_stream::fetch_stream(size_t window_bytes) : _buf(new uint8_t[window_bytes]), _capacity(window_bytes) {
    SLUICE_ASSERT(window_bytes >= 4096, "window {}", window_bytes);
}

std::error_code fetch_stream::read_some(uint8_t* into, size_t max, size_t& got) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(max, _frame_left));
    if (want == 0) return bad();  // the frame ended before its fields did
    if (auto ec = _io.read_some(into, want, got)) return ec;
    _frame_left -= got;
    return {};
}

std::error_code fetch_stream::fill(size_t n) {
    SLUICE_ASSERT(n <= _capacity, "fill {} of {}", n, _capacity);
    if (_end - _begin >= n) return {};
    if (_begin > 0) {
        std::memmove(_buf.get(), _buf.get() + _begin, _end - _begin);
        _end -= _begin;
        _begin = 0;
    }
    while (_end < n) {
        size_t got = 0;
        if (auto ec = read_some(_buf.get() + _end, _capacity - _end, got)) return ec;
        _end += got;
    }
    return {};
}

std::error_code fetch_stream::skip(uint64_t n) {
    size_t buffered = _end - _begin;
    if (n <= buffered) {
        _begin += static_cast<size_t>(n);
        return {};
    }
    n -= buffered;
    _begin = _end = 0;
    while (n > 0) {  // read into the window and drop it: what the bare receiver does
        size_t got = 0;
        if (auto ec = read_some(_buf.get(), static_cast<size_t>(std::min<uint64_t>(n, _capacity)), got)) return ec;
        n -= got;
    }
    return {};
}

// Walks `length` bytes of batches, reading only each batch's header.
std::error_code fetch_stream::scan_records(uint64_t length, wire::batch_scan& scan) {
    while (length >= wire::batch_header_bytes) {
        if (auto ec = fill(wire::batch_header_bytes)) return ec;
        const uint8_t* b = at();
        uint32_t batch_length = be32(b + wire::batch_length_offset);
        uint64_t total = uint64_t{batch_length} + 12;
        if (b[wire::batch_magic_offset] != 2 || total < wire::batch_header_bytes) {
            scan.malformed = true;
            break;
        }
        if (total > length) break;  // a partial batch cut at max_bytes
        scan.next_offset = static_cast<int64_t>(be64(b)) + static_cast<int32_t>(be32(b + wire::batch_last_offset_delta_offset)) + 1;
        scan.records += be32(b + wire::batch_record_count_offset);
        scan.bytes += total;
        ++scan.batches;
        if (auto ec = skip(total)) return ec;
        length -= total;
    }
    return skip(length);
}

std::error_code fetch_stream::read_response(socket_io io, int16_t version, int32_t correlation_id, int16_t& top_error,
                                            std::vector<partition_summary>& out) {
    SLUICE_ASSERT(version >= 4 && version <= 11, "streamed fetch v{}", version);
    _io = io;
    _begin = _end = 0;
    uint8_t size_be[4];
    if (auto ec = io.read_exact(size_be, 4)) return ec;
    _frame_left = be32(size_be);
    out.clear();
    top_error = 0;
    size_t head = 4 + 4 + (version >= 7 ? 6 : 0) + 4;  // correlation id, throttle, [error, session], topic count
    if (auto ec = fill(head)) return ec;
    if (static_cast<int32_t>(be32(at())) != correlation_id) return std::make_error_code(std::errc::protocol_error);
    if (version >= 7) top_error = static_cast<int16_t>(be16(at() + 8));
    auto topics = static_cast<int32_t>(be32(at() + head - 4));
    _begin += head;
    size_t part_head = 4 + 2 + 8 + 8 + (version >= 5 ? 8 : 0) + 4;
    for (int32_t t = 0; t < topics; ++t) {
        if (auto ec = fill(2)) return ec;
        uint16_t name_length = be16(at());
        if (auto ec = skip(2 + uint64_t{name_length})) return ec;
        if (auto ec = fill(4)) return ec;
        auto partitions = static_cast<int32_t>(be32(at()));
        _begin += 4;
        for (int32_t i = 0; i < partitions; ++i) {
            if (auto ec = fill(part_head)) return ec;
            partition_summary p;
            p.partition = static_cast<int32_t>(be32(at()));
            p.error = static_cast<int16_t>(be16(at() + 4));
            p.high_watermark = static_cast<int64_t>(be64(at() + 6));
            auto aborted = static_cast<int32_t>(be32(at() + part_head - 4));
            _begin += part_head;
            if (aborted > 0)
                if (auto ec = skip(16 * uint64_t(aborted))) return ec;
            if (version >= 11)
                if (auto ec = skip(4)) return ec;  // preferred read replica
            if (auto ec = fill(4)) return ec;
            auto records = static_cast<int32_t>(be32(at()));
            _begin += 4;
            if (records > 0)
                if (auto ec = scan_records(static_cast<uint64_t>(records), p.scan)) return ec;
            out.push_back(p);
        }
    }
    // Nothing follows the topics before v12; drop anything left so the stream stays framed.
    return skip(_end - _begin + _frame_left);
}

}  // namespace sluice::bench
