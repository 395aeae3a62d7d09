#pragma once
// One TCP connection from this broker's replica fetcher to a partition leader. The
// socket is non-blocking and driven by the fetcher's poll loop: connect() starts a
// connect, finish_connect() completes it once writable, send_frame() writes one small
// request (bounded wait), read_some() gathers one response frame. At most one request
// is in flight, so responses need no correlation bookkeeping beyond one id.
//
// Response frame (Kafka framing): int32 size | int32 correlation_id | body.
//
// Concurrency: owned and used by the fetcher thread only. Nothing here is shared; the
// fetcher wakes itself through its own eventfd, never by touching this socket from
// another thread.
#include "base/result.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace sluice::broker::replication {

class leader_link {
public:
    leader_link() = default;
    ~leader_link() { close(); }
    leader_link(const leader_link&) = delete;
    leader_link& operator=(const leader_link&) = delete;

    // Starts a non-blocking connect to host:port (numeric or resolvable host).
    std::error_code connect(const std::string& host, int32_t port);
    // After the socket polled writable: the connect's outcome.
    std::error_code finish_connect();
    // Writes a whole frame, waiting for writability at most timeout_ms; `cancel` (checked
    // every 100 ms while waiting) aborts with operation_canceled. A frame cut short leaves
    // the stream unusable: the caller closes the link on any error.
    std::error_code send_frame(std::span<const uint8_t> frame, int timeout_ms, const std::atomic<bool>& cancel);
    // Reads what the socket has. true: a whole response frame is buffered (take_frame).
    // Errors: the peer closed (connection_reset), a frame larger than max_frame_bytes
    // (message_size), or the socket's errno.
    result<bool> read_some(uint32_t max_frame_bytes);
    // The buffered frame after its size prefix (correlation id first), handed over as a
    // shared buffer so that shard work may borrow from it beyond this call.
    std::shared_ptr<std::vector<uint8_t>> take_frame();
    void close();

    int fd() const { return _fd; }
    bool open() const { return _fd >= 0; }
    int32_t next_correlation_id() { return _next_correlation_id++; }

private:
    int _fd = -1;
    int32_t _next_correlation_id = 1;
    uint8_t _size_be[4]{};
    size_t _size_have = 0;
    std::shared_ptr<std::vector<uint8_t>> _frame;  // sized once the prefix is in
    size_t _frame_have = 0;
};

}  // namespace sluice::broker::replication
