#!/usr/bin/python3
"""Scale check: one broker holding 10,000 partitions.

Starts a throwaway ZooKeeper and build/sluice (tests/integration/sluice_harness.py),
creates TOPICS x PARTITIONS partitions through the protocol (AdminClient.create_topics),
produces a few records to every partition, then measures with the broker idle:
  - RSS / VmHWM / VmSize (/proc/<pid>/status), open fds (/proc/<pid>/fd), mappings
    (/proc/<pid>/maps lines; vm.max_map_count is the ceiling);
  - startup time after a clean shutdown (SIGTERM) and after kill -9, each as
    "Metadata answered" and "every partition log loaded" (the broker's
    "storage <dir>: loaded N segment(s)" lines since the restart), and that every
    partition still holds its records (a ListOffsets sweep with the high watermark).
Writes bench/results/scale-<date>-<HHMM>.md (UTC) and prints the JSON figures on stdout.

    /usr/bin/python3 bench/scale/scale_partitions.py [--build build] [--topics 100]
        [--partitions 100] [--records 3] [--nofile 0]

--nofile N lowers RLIMIT_NOFILE for the broker (inherited from this process) to show
whether it runs under a modest `ulimit -n`. Every wait is bounded.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import sluice_harness as h  # noqa: E402


def proc_figures(pid: int) -> dict:
    status = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        status[k] = v.strip()
    kb = lambda k: int(status.get(k, "0 kB").split()[0])  # noqa: E731
    return {
        "rss_mb": round(kb("VmRSS") / 1024, 1),
        "hwm_mb": round(kb("VmHWM") / 1024, 1),
        "vmsize_gb": round(kb("VmSize") / 1024 / 1024, 1),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "maps": sum(1 for _ in open(f"/proc/{pid}/maps")),
        "threads": int(status.get("Threads", "0")),
    }


def loaded_lines(broker: h.Broker, since: int) -> int:
    text = broker.stderr_path.read_bytes()[since:]
    return text.count(b": loaded ")


def create_topics(broker: h.Broker, topics: int, partitions: int) -> float:
    from confluent_kafka.admin import NewTopic
    # One topic per request: the broker writes every partition's znodes before answering.
    admin = broker.admin(**{"socket.timeout.ms": 300000})
    t0 = time.monotonic()
    names = [f"scale-{i:03d}" for i in range(topics)]
    for chunk in range(0, topics, 1):
        futs = admin.create_topics([NewTopic(n, partitions, 1) for n in names[chunk:chunk + 1]],
                                   operation_timeout=120, request_timeout=300)
        for name, f in futs.items():
            f.result(timeout=180)
    return time.monotonic() - t0


def produce_all(broker: h.Broker, topics: int, partitions: int, records: int) -> float:
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20, "acks": "all",
                  "queue.buffering.max.messages": 2000000, "log_level": 0})
    errors = []
    t0 = time.monotonic()
    for t in range(topics):
        for part in range(partitions):
            for r in range(records):
                p.produce(f"scale-{t:03d}", value=f"v{r}".encode(), key=f"k{r}".encode(), partition=part,
                          on_delivery=lambda err, msg: err and errors.append(err))
        p.poll(0)
    left = p.flush(300)
    if left or errors:
        raise RuntimeError(f"produce: {left} undelivered, {len(errors)} errors (first: {errors[:1]})")
    return time.monotonic() - t0


def check_offsets(broker: h.Broker, topics: int, partitions: int, records: int) -> int:
    """Partitions whose high watermark is not `records` (should be 0)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "scale-check", "log_level": 0})
    bad = 0
    try:
        for t in range(topics):
            for part in range(partitions):
                lo, hi = c.get_watermark_offsets(TopicPartition(f"scale-{t:03d}", part), timeout=20)
                bad += hi != records
    finally:
        c.close()
    return bad


def timed_start(broker: h.Broker, total: int, timeout_s: float) -> dict:
    since = broker.stderr_path.stat().st_size if broker.stderr_path.exists() else 0
    t0 = time.monotonic()
    broker.start(wait=True, timeout_s=timeout_s)
    ready = time.monotonic() - t0
    h.wait_until(lambda: loaded_lines(broker, since) >= total, timeout_s, f"{total} logs loaded",
                 0.1, broker._check_alive)
    return {"metadata_ready_s": round(ready, 2), "all_logs_loaded_s": round(time.monotonic() - t0, 2)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--topics", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=100)
    ap.add_argument("--records", type=int, default=3)
    ap.add_argument("--nofile", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "bench" / "results"))
    args = ap.parse_args()
    os.environ["SLUICE_BUILD"] = args.build
    h.install_signal_cleanup()
    if args.nofile:
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))
    total = args.topics * args.partitions
    fig: dict = {"partitions": total, "topics": args.topics, "records_per_partition": args.records,
                 "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                 "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="sluice-scale-") as work:
        zk = h.ZooKeeper(Path(work) / "zk")
        zk.start()
        broker = h.Broker(Path(work) / "broker", zk)
        ok = False
        try:
            broker.start(timeout_s=60)
            fig["empty_broker"] = proc_figures(broker.pid)
            fig["create_topics_s"] = round(create_topics(broker, args.topics, args.partitions), 2)
            fig["after_create"] = proc_figures(broker.pid)
            fig["produce_s"] = round(produce_all(broker, args.topics, args.partitions, args.records), 2)
            time.sleep(2)  # idle: let request buffers go back
            fig["idle_after_produce"] = proc_figures(broker.pid)
            t_stop = time.monotonic()
            code = broker.stop(timeout_s=900)
            fig["clean_stop_s"] = round(time.monotonic() - t_stop, 2)
            fig["clean_stop_exit"] = code
            fig["restart_after_clean_stop"] = timed_start(broker, total, 300)
            fig["idle_after_clean_restart"] = proc_figures(broker.pid)
            fig["bad_partitions_after_clean_restart"] = check_offsets(broker, args.topics, args.partitions,
                                                                     args.records)
            broker.kill9()
            fig["restart_after_kill9"] = timed_start(broker, total, 300)
            fig["idle_after_kill9_restart"] = proc_figures(broker.pid)
            fig["bad_partitions_after_kill9"] = check_offsets(broker, args.topics, args.partitions, args.records)
            base = fig["empty_broker"]["rss_mb"]
            fig["rss_kb_per_idle_partition"] = round(
                (fig["idle_after_clean_restart"]["rss_mb"] - base) * 1024 / total, 1)
            fig["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
            broker.stop(timeout_s=900)
            ok = True
        finally:
            if broker.running():
                broker.kill9()
            zk.stop()
            if not ok:
                fig["incomplete"] = True
                print(json.dumps(fig), flush=True)
                write_report(fig, Path(args.out))
    print(json.dumps(fig))
    write_report(fig, Path(args.out))
    return 0


def write_report(fig: dict, out: Path) -> None:
    try:
        _write_report(fig, out)
    except KeyError as e:  # an incomplete run: keep the raw figures
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"scale-{_stamp()}.md"
        path.write_text(f"# Scale run (incomplete: {e!r} missing)\n\n```json\n{json.dumps(fig, indent=1)}\n```\n")
        print(f"wrote {path} (incomplete)", file=sys.stderr)


def _stamp() -> str:
    """UTC date and time, so that every run keeps its own report."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d-%H%M")


def _write_report(fig: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    path = out / f"scale-{_stamp()}.md"
    lines = [f"# Scale: {fig['partitions']} partitions on one broker ({day})", "",
             f"{fig['topics']} topics x {fig['partitions'] // fig['topics']} partitions, created with "
             f"AdminClient.create_topics; {fig['records_per_partition']} records produced to each; "
             f"RLIMIT_NOFILE {fig['nofile']}; `bench/scale/scale_partitions.py` on {os.cpu_count()} cores.", "",
             "| state | RSS MB | peak RSS MB | VmSize GB | open fds | mappings | threads |",
             "|---|---|---|---|---|---|---|"]
    for key in ("empty_broker", "after_create", "idle_after_produce", "idle_after_clean_restart",
                "idle_after_kill9_restart"):
        f = fig[key]
        lines.append(f"| {key} | {f['rss_mb']} | {f['hwm_mb']} | {f['vmsize_gb']} | {f['fds']} | {f['maps']} | "
                     f"{f['threads']} |")
    lines += ["", "| step | seconds |", "|---|---|",
              f"| create {fig['partitions']} partitions | {fig['create_topics_s']} |",
              f"| produce {fig['partitions'] * fig['records_per_partition']} records | {fig['produce_s']} |"]
    for key in ("restart_after_clean_stop", "restart_after_kill9"):
        r = fig[key]
        lines.append(f"| {key}: Metadata answered | {r['metadata_ready_s']} |")
        lines.append(f"| {key}: every log loaded | {r['all_logs_loaded_s']} |")
    lines += ["", f"- RSS per idle partition (after clean restart, minus the empty broker): "
              f"{fig['rss_kb_per_idle_partition']} KiB",
              f"- partitions with a wrong high watermark after clean restart / kill -9: "
              f"{fig['bad_partitions_after_clean_restart']} / {fig['bad_partitions_after_kill9']}",
              f"- clean stop (flush + close of every log, checkpoints): {fig['clean_stop_s']} s, "
              f"exit status {fig['clean_stop_exit']}", "",
              "```json", json.dumps(fig, indent=1), "```", ""]
    path.write_text("\n".join(lines))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
