// sluice-loadgen: a Kafka-protocol load generator (frames from bench/kafka_wire.h over the
// project's codec; record batches built and scanned here).
//
//   produce: each connection sends Produce requests holding one magic-2 batch per
//            partition it owns, keeping up to --pipeline requests in flight; latency is
//            request sent -> response read (not measurable with --acks 0).
//   fetch:   each connection reads its partitions from the earliest offset to the log
//            end seen at the start, as fast as it can (one Fetch in flight, up to
//            --partition-max-bytes per partition); latency is per Fetch round trip.
//            Responses stream through a 1 MiB window (bench/fetch_stream.h) unless
//            --verify-crc asks for whole batches.
//
// Partitions are grouped by leader; each leader gets up to --connections connections,
// one thread each. With --broker-pid the broker's CPU time (/proc/<pid>/stat) over the
// timed part of the run is reported per GB. Output: one JSON line on stdout, a summary
// on stderr. GB = 1e9 bytes, MB = 1e6 bytes; bytes are record-batch bytes.
//
// --tls speaks TLS (OpenSSL, TLS 1.2/1.3, bench_tls.h) on every connection, verifying the
// broker against --ca FILE or not at all; the negotiated suite is reported. Without it
// the sockets are read and written directly, as before.
//
// Concurrency: workers share only atomics (stop flag, byte budget); each owns its
// connection, buffers and histogram, merged after join.
#include "bench/bench_util.h"
#include "bench/fetch_stream.h"
#include "bench/kafka_conn.h"
#include "bench/kafka_wire.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace sluice::bench {
namespace {

enum class run_mode { produce, fetch };

struct options {
    std::string bootstrap = "127.0.0.1:9092";
    std::string topic = "sluice-bench";
    run_mode mode = run_mode::produce;
    int partitions = 0;  // produce: 0 -> 1 (and create with that many); fetch: 0 -> all
    uint64_t record_size = 1024;
    uint64_t batch_bytes = 64 * 1024;
    int16_t acks = 1;
    int connections = 1;
    int pipeline = 1;
    double duration_s = 0;  // produce: 0 -> 10 s; fetch: 0 -> until the end offsets
    double rate_mb_s = 0;   // produce: pace all connections together to this rate (0: flat out)
    double worker_rate_b_s = 0;  // rate_mb_s split over the connections (set after planning)
    uint64_t bytes = 0;     // stop after this many batch bytes (0: no limit)
    pid_t broker_pid = 0;
    uint64_t partition_max_bytes = 32ull << 20;
    uint64_t fetch_max_bytes = 64ull << 20;
    bool verify_crc = false;
    bool create = true;
    int16_t replication_factor = 1;
    double timeout_s = 300;  // hard bound on the whole run
    int io_timeout_ms = 30000;
    int16_t produce_version_max = 7;
    int16_t fetch_version_max = 11;
    std::string client_id = "sluice-loadgen";
    bool tls = false;
    std::string ca_file;                         // --ca: verify the broker's certificate
    std::shared_ptr<const tls_context> tls_ctx;  // built from the two above in main
};

struct worker_stats {
    uint64_t bytes = 0;
    uint64_t records = 0;
    uint64_t requests = 0;
    uint64_t error_responses = 0;
    std::map<int16_t, uint64_t> errors_by_code;
    log_histogram latency_ns;
    std::string failure;  // why the worker stopped early, if it did
    bool complete = true; // fetch: reached the end offsets
    std::string tls;      // the connection's protocol and suite, "" for PLAINTEXT
};

struct shared_state {
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> bytes_reserved{0};
};

struct work_unit {
    std::string host;
    uint16_t port = 0;
    std::vector<int32_t> partitions;
    std::map<int32_t, int64_t> start, end;  // fetch: offsets
};

// ---- produce ---------------------------------------------------------------------

std::vector<uint8_t> make_batch(const options& opt, int32_t& records) {
    std::vector<uint8_t> value(opt.record_size);
    std::mt19937_64 rng(42);
    for (auto& b : value) b = static_cast<uint8_t>(rng());
    uint64_t per_record = opt.record_size + 8;  // value plus record framing, roughly
    records = static_cast<int32_t>(std::max<uint64_t>(1, opt.batch_bytes / per_record));
    std::vector<uint8_t> batch;
    auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
    wire::append_record_batch(batch, records, value, now_ms);
    return batch;
}

// Counts the answer to one Produce; false when the connection must be abandoned.
// `accepted` is the number of partitions whose batch the broker took (error 0): only
// those count as produced bytes and records.
bool take_produce_response(kafka_connection& conn, int16_t version, int32_t corr, worker_stats& s,
                           size_t& accepted) {
    accepted = 0;
    auto body = conn.receive(corr);
    if (!body) {
        s.failure = fmt::format("Produce response from {}: {}", conn.peer(), body.error().message());
        return false;
    }
    auto parts = wire::decode_produce(version, *body);
    if (!parts) {
        s.failure = fmt::format("Produce v{} response from {}: {}", version, conn.peer(), parts.error().message());
        return false;
    }
    for (auto& p : *parts) {
        if (p.error == 0) {
            ++accepted;
            continue;
        }
        ++s.error_responses;
        ++s.errors_by_code[p.error];
    }
    return true;
}

worker_stats produce_worker(const options& opt, const cluster_view& view, const work_unit& unit, shared_state& shared) {
    worker_stats s;
    std::string why;
    auto conn = kafka_connection::open(unit.host, unit.port, opt.io_timeout_ms, opt.tls_ctx, &why);
    if (!conn) {
        s.failure = fmt::format("cannot connect to {}:{}: {}", unit.host, unit.port,
                                why.empty() ? conn.error().message() : why);
        return s;
    }
    s.tls = (*conn)->tls_description();
    int32_t records = 0;
    auto batch = make_batch(opt, records);
    std::vector<wire::produce_partition> parts;
    for (int32_t p : unit.partitions) parts.push_back({p, batch});
    std::vector<uint8_t> frame;
    wire::encode_produce(frame, view.produce_version, 0, opt.client_id, opt.acks, opt.io_timeout_ms, opt.topic, parts);
    uint64_t request_bytes = batch.size() * parts.size();
    std::deque<std::pair<int32_t, uint64_t>> in_flight;  // correlation id, send time
    // --rate: requests are due at fixed intervals; latency counts from the due time, so a
    // slow response that delays the next request is not hidden (coordinated omission).
    uint64_t interval_ns = opt.worker_rate_b_s > 0
                               ? static_cast<uint64_t>(static_cast<double>(request_bytes) * 1e9 / opt.worker_rate_b_s)
                               : 0;
    uint64_t next_due = now_ns();
    while (!shared.stop.load(std::memory_order_relaxed) || !in_flight.empty()) {
        bool may_send = !shared.stop.load(std::memory_order_relaxed) && static_cast<int>(in_flight.size()) < opt.pipeline;
        if (may_send && interval_ns > 0) {
            uint64_t now = now_ns();
            if (now < next_due) {
                if (in_flight.empty()) {
                    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<uint64_t>(next_due - now, 5'000'000)));
                    continue;
                }
                may_send = false;  // collect a response while waiting
            }
        }
        if (may_send && opt.bytes) {
            uint64_t before = shared.bytes_reserved.fetch_add(request_bytes, std::memory_order_relaxed);
            if (before >= opt.bytes) {
                shared.stop.store(true, std::memory_order_relaxed);
                may_send = false;
            }
        }
        if (may_send) {
            int32_t corr = (*conn)->next_correlation_id();
            wire::writer(frame).patch_i32(8, corr);  // size 4 | key 2 | version 2 | correlation id
            uint64_t t = now_ns();
            if (interval_ns > 0) {
                t = next_due;
                next_due += interval_ns;
            }
            if (auto ec = (*conn)->send(frame)) {
                s.failure = fmt::format("Produce to {}: {}", (*conn)->peer(), ec.message());
                break;
            }
            ++s.requests;
            if (opt.acks == 0) {  // no response will come
                s.bytes += request_bytes;
                s.records += static_cast<uint64_t>(records) * parts.size();
                continue;
            }
            in_flight.emplace_back(corr, t);
            continue;
        }
        if (in_flight.empty()) break;
        auto [corr, sent_at] = in_flight.front();
        in_flight.pop_front();
        size_t accepted = 0;
        if (!take_produce_response(**conn, view.produce_version, corr, s, accepted)) break;
        s.latency_ns.record(now_ns() - sent_at);
        s.bytes += batch.size() * accepted;
        s.records += static_cast<uint64_t>(records) * accepted;
        if (accepted == 0 && s.error_responses > 1000 && s.bytes == 0) {
            s.failure = "every Produce is rejected (see the error counts)";
            break;
        }
    }
    return s;
}

// ---- fetch -----------------------------------------------------------------------

struct fetch_cursor {
    int64_t offset = 0;
    int64_t end = -1;  // -1: take the high watermark of the first response
    int stalls = 0;    // consecutive responses without progress
};

// Applies one partition's fetched data; false (with s.failure) on a fatal error.
bool advance(const partition_summary& p, fetch_cursor& c, worker_stats& s) {
    if (p.error != 0) {
        ++s.error_responses;
        ++s.errors_by_code[p.error];
        // Leadership moving is retriable; anything else means the run cannot finish.
        if (p.error == 5 || p.error == 6 || p.error == 7) return ++c.stalls < 50;
        s.failure = fmt::format("partition {}: {}", p.partition, wire::error_name(p.error));
        return false;
    }
    if (c.end < 0) c.end = p.high_watermark;
    if (p.scan.malformed || p.scan.crc_failures) {
        s.failure = fmt::format("partition {} offset {}: {}", p.partition, c.offset,
                                p.scan.malformed ? "malformed batch" : "CRC mismatch");
        return false;
    }
    if (p.scan.batches == 0 || p.scan.next_offset <= c.offset) {
        // Nothing usable: the log end, or a batch larger than partition_max_bytes.
        if (c.offset < c.end && ++c.stalls >= 50) {
            s.failure = fmt::format("partition {}: no progress at offset {} (end {}); is a batch larger than "
                                    "--partition-max-bytes?", p.partition, c.offset, c.end);
            return false;
        }
        return true;
    }
    c.stalls = 0;
    c.offset = p.scan.next_offset;
    s.bytes += p.scan.bytes;
    s.records += p.scan.records;
    return true;
}

// One Fetch answer as partition summaries: streamed through a 1 MiB window when we only
// need batch headers, else decoded whole by the project codec (CRC checks, v12).
std::error_code receive_fetch(const options& opt, int16_t version, kafka_connection& conn, fetch_stream& stream,
                              int32_t corr, int16_t& top_error, std::vector<partition_summary>& out) {
    if (!opt.verify_crc && version <= 11) return stream.read_response(conn.io(), version, corr, top_error, out);
    auto body = conn.receive(corr);
    if (!body) return body.error();
    auto response = wire::decode_fetch(version, *body);
    if (!response) return response.error();
    top_error = response->error;
    out.clear();
    for (auto& p : response->partitions)
        out.push_back({p.partition, p.error, p.high_watermark, wire::scan_batches(p.records, opt.verify_crc)});
    return {};
}

worker_stats fetch_worker(const options& opt, const cluster_view& view, const work_unit& unit, shared_state& shared) {
    worker_stats s;
    std::string why;
    auto conn = kafka_connection::open(unit.host, unit.port, opt.io_timeout_ms, opt.tls_ctx, &why);
    if (!conn) {
        s.failure = fmt::format("cannot connect to {}:{}: {}", unit.host, unit.port,
                                why.empty() ? conn.error().message() : why);
        s.complete = false;
        return s;
    }
    s.tls = (*conn)->tls_description();
    std::map<int32_t, fetch_cursor> cursors;
    for (int32_t p : unit.partitions) {
        fetch_cursor c;
        if (auto it = unit.start.find(p); it != unit.start.end()) c.offset = it->second;
        if (auto it = unit.end.find(p); it != unit.end.end()) c.end = it->second;
        cursors[p] = c;
    }
    std::vector<uint8_t> frame;
    std::vector<wire::fetch_partition> wanted;
    std::vector<partition_summary> parts;
    fetch_stream stream;
    auto part_max = static_cast<int32_t>(std::min<uint64_t>(opt.partition_max_bytes, INT32_MAX));
    auto max_bytes = static_cast<int32_t>(std::min<uint64_t>(opt.fetch_max_bytes, INT32_MAX));
    while (!shared.stop.load(std::memory_order_relaxed)) {
        wanted.clear();
        for (auto& [p, c] : cursors)
            if (c.end < 0 || c.offset < c.end) wanted.push_back({p, c.offset, part_max});
        if (wanted.empty()) break;
        frame.clear();
        int32_t corr = (*conn)->next_correlation_id();
        wire::encode_fetch(frame, view.fetch_version, corr, opt.client_id, 500, 1, max_bytes, opt.topic, wanted);
        uint64_t t = now_ns();
        int16_t top_error = 0;
        auto ec = (*conn)->send(frame);
        if (!ec) ec = receive_fetch(opt, view.fetch_version, **conn, stream, corr, top_error, parts);
        if (ec || top_error != 0) {
            s.failure = ec ? fmt::format("Fetch v{} from {}: {}", view.fetch_version, (*conn)->peer(), ec.message())
                           : fmt::format("Fetch: {}", wire::error_name(top_error));
            break;
        }
        s.latency_ns.record(now_ns() - t);
        ++s.requests;
        bool ok = true;
        uint64_t bytes_before = s.bytes;
        for (auto& p : parts) {
            auto it = cursors.find(p.partition);
            if (it != cursors.end() && !(ok = advance(p, it->second, s))) break;
        }
        if (!ok) break;
        uint64_t got = s.bytes - bytes_before;
        if (opt.bytes && shared.bytes_reserved.fetch_add(got, std::memory_order_relaxed) + got >= opt.bytes)
            shared.stop.store(true, std::memory_order_relaxed);
    }
    for (auto& [p, c] : cursors)
        if (c.end < 0 || c.offset < c.end) s.complete = false;
    return s;
}

// ---- setup -----------------------------------------------------------------------

// Groups the chosen partitions by leader, then spreads each leader's partitions over
// up to opt.connections units.
std::vector<work_unit> plan(const options& opt, const cluster_view& view, std::vector<int32_t> partitions) {
    std::map<int32_t, std::vector<int32_t>> by_leader;
    for (int32_t p : partitions) by_leader[view.leaders[static_cast<size_t>(p)]].push_back(p);
    std::vector<work_unit> units;
    for (auto& [leader, parts] : by_leader) {
        auto addr = view.brokers.at(leader);
        size_t n = std::min<size_t>(static_cast<size_t>(opt.connections), parts.size());
        size_t first = units.size();
        for (size_t i = 0; i < n; ++i) units.push_back(work_unit{addr.first, addr.second, {}, {}, {}});
        for (size_t i = 0; i < parts.size(); ++i) units[first + i % n].partitions.push_back(parts[i]);
    }
    return units;
}

// Earliest and latest offsets per partition, asked of each leader; left empty (the
// workers then start at 0 and stop at the first high watermark) without ListOffsets.
bool fill_offsets(const options& opt, const cluster_view& view, std::vector<work_unit>& units, std::string& why) {
    if (view.list_offsets_version < 0) return true;
    for (auto& u : units) {
        std::string reason;
        auto conn = kafka_connection::open(u.host, u.port, opt.io_timeout_ms, opt.tls_ctx, &reason);
        if (!conn) {
            why = fmt::format("cannot connect to {}:{}: {}", u.host, u.port,
                              reason.empty() ? conn.error().message() : reason);
            return false;
        }
        auto start = list_offsets(**conn, view.list_offsets_version, opt.client_id, opt.topic, u.partitions, -2);
        auto end = list_offsets(**conn, view.list_offsets_version, opt.client_id, opt.topic, u.partitions, -1);
        if (!start || !end) {
            why = fmt::format("ListOffsets v{} to {}: {}", view.list_offsets_version, (*conn)->peer(),
                              (!start ? start : end).error().message());
            return false;
        }
        u.start = *start;
        u.end = *end;
    }
    return true;
}

// ---- report ----------------------------------------------------------------------

struct run_totals {
    worker_stats sum;
    double seconds = 0;
    std::optional<double> broker_cpu_s;
    double client_cpu_s = 0;
    double system_s = 0;
    bool timed_out = false;
    size_t workers = 0;
};

// [[quantile, microseconds], ...] at enough points to draw a latency CDF with its tail.
std::string latency_cdf_json(const log_histogram& h) {
    std::string out = "[";
    auto point = [&](double q) {
        if (out.size() > 1) out += ',';
        out += fmt::format("[{},{:.3f}]", q, static_cast<double>(h.quantile(q)) / 1e3);
    };
    if (h.count() > 0) {
        for (int i = 1; i < 100; ++i) point(i / 100.0);
        for (double q : {0.995, 0.999, 0.9995, 0.9999, 1.0}) point(q);
    }
    return out + "]";
}

void report(const options& opt, const cluster_view& view, size_t partitions, const run_totals& t) {
    const auto& s = t.sum;
    double gb = static_cast<double>(s.bytes) / bytes_per_gb;
    auto us = [&](double q) { return static_cast<double>(s.latency_ns.quantile(q)) / 1e3; };
    json_line j;
    j.add("bench", "loadgen").add("mode", opt.mode == run_mode::produce ? "produce" : "fetch");
    j.add("topic", opt.topic).add("partitions", static_cast<uint64_t>(partitions));
    j.add("tls", opt.tls);
    if (!s.tls.empty()) j.add("tls_cipher", s.tls);
    j.add("connections", static_cast<uint64_t>(t.workers)).add("pipeline", opt.pipeline);
    if (opt.mode == run_mode::produce) {
        j.add("record_size", opt.record_size).add("batch_bytes", opt.batch_bytes).add("acks", opt.acks);
        j.add("api_version", static_cast<int>(view.produce_version));
    } else {
        j.add("partition_max_bytes", opt.partition_max_bytes).add("api_version", static_cast<int>(view.fetch_version));
    }
    j.add("seconds", t.seconds).add("bytes", s.bytes).add("records", s.records).add("requests", s.requests);
    j.add("mb_s", static_cast<double>(s.bytes) / 1e6 / t.seconds).add("gb_s", gb / t.seconds);
    j.add("records_s", static_cast<double>(s.records) / t.seconds);
    j.add("lat_p50_us", us(0.5)).add("lat_p99_us", us(0.99)).add("lat_p999_us", us(0.999)).add("lat_max_us", us(1.0));
    j.add_raw("lat_cdf_us", latency_cdf_json(s.latency_ns));
    if (opt.rate_mb_s > 0) j.add("target_mb_s", opt.rate_mb_s);
    j.add("error_responses", s.error_responses);
    if (t.broker_cpu_s) j.add("broker_cpu_s", *t.broker_cpu_s).add("broker_cpu_s_per_gb", gb > 0 ? *t.broker_cpu_s / gb : 0.0);
    j.add("client_cpu_s", t.client_cpu_s).add("client_cpu_s_per_gb", gb > 0 ? t.client_cpu_s / gb : 0.0);
    j.add("system_cpu_s_per_gb", gb > 0 ? t.system_s / gb : 0.0);
    j.add("complete", s.complete && s.failure.empty() && !t.timed_out).add("timed_out", t.timed_out);
    j.add("load_average", load_average());
    if (!s.failure.empty()) j.add("failure", s.failure);
    fmt::print("{}\n", j.str());
    std::fflush(stdout);

    fmt::print(stderr, "{} {} partition(s) over {} connection(s): {} in {:.2f} s = {:.1f} MB/s, {:.0f} records/s\n",
               opt.mode == run_mode::produce ? "produce" : "fetch", partitions, t.workers, format_bytes(s.bytes),
               t.seconds, static_cast<double>(s.bytes) / 1e6 / t.seconds, static_cast<double>(s.records) / t.seconds);
    if (!s.tls.empty()) fmt::print(stderr, "TLS: {}{}\n", s.tls, opt.ca_file.empty() ? " (server not verified)" : "");
    fmt::print(stderr, "latency us: p50 {:.0f}  p99 {:.0f}  p99.9 {:.0f}  max {:.0f}  ({} requests)\n", us(0.5), us(0.99),
               us(0.999), us(1.0), s.latency_ns.count());
    if (t.broker_cpu_s)
        fmt::print(stderr, "broker CPU: {:.2f} s = {:.3f} CPU-s/GB\n", *t.broker_cpu_s, gb > 0 ? *t.broker_cpu_s / gb : 0.0);
    fmt::print(stderr, "client CPU: {:.2f} s = {:.3f} CPU-s/GB\n", t.client_cpu_s, gb > 0 ? t.client_cpu_s / gb : 0.0);
    for (auto& [code, n] : s.errors_by_code) fmt::print(stderr, "error responses: {} x {}\n", n, wire::error_name(code));
    if (!s.failure.empty()) fmt::print(stderr, "stopped early: {}\n", s.failure);
    if (t.timed_out) fmt::print(stderr, "stopped by --timeout {} s\n", opt.timeout_s);
}

// Starts the workers and stops them at the duration, the byte budget or the timeout.
run_totals run(const options& opt, const cluster_view& view, const std::vector<work_unit>& units) {
    shared_state shared;
    std::vector<worker_stats> stats(units.size());
    std::vector<std::atomic<bool>> finished(units.size());
    std::optional<pid_cpu_meter> broker;
    if (opt.broker_pid > 0) broker.emplace(opt.broker_pid);
    if (broker && !broker->ok()) fmt::print(stderr, "sluice-loadgen: cannot read /proc/{}: no broker CPU\n", opt.broker_pid);
    auto client_before = process_cpu();
    double busy0 = system_busy_s();
    uint64_t t0 = now_ns();
    std::vector<std::thread> threads;
    for (size_t i = 0; i < units.size(); ++i) {
        threads.emplace_back([&, i] {
            stats[i] = opt.mode == run_mode::produce ? produce_worker(opt, view, units[i], shared)
                                                     : fetch_worker(opt, view, units[i], shared);
            finished[i].store(true);
        });
    }
    double duration = opt.duration_s > 0 ? opt.duration_s : (opt.mode == run_mode::produce && !opt.bytes ? 10.0 : 0.0);
    run_totals t;
    while (true) {
        bool all = std::all_of(finished.begin(), finished.end(), [](auto& f) { return f.load(); });
        if (all) break;
        double elapsed = static_cast<double>(now_ns() - t0) * 1e-9;
        if ((duration > 0 && elapsed >= duration) || elapsed >= opt.timeout_s) {
            t.timed_out = elapsed >= opt.timeout_s;
            shared.stop.store(true);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (auto& th : threads) th.join();
    t.seconds = static_cast<double>(now_ns() - t0) * 1e-9;
    t.client_cpu_s = (process_cpu() - client_before).total();
    t.system_s = system_busy_s() - busy0;
    if (broker) t.broker_cpu_s = broker->elapsed();
    t.workers = units.size();
    for (auto& s : stats) {
        t.sum.bytes += s.bytes;
        t.sum.records += s.records;
        t.sum.requests += s.requests;
        t.sum.error_responses += s.error_responses;
        for (auto& [code, n] : s.errors_by_code) t.sum.errors_by_code[code] += n;
        t.sum.latency_ns.merge(s.latency_ns);
        t.sum.complete = t.sum.complete && s.complete;
        if (t.sum.failure.empty()) t.sum.failure = s.failure;
        if (t.sum.tls.empty()) t.sum.tls = s.tls;
    }
    return t;
}

// ---- command line ----------------------------------------------------------------

void usage() {
    fmt::print(stderr,
               "usage: sluice-loadgen --mode produce|fetch [--bootstrap HOST:PORT] [--topic T] [--partitions N]\n"
               "         [--record-size SIZE] [--batch-bytes SIZE] [--acks -1|0|1] [--connections N]\n"
               "         [--pipeline N] [--duration S] [--bytes SIZE] [--rate MB/S] [--broker-pid PID] [--timeout S]\n"
               "         [--partition-max-bytes SIZE] [--fetch-max-bytes SIZE] [--verify-crc] [--no-create]\n"
               "         [--replication-factor N] [--produce-version V] [--fetch-version V] [--io-timeout-ms MS]\n"
               "         [--tls [--ca FILE]]\n"
               "  produce: one batch of --batch-bytes per partition per request; default 10 s. --rate paces\n"
               "           requests (MB/s over all connections); latency then counts from each due time.\n"
               "  fetch: earliest -> log end at start, as fast as possible (default 32m per partition).\n"
               "  --tls: TLS 1.2/1.3 to an SSL listener; --ca FILE verifies the broker (default: no verification).\n"
               "  SIZE accepts k/m/g (binary). JSON line on stdout, summary on stderr.\n");
}

bool parse_args(int argc, char** argv, options& opt) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--verify-crc") {
            opt.verify_crc = true;
            continue;
        }
        if (a == "--no-create") {
            opt.create = false;
            continue;
        }
        if (a == "--tls") {
            opt.tls = true;
            continue;
        }
        if (i + 1 >= argc) return false;
        std::string v = argv[++i];
        auto size = [&](uint64_t& out) {
            auto s = parse_size(v);
            if (s) out = *s;
            return s.has_value();
        };
        bool ok = true;
        if (a == "--bootstrap") opt.bootstrap = v;
        else if (a == "--topic") opt.topic = v;
        else if (a == "--mode" && (v == "produce" || v == "fetch")) opt.mode = v == "produce" ? run_mode::produce : run_mode::fetch;
        else if (a == "--partitions") opt.partitions = std::atoi(v.c_str());
        else if (a == "--record-size") ok = size(opt.record_size) && opt.record_size > 0;
        else if (a == "--batch-bytes") ok = size(opt.batch_bytes) && opt.batch_bytes > 0;
        else if (a == "--acks") opt.acks = static_cast<int16_t>(std::atoi(v.c_str()));
        else if (a == "--connections") opt.connections = std::max(1, std::atoi(v.c_str()));
        else if (a == "--pipeline") opt.pipeline = std::max(1, std::atoi(v.c_str()));
        else if (a == "--duration") opt.duration_s = std::atof(v.c_str());
        else if (a == "--rate") opt.rate_mb_s = std::atof(v.c_str());
        else if (a == "--bytes") ok = size(opt.bytes);
        else if (a == "--broker-pid") opt.broker_pid = static_cast<pid_t>(std::atoi(v.c_str()));
        else if (a == "--timeout") opt.timeout_s = std::atof(v.c_str());
        else if (a == "--partition-max-bytes") ok = size(opt.partition_max_bytes);
        else if (a == "--fetch-max-bytes") ok = size(opt.fetch_max_bytes);
        else if (a == "--replication-factor") opt.replication_factor = static_cast<int16_t>(std::atoi(v.c_str()));
        else if (a == "--produce-version") opt.produce_version_max = static_cast<int16_t>(std::atoi(v.c_str()));
        else if (a == "--fetch-version") opt.fetch_version_max = static_cast<int16_t>(std::atoi(v.c_str()));
        else if (a == "--io-timeout-ms") opt.io_timeout_ms = std::max(100, std::atoi(v.c_str()));
        else if (a == "--client-id") opt.client_id = v;
        else if (a == "--ca") opt.ca_file = v;
        else ok = false;
        if (!ok) return false;
    }
    bool acks_ok = opt.acks == -1 || opt.acks == 0 || opt.acks == 1;
    bool versions_ok = opt.produce_version_max >= 3 && opt.produce_version_max <= 11 && opt.fetch_version_max >= 4 &&
                       opt.fetch_version_max <= 12;
    return acks_ok && versions_ok && opt.timeout_s > 0 && (opt.tls || opt.ca_file.empty());
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
    auto addr = split_host_port(opt.bootstrap);
    if (!addr) {
        fmt::print(stderr, "sluice-loadgen: --bootstrap wants HOST:PORT, got '{}'\n", opt.bootstrap);
        return 2;
    }
    if (opt.tls) {
        std::string why;
        auto ctx = tls_context::client(opt.ca_file, why);
        if (!ctx) {
            fmt::print(stderr, "sluice-loadgen: {}\n", why);
            return 2;
        }
        opt.tls_ctx = *ctx;
    }
    discovery_options d;
    d.host = addr->first;
    d.port = addr->second;
    d.topic = opt.topic;
    d.client_id = opt.client_id;
    d.create = opt.mode == run_mode::produce && opt.create;
    d.create_partitions = std::max(1, opt.partitions);
    d.replication_factor = opt.replication_factor;
    d.io_timeout_ms = std::min(opt.io_timeout_ms, 10000);
    d.produce_version_max = opt.produce_version_max;
    d.fetch_version_max = opt.fetch_version_max;
    d.tls = opt.tls_ctx;
    std::string why;
    auto view = discover(d, why);
    if (!view) {
        fmt::print(stderr, "sluice-loadgen: {}\n", why);
        return 1;
    }
    int16_t version = opt.mode == run_mode::produce ? view->produce_version : view->fetch_version;
    if (version < 0) {
        fmt::print(stderr, "sluice-loadgen: the broker offers no {} version this tool speaks\n",
                   opt.mode == run_mode::produce ? "Produce v3+" : "Fetch v4..v12");
        return 1;
    }
    size_t available = view->leaders.size();
    size_t wanted = opt.partitions > 0 ? static_cast<size_t>(opt.partitions) : (opt.mode == run_mode::produce ? 1 : available);
    if (wanted > available) {
        fmt::print(stderr, "sluice-loadgen: topic '{}' has {} partition(s), using them all (asked for {})\n", opt.topic,
                   available, wanted);
        wanted = available;
    }
    std::vector<int32_t> partitions;
    for (size_t p = 0; p < wanted; ++p) partitions.push_back(static_cast<int32_t>(p));
    auto units = plan(opt, *view, partitions);
    if (opt.rate_mb_s > 0 && !units.empty()) opt.worker_rate_b_s = opt.rate_mb_s * 1e6 / static_cast<double>(units.size());
    if (opt.mode == run_mode::fetch && !fill_offsets(opt, *view, units, why)) {
        fmt::print(stderr, "sluice-loadgen: {}\n", why);
        return 1;
    }
    auto totals = run(opt, *view, units);
    report(opt, *view, partitions.size(), totals);
    // A fetch run bounded by --duration or --bytes is not expected to reach the end offsets.
    bool bounded = opt.mode == run_mode::produce || opt.duration_s > 0 || opt.bytes > 0;
    bool ok = totals.sum.failure.empty() && !totals.timed_out && (bounded || totals.sum.complete);
    return ok ? 0 : 1;
}
