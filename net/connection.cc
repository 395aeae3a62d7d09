// connection: lifetime and the receive side (multishot recv -> frames).
#include "net/connection.h"

#include "base/assert.h"
#include "base/log.h"
#include "net/buffer_ring.h"
#include "net/reactor.h"
#include "net/tls.h"

#include <liburing.h>
#include <unistd.h>

#include <cstring>

namespace sluice::net {
namespace {
constexpr size_t body_reserve_max = 1024 * 1024;  // grow past this only as bytes arrive
constexpr unsigned held_delivery_budget = 64;       // held frames delivered per loop turn
}  // namespace

std::shared_ptr<connection> connection::make(reactor& r, int fd, std::string peer,
                                             std::shared_ptr<const tls_context> tls) {
    auto c = std::make_shared<connection>(passkey{}, r, fd, std::move(peer), std::move(tls));
    r.add_connection(c.get());
    return c;
}

connection::connection(passkey, reactor& r, int fd, std::string peer, std::shared_ptr<const tls_context> tls)
    : _reactor(&r), _fd(fd), _peer(std::move(peer)) {
    if (tls) _tls = std::make_unique<tls_session>(std::move(tls));
}

connection::~connection() { finalize(); }

void connection::op::complete(int32_t res, uint32_t flags) {
    bool last = (flags & IORING_CQE_F_MORE) == 0;
    std::shared_ptr<connection> keep;  // the connection lives at least until we return
    if (last) keep = std::move(owner);
    (_conn->*_done)(res, flags);
    if (last) _conn->op_finished();
}

io_uring_sqe* connection::prepare(op& o) {
    SLUICE_ASSERT(_reactor != nullptr, "{}: I/O on a detached connection", _peer);
    if (!o.owner) o.owner = shared_from_this();
    ++_ops_in_flight;
    return _reactor->sqe_for(&o);
}

void connection::op_finished() {
    SLUICE_ASSERT(_ops_in_flight > 0, "{}: op accounting", _peer);
    --_ops_in_flight;
    if (_closed && _ops_in_flight == 0) finalize();
}

void connection::set_frame_handler(std::function<void(frame)> on_frame) {
    _on_frame = std::move(on_frame);
}

void connection::set_close_handler(std::function<void(std::string_view)> on_close) {
    _on_close = std::move(on_close);
}

void connection::start() { arm_recv(); }

void connection::close() { close_with("closed locally"); }

void connection::close_with(std::string_view reason) {
    SLUICE_ASSERT(_reactor == nullptr || _reactor->owned_by_caller(),
                  "{}: close from a foreign thread: use reactor::post()", _peer);
    if (_closed) return;
    _closed = true;
    log::debug("net", "{} closed: {}", _peer, reason);
    if (_reactor == nullptr) return;
    if (_recv_armed) _reactor->cancel(&_recv_op);
    if (_direct_armed) _reactor->cancel(&_direct_recv_op);
    // Wakes any send or splice blocked on this socket (it fails with EPIPE), so every
    // in-flight operation completes soon and the fd can be closed after the last one.
    ::shutdown(_fd, SHUT_RDWR);
    auto self = shared_from_this();
    if (_on_close) {
        _reactor->defer([self, fn = std::move(_on_close), why = std::string(reason)] { fn(why); });
        _on_close = nullptr;
    }
    // Not inline: we may be inside the frame handler that finalize() would destroy.
    if (_ops_in_flight == 0) _reactor->defer([self] { self->finalize(); });
}

void connection::finalize() {
    if (_finalized) return;
    SLUICE_ASSERT(_reactor == nullptr || _reactor->owned_by_caller(),
                  "{}: last reference dropped on a foreign thread", _peer);
    _finalized = true;
    _closed = true;
    release_send_resources();
    _send_queue.clear();
    _queued_bytes = 0;
    _held_frames.clear();
    _body = frame{};
    std::vector<uint8_t>().swap(_tls_out);
    _tls_out_sent = 0;
    _on_frame = nullptr;
    _on_close = nullptr;
    if (_fd >= 0) ::close(_fd);
    _fd = -1;
    if (_reactor != nullptr) _reactor->remove_connection(this);
}

void connection::detach() {
    // The reactor (and its ring) is going away: no CQE will ever arrive for our ops, so
    // drop their self-references. The caller holds a reference across this call.
    _closed = true;
    _recv_op.owner.reset();
    _direct_recv_op.owner.reset();
    _send_op.owner.reset();
    _read_op.owner.reset();
    _splice_in_op.owner.reset();
    _splice_out_op.owner.reset();
    _tls_send_op.owner.reset();
    _ops_in_flight = 0;
    _reactor = nullptr;
    finalize();
}

// ---- receive ----

bool connection::want_recv() const { return _reactor != nullptr && !_closed && !_paused; }

void connection::arm_recv() {
    if (_recv_armed || _direct_armed || !want_recv()) return;
    if (want_direct_recv()) {
        arm_direct_recv();
        return;
    }
    io_uring_sqe* sqe = prepare(_recv_op);
    // Right after a large frame, expect another (a producer's next batch): a single-shot
    // recv of just the next size prefix, so the whole body then comes in place. Under a
    // multishot recv, a fast client's backlog would be copied out before a cancel could
    // take effect.
    if (_expect_large && _size_have < 4) {
        io_uring_prep_recv(sqe, _fd, nullptr, 4 - _size_have, 0);
    } else {
        io_uring_prep_recv_multishot(sqe, _fd, nullptr, 0, 0);
    }
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = _reactor->recv_buffers().group();
    _recv_armed = true;
}

void connection::recv_done(int32_t res, uint32_t flags) {
    bool more = (flags & IORING_CQE_F_MORE) != 0;
    if (!more) {
        _recv_armed = false;
        _recv_cancelling = false;
    }
    if (res > 0) {
        SLUICE_ASSERT(flags & IORING_CQE_F_BUFFER, "{}: recv without a buffer", _peer);
        auto bid = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
        buffer_ring& ring = _reactor->recv_buffers();
        if (!_closed) {
            if (_tls) {
                tls_receive(ring.bytes(bid, static_cast<size_t>(res)));
            } else {
                consume(ring.bytes(bid, static_cast<size_t>(res)));
            }
        }
        ring.recycle(bid);
        if (!want_direct_recv()) _expect_large = false;
        // A large frame is under way: stop the multishot recv; its last CQE re-arms
        // (arm_recv), which then reads the rest of the frame into place.
        if (more && !_recv_cancelling && want_direct_recv()) {
            _recv_cancelling = true;
            _reactor->cancel(&_recv_op);
        }
    } else if (res == 0) {
        close_with("peer closed the connection");
    } else if (res == -ENOBUFS) {
        // Every provided buffer is out (they come back as this batch is processed).
        // Back-pressure, not an error: re-arm on the next loop turn.
        ++_reactor->counters().recv_enobufs;
        if (!more) {
            _reactor->defer([self = shared_from_this()] { self->arm_recv(); });
            return;
        }
    } else if (res != -ECANCELED) {
        close_with(fmt::format("recv failed: {}", strerror(-res)));
    }
    if (!more) arm_recv();
}

bool connection::is_large(size_t bytes) const {
    size_t min = _reactor->config().direct_recv_min_bytes;
    return min > 0 && !_tls && bytes >= min;
}

bool connection::want_direct_recv() const { return _size_have == 4 && is_large(_body_size - _body_have); }

void connection::arm_direct_recv() {
    // Capacity first (one allocation, or the pooled buffer from acquire()), then the size:
    // the frame's allocator leaves the new bytes uninitialised (net/frame.h).
    if (_body.capacity() < _body_size) _body.reserve(_body_size);
    _body.resize(_body_size);
    io_uring_sqe* sqe = prepare(_direct_recv_op);
    // MSG_WAITALL: io_uring retries a short receive itself, so a 1 MiB frame usually
    // completes as one CQE; a short completion (a signal, shutdown) is re-armed below.
    io_uring_prep_recv(sqe, _fd, _body.data() + _body_have, _body_size - _body_have, MSG_WAITALL);
    _direct_armed = true;
    ++_reactor->counters().recv_direct;
}

void connection::direct_recv_done(int32_t res, uint32_t /*flags*/) {
    _direct_armed = false;
    if (res > 0) {
        SLUICE_ASSERT(static_cast<size_t>(res) <= _body_size - _body_have, "{}: recv overran the frame", _peer);
        _reactor->counters().bytes_recv_direct += static_cast<uint64_t>(res);
        _body_have += static_cast<size_t>(res);
        if (_body_have == _body_size && !_closed) body_complete();
    } else if (res == 0) {
        close_with("peer closed the connection");
    } else if (res != -ECANCELED && res != -EINTR && res != -EAGAIN) {
        close_with(fmt::format("recv failed: {}", strerror(-res)));
    }
    arm_recv();
}

void connection::consume(std::span<const uint8_t> bytes) {
    const size_t max_frame = _reactor->config().max_frame_bytes;
    size_t pos = 0;
    while (pos < bytes.size() && !_closed) {
        if (_size_have < 4) {
            size_t take = std::min<size_t>(4 - _size_have, bytes.size() - pos);
            std::memcpy(_size_bytes.data() + _size_have, bytes.data() + pos, take);
            _size_have += static_cast<unsigned>(take);
            pos += take;
            if (_size_have < 4) break;
            auto size = static_cast<int32_t>(
                (uint32_t{_size_bytes[0]} << 24) | (uint32_t{_size_bytes[1]} << 16) |
                (uint32_t{_size_bytes[2]} << 8) | uint32_t{_size_bytes[3]});
            if (size < 0 || static_cast<size_t>(size) > max_frame) {
                log::warn("net", "{}: frame size {} outside [0, {}] (socket.request.max.bytes), "
                          "closing", _peer, size, max_frame);
                close_with("invalid frame size");
                return;
            }
            _body_size = static_cast<size_t>(size);
            _body_have = 0;
            _body = _reactor->frames().acquire(_body_size);
            if (_body.capacity() < _body_size) _body.reserve(std::min(_body_size, body_reserve_max));
        } else {
            size_t take = std::min(_body_size - _body_have, bytes.size() - pos);
            // Past the first MiB the client has shown it means it: one allocation for the
            // rest instead of a doubling series of copies (each a stall on big frames).
            if (_body_have + take > _body.capacity()) _body.reserve(_body_size);
            if (_body.size() < _body_have + take) _body.resize(_body_have + take);
            std::memcpy(_body.data() + _body_have, bytes.data() + pos, take);
            _body_have += take;
            pos += take;
        }
        if (_size_have == 4 && _body_have == _body_size) body_complete();
    }
}

void connection::body_complete() {
    // A large frame, however it came, predicts another: a producer's next batch.
    if (is_large(_body_size)) _expect_large = true;
    frame f = std::move(_body);
    f.resize(_body_size);
    _body = frame{};
    _size_have = 0;
    _body_size = 0;
    _body_have = 0;
    deliver(std::move(f));
}

void connection::recycle_frame(frame f) {
    SLUICE_ASSERT(_reactor == nullptr || _reactor->owned_by_caller(), "{}: foreign thread", _peer);
    if (_reactor != nullptr) _reactor->frames().release(std::move(f));
}

void connection::deliver(frame f) {
    if (_paused || !_held_frames.empty()) {
        _held_frames.push_back(std::move(f));
        return;
    }
    if (!_on_frame) {
        log::warn("net", "{}: frame received but no frame handler set, closing", _peer);
        close_with("no frame handler");
        return;
    }
    _on_frame(std::move(f));
}

void connection::pause_reading() {
    SLUICE_ASSERT(_reactor == nullptr || _reactor->owned_by_caller(), "{}: foreign thread", _peer);
    if (_paused || _closed) return;
    _paused = true;
    // Stop taking bytes off the socket: its receive buffer fills and TCP pushes back.
    if (_recv_armed) _reactor->cancel(&_recv_op);
}

void connection::resume_reading() {
    SLUICE_ASSERT(_reactor == nullptr || _reactor->owned_by_caller(), "{}: foreign thread", _peer);
    if (!_paused || _closed) return;
    _paused = false;
    if (!_held_frames.empty() && !_delivery_scheduled) {
        _delivery_scheduled = true;
        _reactor->defer([self = shared_from_this()] { self->resume_delivery(); });
    }
    arm_recv();
}

void connection::resume_delivery() {
    _delivery_scheduled = false;
    unsigned budget = held_delivery_budget;
    while (!_held_frames.empty() && !_paused && !_closed && budget-- > 0) {
        if (!_on_frame) {
            close_with("no frame handler");
            return;
        }
        frame f = std::move(_held_frames.front());
        _held_frames.pop_front();
        _on_frame(std::move(f));
    }
    if (!_held_frames.empty() && !_paused && !_closed && !_delivery_scheduled) {
        _delivery_scheduled = true;
        _reactor->defer([self = shared_from_this()] { self->resume_delivery(); });
    }
}

}  // namespace sluice::net
