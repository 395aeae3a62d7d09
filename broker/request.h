#pragma once
// One decoded request on its way through a handler, and the way its answer gets back
// to the connection in request order.
//
// A handler either answers at once (respond()) or keeps the request_ptr and answers
// later from the same shard (after cross-shard work or a parked fetch). Responses are
// released to the socket strictly in request order by the session, whatever the order
// in which handlers finish. Concurrency: shard thread only.
#include "base/out_message.h"
#include "broker/protocol/header.h"
#include "broker/protocol/reader.h"
#include "broker/protocol/writer.h"
#include "net/frame.h"

#include <cstdint>
#include <chrono>
#include <memory>

namespace sluice::broker {

class session;
class shard;
class server;

class request {
public:
    request(std::shared_ptr<session> s, shard& sh, proto::request_header h, net::frame f, size_t body_at,
            uint64_t seq)
        : _session(std::move(s)), _shard(sh), _header(std::move(h)), _frame(std::move(f)),
          _body_at(body_at), _seq(seq), _received(std::chrono::steady_clock::now()) {}
    // Hands a large frame's buffer back to the shard's frame pool (net/frame_pool.h), so
    // the next big Produce is received into memory that is already faulted in.
    ~request();
    request(const request&) = delete;
    request& operator=(const request&) = delete;

    const proto::request_header& header() const { return _header; }
    int16_t version() const { return _header.api_version; }
    shard& sh() { return _shard; }
    server& srv();
    // The request body (after the header); it lives as long as this request.
    std::span<const uint8_t> body() const { return {_frame.data() + _body_at, _frame.size() - _body_at}; }
    proto::reader body_reader() const;
    // Mutable access for Produce: the broker writes base offsets into batch headers in place.
    uint8_t* frame_data() { return _frame.data(); }
    const std::string& peer() const;
    // The listener the client connected to (Metadata answers with its endpoints).
    const std::string& listener() const;

    // Encodes a response message (header chosen from the api table) and queues it.
    template <typename Response>
    void respond(const Response& resp) {
        out_message msg;
        proto::writer w(msg);
        size_t at = proto::begin_response(w, _header.correlation_id, _header.api_key, _header.api_version);
        resp.encode(w, _header.api_version);
        w.end_frame(at);
        send(std::move(msg));
    }
    void send(out_message msg);
    // Records the time since the frame was complete in the shard's service histogram.
    void note_service_time();
    void respond_nothing();  // acks=0 Produce: no response, but keeps the order slot moving
    void close_connection(std::string_view why);  // malformed body: Kafka closes the connection

private:
    std::shared_ptr<session> _session;
    shard& _shard;
    proto::request_header _header;
    net::frame _frame;
    size_t _body_at;
    uint64_t _seq;
    std::chrono::steady_clock::time_point _received;  // frame complete: service time starts
};

using request_ptr = std::shared_ptr<request>;

}  // namespace sluice::broker
