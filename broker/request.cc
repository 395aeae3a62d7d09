#include "broker/request.h"

#include "broker/server.h"
#include "broker/session.h"
#include "broker/shard.h"

namespace sluice::broker {

server& request::srv() { return _shard.srv(); }

proto::reader request::body_reader() const {
    proto::reader r(body());
    r.set_context(_header.api_key, _header.api_version);
    return r;
}

const std::string& request::peer() const { return _session->peer(); }

const std::string& request::listener() const { return _session->listener(); }

void request::send(out_message msg) { _session->complete(_seq, std::move(msg)); }

void request::respond_nothing() { _session->complete(_seq, std::nullopt); }

void request::close_connection(std::string_view why) { _session->close(why); }

}  // namespace sluice::broker
