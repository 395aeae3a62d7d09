#pragma once
// Small pieces shared by the bench programs: clocks, CPU accounting, a log-bucket
// latency histogram, one-line JSON records, medians and size parsing.
//
// Units: "GB" in every bench report is 10^9 bytes (so GB/s and CPU-s/GB compare
// directly with vendor numbers); sizes given on command lines accept binary suffixes
// (64k = 65536, 1g = 2^30).
//
// Concurrency: free functions are thread-safe. A log_histogram or json_line is owned by
// one thread; merge histograms after the threads are joined.
#include "base/result.h"

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::bench {

constexpr double bytes_per_gb = 1e9;

uint64_t now_ns();  // CLOCK_MONOTONIC

// CPU time of the calling thread, split as the kernel accounts it (getrusage(RUSAGE_THREAD)).
struct cpu_times {
    double user_s = 0;
    double sys_s = 0;
    double total() const { return user_s + sys_s; }
    cpu_times operator-(const cpu_times& o) const { return {user_s - o.user_s, sys_s - o.sys_s}; }
};
cpu_times thread_cpu();
cpu_times process_cpu();  // getrusage(RUSAGE_SELF): every thread of this process

// utime+stime of another process, all its threads including exited ones, from
// /proc/<pid>/stat (fields 14 and 15, in clock ticks: 10 ms granularity).
result<cpu_times> pid_cpu(pid_t pid);

// CPU time of another process over an interval, as precise as /proc allows: the sum of
// per-thread run time in ns (/proc/<pid>/task/*/schedstat; threads born in between count
// whole), unless a thread exited in between -- then the utime+stime of /proc/<pid>/stat,
// which keeps exited threads' time but is truncated to 10 ms clock ticks.
class pid_cpu_meter {
public:
    explicit pid_cpu_meter(pid_t pid);
    bool ok() const { return _ok; }
    // Seconds of CPU since construction; nullopt if the process is gone or unreadable.
    std::optional<double> elapsed() const;

private:
    pid_t _pid;
    bool _ok = false;
    double _ticks_s = 0;
    std::vector<std::pair<pid_t, uint64_t>> _threads_ns;
};

// Busy CPU time of the whole machine so far (all CPUs: user, nice, system, irq, softirq,
// steal from /proc/stat; 10 ms ticks). Deltas include work the kernel defers to
// ksoftirqd or kworkers, which per-thread and per-process clocks miss; meaningful only
// when nothing else runs (see load_average()).
double system_busy_s();

// 1-minute load average (/proc/loadavg): recorded with results, because on a small
// shared machine a busy neighbour skews every number.
double load_average();

// "1g", "64k", "1048576", "512m" -> bytes; nullopt on junk.
std::optional<uint64_t> parse_size(std::string_view text);
std::string format_bytes(uint64_t bytes);  // "1.00 GiB"

double median(std::vector<double> values);

// HDR-style histogram of non-negative integer values (nanoseconds here): values below
// 128 are exact, above that each power of two is split into 64 linear sub-buckets, so
// a reported quantile is within 1/64 (1.6%) of the true value. Fixed size, no allocation
// per record.
class log_histogram {
public:
    void record(uint64_t value);
    void merge(const log_histogram& other);
    uint64_t count() const { return _count; }
    uint64_t max() const { return _max; }
    uint64_t min() const { return _count ? _min : 0; }
    double mean() const { return _count ? static_cast<double>(_sum) / static_cast<double>(_count) : 0; }
    // Upper bound of the bucket holding the q-quantile (q in [0,1]); max() for q == 1.
    uint64_t quantile(double q) const;

    static constexpr unsigned sub_bits = 7;
    static constexpr size_t bucket_count = (64 - sub_bits + 1) * (1u << (sub_bits - 1)) + (1u << (sub_bits - 1));
    static size_t bucket_of(uint64_t value);
    static uint64_t bucket_upper(size_t bucket);

private:
    std::array<uint64_t, bucket_count> _buckets{};
    uint64_t _count = 0;
    uint64_t _sum = 0;
    uint64_t _max = 0;
    uint64_t _min = UINT64_MAX;
};

// Builds one JSON object on one line: {"k":v,...}. Keys are trusted identifiers;
// string values are escaped.
class json_line {
public:
    json_line& add(std::string_view key, std::string_view value);
    json_line& add(std::string_view key, const char* value) { return add(key, std::string_view(value)); }
    json_line& add(std::string_view key, double value);
    json_line& add(std::string_view key, int64_t value);
    json_line& add(std::string_view key, uint64_t value);
    json_line& add(std::string_view key, int value) { return add(key, static_cast<int64_t>(value)); }
    json_line& add(std::string_view key, bool value);
    // `json` must already be valid JSON (an array or object built by the caller).
    json_line& add_raw(std::string_view key, std::string_view json);
    std::string str() const { return "{" + _body + "}"; }

private:
    void key(std::string_view k);
    std::string _body;
};

// Writes all of buf (retrying short writes and EINTR); the error of the failing write.
std::error_code write_all(int fd, const void* buf, size_t n);
// Reads exactly n bytes; std::errc::connection_aborted on EOF before n.
std::error_code read_exact(int fd, void* buf, size_t n);

// Connects a TCP socket to host:port ("localhost" and numeric addresses) with a bounded
// connect time and SO_RCVTIMEO/SO_SNDTIMEO of io_timeout_ms, so no read or write can hang
// forever on a stalled peer.
result<int> tcp_connect(const std::string& host, uint16_t port, int connect_timeout_ms, int io_timeout_ms);

// "host:port" -> pair; nullopt when the port is missing or not a number.
std::optional<std::pair<std::string, uint16_t>> split_host_port(std::string_view text);

}  // namespace sluice::bench
