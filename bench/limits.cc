// sluice-limits: what this machine can do without a broker in the way.
//
// Each test moves bytes over a loopback TCP connection (or into a file) with one
// sending and one receiving thread, and reports throughput and the CPU time each of
// the two threads spent (getrusage(RUSAGE_THREAD), user + sys) per GB moved. These
// are the ceilings the broker's produce and fetch paths are compared against in
// fetch_bench.sh: a broker serving a page-cached partition can at best match the
// sender column of "sendfile" / "splice_*" (zero-copy), "mmap_write_1m" (one copy
// from a mapping) and "pread_write_*" (two copies through a buffer). The "tls_*" tests
// are the TLS fetch ceiling: pread into a chunk, encrypt, write -- what the broker's TLS
// path does -- with the suite the broker negotiates by default (reported as "cipher").
//
// The receiver is always a thread reading into a 1 MiB buffer; for the file-sink
// tests it then writes what it read into a file. Output: one JSON object per line on
// stdout (per run and, with --repeat, the median), then a table on stderr.
//
// Concurrency: each test owns its sockets and file descriptors; the two threads of a
// test share only the connected socket pair and a start latch.
#include "bench/bench_tls.h"
#include "bench/bench_util.h"
#include "storage/crc32c.h"

#include "base/assert.h"
#include "base/result.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <latch>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace sluice::bench {
namespace {

constexpr size_t mib = 1u << 20;
constexpr size_t kib = 1u << 10;

struct options {
    std::string dir = "/tmp";
    uint64_t file_bytes = 1ull << 30;
    uint64_t transfer_bytes = 0;  // 0: file_bytes
    int repeat = 1;
    std::set<std::string> only;
    bool json_only = false;
    bool keep_file = false;
    int sync_count_small = 256;
    int sync_count_large = 32;
    int io_timeout_ms = 20000;
};

struct transfer_result {
    uint64_t bytes = 0;
    double seconds = 0;
    cpu_times sender;
    cpu_times receiver;
    double system_s = 0;  // whole-machine busy time during the transfer
    std::error_code error;
    std::string note;     // what the endpoints negotiated (TLS: protocol and suite)
};

struct sync_result {
    uint64_t bytes = 0;
    double seconds = 0;
    cpu_times cpu;
    log_histogram latency_ns;
    std::error_code error;
};

// A page-aligned buffer, as O_DIRECT needs; freed on scope exit.
struct aligned_buffer {
    explicit aligned_buffer(size_t n) : size(n) {
        void* p = nullptr;
        SLUICE_ASSERT(posix_memalign(&p, 4096, n) == 0, "posix_memalign {}", n);
        data = static_cast<uint8_t*>(p);
        // Touch every page so the first test does not pay the page faults.
        for (size_t i = 0; i < n; ++i) data[i] = static_cast<uint8_t>(i * 131 + 7);
    }
    ~aligned_buffer() { free(data); }
    aligned_buffer(const aligned_buffer&) = delete;
    aligned_buffer& operator=(const aligned_buffer&) = delete;
    uint8_t* data = nullptr;
    size_t size = 0;
};

struct fd_guard {
    int fd = -1;
    explicit fd_guard(int f) : fd(f) {}
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
};

// A connected loopback pair: {sending end, receiving end}, with I/O timeouts so a dead
// peer ends the test with an error instead of a hang.
result<std::pair<int, int>> loopback_pair(int io_timeout_ms) {
    int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0) return errno_code(errno);
    fd_guard listen_guard(listener);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) return errno_code(errno);
    if (::listen(listener, 1) < 0) return errno_code(errno);
    if (::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) < 0) return errno_code(errno);
    auto sender = tcp_connect("127.0.0.1", ntohs(addr.sin_port), 2000, io_timeout_ms);
    if (!sender) return sender.error();
    int receiver = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (receiver < 0) {
        ::close(*sender);
        return errno_code(errno);
    }
    timeval tv{io_timeout_ms / 1000, (io_timeout_ms % 1000) * 1000};
    setsockopt(receiver, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return std::pair{*sender, receiver};
}

using endpoint_fn = std::function<std::error_code(int sock, uint64_t bytes)>;
using prepare_fn = std::function<std::error_code(int sock)>;

// One test's two ends. The prepare steps (TLS handshakes) run on the two threads at the
// same time, before the clock and the CPU meters start.
struct transfer_ends {
    endpoint_fn send, receive;
    prepare_fn send_prepare, receive_prepare;  // optional
    std::function<std::string()> note;         // optional, asked after the transfer
};

// Runs sender and receiver on two threads, timed from a common start until both end.
transfer_result run_transfer(const options& opt, uint64_t bytes, const transfer_ends& ends) {
    transfer_result r;
    auto pair = loopback_pair(opt.io_timeout_ms);
    if (!pair) {
        r.error = pair.error();
        return r;
    }
    int send_fd = pair->first, recv_fd = pair->second;  // not a structured binding: lambdas capture these
    std::latch start(3);
    std::error_code send_prepared, recv_prepared;  // written before the latch, read after it
    std::error_code send_error, recv_error;
    std::thread sender([&] {
        if (ends.send_prepare) send_prepared = ends.send_prepare(send_fd);
        start.arrive_and_wait();
        if (!send_prepared && !recv_prepared) {
            auto before = thread_cpu();
            send_error = ends.send(send_fd, bytes);
            r.sender = thread_cpu() - before;
        }
        ::shutdown(send_fd, SHUT_WR);
    });
    std::thread receiver([&] {
        if (ends.receive_prepare) recv_prepared = ends.receive_prepare(recv_fd);
        start.arrive_and_wait();
        if (send_prepared || recv_prepared) return;
        auto before = thread_cpu();
        recv_error = ends.receive(recv_fd, bytes);
        r.receiver = thread_cpu() - before;
    });
    start.arrive_and_wait();
    uint64_t t0 = now_ns();
    double busy0 = system_busy_s();
    sender.join();
    receiver.join();
    r.seconds = static_cast<double>(now_ns() - t0) * 1e-9;
    r.system_s = system_busy_s() - busy0;
    ::close(send_fd);
    ::close(recv_fd);
    r.bytes = bytes;
    for (auto ec : {send_prepared, recv_prepared, send_error, recv_error})
        if (ec && !r.error) r.error = ec;
    if (ends.note) r.note = ends.note();
    return r;
}

// ---- receivers -------------------------------------------------------------------

endpoint_fn discard_receiver() {
    return [](int sock, uint64_t bytes) -> std::error_code {
        std::vector<uint8_t> buf(mib);
        uint64_t got = 0;
        while (got < bytes) {
            ssize_t n = ::read(sock, buf.data(), buf.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return errno_code(errno);
            if (n == 0) return std::make_error_code(std::errc::connection_aborted);
            got += static_cast<uint64_t>(n);
        }
        return {};
    };
}

// cold_new: new page-cache pages, as they come (on a VM that returns free memory to the
// host, mostly pages whose first touch faults in the hypervisor); recycled_new: new pages
// right after an equal-sized file was written and deleted, so the allocator hands back
// pages this guest just used (what a broker whose retention deletes segments sees).
enum class sink_kind { cold_new, recycled_new, warm_overwrite, direct };

// Fills a 1 MiB buffer from the socket, then writes it to the file at the next offset
// (wrapping at file_bytes): the shape of a produce path that appends whole requests.
endpoint_fn file_receiver(int file_fd, uint64_t file_bytes) {
    return [file_fd, file_bytes](int sock, uint64_t bytes) -> std::error_code {
        aligned_buffer buf(mib);
        uint64_t done = 0;
        while (done < bytes) {
            size_t n = static_cast<size_t>(std::min<uint64_t>(mib, bytes - done));
            if (auto ec = read_exact(sock, buf.data, n)) return ec;
            off_t at = static_cast<off_t>(done % file_bytes);
            ssize_t w = ::pwrite(file_fd, buf.data, n, at);
            if (w < 0) return errno_code(errno);
            if (static_cast<size_t>(w) != n) return std::make_error_code(std::errc::io_error);
            done += n;
        }
        return {};
    };
}

// socket -> pipe -> file with splice(): the kernel moves the socket's pages into the pipe
// and copies them once, into the page cache (file_receiver copies twice: socket -> user
// buffer -> page cache). With `checksum`, each 1 MiB piece is then read back through a
// shared mapping of the file and CRC32C'd, the way a broker that appends before it
// validates would check it.
endpoint_fn splice_file_receiver(int file_fd, uint64_t file_bytes, bool checksum) {
    return [=](int sock, uint64_t bytes) -> std::error_code {
        int pipe_fds[2];
        if (::pipe2(pipe_fds, O_CLOEXEC) < 0) return errno_code(errno);
        fd_guard pipe_r(pipe_fds[0]), pipe_w(pipe_fds[1]);
        if (::fcntl(pipe_w.fd, F_SETPIPE_SZ, static_cast<int>(mib)) < 0) return errno_code(errno);
        if (::ftruncate(file_fd, static_cast<off_t>(file_bytes)) < 0) return errno_code(errno);
        void* map = ::mmap(nullptr, file_bytes, PROT_READ, MAP_SHARED, file_fd, 0);
        if (map == MAP_FAILED) return errno_code(errno);
        const auto* base = static_cast<const uint8_t*>(map);
        uint32_t crc = 0;
        uint64_t done = 0;
        std::error_code ec;
        while (done < bytes && !ec) {
            size_t piece = static_cast<size_t>(std::min<uint64_t>(mib, bytes - done));
            loff_t at = static_cast<loff_t>(done % file_bytes);
            loff_t start = at;
            size_t left = piece;
            while (left > 0 && !ec) {
                ssize_t in = ::splice(sock, nullptr, pipe_w.fd, nullptr, left, SPLICE_F_MOVE);
                if (in < 0 && errno == EINTR) continue;
                if (in <= 0) { ec = in < 0 ? errno_code(errno) : std::make_error_code(std::errc::connection_aborted); break; }
                size_t out_left = static_cast<size_t>(in);
                while (out_left > 0) {
                    ssize_t out = ::splice(pipe_r.fd, nullptr, file_fd, &at, out_left, SPLICE_F_MOVE);
                    if (out < 0 && errno == EINTR) continue;
                    if (out <= 0) { ec = out < 0 ? errno_code(errno) : std::make_error_code(std::errc::io_error); break; }
                    out_left -= static_cast<size_t>(out);
                }
                left -= static_cast<size_t>(in);
            }
            if (checksum && !ec) crc = storage::crc32c_extend(crc, base + start, piece);
            done += piece;
        }
        ::munmap(map, file_bytes);
        if (crc == 0x12345678) std::fputs("", stderr);  // keep the checksum live
        return ec;
    };
}

// ---- senders ---------------------------------------------------------------------

endpoint_fn hot_buffer_sender() {
    return [](int sock, uint64_t bytes) -> std::error_code {
        aligned_buffer buf(mib);
        uint64_t sent = 0;
        while (sent < bytes) {
            size_t n = static_cast<size_t>(std::min<uint64_t>(mib, bytes - sent));
            if (auto ec = write_all(sock, buf.data, n)) return ec;
            sent += n;
        }
        return {};
    };
}

// The file is sent from offset 0 and wraps when more bytes are asked than it holds.
endpoint_fn sendfile_sender(int file_fd, uint64_t file_bytes) {
    return [=](int sock, uint64_t bytes) -> std::error_code {
        uint64_t sent = 0;
        while (sent < bytes) {
            off_t off = static_cast<off_t>(sent % file_bytes);
            size_t want = static_cast<size_t>(std::min<uint64_t>(bytes - sent, file_bytes - static_cast<uint64_t>(off)));
            ssize_t n = ::sendfile(sock, file_fd, &off, want);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return errno_code(errno);
            if (n == 0) return std::make_error_code(std::errc::io_error);
            sent += static_cast<uint64_t>(n);
        }
        return {};
    };
}

// file -> pipe -> socket, as the broker's splice strategy does.
endpoint_fn splice_sender(int file_fd, uint64_t file_bytes, size_t pipe_bytes) {
    return [=](int sock, uint64_t bytes) -> std::error_code {
        int pipe_fds[2];
        if (::pipe2(pipe_fds, O_CLOEXEC) < 0) return errno_code(errno);
        fd_guard pipe_r(pipe_fds[0]), pipe_w(pipe_fds[1]);
        int got = ::fcntl(pipe_w.fd, F_SETPIPE_SZ, static_cast<int>(pipe_bytes));
        if (got < 0) return errno_code(errno);
        uint64_t sent = 0;
        while (sent < bytes) {
            loff_t off = static_cast<loff_t>(sent % file_bytes);
            size_t want = static_cast<size_t>(std::min<uint64_t>({bytes - sent, file_bytes - static_cast<uint64_t>(off),
                                                                   static_cast<uint64_t>(got)}));
            ssize_t in = ::splice(file_fd, &off, pipe_w.fd, nullptr, want, SPLICE_F_MOVE);
            if (in < 0 && errno == EINTR) continue;
            if (in <= 0) return in < 0 ? errno_code(errno) : std::make_error_code(std::errc::io_error);
            size_t left = static_cast<size_t>(in);
            while (left > 0) {
                ssize_t out = ::splice(pipe_r.fd, nullptr, sock, nullptr, left, SPLICE_F_MOVE | SPLICE_F_MORE);
                if (out < 0 && errno == EINTR) continue;
                if (out <= 0) return out < 0 ? errno_code(errno) : std::make_error_code(std::errc::io_error);
                left -= static_cast<size_t>(out);
            }
            sent += static_cast<uint64_t>(in);
        }
        return {};
    };
}

// pread() `chunk` bytes at a time from the file (wrapping at file_bytes) and hand each
// piece to `write` (a plain socket write, or SSL_write for the TLS limits).
std::error_code pread_loop(int file_fd, uint64_t file_bytes, size_t chunk, uint64_t bytes,
                           const std::function<std::error_code(const uint8_t*, size_t)>& write) {
    aligned_buffer buf(chunk);
    uint64_t sent = 0;
    while (sent < bytes) {
        uint64_t off = sent % file_bytes;
        size_t want = static_cast<size_t>(std::min<uint64_t>({bytes - sent, file_bytes - off, chunk}));
        ssize_t n = ::pread(file_fd, buf.data, want, static_cast<off_t>(off));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n < 0 ? errno_code(errno) : std::make_error_code(std::errc::io_error);
        if (auto ec = write(buf.data, static_cast<size_t>(n))) return ec;
        sent += static_cast<uint64_t>(n);
    }
    return {};
}

endpoint_fn pread_write_sender(int file_fd, uint64_t file_bytes, size_t chunk) {
    return [=](int sock, uint64_t bytes) -> std::error_code {
        return pread_loop(file_fd, file_bytes, chunk, bytes,
                          [sock](const uint8_t* p, size_t n) { return write_all(sock, p, n); });
    };
}

endpoint_fn mmap_write_sender(const uint8_t* map, uint64_t file_bytes, size_t chunk) {
    return [=](int sock, uint64_t bytes) -> std::error_code {
        uint64_t sent = 0;
        while (sent < bytes) {
            uint64_t off = sent % file_bytes;
            size_t want = static_cast<size_t>(std::min<uint64_t>({bytes - sent, file_bytes - off, chunk}));
            if (auto ec = write_all(sock, map + off, want)) return ec;
            sent += want;
        }
        return {};
    };
}

// ---- TLS -------------------------------------------------------------------------

// The two sessions of one TLS transfer: the sender is the TLS server (as the broker is),
// the receiver the client. Each is made by its own thread's prepare step.
struct tls_link {
    std::unique_ptr<tls_stream> sender, receiver;
};

// pread() a chunk into a buffer, encrypt it, write the ciphertext with one write(): the
// broker's TLS fetch path (an io_uring READ into a 256 KiB chunk, OpenSSL encrypting it
// into memory, one SEND). The receiver decrypts into a 1 MiB buffer and drops it, as
// sluice-loadgen --tls does.
std::error_code tls_file_ends(int file_fd, uint64_t file_bytes, size_t chunk, transfer_ends& ends) {
    std::string why;
    auto server = tls_context::self_signed_server(why);
    if (!server) {
        fmt::print(stderr, "sluice-limits: {}\n", why);
        return server.error();
    }
    auto client = tls_context::client("", why);
    if (!client) {
        fmt::print(stderr, "sluice-limits: {}\n", why);
        return client.error();
    }
    auto link = std::make_shared<tls_link>();
    // Room for a whole chunk's records (22 bytes of header and tag per 16 KiB).
    size_t write_buffer = chunk + 16 * kib;
    auto handshake = [](std::shared_ptr<const tls_context> ctx, int sock, size_t buffer,
                        std::unique_ptr<tls_stream>& into) -> std::error_code {
        std::string reason;
        auto s = tls_stream::handshake(std::move(ctx), sock, "", buffer, reason);
        if (!s) {
            fmt::print(stderr, "sluice-limits: {}\n", reason);
            return s.error();
        }
        into = std::move(*s);
        return {};
    };
    ends.send_prepare = [=, ctx = *server](int sock) { return handshake(ctx, sock, write_buffer, link->sender); };
    ends.receive_prepare = [=, ctx = *client](int sock) {
        return handshake(ctx, sock, tls_stream::default_write_buffer_bytes, link->receiver);
    };
    ends.send = [link, chunk, file_fd, file_bytes](int, uint64_t bytes) -> std::error_code {
        return pread_loop(file_fd, file_bytes, chunk, bytes,
                          [&link](const uint8_t* p, size_t n) { return link->sender->write_all(p, n); });
    };
    ends.receive = [link](int, uint64_t bytes) -> std::error_code {
        std::vector<uint8_t> buf(mib);
        uint64_t got = 0;
        while (got < bytes) {
            size_t n = 0;
            if (auto ec = link->receiver->read_some(buf.data(), buf.size(), n)) return ec;
            got += n;
        }
        return {};
    };
    ends.note = [link] { return link->sender ? link->sender->describe() : std::string(); };
    return {};
}

// ---- the source file -------------------------------------------------------------

// Creates (or reuses, if it has the right size) the source file with incompressible
// bytes, then reads it once so every page is in the page cache. Returns the fraction
// of pages resident afterwards (mincore), which the report carries.
result<double> prepare_source(const std::string& path, uint64_t bytes) {
    struct stat st{};
    bool reuse = ::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == bytes;
    if (!reuse) {
        int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) return errno_code(errno);
        fd_guard guard(fd);
        std::vector<uint64_t> buf(mib / 8);
        uint64_t x = 0x9e3779b97f4a7c15ull;
        for (uint64_t done = 0; done < bytes;) {
            for (auto& w : buf) {  // xorshift64: cheap and incompressible
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                w = x;
            }
            size_t n = static_cast<size_t>(std::min<uint64_t>(mib, bytes - done));
            if (auto ec = write_all(fd, buf.data(), n)) return ec;
            done += n;
        }
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno_code(errno);
    fd_guard guard(fd);
    std::vector<uint8_t> buf(mib);
    for (uint64_t off = 0; off < bytes; off += mib) {
        if (::pread(fd, buf.data(), mib, static_cast<off_t>(off)) < 0) return errno_code(errno);
    }
    void* map = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return errno_code(errno);
    size_t pages = (bytes + 4095) / 4096;
    std::vector<unsigned char> resident(pages);
    int rc = ::mincore(map, bytes, resident.data());
    ::munmap(map, bytes);
    if (rc < 0) return errno_code(errno);
    size_t in_core = static_cast<size_t>(std::count_if(resident.begin(), resident.end(), [](unsigned char c) { return c & 1; }));
    return static_cast<double>(in_core) / static_cast<double>(pages);
}

// ---- fdatasync -------------------------------------------------------------------

// Appends `chunk` bytes and fdatasyncs, `count` times: the cost of a durable append.
sync_result run_sync(const std::string& path, size_t chunk, int count) {
    sync_result r;
    int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
        r.error = errno_code(errno);
        return r;
    }
    fd_guard guard(fd);
    aligned_buffer buf(chunk);
    auto before = thread_cpu();
    uint64_t t0 = now_ns();
    for (int i = 0; i < count; ++i) {
        uint64_t start = now_ns();
        if ((r.error = write_all(fd, buf.data, chunk))) break;
        if (::fdatasync(fd) < 0) {
            r.error = errno_code(errno);
            break;
        }
        r.latency_ns.record(now_ns() - start);
        r.bytes += chunk;
    }
    r.seconds = static_cast<double>(now_ns() - t0) * 1e-9;
    r.cpu = thread_cpu() - before;
    ::unlink(path.c_str());
    return r;
}

// ---- reporting -------------------------------------------------------------------

double per_gb(double cpu_s, uint64_t bytes) { return bytes ? cpu_s / (static_cast<double>(bytes) / bytes_per_gb) : 0; }

json_line transfer_json(const std::string& test, const std::string& stat, int run, const transfer_result& r) {
    json_line j;
    j.add("bench", "limits").add("test", test).add("stat", stat).add("run", run).add("bytes", r.bytes);
    j.add("seconds", r.seconds).add("gb_s", static_cast<double>(r.bytes) / bytes_per_gb / r.seconds);
    j.add("sender_cpu_s", r.sender.total()).add("sender_sys_s", r.sender.sys_s);
    j.add("receiver_cpu_s", r.receiver.total()).add("receiver_sys_s", r.receiver.sys_s);
    j.add("sender_cpu_s_per_gb", per_gb(r.sender.total(), r.bytes));
    j.add("receiver_cpu_s_per_gb", per_gb(r.receiver.total(), r.bytes));
    j.add("cpu_s_per_gb", per_gb(r.sender.total() + r.receiver.total(), r.bytes));
    j.add("system_cpu_s_per_gb", per_gb(r.system_s, r.bytes));
    if (!r.note.empty()) j.add("cipher", r.note);
    return j;
}

// Median of each measured field over the runs (each field on its own: the report is
// of typical costs, not of one particular run).
transfer_result median_of(const std::vector<transfer_result>& runs) {
    std::vector<double> secs, su, ss, ru, rs, sys;
    for (auto& r : runs) {
        secs.push_back(r.seconds);
        sys.push_back(r.system_s);
        su.push_back(r.sender.user_s);
        ss.push_back(r.sender.sys_s);
        ru.push_back(r.receiver.user_s);
        rs.push_back(r.receiver.sys_s);
    }
    transfer_result m;
    m.bytes = runs.front().bytes;
    m.seconds = median(secs);
    m.sender = {median(su), median(ss)};
    m.receiver = {median(ru), median(rs)};
    m.system_s = median(sys);
    m.note = runs.front().note;
    return m;
}

// ---- the test list ---------------------------------------------------------------

struct context {
    const options& opt;
    int file_fd;
    const uint8_t* map;
    std::string sink_path;
};

struct transfer_test {
    std::string name;
    std::string what;
    // Builds the sender/receiver pair; may prepare files. Returns an error to skip.
    std::function<std::error_code(context&, transfer_ends& ends, int& sink_fd)> setup;
};

std::error_code open_sink(const context& c, sink_kind kind, uint64_t bytes, int& sink_fd) {
    ::unlink(c.sink_path.c_str());
    if (kind == sink_kind::recycled_new) {
        std::string scratch = c.sink_path + ".recycle";
        int fd = ::open(scratch.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) return errno_code(errno);
        aligned_buffer buf(mib);
        std::error_code ec;
        for (uint64_t off = 0; off < bytes && !ec; off += mib)
            ec = write_all(fd, buf.data, static_cast<size_t>(std::min<uint64_t>(mib, bytes - off)));
        ::close(fd);
        ::unlink(scratch.c_str());  // its page-cache pages go back to the allocator now
        if (ec) return ec;
    }
    int flags = O_CREAT | O_TRUNC | O_CLOEXEC | (kind == sink_kind::direct ? O_DIRECT | O_WRONLY : O_RDWR);
    sink_fd = ::open(c.sink_path.c_str(), flags, 0644);
    if (sink_fd < 0) return errno_code(errno);
    if (kind != sink_kind::warm_overwrite) return {};
    // Warm: every page already allocated, written back and resident; the test then dirties them again.
    aligned_buffer buf(mib);
    for (uint64_t off = 0; off < bytes; off += mib) {
        if (auto ec = write_all(sink_fd, buf.data, static_cast<size_t>(std::min<uint64_t>(mib, bytes - off)))) return ec;
    }
    if (::fdatasync(sink_fd) < 0) return errno_code(errno);
    return {};
}

std::vector<transfer_test> transfer_tests() {
    auto file_sender = [](auto make) {
        return [make](context& c, transfer_ends& ends, int&) -> std::error_code {
            ends.send = make(c);
            ends.receive = discard_receiver();
            return {};
        };
    };
    auto tls_sender = [](size_t chunk) {
        return [chunk](context& c, transfer_ends& ends, int&) {
            return tls_file_ends(c.file_fd, c.opt.file_bytes, chunk, ends);
        };
    };
    auto sink = [](sink_kind kind) {
        return [kind](context& c, transfer_ends& ends, int& sink_fd) -> std::error_code {
            uint64_t bytes = c.opt.file_bytes;
            if (auto ec = open_sink(c, kind, bytes, sink_fd)) return ec;
            ends.send = hot_buffer_sender();
            ends.receive = file_receiver(sink_fd, bytes);
            return {};
        };
    };
    auto splice_sink = [](bool checksum) {
        return [checksum](context& c, transfer_ends& ends, int& sink_fd) -> std::error_code {
            uint64_t bytes = c.opt.file_bytes;
            if (auto ec = open_sink(c, sink_kind::recycled_new, bytes, sink_fd)) return ec;
            ends.send = hot_buffer_sender();
            ends.receive = splice_file_receiver(sink_fd, bytes, checksum);
            return {};
        };
    };
    return {
        {"tcp_hot_buffer", "loopback TCP, write() from a hot 1 MiB user buffer",
         [](context&, transfer_ends& ends, int&) -> std::error_code {
             ends.send = hot_buffer_sender();
             ends.receive = discard_receiver();
             return {};
         }},
        {"sendfile", "page-cached file -> socket, sendfile()",
         file_sender([](context& c) { return sendfile_sender(c.file_fd, c.opt.file_bytes); })},
        {"splice_pipe1m", "file -> pipe (1 MiB) -> socket, splice()",
         file_sender([](context& c) { return splice_sender(c.file_fd, c.opt.file_bytes, mib); })},
        {"splice_pipe64k", "file -> pipe (64 KiB) -> socket, splice()",
         file_sender([](context& c) { return splice_sender(c.file_fd, c.opt.file_bytes, 64 * kib); })},
        {"pread_write_1m", "pread() 1 MiB into a buffer, write() to socket",
         file_sender([](context& c) { return pread_write_sender(c.file_fd, c.opt.file_bytes, mib); })},
        {"pread_write_64k", "pread() 64 KiB into a buffer, write() to socket",
         file_sender([](context& c) { return pread_write_sender(c.file_fd, c.opt.file_bytes, 64 * kib); })},
        {"mmap_write_1m", "write() to socket from a resident mmap, 1 MiB chunks",
         file_sender([](context& c) { return mmap_write_sender(c.map, c.opt.file_bytes, mib); })},
        {"tls_pread_write_256k", "TLS: pread() 256 KiB (the broker's TLS chunk), SSL_write(), one write() per chunk",
         tls_sender(256 * kib)},
        {"tls_pread_write_1m", "TLS: pread() 1 MiB into a buffer, SSL_write(), one write() per chunk",
         tls_sender(mib)},
        {"sock_to_file_cold", "socket -> new file pages (page cache, not synced)", sink(sink_kind::cold_new)},
        {"sock_to_file_recycled", "socket -> new file pages just freed by deleting an equal-sized file",
         sink(sink_kind::recycled_new)},
        {"sock_to_file_warm", "socket -> overwrite resident file pages", sink(sink_kind::warm_overwrite)},
        {"sock_to_file_splice", "socket -> pipe -> new file pages (recycled), splice(): one copy",
         splice_sink(false)},
        {"sock_to_file_splice_crc", "as sock_to_file_splice, then CRC32C of each 1 MiB read back through a mapping",
         splice_sink(true)},
        {"sock_to_file_odirect", "socket -> file with O_DIRECT, 1 MiB aligned writes", sink(sink_kind::direct)},
    };
}

bool selected(const options& opt, const std::string& name) { return opt.only.empty() || opt.only.count(name); }

int run_transfers(const options& opt, context& c, std::vector<std::string>& table) {
    int failures = 0;
    uint64_t bytes = opt.transfer_bytes ? opt.transfer_bytes : opt.file_bytes;
    for (auto& t : transfer_tests()) {
        if (!selected(opt, t.name)) continue;
        std::vector<transfer_result> runs;
        for (int run = 1; run <= opt.repeat; ++run) {
            transfer_ends ends;
            int sink_fd = -1;
            auto ec = t.setup(c, ends, sink_fd);
            // A sink file is sized like the source file; transfers wrap inside it.
            transfer_result r = ec ? transfer_result{} : run_transfer(opt, bytes, ends);
            if (ec) r.error = ec;
            if (sink_fd >= 0) ::close(sink_fd);
            ::unlink(c.sink_path.c_str());
            if (r.error) {
                fmt::print("{}\n", json_line().add("bench", "limits").add("test", t.name).add("run", run)
                                       .add("error", r.error.message()).str());
                ++failures;
                break;
            }
            fmt::print("{}\n", transfer_json(t.name, "run", run, r).str());
            std::fflush(stdout);
            runs.push_back(r);
        }
        if (runs.size() != static_cast<size_t>(opt.repeat)) continue;
        auto m = median_of(runs);
        if (opt.repeat > 1) fmt::print("{}\n", transfer_json(t.name, "median", 0, m).str());
        table.push_back(fmt::format("{:<22} {:>8.2f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f}   {}", t.name,
                                    static_cast<double>(m.bytes) / bytes_per_gb / m.seconds,
                                    per_gb(m.sender.total(), m.bytes), per_gb(m.receiver.total(), m.bytes),
                                    per_gb(m.sender.total() + m.receiver.total(), m.bytes),
                                    per_gb(m.system_s, m.bytes), t.what));
        if (!m.note.empty()) table.push_back(fmt::format("{:<22} {}", "", m.note));
    }
    return failures;
}

int run_syncs(const options& opt, const context& c, std::vector<std::string>& table) {
    int failures = 0;
    struct sync_test {
        std::string name;
        size_t chunk;
        int count;
    };
    for (auto& t : {sync_test{"fdatasync_16k", 16 * kib, opt.sync_count_small},
                    sync_test{"fdatasync_1m", mib, opt.sync_count_large}}) {
        if (!selected(opt, t.name)) continue;
        auto r = run_sync(c.sink_path, t.chunk, t.count);
        json_line j;
        j.add("bench", "limits").add("test", t.name).add("stat", "run").add("run", 1);
        if (r.error) {
            fmt::print("{}\n", j.add("error", r.error.message()).str());
            ++failures;
            continue;
        }
        double p50_us = static_cast<double>(r.latency_ns.quantile(0.5)) / 1e3;
        double p99_us = static_cast<double>(r.latency_ns.quantile(0.99)) / 1e3;
        double mean_us = r.latency_ns.mean() / 1e3;
        j.add("chunk_bytes", static_cast<uint64_t>(t.chunk)).add("syncs", r.latency_ns.count()).add("bytes", r.bytes);
        j.add("seconds", r.seconds).add("mean_us", mean_us).add("p50_us", p50_us).add("p99_us", p99_us);
        j.add("max_us", static_cast<double>(r.latency_ns.max()) / 1e3);
        j.add("gb_s", static_cast<double>(r.bytes) / bytes_per_gb / r.seconds);
        j.add("cpu_s_per_sync", r.cpu.total() / static_cast<double>(r.latency_ns.count()));
        j.add("cpu_s_per_gb", per_gb(r.cpu.total(), r.bytes));
        fmt::print("{}\n", j.str());
        table.push_back(fmt::format("{:<22} {:>6} syncs  mean {:>8.1f} us  p50 {:>8.1f} us  p99 {:>8.1f} us  {:>7.1f} MB/s  "
                                    "{:.1f} us CPU/sync",
                                    t.name, r.latency_ns.count(), mean_us, p50_us, p99_us,
                                    static_cast<double>(r.bytes) / 1e6 / r.seconds,
                                    r.cpu.total() * 1e6 / static_cast<double>(r.latency_ns.count())));
    }
    return failures;
}

void usage() {
    fmt::print(stderr,
               "usage: sluice-limits [--dir DIR] [--file-size SIZE] [--bytes SIZE] [--repeat N]\n"
               "                     [--only test,test,...] [--json-only] [--keep-file]\n"
               "                     [--syncs-16k N] [--syncs-1m N] [--list]\n"
               "  SIZE accepts k/m/g suffixes (binary). Defaults: /tmp, 1g file, bytes = file size.\n"
               "  JSON lines on stdout (GB = 1e9 bytes), a table on stderr.\n");
}

bool parse_args(int argc, char** argv, options& opt) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&](std::string& out) {
            if (i + 1 >= argc) return false;
            out = argv[++i];
            return true;
        };
        std::string v;
        if (a == "--list") {
            for (auto& t : transfer_tests()) fmt::print("{:<22} {}\n", t.name, t.what);
            fmt::print("{:<22} {}\n{:<22} {}\n", "fdatasync_16k", "append 16 KiB + fdatasync", "fdatasync_1m",
                       "append 1 MiB + fdatasync");
            std::exit(0);
        } else if (a == "--json-only") {
            opt.json_only = true;
        } else if (a == "--keep-file") {
            opt.keep_file = true;
        } else if (a == "--dir" && next(v)) {
            opt.dir = v;
        } else if ((a == "--file-size" || a == "--bytes") && next(v)) {
            auto s = parse_size(v);
            if (!s || *s == 0) return false;
            (a == "--bytes" ? opt.transfer_bytes : opt.file_bytes) = *s;
        } else if (a == "--repeat" && next(v)) {
            opt.repeat = std::max(1, std::atoi(v.c_str()));
        } else if ((a == "--syncs-16k" || a == "--syncs-1m") && next(v)) {
            (a == "--syncs-16k" ? opt.sync_count_small : opt.sync_count_large) = std::max(1, std::atoi(v.c_str()));
        } else if (a == "--only" && next(v)) {
            for (size_t p = 0; p <= v.size();) {
                size_t comma = v.find(',', p);
                if (comma == std::string::npos) comma = v.size();
                if (comma > p) opt.only.insert(v.substr(p, comma - p));
                p = comma + 1;
            }
        } else {
            return false;
        }
    }
    return opt.file_bytes >= mib && opt.file_bytes % mib == 0 && opt.transfer_bytes % mib == 0;
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
    using namespace sluice::bench;
    options opt;
    if (!parse_args(argc, argv, opt)) {
        usage();
        return 2;
    }
    std::string source = opt.dir + "/sluice-limits-source.dat";
    auto resident = prepare_source(source, opt.file_bytes);
    if (!resident) {
        fmt::print(stderr, "sluice-limits: cannot prepare {}: {}\n", source, resident.error().message());
        return 1;
    }
    fmt::print("{}\n", json_line().add("bench", "limits").add("test", "setup").add("file", source)
                           .add("file_bytes", opt.file_bytes).add("page_cache_resident", *resident)
                           .add("cpus", static_cast<int64_t>(std::thread::hardware_concurrency()))
                           .add("load_average", load_average()).str());
    int fd = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
    void* map = fd < 0 ? MAP_FAILED : ::mmap(nullptr, opt.file_bytes, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (map == MAP_FAILED) {
        fmt::print(stderr, "sluice-limits: cannot map {}: {}\n", source, std::strerror(errno));
        return 1;
    }
    context c{opt, fd, static_cast<const uint8_t*>(map), opt.dir + "/sluice-limits-sink.dat"};
    std::vector<std::string> transfers, syncs;
    int failures = run_transfers(opt, c, transfers);
    failures += run_syncs(opt, c, syncs);
    ::munmap(map, opt.file_bytes);
    ::close(fd);
    if (!opt.keep_file) ::unlink(source.c_str());
    if (!opt.json_only) {
        fmt::print(stderr, "\n{:<22} {:>8} {:>10} {:>10} {:>10} {:>10}   (CPU-s per GB; GB = 1e9 B; {} moved per run, {} run(s){})\n",
                   "test", "GB/s", "send", "recv", "threads", "machine", format_bytes(opt.transfer_bytes ? opt.transfer_bytes : opt.file_bytes),
                   opt.repeat, opt.repeat > 1 ? ", medians" : "");
        for (auto& line : transfers) fmt::print(stderr, "{}\n", line);
        for (auto& line : syncs) fmt::print(stderr, "{}\n", line);
    }
    return failures ? 1 : 0;
}
