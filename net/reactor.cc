#include "net/reactor.h"

#include "base/assert.h"
#include "base/log.h"
#include "net/buffer_ring.h"
#include "net/connection.h"
#include "net/listener.h"

#include <sys/eventfd.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstring>

namespace sluice::net {
namespace {

constexpr auto stall_threshold = std::chrono::milliseconds(10);
constexpr unsigned reap_batch = 128;
constexpr unsigned posted_budget = 1024;
constexpr auto shutdown_drain_max = std::chrono::seconds(2);

std::string kernel_release() {
    utsname u{};
    if (::uname(&u) != 0) return "unknown";
    return u.release;
}

// "6.1.0-18-amd64" -> {6, 1}
std::pair<int, int> kernel_version() {
    int major = 0, minor = 0;
    std::sscanf(kernel_release().c_str(), "%d.%d", &major, &minor);
    return {major, minor};
}

std::error_code unusable(std::error_code ec, std::string_view what, std::string_view fix) {
    log::error("net", "io_uring unusable on Linux {}: {} ({}). Fix: {}", kernel_release(), what,
               ec.message(), fix);
    return ec;
}

}  // namespace

// ---- reactor_group ----

reactor_group::reactor_group(std::vector<reactor*> members)
    : _members(std::move(members)), _slots(new slot[_members.size()]) {
    SLUICE_ASSERT(!_members.empty(), "empty reactor group");
    for (unsigned i = 0; i < size(); ++i)
        SLUICE_ASSERT(_members[i]->shard_id() == i, "member {} has shard id {}", i, _members[i]->shard_id());
}

unsigned reactor_group::claim() {
    unsigned n = size();
    unsigned start = static_cast<unsigned>(_next.fetch_add(1, std::memory_order_relaxed) % n);
    unsigned best = start;
    uint64_t best_open = open(start);
    for (unsigned k = 1; k < n; ++k) {
        unsigned i = (start + k) % n;
        if (uint64_t o = open(i); o < best_open) {
            best = i;
            best_open = o;
        }
    }
    _slots[best].open.fetch_add(1, std::memory_order_relaxed);
    return best;
}

void reactor_group::release(unsigned i) {
    uint64_t before = _slots[i].open.fetch_sub(1, std::memory_order_relaxed);
    SLUICE_ASSERT(before > 0, "reactor group: release of member {} with no open connection", i);
}

// ---- reactor ----

reactor::reactor(const reactor_config& config)
    : _config(config), _pipes(1024 * 1024), _chunks() {}

result<std::unique_ptr<reactor>> reactor::create(const reactor_config& config) {
    SLUICE_ASSERT(config.sq_entries > 0 && config.recv_buffer_count > 0, "bad reactor_config");
    std::unique_ptr<reactor> r(new reactor(config));
    if (auto ec = r->init()) return ec;
    return r;
}

std::error_code reactor::init() {
    if (auto ec = setup_ring()) return ec;
    auto br = buffer_ring::create(&_ring, 0, _config.recv_buffer_count, _config.recv_buffer_size);
    if (!br) {
        return unusable(br.error(), "cannot register a provided buffer ring",
                        "Sluice needs Linux >= 6.0 (provided buffer rings, multishot recv)");
    }
    _recv_buffers = std::move(*br);
    // Blocking on purpose: io_uring completes a READ on an O_NONBLOCK eventfd with -EAGAIN
    // instead of waiting for it to become readable.
    _event_fd = ::eventfd(0, EFD_CLOEXEC);
    if (_event_fd < 0) return errno_code(errno);
    return {};
}

std::error_code reactor::setup_ring() {
    io_uring_params p{};
    // CQ four times the SQ: multishot recv/accept post many CQEs per SQE.
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
    p.cq_entries = _config.sq_entries * 4;
    int rc = io_uring_queue_init_params(_config.sq_entries, &_ring, &p);
    if (rc == -EINVAL) {
        p = io_uring_params{};
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = _config.sq_entries * 4;
        rc = io_uring_queue_init_params(_config.sq_entries, &_ring, &p);
    }
    if (rc == -EPERM) {
        return unusable(errno_code(-rc), "io_uring_setup refused",
                        "set sysctl kernel.io_uring_disabled=0, or allow io_uring_setup/"
                        "io_uring_enter in the container's seccomp profile");
    }
    if (rc == -ENOMEM) {
        return unusable(errno_code(-rc), "no memory for the rings",
                        "raise RLIMIT_MEMLOCK (ulimit -l; kernels < 5.12 charge rings to it) "
                        "or lower sq_entries");
    }
    if (rc == -ENOSYS) {
        return unusable(errno_code(-rc), "kernel built without io_uring",
                        "use a kernel with CONFIG_IO_URING=y, Linux >= 6.0");
    }
    if (rc < 0) return unusable(errno_code(-rc), "io_uring_queue_init failed", "Linux >= 6.0");
    _ring_ready = true;

    constexpr std::pair<unsigned, const char*> features[] = {
        {IORING_FEAT_NODROP, "IORING_FEAT_NODROP"},
        {IORING_FEAT_FAST_POLL, "IORING_FEAT_FAST_POLL"},
        {IORING_FEAT_EXT_ARG, "IORING_FEAT_EXT_ARG"},
    };
    for (auto [bit, name] : features) {
        if ((p.features & bit) == 0) {
            return unusable(std::make_error_code(std::errc::not_supported),
                            fmt::format("missing feature {}", name), "upgrade to Linux >= 6.0");
        }
    }
    io_uring_probe* probe = io_uring_get_probe_ring(&_ring);
    if (probe == nullptr) {
        return unusable(std::make_error_code(std::errc::not_supported), "cannot probe opcodes",
                        "upgrade to Linux >= 6.0");
    }
    constexpr std::pair<int, const char*> opcodes[] = {
        {IORING_OP_ACCEPT, "ACCEPT"},   {IORING_OP_RECV, "RECV"},
        {IORING_OP_SEND, "SEND"},       {IORING_OP_SENDMSG, "SENDMSG"},
        {IORING_OP_SPLICE, "SPLICE"},   {IORING_OP_READ, "READ"},
        {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
    };
    for (auto [op, name] : opcodes) {
        if (!io_uring_opcode_supported(probe, op)) {
            io_uring_free_probe(probe);
            return unusable(std::make_error_code(std::errc::not_supported),
                            fmt::format("opcode IORING_OP_{} not supported", name),
                            "upgrade to Linux >= 6.0");
        }
    }
    io_uring_free_probe(probe);
    // Multishot recv (IORING_RECV_MULTISHOT) arrived in 6.0 and cannot be probed by opcode.
    if (kernel_version() < std::pair{6, 0}) {
        return unusable(std::make_error_code(std::errc::not_supported),
                        "multishot recv needs Linux 6.0", "upgrade to Linux >= 6.0");
    }
    return {};
}

reactor::~reactor() {
    // Connections the broker still holds outlive us: cut them loose (they close their fd
    // and drop their operations' self-references) so nothing points at a dead reactor.
    std::vector<connection*> left(_connections.begin(), _connections.end());
    _connections.clear();
    for (connection* c : left) {
        auto self = c->shared_from_this();
        c->detach();
    }
    _listeners.clear();
    _recv_buffers.reset();
    if (_ring_ready) io_uring_queue_exit(&_ring);
    if (_event_fd >= 0) ::close(_event_fd);
}

bool reactor::on_reactor_thread() const {
    return _loop_thread.load(std::memory_order_relaxed) == std::this_thread::get_id();
}

bool reactor::owned_by_caller() const {
    auto id = _loop_thread.load(std::memory_order_relaxed);
    return id == std::thread::id{} || id == std::this_thread::get_id();
}

reactor_stats reactor::stats() const {
    reactor_stats s = _stats;
    s.connections_open = _connections.size();
    s.residency_checks = _residency.checks();
    s.mmap_copy_not_resident = _residency.not_resident();
    s.frames_reused = _frames.reused();
    return s;
}

// ---- cross-thread ----

void reactor::post(std::function<void()> task) {
    if (on_reactor_thread()) {
        _local.push_back(std::move(task));
        return;
    }
    auto* n = new task_queue::node;
    n->fn = std::move(task);
    _remote.push(n);
    // After the push: if the consumer cleared the flag before our push finished, we see
    // false here and write, so a task is never left behind a sleeping reactor.
    if (!_wake_pending.exchange(true)) wake();
}

void reactor::stop() {
    _stop_requested.store(true, std::memory_order_release);
    wake();
}

void reactor::wake() {
    uint64_t one = 1;
    // An eventfd write only fails if the counter would overflow; then a wake-up is pending.
    [[maybe_unused]] ssize_t n = ::write(_event_fd, &one, sizeof one);
}

void reactor::arm_wakeup() {
    if (_wakeup_armed || _stopping) return;
    io_uring_sqe* sqe = sqe_for(&_wakeup);
    io_uring_prep_read(sqe, _event_fd, &_wakeup.value, sizeof _wakeup.value, 0);
    _wakeup_armed = true;
}

void reactor::wakeup_op::complete(int32_t res, uint32_t) {
    _r._wakeup_armed = false;
    if (res < 0 && res != -ECANCELED) log::warn("net", "eventfd read failed: {}", strerror(-res));
    _r.arm_wakeup();
}

// ---- timers ----

uint64_t reactor::add_timer(std::chrono::milliseconds delay, std::function<void()> fn) {
    SLUICE_ASSERT(owned_by_caller(), "add_timer from a foreign thread: use post()");
    uint64_t id = _next_timer_id++;
    _timers.emplace(id, std::move(fn));
    _timer_heap.push({std::chrono::steady_clock::now() + delay, id});
    return id;
}

void reactor::cancel_timer(uint64_t id) {
    SLUICE_ASSERT(owned_by_caller(), "cancel_timer from a foreign thread: use post()");
    _timers.erase(id);
}

void reactor::run_timers() {
    auto now = std::chrono::steady_clock::now();
    // Timers added by these callbacks wait for the next turn, even with a zero delay.
    uint64_t id_limit = _next_timer_id;
    while (!_timer_heap.empty()) {
        timer_key top = _timer_heap.top();
        auto it = _timers.find(top.id);
        if (it == _timers.end()) {  // cancelled: drop it, due or not
            _timer_heap.pop();
            continue;
        }
        if (top.deadline > now || top.id >= id_limit) break;
        _timer_heap.pop();
        auto fn = std::move(it->second);
        _timers.erase(it);
        timed("timer", fn);
    }
}

// ---- submission ----

io_uring_sqe* reactor::sqe_for(completion* op) {
    io_uring_sqe* sqe = io_uring_get_sqe(&_ring);
    if (sqe == nullptr) {
        ++_stats.sq_full;
        flush_sq();
        sqe = io_uring_get_sqe(&_ring);
        SLUICE_ASSERT(sqe != nullptr, "SQ still full after a flush");
    }
    io_uring_sqe_set_data(sqe, op);
    if (op != nullptr) ++_stats.ios_in_flight;
    return sqe;
}

void reactor::reserve_sqes(unsigned n) {
    SLUICE_ASSERT(n <= _config.sq_entries, "chain of {} SQEs", n);
    if (io_uring_sq_space_left(&_ring) < n) {
        ++_stats.sq_full;
        flush_sq();
    }
}

void reactor::cancel(completion* op) {
    // The cancel's own CQE carries no completion (user_data 0) and is dropped; the target
    // operation reports -ECANCELED (or its real result if it raced) through its own CQE.
    io_uring_sqe* sqe = sqe_for(nullptr);
    io_uring_prep_cancel(sqe, op, 0);
}

void reactor::defer(std::function<void()> task) { _local.push_back(std::move(task)); }

void reactor::flush_sq() {
    for (unsigned attempt = 0;; ++attempt) {
        int rc = io_uring_submit(&_ring);
        if (rc >= 0) return;
        SLUICE_ASSERT(attempt < 100000, "io_uring_submit keeps failing: {}", strerror(-rc));
        if (rc == -EINTR) continue;
        if (rc == -EBUSY || rc == -EAGAIN) {
            // The CQ (and the kernel's overflow list) is full: move completions to the
            // ready list -- without running them -- to make room, then retry.
            reap();
            continue;
        }
        SLUICE_ASSERT(false, "io_uring_submit: {}", strerror(-rc));
    }
}

// ---- the loop ----

void reactor::run() {
    _loop_thread.store(std::this_thread::get_id());
    arm_wakeup();
    while (!_stop_requested.load(std::memory_order_acquire)) {
        bool more = run_posted();
        run_timers();
        // Do not sleep with work in hand: deferred tasks, or completions a full SQ made
        // us reap early (flush_sq) while running tasks.
        wait(more || !_local.empty() || !_ready.empty());
        reap();
        run_ready();
    }
    shutdown();
    _loop_thread.store(std::thread::id{});
}

void reactor::wait(bool poll_only) {
    int rc;
    if (poll_only) {
        rc = io_uring_submit(&_ring);
    } else {
        __kernel_timespec ts{};
        __kernel_timespec* tsp = nullptr;
        if (!_timer_heap.empty()) {
            auto left = _timer_heap.top().deadline - std::chrono::steady_clock::now();
            auto ns = std::max<int64_t>(0, std::chrono::nanoseconds(left).count());
            ts.tv_sec = ns / 1000000000;
            ts.tv_nsec = ns % 1000000000;
            tsp = &ts;
        }
        io_uring_cqe* cqe = nullptr;
        rc = io_uring_submit_and_wait_timeout(&_ring, &cqe, 1, tsp, nullptr);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) {
        log::error("net", "io_uring_enter: {}", strerror(-rc));
    }
}

void reactor::reap() {
    io_uring_cqe* cqes[reap_batch];
    for (;;) {
        unsigned n = io_uring_peek_batch_cqe(&_ring, cqes, reap_batch);
        for (unsigned i = 0; i < n; ++i) {
            auto* op = static_cast<completion*>(io_uring_cqe_get_data(cqes[i]));
            if (op == nullptr) continue;
            if ((cqes[i]->flags & IORING_CQE_F_MORE) == 0) --_stats.ios_in_flight;
            _ready.push_back({op, cqes[i]->res, cqes[i]->flags});
        }
        io_uring_cq_advance(&_ring, n);
        if (n < reap_batch) break;
    }
    if (_ring.cq.koverflow != nullptr) _stats.cq_overflow = *_ring.cq.koverflow;
}

void reactor::run_ready() {
    while (!_ready.empty()) {
        _running.swap(_ready);
        for (const ready_entry& e : _running) {
            timed(e.op->name(), [&] { e.op->complete(e.res, e.flags); });
        }
        _running.clear();
    }
}

bool reactor::run_posted() {
    _wake_pending.store(false);
    unsigned budget = posted_budget;
    while (budget > 0) {
        task_queue::node* n = _remote.pop();
        if (n == nullptr) break;
        --budget;
        timed("posted task", n->fn);
        delete n;
    }
    // Tasks deferred by these tasks run next turn: a task re-posting itself cannot starve I/O.
    size_t local_count = _local.size();
    for (size_t i = 0; i < local_count; ++i) {
        auto fn = std::move(_local.front());
        _local.pop_front();
        timed("deferred task", fn);
    }
    return budget == 0;
}

template <typename F>
void reactor::timed(const char* name, F&& fn) {
    auto start = std::chrono::steady_clock::now();
    fn();
    auto took = std::chrono::steady_clock::now() - start;
    if (took > stall_threshold) {
        ++_stats.stalls;
        log::warn("net", "stall: {} ran for {} ms on shard {}", name,
                  std::chrono::duration_cast<std::chrono::milliseconds>(took).count(),
                  _config.shard_id);
    }
}

void reactor::shutdown() {
    _stopping = true;
    for (auto& l : _listeners) l->close();
    std::vector<std::shared_ptr<connection>> open;
    for (connection* c : _connections) open.push_back(c->shared_from_this());
    for (auto& c : open) c->close_with("reactor stopping");
    open.clear();
    if (_wakeup_armed) cancel(&_wakeup);

    auto deadline = std::chrono::steady_clock::now() + shutdown_drain_max;
    while ((_stats.ios_in_flight > 0 || !_local.empty()) &&
           std::chrono::steady_clock::now() < deadline) {
        run_posted();
        __kernel_timespec ts{0, 10 * 1000 * 1000};
        io_uring_cqe* cqe = nullptr;
        io_uring_submit_and_wait_timeout(&_ring, &cqe, 1, &ts, nullptr);
        reap();
        run_ready();
    }
    if (_stats.ios_in_flight > 0) {
        log::warn("net", "shard {}: {} operations still in flight at shutdown", _config.shard_id,
                  _stats.ios_in_flight);
    }
}

// ---- listening ----

void reactor::join(reactor_group& group) {
    SLUICE_ASSERT(owned_by_caller(), "join from a foreign thread");
    SLUICE_ASSERT(shard_id() < group.size() && &group.member(shard_id()) == this, "reactor {} is not a member",
                  shard_id());
    SLUICE_ASSERT(_connections.empty(), "join after connections were accepted");
    _group = &group;
}

void reactor::remove_connection(connection* c) {
    // Every connection of a group member was claimed for it (listener::accepted).
    if (_connections.erase(c) > 0 && _group != nullptr) _group->release(shard_id());
}

void reactor::adopt(size_t slot, int fd, std::string peer) {
    SLUICE_ASSERT(on_reactor_thread(), "adopt off the reactor thread");
    if (_stopping || slot >= _listeners.size() || _listeners[slot]->closed()) {
        ::close(fd);
        if (_group != nullptr) _group->release(shard_id());
        return;
    }
    ++_stats.connections_adopted;
    _listeners[slot]->serve(fd, std::move(peer));
}

result<int> reactor::listen(const std::string& host, uint16_t port,
                            std::function<void(std::shared_ptr<connection>)> on_accept,
                            std::shared_ptr<const tls_context> tls) {
    SLUICE_ASSERT(owned_by_caller(), "listen from a foreign thread: use post()");
    auto l = listener::open(*this, host, port, std::move(on_accept), std::move(tls));
    if (!l) return l.error();
    (*l)->_slot = _listeners.size();
    int bound = (*l)->port();
    (*l)->arm();
    _listeners.push_back(std::move(*l));
    return bound;
}

}  // namespace sluice::net
