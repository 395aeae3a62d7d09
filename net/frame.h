#pragma once
// A complete request frame as received: the bytes that followed the 4-byte big-endian
// size prefix on the wire (the prefix itself is not included).
//
// Wire format (Kafka): int32 size (big endian, >= 0, <= socket.request.max.bytes), then
// `size` bytes of request header + body. The connection owns assembly across receive
// buffers; a frame is handed to the broker owned, so it may outlive the receive buffer.
#include <cstdint>
#include <vector>

namespace sluice::net {

using frame = std::vector<uint8_t>;

}  // namespace sluice::net
