#include "broker/request.h"

#include "broker/server.h"
#include "broker/session.h"
#include "broker/shard.h"

namespace sluice::broker {

server& request::srv() { return _shard.srv(); }

request::~request() {
    // The last reference may be dropped on another shard (cross-shard Produce); only the
    // owning reactor's thread may touch its pool.
    if (_frame.capacity() >= net::frame_pool::min_pooled_bytes && _shard.reactor().owned_by_caller())
        _session->recycle_frame(std::move(_frame));
}

proto::reader request::body_reader() const {
    proto::reader r(body());
    r.set_context(_header.api_key, _header.api_version);
    return r;
}

const std::string& request::peer() const { return _session->peer(); }

const std::string& request::listener() const { return _session->listener(); }

void request::note_service_time() {
    if (_shard.reactor().owned_by_caller())
        _shard.note_service(std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - _received));
}

void request::send(out_message msg) {
    note_service_time();
    _session->complete(_seq, std::move(msg));
}

void request::respond_nothing() {
    note_service_time();
    _session->complete(_seq, std::nullopt);
}

void request::close_connection(std::string_view why) { _session->close(why); }

}  // namespace sluice::broker
