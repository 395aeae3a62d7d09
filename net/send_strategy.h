#pragma once
// How file pieces of an out_message (record batches in segment files) reach the socket.
// Chosen per reactor from the broker config `fetch.send.strategy`.
#include <optional>
#include <string_view>

namespace sluice::net {

enum class send_strategy {
    // file -> pipe -> socket with linked IORING_OP_SPLICE: no copy through user space.
    splice,
    // IORING_OP_SEND straight from the segment's read-only mapping: one copy (into the
    // socket buffer). Falls back to `buffered` when the slice is not inside the mapping
    // or its pages are not all in the page cache (mincore, net/residency.h).
    mmap_copy,
    // IORING_OP_READ into a pooled 1 MiB chunk, then SEND: two copies.
    buffered,
    // TLS connections never splice: `mmap_copy` there means "encrypt from the resident
    // mapping", anything else "READ into a chunk, then encrypt" (net/connection_tls.cc).
};

constexpr std::string_view to_string(send_strategy s) {
    switch (s) {
        case send_strategy::splice: return "splice";
        case send_strategy::mmap_copy: return "mmap_copy";
        case send_strategy::buffered: return "buffered";
    }
    return "?";
}

constexpr std::optional<send_strategy> parse_send_strategy(std::string_view s) {
    if (s == "splice") return send_strategy::splice;
    if (s == "mmap_copy" || s == "mmap") return send_strategy::mmap_copy;
    if (s == "buffered") return send_strategy::buffered;
    return std::nullopt;
}

}  // namespace sluice::net
