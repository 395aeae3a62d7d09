#pragma once
// The broker side of one client connection: decodes request headers, dispatches to the
// handler for the api key, and releases responses in request order (Kafka clients
// pipeline requests and match responses by order as much as by correlation id).
//
// Back-pressure: when queued.max.requests requests are unanswered the session stops
// reading from the socket until some are answered.
//
// Concurrency: shard thread only. Kept alive by the connection's frame handler and by
// every in-flight request that points at it.
#include "base/out_message.h"
#include "net/frame.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace sluice::net {
class connection;
}

namespace sluice::broker {

class shard;

class session : public std::enable_shared_from_this<session> {
public:
    session(shard& sh, std::shared_ptr<net::connection> conn, std::string listener);
    static void start(shard& sh, std::shared_ptr<net::connection> conn, std::string listener);

    void on_frame(net::frame f);
    // Called once per request sequence number, in any order.
    void complete(uint64_t seq, std::optional<out_message> response);
    void close(std::string_view why);
    const std::string& peer() const { return _peer; }
    const std::string& listener() const { return _listener; }
    bool closed() const { return _closed; }
    // A finished request's frame buffer, back to the connection's reactor pool
    // (net/frame_pool.h). Only on the shard's own thread.
    void recycle_frame(net::frame f);

private:
    void flush_in_order();

    shard& _shard;
    std::shared_ptr<net::connection> _conn;
    std::string _peer;
    std::string _listener;
    uint64_t _next_seq = 0;
    uint64_t _next_to_send = 0;
    std::map<uint64_t, std::optional<out_message>> _done;
    bool _paused = false;
    bool _closed = false;
};

}  // namespace sluice::broker
