// sluice-rdkafka-bench: the loadgen workloads through librdkafka, as a real client
// sees them (client-side batching, its fetcher and queues, its CPU cost).
//
//   produce: rd_kafka_producev of --record-size values (no copy, static buffer) until
//            --duration / --bytes / --count; latency = enqueue -> delivery report.
//   consume: the legacy per-partition consumer from the beginning of every partition
//            until each reports end-of-partition (no consumer group needed), --passes
//            times (the mock broker keeps only the last ~5 MiB of each partition).
//   both:    produce, then consume what was produced.
//
// --mock N runs librdkafka's in-process mock cluster with N brokers as the reference
// broker (its CPU is then inside client_cpu_s); --serve S only starts the mock, prints
// its bootstrap list on stdout and keeps it up for S seconds, so sluice-loadgen or kcat
// can be pointed at it. Output: one JSON line per phase on stdout, summary on stderr.
//
// Concurrency: librdkafka's threads call the delivery-report callback only from
// rd_kafka_poll/flush on the main thread, so the counters need no atomics.
#include "bench/bench_util.h"

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace sluice::bench {
namespace {

struct options {
    std::string bootstrap;
    int mock_brokers = 0;
    double serve_s = 0;
    std::string topic = "sluice-rdkafka-bench";
    int partitions = 1;
    std::string mode = "both";
    uint64_t record_size = 1024;
    uint64_t bytes = 0;
    uint64_t count = 0;
    double duration_s = 0;  // produce: 0 -> 10 s unless --bytes/--count
    std::string acks = "1";
    int passes = 1;  // consume: read every partition this many times (the mock keeps ~5 MiB each)
    pid_t broker_pid = 0;
    double timeout_s = 300;
    std::vector<std::pair<std::string, std::string>> extra;  // -X key=value
};

struct phase_stats {
    uint64_t bytes = 0;
    uint64_t records = 0;
    uint64_t errors = 0;
    std::string first_error;
    log_histogram latency_ns;
    double seconds = 0;
    std::optional<double> broker_cpu_s;
    double client_cpu_s = 0;
    bool complete = true;
};

using conf_ptr = std::unique_ptr<rd_kafka_conf_t, decltype(&rd_kafka_conf_destroy)>;
using handle_ptr = std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)>;

bool set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
    char err[512];
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof(err)) == RD_KAFKA_CONF_OK) return true;
    fmt::print(stderr, "sluice-rdkafka-bench: config {}={}: {}\n", key, value, err);
    return false;
}

// A client handle with the common settings plus -X overrides (which win); `prepare`
// sets callbacks and the opaque, which must be on the conf before rd_kafka_new.
// nullptr (reported) on error.
handle_ptr make_client(const options& opt, rd_kafka_type_t type, const std::vector<std::pair<std::string, std::string>>& own,
                       const std::function<void(rd_kafka_conf_t*)>& prepare) {
    conf_ptr conf(rd_kafka_conf_new(), rd_kafka_conf_destroy);
    bool ok = set(conf.get(), "bootstrap.servers", opt.bootstrap) && set(conf.get(), "client.id", "sluice-rdkafka-bench");
    for (auto& [k, v] : own) ok = ok && set(conf.get(), k, v);
    for (auto& [k, v] : opt.extra) ok = ok && set(conf.get(), k, v);
    if (!ok) return {nullptr, rd_kafka_destroy};
    if (prepare) prepare(conf.get());
    char err[512];
    rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err, sizeof(err));
    if (!rk) {
        fmt::print(stderr, "sluice-rdkafka-bench: rd_kafka_new: {}\n", err);
        return {nullptr, rd_kafka_destroy};
    }
    conf.release();  // owned by rk now
    return {rk, rd_kafka_destroy};
}

// Waits until the broker answers a metadata request for the topic, so an unreachable
// bootstrap is one clear error instead of a run of silent retries.
bool reachable(rd_kafka_t* rk, const options& opt) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, opt.topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TRANSPORT;
    for (int attempt = 0; attempt < 10 && err != RD_KAFKA_RESP_ERR_NO_ERROR; ++attempt)
        err = rd_kafka_metadata(rk, 0, rkt, &md, 1000);
    rd_kafka_topic_destroy(rkt);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fmt::print(stderr, "sluice-rdkafka-bench: no metadata from {} within 10 s: {} (is the broker running?)\n",
                   opt.bootstrap, rd_kafka_err2str(err));
        return false;
    }
    rd_kafka_metadata_destroy(md);
    return true;
}

// ---- produce ---------------------------------------------------------------------

void delivered(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* s = static_cast<phase_stats*>(opaque);
    if (m->err) {
        if (s->errors++ == 0) s->first_error = rd_kafka_err2str(m->err);
        return;
    }
    s->latency_ns.record(now_ns() - reinterpret_cast<uint64_t>(m->_private));
    s->bytes += m->len;
    ++s->records;
}

phase_stats produce(const options& opt) {
    phase_stats s;
    handle_ptr rk = make_client(opt, RD_KAFKA_PRODUCER, {{"acks", opt.acks}, {"linger.ms", "5"}},
                                [&](rd_kafka_conf_t* conf) {
                                    rd_kafka_conf_set_dr_msg_cb(conf, delivered);
                                    rd_kafka_conf_set_opaque(conf, &s);
                                });
    if (!rk || !reachable(rk.get(), opt)) {
        s.complete = false;
        return s;
    }
    std::vector<char> value(opt.record_size);
    std::mt19937 rng(7);
    for (auto& c : value) c = static_cast<char>(rng());
    double duration = opt.duration_s > 0 ? opt.duration_s : (opt.bytes || opt.count ? 0.0 : 10.0);
    std::optional<pid_cpu_meter> broker;
    if (opt.broker_pid > 0) broker.emplace(opt.broker_pid);
    auto client_before = process_cpu();
    uint64_t t0 = now_ns();
    uint64_t sent = 0;
    for (uint64_t n = 0;; ++n) {
        double elapsed = static_cast<double>(now_ns() - t0) * 1e-9;
        if ((duration > 0 && elapsed >= duration) || elapsed >= opt.timeout_s) break;
        if ((opt.count && n >= opt.count) || (opt.bytes && sent >= opt.bytes)) break;
        int32_t partition = static_cast<int32_t>(n % static_cast<uint64_t>(opt.partitions));
        while (true) {
            auto e = rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(opt.topic.c_str()), RD_KAFKA_V_PARTITION(partition),
                                       RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_MSGFLAGS(0),
                                       RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(now_ns())), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                if (s.errors++ == 0) s.first_error = rd_kafka_err2str(e);
                break;
            }
            rd_kafka_poll(rk.get(), 1);  // queue full: serve delivery reports, then retry
        }
        sent += value.size();
        if ((n & 1023) == 0) rd_kafka_poll(rk.get(), 0);
    }
    double left_s = std::max(1.0, opt.timeout_s - static_cast<double>(now_ns() - t0) * 1e-9);
    if (rd_kafka_flush(rk.get(), static_cast<int>(left_s * 1000)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        s.complete = false;
        if (s.first_error.empty()) s.first_error = fmt::format("{} message(s) undelivered at timeout", rd_kafka_outq_len(rk.get()));
    }
    s.seconds = static_cast<double>(now_ns() - t0) * 1e-9;
    s.client_cpu_s = (process_cpu() - client_before).total();
    if (broker) s.broker_cpu_s = broker->elapsed();
    return s;
}

// ---- consume ---------------------------------------------------------------------

phase_stats consume(const options& opt) {
    phase_stats s;
    handle_ptr rk = make_client(opt, RD_KAFKA_CONSUMER,
                                {{"enable.partition.eof", "true"}, {"fetch.max.bytes", "67108864"},
                                 {"max.partition.fetch.bytes", "33554432"}, {"receive.message.max.bytes", "134217728"},
                                 {"queued.max.messages.kbytes", "262144"}, {"fetch.wait.max.ms", "100"}},
                                {});
    if (!rk || !reachable(rk.get(), opt)) {
        s.complete = false;
        return s;
    }
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk.get(), opt.topic.c_str(), nullptr);
    rd_kafka_queue_t* queue = rd_kafka_queue_new(rk.get());
    std::optional<pid_cpu_meter> broker;
    if (opt.broker_pid > 0) broker.emplace(opt.broker_pid);
    auto client_before = process_cpu();
    uint64_t t0 = now_ns();
    for (int p = 0; p < opt.partitions; ++p) rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_BEGINNING, queue);
    std::vector<rd_kafka_message_t*> batch(4096);
    std::vector<bool> at_end(static_cast<size_t>(opt.partitions), false);
    std::vector<int> passes_left(static_cast<size_t>(opt.partitions), opt.passes);
    int ended = 0;
    double duration = opt.duration_s;
    while (ended < opt.partitions) {
        double elapsed = static_cast<double>(now_ns() - t0) * 1e-9;
        if ((duration > 0 && elapsed >= duration) || elapsed >= opt.timeout_s) break;
        if (opt.bytes && s.bytes >= opt.bytes) break;
        ssize_t n = rd_kafka_consume_batch_queue(queue, 200, batch.data(), batch.size());
        for (ssize_t i = 0; i < n; ++i) {
            rd_kafka_message_t* m = batch[static_cast<size_t>(i)];
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                auto p = static_cast<size_t>(m->partition);
                if (p < at_end.size() && !at_end[p] && --passes_left[p] > 0) {
                    rd_kafka_seek(rkt, m->partition, RD_KAFKA_OFFSET_BEGINNING, 1000);
                } else if (p < at_end.size() && !at_end[p]) {
                    at_end[p] = true;
                    ++ended;
                }
            } else if (m->err) {
                if (s.errors++ == 0) s.first_error = rd_kafka_message_errstr(m);
            } else {
                s.bytes += m->len;
                ++s.records;
            }
            rd_kafka_message_destroy(m);
        }
    }
    s.seconds = static_cast<double>(now_ns() - t0) * 1e-9;
    s.client_cpu_s = (process_cpu() - client_before).total();
    if (broker) s.broker_cpu_s = broker->elapsed();
    s.complete = ended == opt.partitions;
    for (int p = 0; p < opt.partitions; ++p) rd_kafka_consume_stop(rkt, p);
    rd_kafka_queue_destroy(queue);
    rd_kafka_topic_destroy(rkt);
    return s;
}

// ---- report ----------------------------------------------------------------------

void report(const options& opt, const std::string& phase, const phase_stats& s) {
    double gb = static_cast<double>(s.bytes) / bytes_per_gb;
    auto us = [&](double q) { return static_cast<double>(s.latency_ns.quantile(q)) / 1e3; };
    json_line j;
    j.add("bench", "rdkafka").add("mode", phase).add("broker", opt.mock_brokers ? "librdkafka-mock" : opt.bootstrap);
    j.add("topic", opt.topic).add("partitions", opt.partitions).add("record_size", opt.record_size);
    j.add("seconds", s.seconds).add("bytes", s.bytes).add("records", s.records);
    j.add("mb_s", static_cast<double>(s.bytes) / 1e6 / s.seconds).add("gb_s", gb / s.seconds);
    j.add("records_s", static_cast<double>(s.records) / s.seconds);
    if (phase == "produce")
        j.add("lat_p50_us", us(0.5)).add("lat_p99_us", us(0.99)).add("lat_p999_us", us(0.999)).add("lat_max_us", us(1.0));
    j.add("errors", s.errors);
    if (s.broker_cpu_s) j.add("broker_cpu_s", *s.broker_cpu_s).add("broker_cpu_s_per_gb", gb > 0 ? *s.broker_cpu_s / gb : 0.0);
    j.add("client_cpu_s", s.client_cpu_s).add("client_cpu_s_per_gb", gb > 0 ? s.client_cpu_s / gb : 0.0);
    j.add("client_cpu_includes_broker", opt.mock_brokers > 0);
    j.add("complete", s.complete && s.errors == 0).add("load_average", load_average());
    if (!s.first_error.empty()) j.add("first_error", s.first_error);
    fmt::print("{}\n", j.str());
    std::fflush(stdout);
    fmt::print(stderr, "{}: {} records, {} in {:.2f} s = {:.1f} MB/s, {:.0f} records/s, client CPU {:.3f} s/GB{}\n", phase,
               s.records, format_bytes(s.bytes), s.seconds, static_cast<double>(s.bytes) / 1e6 / s.seconds,
               static_cast<double>(s.records) / s.seconds, gb > 0 ? s.client_cpu_s / gb : 0.0,
               opt.mock_brokers ? " (includes the mock broker)" : "");
    if (phase == "produce")
        fmt::print(stderr, "  latency us (enqueue -> delivery report): p50 {:.0f}  p99 {:.0f}  p99.9 {:.0f}  max {:.0f}\n",
                   us(0.5), us(0.99), us(0.999), us(1.0));
    if (s.broker_cpu_s) fmt::print(stderr, "  broker CPU {:.2f} s = {:.3f} s/GB\n", *s.broker_cpu_s, gb > 0 ? *s.broker_cpu_s / gb : 0.0);
    if (s.errors) fmt::print(stderr, "  {} error(s), first: {}\n", s.errors, s.first_error);
}

// ---- command line ----------------------------------------------------------------

void usage() {
    fmt::print(stderr,
               "usage: sluice-rdkafka-bench (--bootstrap HOST:PORT | --mock N) [--mode produce|consume|both]\n"
               "         [--topic T] [--partitions N] [--record-size SIZE] [--bytes SIZE] [--count N]\n"
               "         [--duration S] [--acks A] [--passes N] [--broker-pid PID] [--timeout S] [-X key=value]...\n"
               "       sluice-rdkafka-bench --mock N --serve SECONDS [--topic T --partitions N]\n");
}

bool parse_args(int argc, char** argv, options& opt) {
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i], v = argv[i + 1];
        if (a == "--bootstrap") opt.bootstrap = v;
        else if (a == "--mock") opt.mock_brokers = std::atoi(v.c_str());
        else if (a == "--serve") opt.serve_s = std::atof(v.c_str());
        else if (a == "--topic") opt.topic = v;
        else if (a == "--partitions") opt.partitions = std::max(1, std::atoi(v.c_str()));
        else if (a == "--mode" && (v == "produce" || v == "consume" || v == "both")) opt.mode = v;
        else if (a == "--record-size") { auto s = parse_size(v); if (!s || !*s) return false; opt.record_size = *s; }
        else if (a == "--bytes") { auto s = parse_size(v); if (!s) return false; opt.bytes = *s; }
        else if (a == "--count") opt.count = std::strtoull(v.c_str(), nullptr, 10);
        else if (a == "--duration") opt.duration_s = std::atof(v.c_str());
        else if (a == "--acks") opt.acks = v;
        else if (a == "--passes") opt.passes = std::max(1, std::atoi(v.c_str()));
        else if (a == "--broker-pid") opt.broker_pid = static_cast<pid_t>(std::atoi(v.c_str()));
        else if (a == "--timeout") opt.timeout_s = std::atof(v.c_str());
        else if (a == "-X" && v.find('=') != std::string::npos) opt.extra.emplace_back(v.substr(0, v.find('=')), v.substr(v.find('=') + 1));
        else return false;
    }
    return argc % 2 == 1 && (opt.mock_brokers > 0) != !opt.bootstrap.empty() && opt.timeout_s > 0;
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
    // The mock cluster lives inside a handle of its own, so the measured clients are
    // ordinary clients pointed at its bootstrap list.
    handle_ptr mock_host(nullptr, rd_kafka_destroy);
    rd_kafka_mock_cluster_t* mcluster = nullptr;
    if (opt.mock_brokers > 0) {
        char err[512];
        rd_kafka_conf_t* conf = rd_kafka_conf_new();
        // The host handle never connects anywhere: silence its "no bootstrap.servers" warning.
        rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
        mock_host.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err)));
        if (mock_host) mcluster = rd_kafka_mock_cluster_new(mock_host.get(), opt.mock_brokers);
        if (!mcluster) {
            fmt::print(stderr, "sluice-rdkafka-bench: cannot start the mock cluster: {}\n", mock_host ? "" : err);
            return 1;
        }
        opt.bootstrap = rd_kafka_mock_cluster_bootstraps(mcluster);
        rd_kafka_mock_topic_create(mcluster, opt.topic.c_str(), opt.partitions, 1);
    }
    int rc = 0;
    if (opt.serve_s > 0) {
        fmt::print("{}\n", opt.bootstrap);
        std::fflush(stdout);
        std::this_thread::sleep_for(std::chrono::duration<double>(std::min(opt.serve_s, opt.timeout_s)));
    } else {
        if (opt.mode != "consume") {
            auto s = produce(opt);
            report(opt, "produce", s);
            rc |= s.complete && s.errors == 0 && s.records > 0 ? 0 : 1;
        }
        if (opt.mode != "produce" && rc == 0) {
            auto s = consume(opt);
            report(opt, "consume", s);
            rc |= s.complete && s.errors == 0 ? 0 : 1;
        }
    }
    if (mcluster) rd_kafka_mock_cluster_destroy(mcluster);
    return rc;
}
