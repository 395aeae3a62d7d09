#pragma once
// net::connection: one accepted TCP socket, owned by one reactor.
//
// Concurrency: every method runs on the owning reactor's thread (use reactor::post to get
// there). A connection is always held by shared_ptr; each in-flight io_uring operation
// holds one more reference, so the object outlives a client that disconnects mid-send.
// The socket fd is closed only once the connection is closed AND its last operation has
// completed (so the fd number cannot be reused under an operation that still names it).
//
// Receive: one multishot recv with buffers from the reactor's provided-buffer ring; bytes
// are copied out into frames (wire format in net/frame.h) and the buffer is recycled at
// once. A large frame (a Produce of big batches) is instead received straight into its
// own buffer, which saves a user-space copy of every produced byte:
// - once a size prefix shows that at least reactor_config::direct_recv_min_bytes are still
//   to come, the multishot recv is cancelled (bytes it still delivers are copied as usual),
//   and one RECV with MSG_WAITALL reads the rest of the frame into place;
// - after a large frame (however it came), a single-shot recv of just the next 4-byte size
//   prefix follows, so a producer's stream of large frames comes entirely in place even
//   when each arrives in one burst; the first small frame re-arms the multishot recv.
//
// Send: out_messages go out in order, one operation (or linked splice chain) in flight at
// a time; consecutive in-memory pieces -- across queued messages too -- are
// gathered into one sendmsg.
//
// TLS (a connection made with a tls_context): received bytes are decrypted (net/tls.h)
// before framing; out_message pieces are encrypted into 16 KiB records and the ciphertext
// sent with SEND. File pieces always go through user space (no splice): READ into a
// pooled chunk by io_uring, then encrypted -- or, with send_strategy::mmap_copy,
// encrypted straight from the segment's mapping when its pages are known resident
// (net/residency.h; a cold page must not fault on the reactor thread). Measurements and
// the reason READ is the default: connection_tls.cc.
#include "base/out_message.h"
#include "net/completion.h"
#include "net/frame.h"
#include "net/send_pools.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

struct io_uring_sqe;

namespace sluice::net {

class reactor;
class tls_context;
class tls_session;

class connection : public std::enable_shared_from_this<connection> {
    struct passkey {};

public:
    // tls: speak TLS as the server side of this context; nullptr: plaintext.
    static std::shared_ptr<connection> make(reactor& r, int fd, std::string peer,
                                            std::shared_ptr<const tls_context> tls = nullptr);
    connection(passkey, reactor& r, int fd, std::string peer, std::shared_ptr<const tls_context> tls);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    // Called once per complete frame, in arrival order; never while reading is paused.
    void set_frame_handler(std::function<void(frame)> on_frame);
    // Called once, on a later loop turn than the close itself, with a reason for logs.
    void set_close_handler(std::function<void(std::string_view reason)> on_close);
    // Queued and sent in order, whole. Dropped if the connection is closed.
    void send(out_message msg);
    // Back-pressure: stop reading from the socket (the kernel's buffer fills, then TCP
    // pushes back on the client); frames already received are held until resume.
    void pause_reading();
    void resume_reading();
    void close();  // idempotent; queued sends are dropped, in-flight ones cancelled safely
    // Hands a frame's memory back once the request is done with it: the next large frame
    // is received into it, already faulted in (net/frame_pool.h). Optional; reactor thread.
    void recycle_frame(frame f);
    bool is_closed() const { return _closed; }
    bool is_tls() const { return _tls != nullptr; }
    const std::string& peer() const { return _peer; }
    size_t queued_bytes() const { return _queued_bytes; }

private:
    friend class reactor;
    friend class listener;

    // An operation slot: user_data points here; `owner` keeps the connection alive until
    // the operation's last CQE has been handled.
    class op final : public completion {
    public:
        using done_fn = void (connection::*)(int32_t res, uint32_t flags);
        op(const char* name, connection* c, done_fn done) : completion(name), _conn(c), _done(done) {}
        void complete(int32_t res, uint32_t flags) override;
        std::shared_ptr<connection> owner;

    private:
        connection* _conn;
        done_fn _done;
    };
    enum class piece_mode { memory, mmap_copy, splice, buffered };

    void start();
    void detach();  // the reactor is going away
    void close_with(std::string_view reason);
    io_uring_sqe* prepare(op& o);
    void op_finished();
    void finalize();

    // receive (connection.cc)
    bool want_recv() const;
    void arm_recv();
    void recv_done(int32_t res, uint32_t flags);
    // `bytes` is enough to receive in place (reactor_config::direct_recv_min_bytes; not TLS).
    bool is_large(size_t bytes) const;
    bool want_direct_recv() const;
    void arm_direct_recv();
    void direct_recv_done(int32_t res, uint32_t flags);
    void consume(std::span<const uint8_t> bytes);
    void body_complete();
    void deliver(frame f);
    void resume_delivery();

    // send (connection_send.cc)
    void schedule_send();
    void send_next();
    piece_mode mode_of(const out_message::piece& p) const;
    // When the chosen path cannot run -- the segment's descriptor cannot be (re)opened or
    // no pipe can be made (EMFILE under a low `ulimit -n`) -- a file piece still goes out
    // from the segment's mapping if that covers it, rather than failing the connection.
    piece_mode fallback_mode(const out_message::piece& p) const;
    const out_message::piece* current_piece();
    void send_gathered();
    void send_splice(const out_message::piece& p);
    void send_buffered(const out_message::piece& p);
    void advance(size_t n);
    void next_piece();
    void release_send_resources();
    void send_done(int32_t res, uint32_t flags);
    void read_done(int32_t res, uint32_t flags);
    void splice_in_done(int32_t res, uint32_t flags);
    void splice_out_done(int32_t res, uint32_t flags);
    void splice_chain_done();
    bool send_failed(int32_t res, std::string_view what);

    // TLS (connection_tls.cc)
    void tls_receive(std::span<const uint8_t> cipher);
    void tls_failed();
    void tls_send_next();
    bool tls_fill();  // true: a file READ was issued instead (or the connection failed)
    void tls_read_chunk(const out_message::piece& p);  // completes in read_done
    void tls_consume_plain(size_t n);
    void tls_idle();
    void tls_send_done(int32_t res, uint32_t flags);

    reactor* _reactor;  // nullptr once detached
    int _fd;
    std::string _peer;
    std::function<void(frame)> _on_frame;
    std::function<void(std::string_view)> _on_close;
    bool _closed = false;
    bool _finalized = false;
    unsigned _ops_in_flight = 0;

    // receive state
    op _recv_op{"recv", this, &connection::recv_done};
    bool _recv_armed = false;
    bool _recv_cancelling = false;  // multishot cancelled to switch to a direct recv
    op _direct_recv_op{"recv_direct", this, &connection::direct_recv_done};
    bool _direct_armed = false;
    bool _expect_large = false;  // the last frame was large: the next recv is single-shot
    bool _paused = false;
    bool _delivery_scheduled = false;
    std::array<uint8_t, 4> _size_bytes{};
    unsigned _size_have = 0;  // 0..4 bytes of the size prefix seen
    size_t _body_size = 0;
    size_t _body_have = 0;  // bytes of the body received; _body.size() may be larger while a
                            // direct recv fills [_body_have, _body_size)
    frame _body;
    std::deque<frame> _held_frames;  // received while paused

    // send state: cursor = (front message, _piece_index, _piece_offset)
    std::deque<out_message> _send_queue;
    size_t _queued_bytes = 0;
    size_t _piece_index = 0;
    size_t _piece_offset = 0;
    unsigned _send_ops = 0;  // CQEs the current send step still waits for
    bool _send_scheduled = false;
    op _send_op{"send", this, &connection::send_done};
    static constexpr size_t max_iov = 64;
    std::array<iovec, max_iov> _iov{};
    msghdr _msg{};
    // buffered: chunk bytes [_chunk_sent, _chunk_len) are the piece's bytes at the cursor
    op _read_op{"file_read", this, &connection::read_done};
    chunk_pool::chunk _chunk;
    size_t _chunk_len = 0;
    size_t _chunk_sent = 0;
    bool _sending_chunk = false;
    // splice: the pipe holds _pipe_fill bytes of the current piece just past the cursor
    op _splice_in_op{"splice_in", this, &connection::splice_in_done};
    op _splice_out_op{"splice_out", this, &connection::splice_out_done};
    std::optional<pipe_pair> _pipe;
    size_t _pipe_fill = 0;
    bool _no_splice = false;  // a pipe could not be made: this connection stops splicing
    unsigned _splice_in_len = 0;
    int32_t _splice_in_res = 0;
    int32_t _splice_out_res = 0;
    // TLS: _tls_out[_tls_out_sent, size) is ciphertext being sent; the session fills the
    // other buffer meanwhile (they swap, net/tls.h). File pieces read for encryption use
    // _chunk/_chunk_len, with _chunk_sent counting the bytes encrypted.
    std::unique_ptr<tls_session> _tls;
    std::vector<uint8_t> _tls_out;
    size_t _tls_out_sent = 0;
    op _tls_send_op{"tls_send", this, &connection::tls_send_done};
};

}  // namespace sluice::net
