#include "broker/session.h"

#include "base/log.h"
#include "broker/api_table.h"
#include "broker/handlers/handlers.h"
#include "broker/server.h"
#include "broker/shard.h"
#include "net/connection.h"

namespace sluice::broker {

session::session(shard& sh, std::shared_ptr<net::connection> conn, std::string listener)
    : _shard(sh), _conn(std::move(conn)), _peer(_conn->peer()), _listener(std::move(listener)) {}

void session::recycle_frame(net::frame f) { _conn->recycle_frame(std::move(f)); }

void session::start(shard& sh, std::shared_ptr<net::connection> conn, std::string listener) {
    auto s = std::make_shared<session>(sh, conn, std::move(listener));
    // The connection holds the session through its handlers; the session holds the
    // connection. close() breaks the cycle.
    conn->set_frame_handler([s](net::frame f) { s->on_frame(std::move(f)); });
    conn->set_close_handler([s](std::string_view reason) {
        log::debug("session", "{} closed: {}", s->_peer, reason);
        s->_closed = true;
        s->_done.clear();
        s->_conn->set_frame_handler(nullptr);
        s->_conn->set_close_handler(nullptr);
    });
}

void session::on_frame(net::frame f) {
    if (_closed) return;
    proto::reader r(std::span<const uint8_t>(f.data(), f.size()));
    proto::request_header h;
    if (!proto::decode_request_header(r, h)) {
        // An ApiVersions request of a version we do not know is answered from its first
        // eight bytes alone: its header layout is unknowable too (KIP-511).
        const api_entry* av = find_api_entry(proto::api_versions_key);
        bool future_api_versions = f.size() >= 8 && h.api_key == proto::api_versions_key &&
                                   h.api_version > av->max_version;
        if (!future_api_versions) {
            log::warn("session", "{}: malformed request header ({} bytes): {}", _peer, f.size(), r.error());
            return close("malformed request header");
        }
        r = proto::reader(std::span<const uint8_t>(f.data(), f.size()));
        r.read_raw(8);
    }
    uint64_t seq = _next_seq++;
    size_t body_at = r.offset();
    auto req = std::make_shared<request>(shared_from_this(), _shard, std::move(h), std::move(f), body_at, seq);
    const auto& hdr = req->header();
    const api_entry* api = find_api_entry(hdr.api_key);
    if (hdr.api_key == proto::api_versions_key &&
        (hdr.api_version < api->min_version || hdr.api_version > api->max_version)) {
        handle_api_versions_unsupported(req);
    } else if (api == nullptr) {
        log::warn("session", "{}: unknown api key {} (client {}); closing connection", _peer, hdr.api_key,
                  hdr.client_id.value_or(""));
        return close("unknown api key");
    } else if (hdr.api_version < api->min_version || hdr.api_version > api->max_version) {
        log::warn("session", "{}: unsupported version {} of api key {} (supported {}-{}, client {}); closing",
                  _peer, hdr.api_version, hdr.api_key, api->min_version, api->max_version,
                  hdr.client_id.value_or(""));
        return close("unsupported api version");
    } else {
        api->handle(req);
    }
    if (!_closed && !_paused &&
        _next_seq - _next_to_send >= static_cast<uint64_t>(_shard.srv().config().queued_max_requests)) {
        _paused = true;
        _conn->pause_reading();
    }
}

void session::complete(uint64_t seq, std::optional<out_message> response) {
    if (_closed) return;
    _done.emplace(seq, std::move(response));
    flush_in_order();
}

void session::flush_in_order() {
    while (!_done.empty() && _done.begin()->first == _next_to_send) {
        auto node = _done.extract(_done.begin());
        if (node.mapped()) _conn->send(std::move(*node.mapped()));
        ++_next_to_send;
    }
    if (_paused && _next_seq - _next_to_send < static_cast<uint64_t>(_shard.srv().config().queued_max_requests)) {
        _paused = false;
        _conn->resume_reading();
    }
}

void session::close(std::string_view why) {
    if (_closed) return;
    _closed = true;
    _done.clear();
    log::debug("session", "{}: closing: {}", _peer, why);
    _conn->close();
}

}  // namespace sluice::broker
