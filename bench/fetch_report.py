#!/usr/bin/python3
"""Summarises fetch_bench.sh's JSON lines: broker fetch throughput and CPU per GB for
each fetch.send.strategy (medians over runs) next to the bare limits measured by
sluice-limits in the same invocation, as ratios.

Ratios: throughput = broker GB/s / bare GB/s (1.0 = as fast as the bare program);
CPU = broker CPU-s/GB / bare sender-thread CPU-s/GB (1.0 = no overhead beyond the
bare copy path; the broker also parses requests and builds responses); machine =
whole-machine busy CPU-s/GB during broker+client vs during bare sender+receiver, which
also counts softirq work deferred to ksoftirqd (per-thread clocks miss it) -- only
meaningful on an otherwise idle machine (the load average is printed).

Appends one {"bench":"fetch_bench","stat":"summary",...} line per strategy to the file.
GB = 1e9 bytes.
"""
import json
import statistics
import sys

# The bare program whose data path each strategy uses.
COUNTERPART = {
    "splice": "splice_pipe1m",
    "sendfile": "sendfile",
    "mmap_copy": "mmap_write_1m",
    "buffered": "pread_write_1m",
}
BARE_ORDER = ["sendfile", "splice_pipe1m", "splice_pipe64k", "mmap_write_1m", "pread_write_1m",
              "pread_write_64k", "tcp_hot_buffer"]


def load(path):
    records = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                records.append(json.loads(line))
    return records


def bare_limits(records):
    """test -> (GB/s, sender CPU-s/GB); medians if present, else the median of the runs."""
    runs, medians = {}, {}
    for r in records:
        if r.get("bench") != "limits" or "gb_s" not in r:
            continue
        key = r["test"]
        value = (r["gb_s"], r["sender_cpu_s_per_gb"], r.get("system_cpu_s_per_gb"))
        if r.get("stat") == "median":
            medians[key] = value
        else:
            runs.setdefault(key, []).append(value)
    def med(vs, i):
        xs = [v[i] for v in vs if v[i] is not None]
        return statistics.median(xs) if xs else None
    out = {k: (med(vs, 0), med(vs, 1), med(vs, 2)) for k, vs in runs.items()}
    out.update(medians)
    return out


def fetch_results(records):
    """strategy -> dict of medians over its runs."""
    by = {}
    for r in records:
        if r.get("bench") == "loadgen" and r.get("mode") == "fetch" and "strategy" in r:
            by.setdefault(r["strategy"], []).append(r)
    out = {}
    for strategy, rs in by.items():
        med = lambda k: statistics.median(x[k] for x in rs if x.get(k) is not None) if any(
            x.get(k) is not None for x in rs) else None
        out[strategy] = {"runs": len(rs), "gb_s": med("gb_s"), "broker_cpu_s_per_gb": med("broker_cpu_s_per_gb"),
                         "client_cpu_s_per_gb": med("client_cpu_s_per_gb"), "bytes": med("bytes"),
                         "system_cpu_s_per_gb": med("system_cpu_s_per_gb"),
                         "lat_p50_us": med("lat_p50_us"), "lat_p99_us": med("lat_p99_us"),
                         "all_complete": all(x.get("complete") for x in rs)}
    return out


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(x, spec=".3f"):
    return "-" if x is None else format(x, spec)


def main():
    path = sys.argv[1]
    records = load(path)
    bare = bare_limits(records)
    fetch = fetch_results(records)
    fill = [r for r in records if r.get("bench") == "loadgen" and r.get("mode") == "produce"]

    print("\nBare limits (sluice-limits: one sender thread, one receiver thread; medians)")
    print(f"  {'test':<18} {'GB/s':>7} {'sender CPU-s/GB':>16} {'machine CPU-s/GB':>17}")
    for test in BARE_ORDER:
        if test in bare:
            print(f"  {test:<18} {bare[test][0]:>7.2f} {bare[test][1]:>16.3f} {fmt(bare[test][2]):>17}")
    if fill:
        f = fill[-1]
        print(f"\nFill (produce, acks={f.get('acks')}): {f['bytes'] / 1e9:.2f} GB at {f['gb_s']:.2f} GB/s, "
              f"broker {fmt(f.get('broker_cpu_s_per_gb'))} CPU-s/GB, p99 {fmt(f.get('lat_p99_us'), '.0f')} us")

    print("\nBroker fetch of a page-cached partition (sluice-loadgen fetch; medians of runs)")
    print(f"  {'strategy':<10} {'runs':>4} {'GB/s':>6} {'broker CPU-s/GB':>15} {'client CPU-s/GB':>15} "
          f"{'machine':>8}   {'vs bare':<14} {'tput ratio':>10} {'CPU ratio':>9} {'machine ratio':>13}")
    with open(path, "a") as out:
        for strategy, m in fetch.items():
            counterpart = COUNTERPART.get(strategy)
            b = bare.get(counterpart)
            t_ratio = ratio(m["gb_s"], b[0]) if b else None
            c_ratio = ratio(m["broker_cpu_s_per_gb"], b[1]) if b else None
            s_ratio = ratio(m["system_cpu_s_per_gb"], b[2]) if b else None
            print(f"  {strategy:<10} {m['runs']:>4} {fmt(m['gb_s'], '.2f'):>6} {fmt(m['broker_cpu_s_per_gb']):>15} "
                  f"{fmt(m['client_cpu_s_per_gb']):>15} {fmt(m['system_cpu_s_per_gb']):>8}   {counterpart or '-':<14} "
                  f"{fmt(t_ratio, '.2f'):>10} {fmt(c_ratio, '.2f'):>9} {fmt(s_ratio, '.2f'):>13}"
                  f"{'' if m['all_complete'] else '  (INCOMPLETE RUNS)'}")
            summary = {"bench": "fetch_bench", "stat": "summary", "strategy": strategy, **m,
                       "bare_test": counterpart, "bare_gb_s": b[0] if b else None,
                       "bare_sender_cpu_s_per_gb": b[1] if b else None,
                       "bare_system_cpu_s_per_gb": b[2] if b else None,
                       "throughput_ratio": t_ratio, "cpu_ratio": c_ratio, "system_cpu_ratio": s_ratio}
            out.write(json.dumps(summary) + "\n")

    if fetch and bare:
        tests = [t for t in BARE_ORDER if t in bare and t != "tcp_hot_buffer"]
        print("\nThroughput ratio / CPU ratio of each strategy against each bare limit")
        print("  " + f"{'strategy':<10}" + "".join(f" {t:>16}" for t in tests))
        for strategy, m in fetch.items():
            cells = [f"{fmt(ratio(m['gb_s'], bare[t][0]), '.2f')}/{fmt(ratio(m['broker_cpu_s_per_gb'], bare[t][1]), '.2f')}"
                     for t in tests]
            print("  " + f"{strategy:<10}" + "".join(f" {c:>16}" for c in cells))
    loads = [r["load_average"] for r in records if isinstance(r.get("load_average"), (int, float))]
    if loads:
        print(f"\n1-min load average seen during the runs: {min(loads):.2f} .. {max(loads):.2f}"
              + ("  (the machine was busy: treat the numbers as pessimistic)" if max(loads) > 1.5 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
