#!/usr/bin/python3
"""suite_report.py RESULTS.jsonl REPORT.md PLOT_DIR

Turns the tagged JSON records written by bench/suite.sh into a Markdown report in
which every broker figure stands next to the machine limit it is judged against (as a
ratio), plus PNG plots (throughput vs record size, produce latency CDF, CPU-s per GB by
path). Medians are taken over repeated runs. Plots are skipped, with a note, when
matplotlib is missing (apt-get install -y python3-matplotlib).
"""
import json
import os
import statistics
import sys
from collections import defaultdict

# Bare path each fetch.send.strategy is compared with (same data path, no broker).
STRATEGY_LIMIT = {"splice": "splice_pipe1m", "mmap_copy": "mmap_write_1m", "buffered": "pread_write_1m"}
FILE_TO_SOCKET = ["sendfile", "splice_pipe1m", "pread_write_1m", "mmap_write_1m"]
# (e) TLS fetch: the send paths TLS can use, and the bare TLS limits (pread into a chunk,
# encrypt, write) at the broker's TLS chunk (256 KiB) and at 1 MiB.
TLS_STRATEGIES = ["buffered", "mmap_copy"]
TLS_LIMIT, TLS_LIMIT_1M = "tls_pread_write_256k", "tls_pread_write_1m"


def load(path):
    recs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                recs.append(json.loads(line))
    return recs


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec=".2f", unit=""):
    return "n/a" if v is None else f"{v:{spec}}{unit}"


def ratio(a, b):
    return None if a is None or not b else a / b


def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "**not met**")


class Suite:
    def __init__(self, recs):
        self.by = defaultdict(list)
        for r in recs:
            self.by[(r.get("workload"), r.get("variant"))].append(r)
        self.recs = recs
        self.limits = {}
        runs = defaultdict(list)
        for r in recs:
            if r.get("workload") == "limits" and r.get("stat") in ("run", "median") and "error" not in r:
                runs[r["test"]].append(r)
        for test, rs in runs.items():
            med = [r for r in rs if r.get("stat") == "median"]
            self.limits[test] = med[0] if med else rs[0]

    def one(self, workload, variant):
        """The median run of (workload, variant) by throughput (the run itself, so its latency
        and CPU figures belong together), tagged with how many runs there were."""
        rs = [r for r in self.by.get((workload, variant), []) if not r.get("failed")]
        if not rs:
            return None
        key = lambda r: r.get("gb_s") or r.get("records_s") or 0
        pick = dict(sorted(rs, key=key)[(len(rs) - 1) // 2])
        pick["runs"] = len(rs)
        return pick

    def runs(self, workload, prefix):
        return [r for (w, v), rs in self.by.items() if w == workload and v.startswith(prefix)
                for r in rs if not r.get("failed")]

    def limit(self, test, key="gb_s"):
        r = self.limits.get(test)
        return None if r is None else r.get(key)

    def machine(self, variant):
        rs = self.by.get(("machine", variant), [])
        return rs[0] if rs else {}

    def failures(self):
        return [f"{w}/{v}" for (w, v), rs in self.by.items() for r in rs if r.get("failed")]


def section_machine(s, out):
    start, end = s.machine("start"), s.machine("end")
    setup = next((r for r in s.recs if r.get("test") == "setup"), {})
    out.append("## Machine\n")
    out.append(f"- CPU: {start.get('cpu_model', '?')} ({start.get('cpus', '?')} online CPUs)")
    out.append(f"- kernel {start.get('kernel', '?')}, memory {fmt(start.get('mem_gib'), '.1f', ' GiB')}, "
               f"host `{start.get('host', '?')}`, git `{start.get('git_rev', '?')}`")
    out.append(f"- load average at start: {' '.join(start.get('load_average_start', []))}; at end: "
               f"{' '.join(end.get('load_average_end', []))} (each run's own load average is in results.jsonl)")
    out.append(f"- memory: **warm** -- the limits' source file was page-cache resident: "
               f"{setup.get('page_cache_resident', '?')}; the fetched partition was synced and read once "
               f"before the fetch runs, so every fetch reads from the page cache")
    out.append(f"- mode: {'--quick' if start.get('quick') else 'standard'} (GB = 1e9 bytes, MB = 1e6 bytes)\n")


def section_limits(s, out):
    out.append("## Machine limits (bare programs, no broker)\n")
    out.append("| test | GB/s | sender CPU-s/GB | receiver CPU-s/GB | load avg |")
    out.append("|---|---:|---:|---:|---|")
    for test, r in sorted(s.limits.items()):
        if "gb_s" not in r or test.startswith("fdatasync"):
            continue
        la = r.get("load_average")
        out.append(f"| {test} | {fmt(r.get('gb_s'))} | {fmt(r.get('sender_cpu_s_per_gb'), '.3f')} | "
                   f"{fmt(r.get('receiver_cpu_s_per_gb'), '.3f')} | {la if la is not None else '-'} |")
    for test in ("fdatasync_16k", "fdatasync_1m"):
        r = s.limits.get(test)
        if r:
            out.append(f"\n{test}: p50 {fmt(r.get('p50_us'), '.0f')} us, p99 {fmt(r.get('p99_us'), '.0f')} us, "
                       f"{fmt(r.get('gb_s'), '.3f')} GB/s")
    out.append("")


def row(name, value, limit, unit, r_target, cpu, cpu_limit, cpu_target, load):
    r = ratio(value, limit)
    rc = ratio(cpu, cpu_limit) if cpu_limit else None
    return (f"| {name} | {fmt(value, '.3f')} {unit} | {fmt(limit, '.3f')} | {fmt(r, '.2f')} ({r_target}) | "
            f"{fmt(cpu, '.3f')} | {cpu_target(cpu, rc)} | {load} |")


def la(r):
    v = r.get("load_average") if r else None
    return "-" if v is None else (" ".join(str(x) for x in v) if isinstance(v, list) else str(v))


def section_fetch(s, out, targets):
    out.append("## (a) Fetch of a page-cached partition, one consumer\n")
    best_name = max(FILE_TO_SOCKET, key=lambda t: s.limit(t) or 0)
    best = s.limit(best_name)
    out.append(f"Best bare file->socket path: `{best_name}` at {fmt(best)} GB/s. CPU is compared with the bare "
               f"*sender* thread of the same path (splice<->splice_pipe1m, mmap_copy<->mmap_write_1m, "
               f"buffered<->pread_write_1m). Medians over runs.\n")
    out.append("| strategy | GB/s | best bare GB/s | ratio (target >= 0.90) | broker CPU-s/GB | bare path CPU-s/GB | "
               "CPU ratio (target <= 1.1) | p99 fetch RTT ms | load avg |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    results = {}
    for strategy, bare in STRATEGY_LIMIT.items():
        rs = s.runs("a_fetch", strategy + "-")
        if not rs:
            continue
        gb = median([r.get("gb_s") for r in rs])
        cpu = median([r.get("broker_cpu_s_per_gb") for r in rs])
        bare_cpu = s.limit(bare, "sender_cpu_s_per_gb")
        p99 = median([r.get("lat_p99_us") for r in rs])
        results[strategy] = (gb, cpu)
        r_tp, r_cpu = ratio(gb, best), ratio(cpu, bare_cpu)
        out.append(f"| {strategy} | {fmt(gb, '.3f')} | {fmt(best, '.3f')} | {fmt(r_tp)} | {fmt(cpu, '.3f')} | "
                   f"{fmt(bare_cpu, '.3f')} | {fmt(r_cpu)} | {fmt(p99 and p99 / 1e3, '.1f')} | "
                   f"{', '.join(la(r) for r in rs)} |")
        targets.append((f"(a) fetch {strategy} >= 90% of best bare", verdict(r_tp and r_tp >= 0.9),
                        f"{fmt(r_tp)}"))
        targets.append((f"(a) fetch {strategy} CPU-s/GB <= 1.1x bare", verdict(r_cpu and r_cpu <= 1.1),
                        f"{fmt(r_cpu)}"))
    if results:
        fastest = max(results, key=lambda k: results[k][0] or 0)
        cheapest = min(results, key=lambda k: results[k][1] or 1e9)
        out.append(f"\nFastest strategy in this run: **{fastest}**; cheapest in broker CPU per GB: **{cheapest}**.\n")
    return results


# (label, workload suffix, the bare loop that writes the same way)
APPEND = (("buffered", "", "sock_to_file_cold"),
          ("buffered, recycled pages", "_recycled", "sock_to_file_recycled"),
          ("direct", "_direct", "sock_to_file_odirect"))


def section_produce(s, out, targets):
    out.append("## (b) Produce, acks=1, 1 KiB records in 1 MiB batches\n")
    lim_cold, lim_warm, lim_direct = (s.limit("sock_to_file_cold"), s.limit("sock_to_file_warm"),
                                      s.limit("sock_to_file_odirect"))
    lim_rec = s.limit("sock_to_file_recycled")
    out.append(f"Per `log.append.strategy`, each against the bare loop that writes the same way: `buffered` "
               f"(page cache) against socket->file into new page-cache pages (`sock_to_file_cold`, {fmt(lim_cold)} GB/s, "
               f"receiver {fmt(s.limit('sock_to_file_cold', 'receiver_cpu_s_per_gb'), '.3f')} CPU-s/GB; overwriting "
               f"resident pages: {fmt(lim_warm)} GB/s); `buffered, recycled pages` (each 1 GiB run right after a "
               f"scratch file was written and deleted: warm memory) against `sock_to_file_recycled` ({fmt(lim_rec)} GB/s, "
               f"receiver {fmt(s.limit('sock_to_file_recycled', 'receiver_cpu_s_per_gb'), '.3f')} CPU-s/GB); "
               f"`direct` against socket->file with O_DIRECT from a reused buffer "
               f"(`sock_to_file_odirect`, {fmt(lim_direct)} GB/s, receiver "
               f"{fmt(s.limit('sock_to_file_odirect', 'receiver_cpu_s_per_gb'), '.3f')} CPU-s/GB). Median run of the "
               f"number shown.\n")
    out.append("| append | partitions | runs | GB/s | bare GB/s | ratio (target >= 0.80) | broker CPU-s/GB (target <= 0.3) | "
               "p50 / p99 / p99.9 ms | load avg |")
    out.append("|---|---|---:|---:|---:|---:|---:|---|---|")
    for append, sfx, limit_test in APPEND:
        lim = s.limit(limit_test)
        for variant, label in (("p1", "1"), ("p4", "4 (2 connections)")):
            r = s.one("b_produce" + sfx, variant)
            if not r:
                out.append(f"| {append} | {label} | | failed | | | | | |")
                continue
            rt = ratio(r.get("gb_s"), lim)
            cpu = r.get("broker_cpu_s_per_gb")
            out.append(f"| {append} | {label} | {r['runs']} | {fmt(r.get('gb_s'), '.3f')} | {fmt(lim, '.3f')} | {fmt(rt)} | "
                       f"{fmt(cpu, '.3f')} | {fmt(r.get('lat_p50_us', 0) / 1e3, '.1f')} / "
                       f"{fmt(r.get('lat_p99_us', 0) / 1e3, '.1f')} / {fmt(r.get('lat_p999_us', 0) / 1e3, '.1f')} | {la(r)} |")
            targets.append((f"(b) {append}: produce {label} >= 80% of bare socket->file", verdict(rt and rt >= 0.8),
                            fmt(rt)))
            targets.append((f"(b) {append}: produce {label} broker CPU-s/GB <= 0.3",
                            verdict(cpu is not None and cpu <= 0.3), fmt(cpu, '.3f')))
    out.append("")


def section_small(s, out, targets):
    out.append("## (c) 100-byte records (1 MiB batches, 4 partitions)\n")
    out.append("| append | direction | runs | records/s | target | ratio | MB/s | broker CPU-s/GB | load avg |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for append, sfx, _ in APPEND:
        for variant in ("produce", "fetch"):
            r = s.one("c_small" + sfx, variant)
            if not r:
                out.append(f"| {append} | {variant} | | failed | | | | | |")
                continue
            rps = r.get("records_s")
            rt = ratio(rps, 2e6)
            out.append(f"| {append} | {variant} | {r['runs']} | {fmt(rps, ',.0f')} | 2,000,000 | {fmt(rt)} | "
                       f"{fmt(r.get('mb_s'), '.1f')} | {fmt(r.get('broker_cpu_s_per_gb'), '.3f')} | {la(r)} |")
            targets.append((f"(c) {append}: {variant} >= 2,000,000 records/s", verdict(rt and rt >= 1.0),
                            fmt(rps, ',.0f')))
    out.append("")


def section_latency(s, out, targets):
    out.append("## (d) Produce latency at fixed rates (1 KiB records, 64 KiB batches, 1 partition)\n")
    out.append("Latency counts from each request's *due* time (no coordinated omission).\n")
    out.append("| append | acks | target MB/s | achieved MB/s | p50 ms | p99 ms | p99.9 ms | max ms | requests | load avg |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    rows = [(append, sfx, (10, 100, 500)) for append, sfx, _ in APPEND]
    rows.append(("buffered, broker and client at nice -5", "_nice", (100,)))
    for append, sfx, rates in rows:
        for acks in ("1", "-1"):
            for rate in rates:
                r = s.one("d_latency" + sfx, f"acks{acks}-{rate}MBs")
                if not r and sfx == "_nice":
                    continue  # not root: no priority runs
                if not r:
                    out.append(f"| {append} | {acks} | {rate} | failed | | | | | | |")
                    continue
                ms = lambda k: r.get(k, 0) / 1e3
                out.append(f"| {append} | {acks} | {rate} | {fmt(r.get('mb_s'), '.1f')} | {ms('lat_p50_us'):.2f} | "
                           f"{ms('lat_p99_us'):.2f} | {ms('lat_p999_us'):.2f} | {ms('lat_max_us'):.1f} | "
                           f"{r.get('requests', '?')} | {la(r)} |")
                if acks == "1" and rate == 100:
                    targets.append((f"(d) {append}: 100 MB/s acks=1 p99 <= 1 ms", verdict(ms("lat_p99_us") <= 1.0),
                                    f"{ms('lat_p99_us'):.2f} ms"))
                    targets.append((f"(d) {append}: 100 MB/s acks=1 p99.9 <= 5 ms", verdict(ms("lat_p999_us") <= 5.0),
                                    f"{ms('lat_p999_us'):.2f} ms"))
    out.append("")


def section_tls(s, out):
    """(e): TLS fetch per send path, next to the bare TLS limit and the plaintext fetch of
    the same run. Issue 5 sets no TLS target, so nothing goes to the targets table."""
    out.append("## (e) TLS fetch of the same page-cached partition, one consumer\n")
    rows = {st: s.runs("e_tls", st + "-") for st in TLS_STRATEGIES}
    if not any(rows.values()):
        out.append("Not measured in this run (see the suite's log).\n")
        return
    bare, bare_1m = s.limits.get(TLS_LIMIT) or {}, s.limits.get(TLS_LIMIT_1M) or {}
    bare_gb, bare_cpu = bare.get("gb_s"), bare.get("sender_cpu_s_per_gb")
    broker_ciphers = sorted({r.get("tls_cipher") for rs in rows.values() for r in rs if r.get("tls_cipher")})
    out.append(f"Bare TLS limit: `{TLS_LIMIT}` (pread 256 KiB, the broker's TLS chunk, SSL_write, one write() "
               f"per chunk) {fmt(bare_gb, '.3f')} GB/s at {fmt(bare_cpu, '.3f')} sender CPU-s/GB "
               f"({fmt(bare.get('receiver_cpu_s_per_gb'), '.3f')} receiver); with 1 MiB chunks "
               f"{fmt(bare_1m.get('gb_s'), '.3f')} GB/s at {fmt(bare_1m.get('sender_cpu_s_per_gb'), '.3f')}. "
               f"Suite negotiated: bare `{bare.get('cipher', '?')}`, broker `{', '.join(broker_ciphers) or '?'}`"
               + (" (**differs**: the ratio compares unlike suites)"
                  if bare.get("cipher") and broker_ciphers and broker_ciphers != [bare["cipher"]] else "")
               + ". The CPU ratio compares the broker process with the bare *sender* thread; "
               "plaintext columns are the same strategy's (a) fetch in this run. Medians over runs; "
               "issue 5 sets no TLS target.\n")
    out.append("| strategy | GB/s | bare TLS GB/s | ratio | broker CPU-s/GB | bare TLS CPU-s/GB | CPU ratio | "
               "plaintext GB/s | TLS / plaintext | plaintext CPU-s/GB | p99 fetch RTT ms | load avg |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for strategy, rs in rows.items():
        if not rs:
            out.append(f"| {strategy} | failed | | | | | | | | | | |")
            continue
        gb = median([r.get("gb_s") for r in rs])
        cpu = median([r.get("broker_cpu_s_per_gb") for r in rs])
        p99 = median([r.get("lat_p99_us") for r in rs])
        plain = s.runs("a_fetch", strategy + "-")
        plain_gb = median([r.get("gb_s") for r in plain])
        plain_cpu = median([r.get("broker_cpu_s_per_gb") for r in plain])
        out.append(f"| {strategy} | {fmt(gb, '.3f')} | {fmt(bare_gb, '.3f')} | {fmt(ratio(gb, bare_gb))} | "
                   f"{fmt(cpu, '.3f')} | {fmt(bare_cpu, '.3f')} | {fmt(ratio(cpu, bare_cpu))} | "
                   f"{fmt(plain_gb, '.3f')} | {fmt(ratio(gb, plain_gb))} | {fmt(plain_cpu, '.3f')} | "
                   f"{fmt(p99 and p99 / 1e3, '.1f')} | {', '.join(la(r) for r in rs)} |")
    out.append("")


def section_mock(s, out, targets, fetch_results):
    out.append("## (f) Reference: librdkafka's mock cluster, same run\n")
    out.append("The same sluice-loadgen workloads against `rd_kafka_mock_cluster` (in-process, memory only, "
               "keeps ~5 MiB per partition, so its fetch reads that much).\n")
    out.append("| workload | Sluice | mock | Sluice / mock | faster? |")
    out.append("|---|---:|---:|---:|---|")
    def best(workload, variant, key):  # the better log.append.strategy
        rs = [r for r in (s.one(workload + sfx, variant) for _, sfx, _ in APPEND) if r]
        return max(rs, key=lambda r: r.get(key) or 0) if rs else None
    pairs = [("(b) produce 1 partition, GB/s", best("b_produce", "p1", "gb_s"), s.one("f_mock", "b_p1"), "gb_s"),
             ("(b) produce 4 partitions, GB/s", best("b_produce", "p4", "gb_s"), s.one("f_mock", "b_p4"), "gb_s"),
             ("(c) produce 100 B, records/s", best("c_small", "produce", "records_s"), s.one("f_mock", "c_produce"),
              "records_s")]
    if fetch_results:
        best = max(fetch_results.values(), key=lambda v: v[0] or 0)
        pairs.append(("(a) fetch, GB/s (best strategy)", {"gb_s": best[0]}, s.one("f_mock", "a_fetch"), "gb_s"))
    for name, ours, mock, key in pairs:
        a = ours.get(key) if ours else None
        b = mock.get(key) if mock else None
        rt = ratio(a, b)
        out.append(f"| {name} | {fmt(a, ',.3f')} | {fmt(b, ',.3f')} | {fmt(rt)} | {verdict(rt and rt > 1.0)} |")
        targets.append((f"(f) faster than the mock: {name}", verdict(rt and rt > 1.0), fmt(rt)))
    rd = [r for r in s.recs if r.get("workload") == "f_rdkafka"]
    if rd:
        out.append("\nlibrdkafka client end to end against the mock (its CPU includes the mock broker):\n")
        out.append("| variant | phase | MB/s | records/s | p99 ms |")
        out.append("|---|---|---:|---:|---:|")
        for r in rd:
            out.append(f"| {r['variant']} | {r.get('mode')} | {fmt(r.get('mb_s'), '.1f')} | "
                       f"{fmt(r.get('records_s'), ',.0f')} | {fmt((r.get('lat_p99_us') or 0) / 1e3, '.1f')} |")
    out.append("")


THREADS_WORKLOADS = (
    ("b_p4", "(b) produce 1 KiB records, 4 partitions, 2 connections"),
    ("c_small", "(c) produce 100 B records, 4 partitions, 2 connections"),
    ("b_p4_100MBs", "(b) at a fixed 100 MB/s (CPU at equal throughput)"),
    ("fetch_p4", "fetch of a page-cached 4-partition topic, 2 connections"),
)

THREADS_SCALING = """How the design scales past 2 cores (from the code, not measured here):

- **Per core (one shard per `reactor.threads`)**: the reactor thread (`sluice-shardN`) with its own
  io_uring (SQ 1024, CQ 4096) and that ring's kernel worker pool (`iou-wrk-*` threads, which
  run the splice fetches: the "iou-wrk" CPU above), provided-buffer ring (256 x 64 KiB receive
  buffers), pipe, chunk and frame pools and residency cache (`net/reactor.h`); the connections
  it owns; the partitions
  `server::shard_of` gives it (topic hash picks the shard of partition 0, the rest follow
  round-robin, so a topic's partitions spread evenly over any shard count) with their logs,
  segments, indexes and descriptors (an equal share of `log.max.open.files`); retention and
  flush timers (`log_duties`); the group coordinator state of the `__consumer_offsets` partitions
  it owns; and its own reference to the immutable metadata snapshot (own control block, so
  copying it does not bounce a reference count between cores).
- **Cross-core hand-off**: a request touching partitions of other shards is split per owner
  and sent with `server::invoke_on` (a closure on the owner's lock-free MPSC queue plus an
  eventfd wake-up; the answer comes back the same way). Produce payloads are appended by the
  owner straight from the receiving shard's frame; fetch answers carry file slices the
  connection's shard sends. Accepted sockets go to the shard with the fewest open
  connections (`net::reactor_group`; every shard listens with SO_REUSEPORT and hands the
  descriptor over by message), so connections spread evenly, not by the kernel's 4-tuple hash.
- **Shared, off the hot path**: the ZooKeeper session (libzookeeper-mt's I/O and completion
  threads plus the coordinator's session thread, which only posts new snapshots to the
  shards); the immutable `cluster_snapshot`; one background I/O thread (fdatasync for log
  flushes, checkpoint files; mutex-protected FIFO); one log cleaner thread (compaction;
  mutex-protected queue); the checkpoint timer on shard 0 that gathers every shard's offsets
  by message; producer-id allocation (one atomic, InitProducerId only); topic auto-creation
  de-duplication (a mutex, creation only); the accept balancer's per-shard connection
  counts (one atomic add per accepted connection); the TLS server contexts (configured
  once at start; OpenSSL locks its own shared state, such as the session cache); and, with `log.append.strategy=direct`, the process-wide chunk pool
  (`storage/tail_cache.h`: a mutex per 4 MiB chunk, never per append).
- **Shared by the kernel**: the page cache and the ext4 journal of each log dir (every
  shard's appends allocate blocks in the same file system), the loopback/NIC stack, and
  memory bandwidth -- a cross-shard produce reads the frame on another core's cache.
- So past 2 cores the per-request path stays shard-local when a client's partitions live
  on its connection's shard, and otherwise costs one message each way per owner shard per
  request (not per record). What would need work first: a cleaner and background I/O thread
  per log dir or shard when many cores flush and compact at once, the process-wide direct
  chunk pool (per-shard pools), and pinning reactors to cores (they are not pinned today,
  which on this shared 2-core VM lets the scheduler move the load generator around them).
"""


def threads_median(s, workload, n, key):
    rs = [r for r in s.runs("threads", f"{workload}-r{n}-")]
    return median([r.get(key) for r in rs]), rs


def thread_split(s, workload, n):
    """Mean per-thread broker CPU seconds over the runs: 'shard0 4.1, shard1 3.9, other 0.2'."""
    acc, runs = {}, 0
    for (w, v), lst in s.by.items():
        if w != "threads_cpu" or not v.startswith(f"{workload}-r{n}-"):
            continue
        for r in lst:
            runs += 1
            for k, sec in (r.get("thread_cpu_s") or {}).items():
                acc[k] = acc.get(k, 0) + sec
    if not runs:
        return "n/a"
    return ", ".join(f"{k.replace('sluice-', '')} {v / runs:.1f}" for k, v in sorted(acc.items()))


def section_threads(s, out):
    out.append("## reactor.threads 1 vs 2\n")
    if not s.runs("threads", ""):
        out.append("Not run (--quick) or every run failed.\n")
        return
    out.append("Same workloads on a broker with 1 and with 2 reactors (alternating r1 r2 r1 r2, medians), "
               "default `log.append.strategy`; the load generator runs at `nice -n 19` so the reactors win "
               "the two cores when they compete. `2/1` is the 2-reactor figure over the 1-reactor one: "
               "throughput should rise, CPU-s/GB stay flat (about 1). Broker CPU by thread is the mean "
               "CPU-seconds per run of each reactor thread (shardN), of io_uring's worker threads that run "
               "the reactors' offloaded operations such as splice (iou-wrk), and of all other broker threads.\n")
    out.append("| workload | GB/s 1 | GB/s 2 | 2/1 | records/s 1 | records/s 2 | CPU-s/GB 1 | CPU-s/GB 2 | 2/1 | "
               "broker CPU s by thread, 1 reactor | 2 reactors | load avg (1 / 2) |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|")
    for w, title in THREADS_WORKLOADS:
        g1, rs1 = threads_median(s, w, 1, "gb_s")
        g2, rs2 = threads_median(s, w, 2, "gb_s")
        rec1, _ = threads_median(s, w, 1, "records_s")
        rec2, _ = threads_median(s, w, 2, "records_s")
        c1, _ = threads_median(s, w, 1, "broker_cpu_s_per_gb")
        c2, _ = threads_median(s, w, 2, "broker_cpu_s_per_gb")
        loads = " / ".join(",".join(la(r).split()[0] for r in rs) or "-" for rs in (rs1, rs2))
        out.append(f"| {title} | {fmt(g1, '.3f')} | {fmt(g2, '.3f')} | {fmt(ratio(g2, g1))} | "
                   f"{fmt(rec1, ',.0f')} | {fmt(rec2, ',.0f')} | {fmt(c1, '.3f')} | {fmt(c2, '.3f')} | "
                   f"{fmt(ratio(c2, c1))} | {thread_split(s, w, 1)} | {thread_split(s, w, 2)} | {loads} |")
    out.append("")
    out.append(THREADS_SCALING)


def plots(s, plot_dir, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        out.append("Plots skipped: python3-matplotlib is not installed.\n")
        return
    made = []
    # throughput vs record size
    sizes = sorted({int(v.split("-")[1]) for (w, v) in s.by if w == "sweep"})
    if sizes:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        for mode in ("produce", "fetch"):
            xs, mb, rps = [], [], []
            for size in sizes:
                r = s.one("sweep", f"{mode}-{size}")
                if r:
                    xs.append(size); mb.append(r.get("mb_s", 0)); rps.append(r.get("records_s", 0))
            ax1.plot(xs, mb, marker="o", label=mode)
            ax2.plot(xs, rps, marker="o", label=mode)
        for test, style in (("sock_to_file_cold", "--"), ("splice_pipe1m", ":")):
            if s.limit(test):
                ax1.axhline(s.limit(test) * 1e3, linestyle=style, color="grey", label=f"bare {test}")
        for ax, ylabel in ((ax1, "MB/s"), (ax2, "records/s")):
            ax.set_xscale("log"); ax.set_xlabel("record size (bytes)"); ax.set_ylabel(ylabel); ax.grid(True, alpha=.3)
            ax.legend(fontsize=8)
        ax2.set_yscale("log")
        fig.suptitle("Throughput vs record size (1 partition, 1 connection)")
        fig.tight_layout(); fig.savefig(os.path.join(plot_dir, "throughput_vs_record_size.png"), dpi=110)
        plt.close(fig); made.append("throughput_vs_record_size.png")
    # latency CDF
    lat = [(v, r) for (w, v), rs in s.by.items() if w == "d_latency" for r in rs if r.get("lat_cdf_us")]
    if lat:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for v, r in sorted(lat):
            pts = r["lat_cdf_us"]
            ax.plot([p[1] / 1e3 for p in pts], [p[0] for p in pts], label=v)
        ax.set_xscale("log"); ax.set_xlabel("latency (ms)"); ax.set_ylabel("fraction of requests")
        ax.axvline(1.0, color="grey", linestyle=":"); ax.grid(True, alpha=.3); ax.legend(fontsize=8)
        ax.set_title("Produce latency CDF at fixed rates")
        fig.tight_layout(); fig.savefig(os.path.join(plot_dir, "latency_cdf.png"), dpi=110)
        plt.close(fig); made.append("latency_cdf.png")
    # CPU per GB by path
    bars = []
    for test in ("splice_pipe1m", "mmap_write_1m", "pread_write_1m", "sendfile"):
        if s.limit(test, "sender_cpu_s_per_gb") is not None:
            bars.append((f"bare {test}", s.limit(test, "sender_cpu_s_per_gb"), "grey"))
    for _, _, test in APPEND:
        if s.limit(test, "receiver_cpu_s_per_gb") is not None:
            bars.append((f"bare {test}", s.limit(test, "receiver_cpu_s_per_gb"), "grey"))

    def fetch_bars(workload, strategies, label, colour):
        for strategy in strategies:
            rs = s.runs(workload, strategy + "-")
            if rs:
                bars.append((f"{label} {strategy}", median([r.get("broker_cpu_s_per_gb") for r in rs]), colour))
    fetch_bars("a_fetch", STRATEGY_LIMIT, "fetch", "tab:blue")
    if s.limit(TLS_LIMIT, "sender_cpu_s_per_gb") is not None:
        bars.append((f"bare {TLS_LIMIT}", s.limit(TLS_LIMIT, "sender_cpu_s_per_gb"), "grey"))
    fetch_bars("e_tls", TLS_STRATEGIES, "TLS fetch", "tab:green")
    for append, sfx, _ in APPEND:
        for variant in ("p1", "p4"):
            r = s.one("b_produce" + sfx, variant)
            if r and r.get("broker_cpu_s_per_gb") is not None:
                bars.append((f"produce {append} {variant}", r["broker_cpu_s_per_gb"], "tab:orange"))
    if bars:
        fig, ax = plt.subplots(figsize=(9, 4))
        ax.bar([b[0] for b in bars], [b[1] or 0 for b in bars], color=[b[2] for b in bars])
        ax.set_ylabel("CPU-s per GB"); ax.set_title("CPU per GB by path (grey: bare programs; colour: broker)")
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right", fontsize=8)
        fig.tight_layout(); fig.savefig(os.path.join(plot_dir, "cpu_per_gb.png"), dpi=110)
        plt.close(fig); made.append("cpu_per_gb.png")
    out.append("## Plots\n")
    rel = os.path.basename(plot_dir.rstrip("/"))
    for m in made:
        out.append(f"![{m}]({rel}/{m})\n")


def profiles(plot_dir, out):
    """Top of each `perf report` written by suite.sh --profile (broker process, cpu-clock)."""
    files = sorted(f for f in os.listdir(plot_dir) if f.startswith("profile-") and f.endswith(".txt"))
    if not files:
        return
    out.append("## Where the broker's time goes (perf record, cpu-clock; `--profile`)\n")
    for f in files:
        with open(os.path.join(plot_dir, f)) as fh:
            lines = [l.rstrip() for l in fh if l.strip()][:15]
        out.append(f"`{f}` (symbols over 1.5% of samples):\n")
        out.append("```\n" + "\n".join(lines) + "\n```\n")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    recs = load(sys.argv[1])
    s = Suite(recs)
    body, targets = [], []
    section_machine(s, body)
    section_limits(s, body)
    fetch_results = section_fetch(s, body, targets)
    section_produce(s, body, targets)
    section_small(s, body, targets)
    section_latency(s, body, targets)
    section_tls(s, body)
    section_mock(s, body, targets, fetch_results)
    section_threads(s, body)
    sweep = sorted({int(v.split("-")[1]) for (w, v) in s.by if w == "sweep"})
    if sweep:
        body.append("## Record-size sweep (1 partition, acks=1)\n")
        body.append("| record size | produce MB/s | produce records/s | fetch MB/s | fetch records/s |")
        body.append("|---:|---:|---:|---:|---:|")
        for size in sweep:
            p, f = s.one("sweep", f"produce-{size}"), s.one("sweep", f"fetch-{size}")
            body.append(f"| {size} | {fmt(p and p.get('mb_s'), '.1f')} | {fmt(p and p.get('records_s'), ',.0f')} | "
                        f"{fmt(f and f.get('mb_s'), '.1f')} | {fmt(f and f.get('records_s'), ',.0f')} |")
        body.append("")
    profiles(sys.argv[3], body)
    plots(s, sys.argv[3], body)
    head = ["# Sluice benchmark results\n",
            "Written by `bench/suite.sh`; raw records in `results.jsonl` next to the plots. Numbers from a shared, "
            "loaded 2-core VM are noisy: read each next to its load average.\n",
            "## Targets (issue 5)\n", "| target | value | verdict |", "|---|---:|---|"]
    head += [f"| {name} | {value} | {v} |" for name, v, value in targets]
    fails = s.failures()
    if fails:
        head.append(f"\nRuns that failed: {', '.join(fails)} (see the suite's log).")
    head.append("")
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(head + body) + "\n")
    print("\n".join(head))


if __name__ == "__main__":
    main()
