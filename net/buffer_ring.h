#pragma once
// A provided-buffer ring (IORING_REGISTER_PBUF_RING) feeding multishot recv.
//
// Memory layout: one page-aligned anonymous mapping holding `count` struct io_uring_buf
// entries (the ring the kernel reads: addr, len, bid; the tail overlays the first entry's
// reserved field), and one separate allocation of count * size bytes of buffers. Buffer
// `bid` lives at _buffers + bid * size. liburing 2.3 lacks io_uring_setup_buf_ring, so the
// ring is mapped here and registered with io_uring_register_buf_ring.
//
// Concurrency: reactor thread only. The kernel picks a buffer per recv CQE (its id is in
// cqe->flags >> IORING_CQE_BUFFER_SHIFT); the consumer copies the bytes out and calls
// recycle(bid) to give it back. When every buffer is out the kernel ends the multishot
// recv with -ENOBUFS (back-pressure, not an error).
#include "base/result.h"

#include <liburing.h>

#include <cstdint>
#include <memory>
#include <span>

namespace sluice::net {

class buffer_ring {
public:
    // count is rounded up to a power of two (kernel requirement), at most 32768.
    static result<std::unique_ptr<buffer_ring>> create(io_uring* ring, uint16_t group,
                                                       unsigned count, size_t size);
    ~buffer_ring();
    buffer_ring(const buffer_ring&) = delete;
    buffer_ring& operator=(const buffer_ring&) = delete;

    uint16_t group() const { return _group; }
    unsigned count() const { return _count; }
    size_t buffer_size() const { return _size; }
    std::span<const uint8_t> bytes(uint16_t bid, size_t length) const;
    void recycle(uint16_t bid);

private:
    buffer_ring(io_uring* ring, uint16_t group, unsigned count, size_t size);

    io_uring* _ring;
    uint16_t _group;
    unsigned _count;
    size_t _size;
    io_uring_buf_ring* _br = nullptr;
    size_t _br_bytes = 0;
    std::unique_ptr<uint8_t[]> _buffers;
    bool _registered = false;
};

}  // namespace sluice::net
