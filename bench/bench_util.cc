#include "bench/bench_util.h"

#include "base/assert.h"

#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sluice::bench {

uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

namespace {
double seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6; }

cpu_times usage(int who) {
    rusage ru{};
    getrusage(who, &ru);
    return {seconds(ru.ru_utime), seconds(ru.ru_stime)};
}
}  // namespace

cpu_times thread_cpu() { return usage(RUSAGE_THREAD); }
cpu_times process_cpu() { return usage(RUSAGE_SELF); }

result<cpu_times> pid_cpu(pid_t pid) {
    std::ifstream in(fmt::format("/proc/{}/stat", pid));
    std::string line;
    if (!in || !std::getline(in, line)) return std::errc::no_such_process;
    // The command name (field 2) is in parentheses and may hold spaces: parse after the last ')'.
    auto close = line.rfind(')');
    if (close == std::string::npos) return std::errc::bad_message;
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    // rest starts at field 3 (state); utime is field 14, stime 15.
    unsigned long long utime = 0, stime = 0;
    for (int index = 3; index <= 15 && rest >> field; ++index) {
        if (index == 14) utime = std::stoull(field);
        if (index == 15) stime = std::stoull(field);
    }
    double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    return cpu_times{static_cast<double>(utime) / tick, static_cast<double>(stime) / tick};
}

namespace {
// tid -> on-CPU ns, sorted by tid; empty on failure.
std::vector<std::pair<pid_t, uint64_t>> thread_run_ns(pid_t pid) {
    std::vector<std::pair<pid_t, uint64_t>> out;
    std::error_code ec;
    for (auto& entry : std::filesystem::directory_iterator(fmt::format("/proc/{}/task", pid), ec)) {
        std::ifstream in(entry.path() / "schedstat");
        uint64_t ns = 0;
        if (!(in >> ns)) continue;  // the thread exited between listing and reading
        out.emplace_back(static_cast<pid_t>(std::atoi(entry.path().filename().c_str())), ns);
    }
    std::sort(out.begin(), out.end());
    return out;
}
}  // namespace

pid_cpu_meter::pid_cpu_meter(pid_t pid) : _pid(pid) {
    auto ticks = pid_cpu(pid);
    if (!ticks) return;
    _ticks_s = ticks->total();
    _threads_ns = thread_run_ns(pid);
    _ok = true;
}

std::optional<double> pid_cpu_meter::elapsed() const {
    if (!_ok) return std::nullopt;
    auto ticks = pid_cpu(_pid);
    if (!ticks) return std::nullopt;
    double coarse = ticks->total() - _ticks_s;  // within +-10 ms, counts exited threads
    auto now = thread_run_ns(_pid);
    uint64_t before_ns = 0, after_ns = 0;
    for (auto& [tid, ns] : _threads_ns) {
        auto it = std::lower_bound(now.begin(), now.end(), std::pair<pid_t, uint64_t>{tid, 0});
        if (it == now.end() || it->first != tid) return coarse;  // a thread exited: its time is gone
        before_ns += ns;
    }
    for (auto& [tid, ns] : now) after_ns += ns;
    double fine = static_cast<double>(after_ns - before_ns) * 1e-9;
    // A thread born and gone in between is missing from `fine`; the tick count still has it.
    return coarse > fine + 0.02 || _threads_ns.empty() ? coarse : fine;
}

double system_busy_s() {
    std::ifstream in("/proc/stat");
    std::string cpu;
    unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    if (!(in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) || cpu != "cpu")
        return std::nan("");
    double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    return static_cast<double>(user + nice + system + irq + softirq + steal) / tick;
}

double load_average() {
    std::ifstream in("/proc/loadavg");
    double one = std::nan("");
    in >> one;
    return one;
}

std::optional<uint64_t> parse_size(std::string_view text) {
    if (text.empty()) return std::nullopt;
    uint64_t value = 0;
    size_t i = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) value = value * 10 + static_cast<uint64_t>(text[i] - '0');
    if (i == 0) return std::nullopt;
    std::string_view suffix = text.substr(i);
    if (suffix.empty() || suffix == "b") return value;
    if (suffix == "k" || suffix == "K" || suffix == "KiB") return value << 10;
    if (suffix == "m" || suffix == "M" || suffix == "MiB") return value << 20;
    if (suffix == "g" || suffix == "G" || suffix == "GiB") return value << 30;
    return std::nullopt;
}

std::string format_bytes(uint64_t bytes) {
    double b = static_cast<double>(bytes);
    if (bytes >= (1ull << 30)) return fmt::format("{:.2f} GiB", b / (1ull << 30));
    if (bytes >= (1ull << 20)) return fmt::format("{:.2f} MiB", b / (1ull << 20));
    if (bytes >= (1ull << 10)) return fmt::format("{:.2f} KiB", b / (1ull << 10));
    return fmt::format("{} B", bytes);
}

double median(std::vector<double> values) {
    if (values.empty()) return std::nan("");
    std::sort(values.begin(), values.end());
    size_t mid = values.size() / 2;
    return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

size_t log_histogram::bucket_of(uint64_t value) {
    if (value < (1u << sub_bits)) return static_cast<size_t>(value);
    unsigned msb = 63 - static_cast<unsigned>(__builtin_clzll(value));
    unsigned shift = msb - (sub_bits - 1);
    uint64_t top = value >> shift;  // in [64, 128)
    return static_cast<size_t>(shift) * (1u << (sub_bits - 1)) + static_cast<size_t>(top);
}

uint64_t log_histogram::bucket_upper(size_t bucket) {
    SLUICE_ASSERT(bucket < bucket_count, "bucket {} of {}", bucket, bucket_count);
    constexpr size_t half = 1u << (sub_bits - 1);
    if (bucket < 2 * half) return bucket;
    size_t shift = bucket / half - 1;
    uint64_t top = bucket % half + half;
    uint64_t upper = ((top + 1) << shift) - 1;
    return upper < (top << shift) ? UINT64_MAX : upper;  // the last bucket wraps
}

void log_histogram::record(uint64_t value) {
    ++_buckets[bucket_of(value)];
    ++_count;
    _sum += value;
    _max = std::max(_max, value);
    _min = std::min(_min, value);
}

void log_histogram::merge(const log_histogram& other) {
    for (size_t i = 0; i < bucket_count; ++i) _buckets[i] += other._buckets[i];
    _count += other._count;
    _sum += other._sum;
    _max = std::max(_max, other._max);
    _min = std::min(_min, other._min);
}

uint64_t log_histogram::quantile(double q) const {
    if (_count == 0) return 0;
    if (q >= 1.0) return _max;
    // Rank of the q-quantile, 1-based: the smallest value with at least ceil(q*count) at or below it.
    auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(_count)));
    rank = std::max<uint64_t>(rank, 1);
    uint64_t seen = 0;
    for (size_t i = 0; i < bucket_count; ++i) {
        seen += _buckets[i];
        if (seen >= rank) return std::min(bucket_upper(i), _max);
    }
    return _max;
}

void json_line::key(std::string_view k) {
    if (!_body.empty()) _body += ',';
    _body += '"';
    _body += k;
    _body += "\":";
}

json_line& json_line::add(std::string_view k, std::string_view value) {
    key(k);
    _body += '"';
    for (char c : value) {
        if (c == '"' || c == '\\') {
            _body += '\\';
            _body += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            _body += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
            _body += c;
        }
    }
    _body += '"';
    return *this;
}

json_line& json_line::add(std::string_view k, double value) {
    key(k);
    // JSON has no NaN/Infinity: a measurement that could not be made is null.
    _body += std::isfinite(value) ? fmt::format("{:.6g}", value) : "null";
    return *this;
}

json_line& json_line::add(std::string_view k, int64_t value) {
    key(k);
    _body += fmt::format("{}", value);
    return *this;
}

json_line& json_line::add(std::string_view k, uint64_t value) {
    key(k);
    _body += fmt::format("{}", value);
    return *this;
}

json_line& json_line::add_raw(std::string_view k, std::string_view json) {
    key(k);
    _body += json;
    return *this;
}

json_line& json_line::add(std::string_view k, bool value) {
    key(k);
    _body += value ? "true" : "false";
    return *this;
}

std::error_code write_all(int fd, const void* buf, size_t n) {
    auto* p = static_cast<const char*>(buf);
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno_code(errno);
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
    return {};
}

std::error_code read_exact(int fd, void* buf, size_t n) {
    auto* p = static_cast<char*>(buf);
    while (n > 0) {
        ssize_t r = ::read(fd, p, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            return errno_code(errno);
        }
        if (r == 0) return std::make_error_code(std::errc::connection_aborted);
        p += r;
        n -= static_cast<size_t>(r);
    }
    return {};
}

namespace {
std::error_code connect_bounded(int fd, const sockaddr* addr, socklen_t len, int timeout_ms) {
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    if (::connect(fd, addr, len) < 0 && errno != EINPROGRESS) return errno_code(errno);
    pollfd pfd{fd, POLLOUT, 0};
    int ready = ::poll(&pfd, 1, timeout_ms);
    if (ready == 0) return std::make_error_code(std::errc::timed_out);
    if (ready < 0) return errno_code(errno);
    int err = 0;
    socklen_t err_len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
    if (err != 0) return errno_code(err);
    fcntl(fd, F_SETFL, flags);
    return {};
}
}  // namespace

result<int> tcp_connect(const std::string& host, uint16_t port, int connect_timeout_ms, int io_timeout_ms) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || !found)
        return std::errc::host_unreachable;
    std::error_code last = std::make_error_code(std::errc::host_unreachable);
    for (addrinfo* a = found; a; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last = errno_code(errno);
            continue;
        }
        last = connect_bounded(fd, a->ai_addr, a->ai_addrlen, connect_timeout_ms);
        if (!last) {
            freeaddrinfo(found);
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            timeval tv{io_timeout_ms / 1000, (io_timeout_ms % 1000) * 1000};
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
            return fd;
        }
        ::close(fd);
    }
    freeaddrinfo(found);
    return last;
}

std::optional<std::pair<std::string, uint16_t>> split_host_port(std::string_view text) {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon + 1 >= text.size()) return std::nullopt;
    uint64_t port = 0;
    for (char c : text.substr(colon + 1)) {
        if (c < '0' || c > '9') return std::nullopt;
        port = port * 10 + static_cast<uint64_t>(c - '0');
        if (port > 65535) return std::nullopt;
    }
    std::string host(text.substr(0, colon));
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return std::pair{host.empty() ? std::string("127.0.0.1") : host, static_cast<uint16_t>(port)};
}

}  // namespace sluice::bench
