// Tests for the bench helpers: size parsing, the log-bucket histogram's error bound,
// JSON lines and medians.
#include "bench/bench_util.h"

#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <unistd.h>
#include <thread>
#include <vector>
#include <algorithm>

using namespace sluice::bench;

TEST_CASE("parse_size understands binary suffixes and rejects junk") {
    CHECK(parse_size("1g") == (1ull << 30));
    CHECK(parse_size("64k") == 65536u);
    CHECK(parse_size("512m") == (512ull << 20));
    CHECK(parse_size("123") == 123u);
    CHECK_FALSE(parse_size("").has_value());
    CHECK_FALSE(parse_size("g").has_value());
    CHECK_FALSE(parse_size("12x").has_value());
}

TEST_CASE("histogram buckets are contiguous and quantiles stay within 1/64") {
    for (uint64_t v : {0ull, 1ull, 127ull, 128ull, 129ull, 1000ull, 123456789ull, (1ull << 62) + 5, ~0ull}) {
        size_t b = log_histogram::bucket_of(v);
        REQUIRE(b < log_histogram::bucket_count);
        CHECK(log_histogram::bucket_upper(b) >= v);
        if (b > 0) CHECK(log_histogram::bucket_upper(b - 1) < v);
    }
    std::mt19937_64 rng(1);
    std::vector<uint64_t> values;
    log_histogram h;
    for (int i = 0; i < 100000; ++i) {
        uint64_t v = static_cast<uint64_t>(std::exp(std::uniform_real_distribution<double>(0, 25)(rng)));
        values.push_back(v);
        h.record(v);
    }
    std::sort(values.begin(), values.end());
    for (double q : {0.5, 0.9, 0.99, 0.999}) {
        uint64_t exact = values[static_cast<size_t>(std::ceil(q * values.size())) - 1];
        uint64_t got = h.quantile(q);
        CHECK(got >= exact);
        CHECK(static_cast<double>(got) <= static_cast<double>(exact) * (1.0 + 1.0 / 64) + 1);
    }
    CHECK(h.quantile(1.0) == values.back());
    CHECK(h.min() == values.front());
    CHECK(h.count() == values.size());

    log_histogram other;
    other.record(values.back() + 1);
    h.merge(other);
    CHECK(h.max() == values.back() + 1);
    CHECK(h.count() == values.size() + 1);
}

TEST_CASE("json_line escapes strings and writes null for non-finite numbers") {
    json_line j;
    j.add("a", "x\"y\\z\n").add("n", 3).add("f", 0.5).add("bad", std::nan("")).add("t", true);
    CHECK(j.str() == R"({"a":"x\"y\\z\u000a","n":3,"f":0.5,"bad":null,"t":true})");
}

TEST_CASE("median of odd and even counts") {
    CHECK(median({3, 1, 2}) == 2);
    CHECK(median({4, 1, 2, 3}) == 2.5);
    CHECK(std::isnan(median({})));
}

TEST_CASE("split_host_port") {
    auto a = split_host_port("127.0.0.1:9092");
    REQUIRE(a.has_value());
    CHECK(a->first == "127.0.0.1");
    CHECK(a->second == 9092);
    CHECK(split_host_port("[::1]:9092")->first == "::1");
    CHECK_FALSE(split_host_port("localhost").has_value());
    CHECK_FALSE(split_host_port("h:99999").has_value());
}

TEST_CASE("pid_cpu reads this process's CPU time from /proc") {
    auto before = pid_cpu(getpid());
    REQUIRE(before.has_value());
    // Burn 80 ms of this thread's CPU (not wall time: the machine may be busy); /proc
    // counts in 10 ms ticks, so expect at least half of it.
    volatile uint64_t x = 0;
    auto t0 = thread_cpu();
    while ((thread_cpu() - t0).total() < 0.08) x = x + 1;
    auto after = pid_cpu(getpid());
    REQUIRE(after.has_value());
    CHECK((*after - *before).total() > 0.039);
    CHECK_FALSE(pid_cpu(-5).has_value());
}

TEST_CASE("pid_cpu_meter measures another thread's work precisely") {
    pid_cpu_meter meter(getpid());
    REQUIRE(meter.ok());
    std::thread worker([] {
        volatile uint64_t x = 0;
        auto t0 = thread_cpu();
        while ((thread_cpu() - t0).total() < 0.2) x = x + 1;
    });
    // 200 ms: /proc/<pid>/stat counts in scheduler ticks, so a short burst can read as ~0.
    worker.join();  // born and gone between the two samples: only /proc/<pid>/stat still has it
    auto spent = meter.elapsed();
    REQUIRE(spent.has_value());
    CHECK(*spent > 0.1);
    pid_cpu_meter gone(-5);
    CHECK_FALSE(gone.ok());
    CHECK_FALSE(gone.elapsed().has_value());
}

TEST_CASE("pid_cpu_meter counts this thread's CPU at ns precision") {
    pid_cpu_meter meter(getpid());
    volatile uint64_t x = 0;
    auto t0 = thread_cpu();
    while ((thread_cpu() - t0).total() < 0.005) x = x + 1;  // 5 ms: below tick granularity
    auto spent = meter.elapsed();
    REQUIRE(spent.has_value());
    CHECK(*spent >= 0.004);
    CHECK(*spent < 0.5);
}
