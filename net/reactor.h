#pragma once
// net::reactor: one io_uring event loop per shard thread (Seastar/Redpanda style).
//
// Concurrency: a reactor is owned by one thread. post() and stop() may be called from any
// thread; everything else (listen, timers, stats, and every connection method) only on
// the reactor's thread -- or before run() starts, from the thread that will start it.
// The cross-thread structures are the post() queue (lock-free MPSC + eventfd wake-up)
// and, on the accept path only, the reactor_group's per-member connection counts.
//
// The loop (run): posted tasks -> due timers -> one io_uring_enter that submits the SQ
// and waits for a CQE or the next timer -> reap CQEs in batches into a ready list (one
// io_uring_cq_advance per batch) -> run the ready completions. Completions never run
// inside one another; callbacks that queue more I/O just fill SQEs for the next enter.
// Every callback is timed; one over 10 ms is a "stall", counted and logged by name.
#include "base/result.h"
#include "net/completion.h"
#include "net/frame_pool.h"
#include "net/residency.h"
#include "net/send_pools.h"
#include "net/send_strategy.h"
#include "net/task_queue.h"

#include <liburing.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace sluice::net {

class buffer_ring;
class connection;
class listener;
class reactor;
class tls_context;

struct reactor_config {
    unsigned shard_id = 0;
    unsigned shard_count = 1;
    unsigned sq_entries = 1024;
    size_t recv_buffer_size = 64 * 1024;
    unsigned recv_buffer_count = 256;  // rounded up to a power of two
    send_strategy file_send = send_strategy::mmap_copy;
    size_t max_frame_bytes = 100 * 1024 * 1024;  // socket.request.max.bytes
    // A frame with at least this many bytes still to come is received straight into its
    // own buffer rather than copied out of provided buffers (net/connection.h); 0: never.
    // socket.receive.direct.min.bytes.
    size_t direct_recv_min_bytes = 64 * 1024;
};

struct reactor_stats {
    uint64_t sq_full = 0;        // SQ had no free entry: flushed early (not an error)
    uint64_t cq_overflow = 0;    // kernel's CQ overflow counter (completions it had to hold)
    uint64_t ios_in_flight = 0;  // operations submitted whose last CQE has not been reaped
    uint64_t stalls = 0;         // callbacks that ran > 10 ms
    uint64_t recv_enobufs = 0;   // multishot recv ended for lack of provided buffers
    uint64_t connections_accepted = 0;    // by this reactor's listening sockets
    uint64_t connections_handed_off = 0;  // of those, passed to another reactor of the group
    uint64_t connections_adopted = 0;     // accepted by another reactor, served here
    uint64_t connections_open = 0;
    uint64_t bytes_sent_memory = 0;     // in-memory pieces (headers, small responses)
    uint64_t bytes_sent_splice = 0;     // file pieces by strategy...
    uint64_t bytes_sent_mmap_copy = 0;
    uint64_t bytes_sent_buffered = 0;
    uint64_t residency_checks = 0;        // mincore calls made for mmap_copy pieces
    uint64_t mmap_copy_not_resident = 0;  // mmap_copy pieces sent buffered: pages not resident
    uint64_t frames_reused = 0;           // large frames received into a recycled buffer
    uint64_t recv_direct = 0;             // RECVs straight into a large frame's buffer
    uint64_t bytes_recv_direct = 0;       // bytes they received (the rest came by multishot)
    // TLS connections (every file piece goes through user space to be encrypted)
    uint64_t tls_handshakes = 0;          // completed
    uint64_t tls_failures = 0;            // handshake or record errors (connection closed)
    uint64_t bytes_encrypted_memory = 0;  // plaintext from in-memory pieces
    uint64_t bytes_encrypted_mapped = 0;  // file pieces encrypted straight from a resident mapping
    uint64_t bytes_encrypted_read = 0;    // file pieces read into a chunk first (not resident)
    uint64_t bytes_sent_tls = 0;          // ciphertext bytes the socket took
};

// The reactors of one process, so that an accepted socket is served by the reactor with
// the fewest open connections. Every reactor listens on the port itself (SO_REUSEPORT),
// but the kernel spreads by a hash of the 4-tuple: two connections land on the same
// reactor half the time, and a client's long-lived connections stay wherever they fell.
// So the reactor whose socket accepted asks claim() for the owner, and if that is another
// member it hands the descriptor over by post() -- message passing, no shared connection
// state. Accepting is a cold path: one atomic add per connection here is no concern.
//
// Concurrency: members are fixed at construction, before any of them runs. claim() and
// release() may be called from any thread; the counts are relaxed atomics, so two claims
// racing on two threads may both pick the same member (a momentary skew of one).
class reactor_group {
public:
    explicit reactor_group(std::vector<reactor*> members);
    reactor_group(const reactor_group&) = delete;
    reactor_group& operator=(const reactor_group&) = delete;

    unsigned size() const { return static_cast<unsigned>(_members.size()); }
    reactor& member(unsigned i) const { return *_members[i]; }
    // The member that will own the next accepted connection, counted as open from now:
    // the fewest open connections, ties broken round-robin (so short-lived connections,
    // such as a client's bootstrap, do not always land on the same member).
    unsigned claim();
    // A connection counted for member i has closed.
    void release(unsigned i);
    uint64_t open(unsigned i) const { return _slots[i].open.load(std::memory_order_relaxed); }

private:
    struct alignas(64) slot {
        std::atomic<uint64_t> open{0};
    };
    std::vector<reactor*> _members;
    std::unique_ptr<slot[]> _slots;
    alignas(64) std::atomic<uint64_t> _next{0};
};

class reactor {
public:
    // Sets up the ring, probes opcodes and features, registers the provided-buffer ring.
    // On failure logs a message naming the kernel version and the fix, returns the error.
    static result<std::unique_ptr<reactor>> create(const reactor_config& config);
    ~reactor();
    reactor(const reactor&) = delete;
    reactor& operator=(const reactor&) = delete;

    // Loops until stop(); then closes listeners and connections and waits (bounded) for
    // their in-flight operations before returning.
    void run();
    void stop();  // any thread
    void post(std::function<void()> task);  // any thread; runs on the reactor thread, FIFO per producer

    // One-shot timer; runs on the reactor thread at or after delay. Ids are never reused.
    uint64_t add_timer(std::chrono::milliseconds delay, std::function<void()> fn);
    void cancel_timer(uint64_t id);  // no-op if it already ran or was cancelled

    // Listens on host:port with SO_REUSEPORT (each shard binds the same port; the kernel
    // spreads the accepts, the reactor_group, if joined, the connections). Port 0 picks a
    // free port. Returns the bound port. With `tls` every accepted connection speaks TLS
    // (server side) before any frame is delivered.
    result<int> listen(const std::string& host, uint16_t port,
                       std::function<void(std::shared_ptr<connection>)> on_accept,
                       std::shared_ptr<const tls_context> tls = nullptr);

    // Before run(), once per member: from then on every connection a listener of this
    // reactor accepts is served by the member group.claim() picks (see reactor_group).
    // Listeners must be opened in the same order on every member: a handed-over socket is
    // served by the listener in the same position on its new reactor.
    void join(reactor_group& group);
    reactor_group* group() const { return _group; }

    unsigned shard_id() const { return _config.shard_id; }
    const reactor_config& config() const { return _config; }
    reactor_stats stats() const;
    bool on_reactor_thread() const;
    // For assertions: true on the loop thread, or anywhere while run() is not running.
    bool owned_by_caller() const;

private:
    friend class connection;
    friend class listener;
    struct ready_entry {
        completion* op;
        int32_t res;
        uint32_t flags;
    };
    struct timer_key {
        std::chrono::steady_clock::time_point deadline;
        uint64_t id;
        bool operator>(const timer_key& o) const {
            return deadline != o.deadline ? deadline > o.deadline : id > o.id;
        }
    };
    class wakeup_op : public completion {
    public:
        explicit wakeup_op(reactor& r) : completion("wakeup"), _r(r) {}
        void complete(int32_t res, uint32_t flags) override;
        uint64_t value = 0;

    private:
        reactor& _r;
    };

    explicit reactor(const reactor_config& config);
    std::error_code init();
    std::error_code setup_ring();

    // -- for connections and listeners --
    // An SQE with user_data = op (nullptr: the CQE is ignored). A full SQ is flushed.
    io_uring_sqe* sqe_for(completion* op);
    // Makes sure the next n sqe_for() calls need no flush (linked chains).
    void reserve_sqes(unsigned n);
    void cancel(completion* op);
    void defer(std::function<void()> task);  // reactor thread: run on the next loop turn
    void add_connection(connection* c) { _connections.insert(c); }
    void remove_connection(connection* c);
    // Reactor thread: serves a socket another member accepted, as if our listener in
    // position `slot` had accepted it (closed if that listener is gone or we stop).
    void adopt(size_t slot, int fd, std::string peer);
    buffer_ring& recv_buffers() { return *_recv_buffers; }
    pipe_pool& pipes() { return _pipes; }
    chunk_pool& chunks() { return _chunks; }
    residency_cache& residency() { return _residency; }
    frame_pool& frames() { return _frames; }
    reactor_stats& counters() { return _stats; }

    // -- loop --
    void flush_sq();
    void wait(bool poll_only);
    void reap();
    void run_ready();
    bool run_posted();  // true if work is left over
    void run_timers();
    void arm_wakeup();
    void wake();
    void shutdown();
    template <typename F>
    void timed(const char* name, F&& fn);

    reactor_config _config;
    io_uring _ring{};
    bool _ring_ready = false;
    int _event_fd = -1;
    wakeup_op _wakeup{*this};
    bool _wakeup_armed = false;
    std::unique_ptr<buffer_ring> _recv_buffers;
    pipe_pool _pipes;
    chunk_pool _chunks;
    residency_cache _residency;
    frame_pool _frames;

    std::atomic<bool> _stop_requested{false};
    std::atomic<bool> _wake_pending{false};
    std::atomic<std::thread::id> _loop_thread{};
    bool _stopping = false;
    task_queue _remote;
    std::deque<std::function<void()>> _local;

    std::vector<ready_entry> _ready;
    std::vector<ready_entry> _running;

    std::priority_queue<timer_key, std::vector<timer_key>, std::greater<>> _timer_heap;
    std::unordered_map<uint64_t, std::function<void()>> _timers;
    uint64_t _next_timer_id = 1;

    std::vector<std::unique_ptr<listener>> _listeners;
    std::unordered_set<connection*> _connections;
    reactor_group* _group = nullptr;
    reactor_stats _stats;
};

}  // namespace sluice::net
