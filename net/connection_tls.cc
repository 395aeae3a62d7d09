// connection: the TLS side. Receive: ciphertext -> tls_session -> consume() (framing).
// Send, one step in flight at a time like the plaintext path:
//   1. ciphertext left in _tls_out            -> SEND the rest;
//   2. else encrypt up to tls_step_bytes of queued plaintext into the session's output
//      (memory pieces; file pieces from a chunk an io_uring READ filled -- that READ is
//      the step -- or, with fetch.send.strategy=mmap_copy, from the segment's mapping
//      when its pages are resident), swap it into _tls_out, SEND.
//
// Why READ by default: measured on the 2-vCPU KVM guest (tls_session encrypting 512 MiB
// of page cache in 64 KiB-1 MiB steps), encrypting from a user mapping cost 0.70-1.05
// CPU-s/GB against 0.42-0.58 for pread into a 256 KiB chunk then encrypt: OpenSSL's
// copy out of a 4 KiB-page mapping is slower than the kernel's copy out of the page
// cache, and the chunk is still in cache when OpenSSL reads it.
// The cursor moves when plaintext is encrypted (it is then inside the ciphertext), so a
// message and its segment references are released before their ciphertext is sent.
#include "base/assert.h"
#include "base/log.h"
#include "net/connection.h"
#include "net/reactor.h"
#include "net/tls.h"

#include <liburing.h>

#include <cstring>

namespace sluice::net {
namespace {
// TLS's largest record: small pieces (response headers) are gathered up to this size so
// that nearly every record is full; long runs go to OpenSSL whole.
constexpr size_t tls_record_bytes = 16 * 1024;
// Plaintext encrypted per step: large enough that a SEND moves a lot per syscall, small
// enough that one step stays well under a millisecond of AES and memory per connection
// stays bounded.
constexpr size_t tls_step_bytes = 256 * 1024;
// An idle connection keeps at most this much of its ciphertext buffers.
constexpr size_t tls_idle_keep_bytes = 64 * 1024;
}  // namespace

void connection::tls_receive(std::span<const uint8_t> cipher) {
    bool was_established = _tls->established();
    auto st = _tls->receive(cipher, [this](std::span<const uint8_t> plain) {
        consume(plain);
        return !_closed;
    });
    if (_closed) return;
    if (!was_established && st == tls_session::state::established) {
        ++_reactor->counters().tls_handshakes;
        log::debug("net", "{}: TLS established: {}", _peer, _tls->describe());
    }
    if (st == tls_session::state::failed) return tls_failed();
    if (st == tls_session::state::closed) return close_with("peer sent TLS close_notify");
    // Handshake flights, session tickets, alerts.
    if (_tls->output_size() > 0) schedule_send();
}

void connection::tls_failed() {
    ++_reactor->counters().tls_failures;
    log::warn("net", "{}: TLS {}: {}; closing the connection", _peer,
              _tls->established() ? "error" : "handshake failed", _tls->failure());
    // Best effort: give the peer OpenSSL's alert so that its own error says why. A few
    // bytes, one non-blocking send (MSG_DONTWAIT), and only when no SEND is in flight
    // (the alert must not overtake earlier ciphertext).
    if (_send_ops == 0 && _tls_out_sent == _tls_out.size() && _tls->output_size() > 0) {
        std::vector<uint8_t> alert;
        _tls->take_output(alert);
        [[maybe_unused]] ssize_t n = ::send(_fd, alert.data(), alert.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    close_with("TLS failure");
}

void connection::tls_send_next() {
    if (_tls->current() == tls_session::state::failed) return;
    if (_tls_out_sent == _tls_out.size()) {
        _tls_out.clear();
        _tls_out_sent = 0;
        if (_tls->established() && tls_fill()) return;
        if (_closed) return;
        if (_tls->output_size() == 0) return tls_idle();
        _tls->take_output(_tls_out);
    }
    io_uring_sqe* sqe = prepare(_tls_send_op);
    io_uring_prep_send(sqe, _fd, _tls_out.data() + _tls_out_sent, _tls_out.size() - _tls_out_sent,
                       MSG_NOSIGNAL);
    _send_ops = 1;
}

namespace {

// Gathers plaintext into full 16 KiB records: pieces smaller than a record (response
// headers, small batches) are copied into one stage; long runs go to OpenSSL whole, so
// nearly every record is full and the plaintext is copied once (by OpenSSL) on the way.
class record_stager {
public:
    explicit record_stager(tls_session& tls) : _tls(tls) {}
    void put(const uint8_t* p, size_t n) {
        while (n > 0 && _tls.established()) {
            if (_staged == 0 && n >= tls_record_bytes) {
                size_t direct = n - n % tls_record_bytes;
                _tls.encrypt(std::span<const uint8_t>(p, direct));
                p += direct;
                n -= direct;
                continue;
            }
            size_t take = std::min(n, tls_record_bytes - _staged);
            std::memcpy(_stage + _staged, p, take);
            _staged += take;
            p += take;
            n -= take;
            if (_staged == tls_record_bytes) flush();
        }
    }
    void flush() {
        if (_staged > 0 && _tls.established()) _tls.encrypt(std::span<const uint8_t>(_stage, _staged));
        _staged = 0;
    }
    size_t staged() const { return _staged; }

private:
    tls_session& _tls;
    uint8_t _stage[tls_record_bytes];
    size_t _staged = 0;
};

}  // namespace

bool connection::tls_fill() {
    if (current_piece() == nullptr) return false;
    reactor_stats& stats = _reactor->counters();
    record_stager stage(*_tls);
    // Records add < 0.2%; a handshake leftover or an alert may already be queued.
    _tls->reserve_output(tls_step_bytes + tls_step_bytes / 64 + tls_record_bytes);
    // Bounded: every pass consumes plaintext (at least one byte) or leaves the loop.
    while (_tls->established() && _tls->output_size() + stage.staged() < tls_step_bytes) {
        const out_message::piece* p = current_piece();
        if (p == nullptr) break;
        size_t room = tls_step_bytes - (_tls->output_size() + stage.staged());
        size_t n = std::min(p->length - _piece_offset, room);
        if (!p->is_file) {
            stage.put(_send_queue.front().memory(*p) + _piece_offset, n);
            stats.bytes_encrypted_memory += n;
        } else if (_chunk_sent < _chunk_len) {
            n = std::min(n, _chunk_len - _chunk_sent);
            stage.put(_chunk.get() + _chunk_sent, n);
            _chunk_sent += n;
            stats.bytes_encrypted_read += n;
        } else if ((_reactor->config().file_send == send_strategy::mmap_copy &&
                    _reactor->residency().resident(p->slice.file, p->slice.position + _piece_offset, n)) ||
                   (p->slice.file->fd() < 0 && fallback_mode(*p) == piece_mode::mmap_copy)) {
            // (fallback_mode: bytes with no descriptor, such as a direct-append tail chunk, or
            // a segment whose descriptor could not be opened.)
            // Resident: encrypt from the page cache itself, no copy into a chunk first.
            stage.put(p->slice.file->mapped() + p->slice.position + _piece_offset, n);
            stats.bytes_encrypted_mapped += n;
        } else {
            // READ through io_uring (never a page fault on the reactor thread, KAFKA-7504),
            // after sending what is already encrypted.
            if (stage.staged() > 0 || _tls->output_size() > 0) break;
            tls_read_chunk(*p);
            return true;
        }
        tls_consume_plain(n);
    }
    stage.flush();
    if (_tls->current() == tls_session::state::failed) {
        tls_failed();
        return true;
    }
    return false;
}

void connection::tls_read_chunk(const out_message::piece& p) {
    if (!_chunk) _chunk = _reactor->chunks().acquire();
    // One step's worth: the chunk is still in the CPU cache when OpenSSL copies it.
    size_t want = std::min(tls_step_bytes, p.length - _piece_offset);
    io_uring_sqe* sqe = prepare(_read_op);
    io_uring_prep_read(sqe, p.slice.file->fd(), _chunk.get(), static_cast<unsigned>(want),
                       p.slice.position + _piece_offset);
    _send_ops = 1;
}

void connection::tls_consume_plain(size_t n) {
    while (n > 0) {
        const out_message::piece* p = current_piece();
        SLUICE_ASSERT(p != nullptr, "{}: encrypted {} bytes past the queue", _peer, n);
        size_t take = std::min(n, p->length - _piece_offset);
        _piece_offset += take;
        _queued_bytes -= take;
        n -= take;
        if (_piece_offset == p->length) next_piece();
    }
}

void connection::tls_idle() {
    release_send_resources();
    if (_tls_out.capacity() > tls_idle_keep_bytes) std::vector<uint8_t>().swap(_tls_out);
    _tls->trim_output(tls_idle_keep_bytes);
}

void connection::tls_send_done(int32_t res, uint32_t) {
    _send_ops = 0;
    if (_closed) return;
    if (res <= 0) {
        send_failed(res, "send");
        return;
    }
    _tls_out_sent += static_cast<size_t>(res);
    _reactor->counters().bytes_sent_tls += static_cast<uint64_t>(res);
    send_next();
}

}  // namespace sluice::net
