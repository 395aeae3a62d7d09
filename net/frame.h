#pragma once
// A complete request frame as received: the bytes that followed the 4-byte big-endian
// size prefix on the wire (the prefix itself is not included).
//
// Wire format (Kafka): int32 size (big endian, >= 0, <= socket.request.max.bytes), then
// `size` bytes of request header + body. The connection owns assembly across receive
// buffers; a frame is handed to the broker owned, so it may outlive the receive buffer.
#include <cstdint>
#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace sluice::net {

// std::allocator, except that resize() leaves new bytes uninitialised: a large frame is
// sized to its full length and then received straight into by the kernel
// (net/connection.cc), so zeroing it first would be one more pass over every byte.
template <class T>
struct uninit_allocator : std::allocator<T> {
    using value_type = T;
    template <class U>
    struct rebind {
        using other = uninit_allocator<U>;
    };
    uninit_allocator() noexcept = default;
    template <class U>
    uninit_allocator(const uninit_allocator<U>&) noexcept {}

    template <class U>
    void construct(U* p) noexcept {
        ::new (static_cast<void*>(p)) U;  // default-initialise: no zeroing for bytes
    }
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
        ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};

using frame = std::vector<uint8_t, uninit_allocator<uint8_t>>;

}  // namespace sluice::net
