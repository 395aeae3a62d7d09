#include "net/buffer_ring.h"

#include "base/assert.h"
#include "base/log.h"

#include <sys/mman.h>

#include <bit>
#include <cstring>

namespace sluice::net {

buffer_ring::buffer_ring(io_uring* ring, uint16_t group, unsigned count, size_t size)
    : _ring(ring), _group(group), _count(count), _size(size) {}

result<std::unique_ptr<buffer_ring>> buffer_ring::create(io_uring* ring, uint16_t group,
                                                         unsigned count, size_t size) {
    SLUICE_ASSERT(count > 0 && size > 0, "count {} size {}", count, size);
    count = std::min(std::bit_ceil(count), 32768u);
    std::unique_ptr<buffer_ring> br(new buffer_ring(ring, group, count, size));

    // The ring must be page aligned; an anonymous mapping is.
    br->_br_bytes = count * sizeof(io_uring_buf);
    void* mem = ::mmap(nullptr, br->_br_bytes, PROT_READ | PROT_WRITE,
                       MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) return errno_code(errno);
    br->_br = static_cast<io_uring_buf_ring*>(mem);
    br->_buffers.reset(new uint8_t[count * size]);

    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uintptr_t>(br->_br);
    reg.ring_entries = count;
    reg.bgid = group;
    int rc = io_uring_register_buf_ring(ring, &reg, 0);
    if (rc < 0) return errno_code(-rc);
    br->_registered = true;

    io_uring_buf_ring_init(br->_br);
    int mask = io_uring_buf_ring_mask(count);
    for (unsigned bid = 0; bid < count; ++bid) {
        io_uring_buf_ring_add(br->_br, br->_buffers.get() + bid * size,
                              static_cast<unsigned>(size), static_cast<uint16_t>(bid), mask,
                              static_cast<int>(bid));
    }
    io_uring_buf_ring_advance(br->_br, static_cast<int>(count));
    return br;
}

buffer_ring::~buffer_ring() {
    if (_registered) io_uring_unregister_buf_ring(_ring, _group);
    if (_br != nullptr) ::munmap(_br, _br_bytes);
}

std::span<const uint8_t> buffer_ring::bytes(uint16_t bid, size_t length) const {
    SLUICE_ASSERT(bid < _count && length <= _size, "bid {} length {}", bid, length);
    return {_buffers.get() + static_cast<size_t>(bid) * _size, length};
}

void buffer_ring::recycle(uint16_t bid) {
    SLUICE_ASSERT(bid < _count, "bid {}", bid);
    io_uring_buf_ring_add(_br, _buffers.get() + static_cast<size_t>(bid) * _size,
                          static_cast<unsigned>(_size), bid, io_uring_buf_ring_mask(_count), 0);
    io_uring_buf_ring_advance(_br, 1);
}

}  // namespace sluice::net
