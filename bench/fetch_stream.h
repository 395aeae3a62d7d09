#pragma once
// A fetch consumer's fast receive path: reads one Fetch response (v4..v11) from the
// socket through a fixed window (1 MiB by default), looking only at partition headers
// and the 61-byte batch headers, and discarding record bytes as they pass -- the shape
// of sluice-limits' receiver, so the client costs about what the bare receiver costs
// and leaves the CPU to the broker. Whole-frame decoding through the project codec
// (kafka_wire.h decode_fetch) stays the path for --verify-crc and flexible versions.
//
// Never reads past the end of the frame, so it can share a connection with
// kafka_connection::receive. Reads plain sockets and TLS streams alike (socket_io).
//
// Concurrency: one fetch_stream per connection thread.
#include "bench/bench_tls.h"
#include "bench/kafka_wire.h"

#include <cstdint>
#include <memory>
#include <system_error>
#include <vector>

namespace sluice::bench {

struct partition_summary {
    int32_t partition = 0;
    int16_t error = 0;
    int64_t high_watermark = -1;
    wire::batch_scan scan;  // complete batches only; crc never checked here
};

class fetch_stream {
public:
    explicit fetch_stream(size_t window_bytes = 1u << 20);

    // Reads the response frame answering `correlation_id` (response header v0, so
    // version <= 11). top_error: the v7+ top-level error code (0 before v7).
    std::error_code read_response(socket_io io, int16_t version, int32_t correlation_id, int16_t& top_error,
                                  std::vector<partition_summary>& out);

private:
    std::error_code fill(size_t n);  // n contiguous bytes buffered at _begin (n <= window)
    std::error_code skip(uint64_t n);
    std::error_code read_some(uint8_t* into, size_t max, size_t& got);
    std::error_code scan_records(uint64_t length, wire::batch_scan& scan);
    const uint8_t* at() const { return _buf.get() + _begin; }

    std::unique_ptr<uint8_t[]> _buf;
    size_t _capacity;
    size_t _begin = 0;
    size_t _end = 0;
    uint64_t _frame_left = 0;  // bytes of the frame still in the socket
    socket_io _io;
};

}  // namespace sluice::bench
