// connection: the send side. One step in flight at a time, in queue order:
//   memory / mmap_copy pieces -> one SEND or SENDMSG gathering up to max_iov pieces,
//                                across queued messages;
//   splice pieces             -> SPLICE file->pipe linked to SPLICE pipe->socket;
//   buffered pieces           -> READ into a pooled chunk, then SEND from it.
// Every step's completion advances the cursor by the bytes the socket took (partial
// sends resume where they stopped) and starts the next step. A message, and with it
// the file_slice references keeping segments alive, is released when its last byte
// has been sent.
#include "base/assert.h"
#include "base/log.h"
#include "net/connection.h"
#include "net/reactor.h"

#include <liburing.h>

#include <cstring>

namespace sluice::net {
namespace {
constexpr size_t page_bytes = 4096;
}

void connection::send(out_message msg) {
    SLUICE_ASSERT(_reactor == nullptr || _reactor->owned_by_caller(),
                  "{}: send from a foreign thread: use reactor::post()", _peer);
    if (_closed || _reactor == nullptr || msg.size() == 0) return;
    _queued_bytes += msg.size();
    _send_queue.push_back(std::move(msg));
    schedule_send();
}

void connection::schedule_send() {
    // Start on the next loop turn rather than now: responses produced by one batch of
    // completions then leave in one gathered sendmsg.
    if (_send_ops > 0 || _send_scheduled) return;
    _send_scheduled = true;
    _reactor->defer([self = shared_from_this()] {
        self->_send_scheduled = false;
        self->send_next();
    });
}

connection::piece_mode connection::mode_of(const out_message::piece& p) const {
    if (!p.is_file) return piece_mode::memory;
    switch (_reactor->config().file_send) {
        case send_strategy::splice:
            return !_no_splice && p.slice.file->fd() >= 0 ? piece_mode::splice : fallback_mode(p);
        case send_strategy::buffered:
            return p.slice.file->fd() >= 0 ? piece_mode::buffered : fallback_mode(p);
        case send_strategy::mmap_copy:
            // Only pages known resident are sent from the mapping: a cold page would fault
            // (a disk read) inside the SEND on the reactor thread (KAFKA-7504). Anything
            // else -- not mapped, beyond the mapping, not resident -- is read by io_uring.
            if (_reactor->residency().resident(p.slice.file, p.slice.position, p.length)) return piece_mode::mmap_copy;
            return p.slice.file->fd() >= 0 ? piece_mode::buffered : fallback_mode(p);
    }
    return piece_mode::buffered;
}

connection::piece_mode connection::fallback_mode(const out_message::piece& p) const {
    const auto& f = *p.slice.file;
    // A cold page may fault on the reactor here; that beats dropping the connection,
    // and only happens while descriptors or pipes are exhausted.
    if (f.mapped() != nullptr && p.slice.position + p.length <= f.mapped_size()) return piece_mode::mmap_copy;
    return piece_mode::buffered;  // the read fails and closes the connection with the reason
}

const out_message::piece* connection::current_piece() {
    while (!_send_queue.empty()) {
        const auto& pieces = _send_queue.front().pieces();
        if (_piece_index < pieces.size()) {
            if (pieces[_piece_index].length > 0) return &pieces[_piece_index];
            ++_piece_index;
            continue;
        }
        _send_queue.pop_front();
        _piece_index = 0;
        _piece_offset = 0;
    }
    return nullptr;
}

void connection::send_next() {
    if (_closed || _send_ops > 0 || _reactor == nullptr) return;
    if (_tls) return tls_send_next();
    const out_message::piece* p = current_piece();
    if (p == nullptr) {
        release_send_resources();
        return;
    }
    // Bytes already read into the chunk go out from it: reading them made their pages
    // resident, and switching to the mapping now would throw the read away.
    piece_mode mode = _chunk_sent < _chunk_len ? piece_mode::buffered : mode_of(*p);
    // A chunk only describes the cursor while the piece is sent buffered (a mapping can
    // grow under an mmap_copy slice, or its pages become resident, and switch its mode);
    // never let it go stale.
    if (mode != piece_mode::buffered) _chunk_len = _chunk_sent = 0;
    switch (mode) {
        case piece_mode::memory:
        case piece_mode::mmap_copy: send_gathered(); break;
        case piece_mode::splice: send_splice(*p); break;
        case piece_mode::buffered: send_buffered(*p); break;
    }
}

void connection::send_gathered() {
    size_t n = 0;
    size_t pi = _piece_index;
    size_t off = _piece_offset;
    for (auto it = _send_queue.begin(); it != _send_queue.end() && n < max_iov; ++it) {
        const auto& pieces = it->pieces();
        for (; pi < pieces.size() && n < max_iov; ++pi, off = 0) {
            const out_message::piece& p = pieces[pi];
            if (p.length == 0) continue;
            const uint8_t* base;
            piece_mode mode = mode_of(p);
            if (mode == piece_mode::memory) {
                base = it->memory(p);
            } else if (mode == piece_mode::mmap_copy) {
                base = p.slice.file->mapped() + p.slice.position;
            } else {
                goto gathered;  // a file piece needing its own step ends the batch
            }
            _iov[n++] = iovec{const_cast<uint8_t*>(base + off), p.length - off};
        }
        pi = 0;
        off = 0;
    }
gathered:
    SLUICE_ASSERT(n > 0, "{}: nothing to gather", _peer);
    io_uring_sqe* sqe = prepare(_send_op);
    if (n == 1) {
        io_uring_prep_send(sqe, _fd, _iov[0].iov_base, _iov[0].iov_len, MSG_NOSIGNAL);
    } else {
        _msg = msghdr{};
        _msg.msg_iov = _iov.data();
        _msg.msg_iovlen = n;
        io_uring_prep_sendmsg(sqe, _fd, &_msg, MSG_NOSIGNAL);
    }
    _sending_chunk = false;
    _send_ops = 1;
}

void connection::send_buffered(const out_message::piece& p) {
    if (_chunk_sent < _chunk_len) {
        io_uring_sqe* sqe = prepare(_send_op);
        io_uring_prep_send(sqe, _fd, _chunk.get() + _chunk_sent, _chunk_len - _chunk_sent,
                           MSG_NOSIGNAL);
        _sending_chunk = true;
        _send_ops = 1;
        return;
    }
    if (!_chunk) _chunk = _reactor->chunks().acquire();
    size_t want = std::min(chunk_pool::chunk_bytes, p.length - _piece_offset);
    io_uring_sqe* sqe = prepare(_read_op);
    io_uring_prep_read(sqe, p.slice.file->fd(), _chunk.get(), static_cast<unsigned>(want),
                       p.slice.position + _piece_offset);
    _send_ops = 1;
}

void connection::send_splice(const out_message::piece& p) {
    if (!_pipe) {
        auto pp = _reactor->pipes().acquire();
        if (!pp) {
            if (fallback_mode(p) == piece_mode::mmap_copy) {
                log::warn("net", "{}: cannot create a pipe for splice ({}); sending from the mapping instead",
                          _peer, pp.error().message());
                _no_splice = true;
                return send_gathered();
            }
            log::error("net", "{}: cannot create a pipe for splice: {}", _peer, pp.error().message());
            close_with("no pipe for splice");
            return;
        }
        _pipe = *pp;
    }
    _splice_in_res = 0;
    _splice_out_res = 0;
    if (_pipe_fill > 0) {
        // The socket took less than the pipe held last time: drain the pipe first.
        _splice_in_len = 0;
        io_uring_sqe* out = prepare(_splice_out_op);
        io_uring_prep_splice(out, _pipe->read_fd, -1, _fd, -1,
                             static_cast<unsigned>(_pipe_fill), SPLICE_F_MOVE);
        _send_ops = 1;
        return;
    }
    // One page of slack: an unaligned file position spreads n bytes over n/4096 + 1 pipe
    // slots, and a file->pipe splice that does not fit comes back short.
    size_t room = _pipe->capacity > 2 * page_bytes ? _pipe->capacity - page_bytes : _pipe->capacity;
    _splice_in_len = static_cast<unsigned>(std::min(room, p.length - _piece_offset));
    _reactor->reserve_sqes(2);
    io_uring_sqe* in = prepare(_splice_in_op);
    io_uring_prep_splice(in, p.slice.file->fd(), static_cast<int64_t>(p.slice.position + _piece_offset),
                         _pipe->write_fd, -1, _splice_in_len, SPLICE_F_MOVE);
    in->flags |= IOSQE_IO_LINK;
    io_uring_sqe* out = prepare(_splice_out_op);
    io_uring_prep_splice(out, _pipe->read_fd, -1, _fd, -1, _splice_in_len, SPLICE_F_MOVE);
    _send_ops = 2;
}

// ---- completions ----

bool connection::send_failed(int32_t res, std::string_view what) {
    if (_closed) return true;
    if (res >= 0) {
        close_with(fmt::format("{} made no progress", what));
    } else {
        close_with(fmt::format("{} failed: {}", what, strerror(-res)));
    }
    return true;
}

void connection::send_done(int32_t res, uint32_t) {
    _send_ops = 0;
    if (_closed) return;
    if (res <= 0) {
        send_failed(res, "send");
        return;
    }
    if (_sending_chunk) _chunk_sent += static_cast<size_t>(res);
    advance(static_cast<size_t>(res));
    send_next();
}

void connection::read_done(int32_t res, uint32_t) {
    _send_ops = 0;
    if (_closed) return;
    if (res <= 0) {
        // 0: the file no longer holds the slice (truncated under us) -- Kafka's
        // FileRecords.writeTo checks the same; the client re-fetches.
        log::warn("net", "{}: reading a file slice failed: {}", _peer,
                  res == 0 ? "slice beyond end of file" : strerror(-res));
        send_failed(res, "file read");
        return;
    }
    _chunk_len = static_cast<size_t>(res);
    _chunk_sent = 0;
    send_next();
}

void connection::splice_in_done(int32_t res, uint32_t) {
    _splice_in_res = res;
    if (--_send_ops == 0) splice_chain_done();
}

void connection::splice_out_done(int32_t res, uint32_t) {
    _splice_out_res = res;
    if (--_send_ops == 0) splice_chain_done();
}

void connection::splice_chain_done() {
    if (_closed) return;
    int32_t in = _splice_in_res;
    int32_t out = _splice_out_res;
    if (_splice_in_len > 0) {
        if (in <= 0) {
            log::warn("net", "{}: splice from file failed: {}", _peer,
                      in == 0 ? "slice beyond end of file" : strerror(-in));
            send_failed(in, "splice from file");
            return;
        }
        _pipe_fill += static_cast<size_t>(in);
        // A short file->pipe splice breaks the link: the pipe->socket half is cancelled
        // and the bytes wait in the pipe for the next step.
        if (out == -ECANCELED && static_cast<unsigned>(in) < _splice_in_len) out = 0;
    }
    if (out < 0 || (out == 0 && _splice_in_len == 0)) {
        send_failed(out, "splice to socket");
        return;
    }
    SLUICE_ASSERT(static_cast<size_t>(out) <= _pipe_fill, "{}: pipe accounting", _peer);
    _pipe_fill -= static_cast<size_t>(out);
    advance(static_cast<size_t>(out));
    send_next();
}

// ---- cursor ----

void connection::advance(size_t n) {
    reactor_stats& stats = _reactor->counters();
    while (n > 0) {
        const out_message::piece* p = current_piece();
        SLUICE_ASSERT(p != nullptr, "{}: sent {} bytes past the queue", _peer, n);
        size_t take = std::min(n, p->length - _piece_offset);
        switch (_sending_chunk ? piece_mode::buffered : mode_of(*p)) {
            case piece_mode::memory: stats.bytes_sent_memory += take; break;
            case piece_mode::mmap_copy: stats.bytes_sent_mmap_copy += take; break;
            case piece_mode::splice: stats.bytes_sent_splice += take; break;
            case piece_mode::buffered: stats.bytes_sent_buffered += take; break;
        }
        _piece_offset += take;
        _queued_bytes -= take;
        n -= take;
        if (_piece_offset == p->length) next_piece();
    }
}

void connection::next_piece() {
    SLUICE_ASSERT(_pipe_fill == 0, "{}: {} bytes left in the pipe at a piece end", _peer, _pipe_fill);
    SLUICE_ASSERT(_chunk_sent == _chunk_len, "{}: chunk not fully sent at a piece end", _peer);
    _piece_offset = 0;
    ++_piece_index;
    _chunk_len = _chunk_sent = 0;
    release_send_resources();
    if (_piece_index >= _send_queue.front().pieces().size()) {
        _send_queue.pop_front();
        _piece_index = 0;
    }
}

void connection::release_send_resources() {
    if (_chunk) {
        if (_reactor != nullptr) _reactor->chunks().release(std::move(_chunk));
        _chunk.reset();
    }
    _chunk_len = _chunk_sent = 0;
    if (_pipe) {
        // A pipe still holding bytes (connection closed mid-splice) cannot be reused.
        if (_reactor != nullptr && _pipe_fill == 0) {
            _reactor->pipes().release(*_pipe);
        } else {
            pipe_pool::discard(*_pipe);
        }
        _pipe.reset();
    }
    _pipe_fill = 0;
}

}  // namespace sluice::net
