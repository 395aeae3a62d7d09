#!/usr/bin/python3
"""Rebalance timing: join-to-stable of a three-member consumer group.

Starts a throwaway ZooKeeper and build/sluice (tests/integration/sluice_harness.py) once
per value of group.initial.rebalance.delay.ms (0 and Kafka's default 3000), creates a
6-partition topic, and then, RUNS times, starts three confluent-kafka consumers of a fresh
group at once and measures:

  client: from the moment the three subscribe() calls were made to the moment the last of
          the three on_assign callbacks ran (every member holds its assignment);
  broker: from the broker's first "preparing to rebalance" line for the group (the first
          JoinGroup) to its "generation N is stable" line for the first generation with
          all three members (both timestamps from the broker's log, ms resolution).

The consumers use librdkafka's defaults apart from the ones named in the report
(heartbeat.interval.ms decides how soon an already-joined member learns that a later
member started a rebalance, so it is measured at the default 3000 and at 500).
Writes bench/results/groups-<date>.md (or --out) and prints one JSON object per run.

    /usr/bin/python3 bench/groups/rebalance_timing.py [--build build] [--runs 5]
"""
from __future__ import annotations

import argparse
import datetime
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import sluice_harness as h  # noqa: E402

from confluent_kafka import Consumer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

LOG_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z")


def log_time(line: str) -> float | None:
    m = LOG_TS.match(line)
    if not m:
        return None
    return datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def broker_join_to_stable(log: str, group: str, members: int) -> float | None:
    """Seconds from the group's first 'preparing to rebalance' to the 'is stable' line
    of the first generation with `members` members, from the broker's log."""
    start = full_gen = None
    for line in log.splitlines():
        if f"group {group}:" not in line:
            continue
        if start is None and "preparing to rebalance" in line:
            start = log_time(line)
        m = re.search(r"generation (\d+) with (\d+) members", line)
        if m and int(m.group(2)) == members and full_gen is None:
            full_gen = m.group(1)
        if full_gen is not None and f"generation {full_gen} is stable" in line:
            end = log_time(line)
            return None if start is None or end is None else end - start
    return None


def one_run(bootstrap: str, topic: str, group: str, heartbeat_ms: int, timeout_s: float = 60) -> float:
    assigned_at: dict[int, float] = {}
    lock = threading.Lock()
    consumers = []
    for i in range(3):
        def on_assign(_c, parts, i=i):
            if parts:
                with lock:
                    assigned_at.setdefault(i, time.monotonic())
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "heartbeat.interval.ms": heartbeat_ms,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False, "log_level": 0})
        consumers.append((c, on_assign))
    stop = threading.Event()

    def poll(c):
        while not stop.is_set():
            c.poll(0.05)

    t0 = time.monotonic()
    for c, cb in consumers:
        c.subscribe([topic], on_assign=cb)
    threads = [threading.Thread(target=poll, args=(c,)) for c, _ in consumers]
    for t in threads:
        t.start()
    deadline = t0 + timeout_s
    while time.monotonic() < deadline:
        with lock:
            if len(assigned_at) == 3:
                break
        time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join()
    for c, _ in consumers:
        c.close()
    if len(assigned_at) < 3:
        raise RuntimeError(f"group {group}: only {len(assigned_at)} of 3 members assigned in {timeout_s}s")
    return max(assigned_at.values()) - t0


def measure(build: Path, workdir: Path, delay_ms: int, heartbeats: list[int], runs: int) -> list[dict]:
    zk = h.ZooKeeper(workdir / f"zk-{delay_ms}")
    zk.workdir.mkdir(parents=True, exist_ok=True)
    zk.start()
    b = h.Broker(workdir / f"broker-{delay_ms}", zk, overrides={"group.initial.rebalance.delay.ms": str(delay_ms)})
    out = []
    try:
        b.start()
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("timing6", 6, 1)])["timing6"].result(30)
        # Warm up: creates __consumer_offsets and loads it before anything is timed.
        one_run(b.bootstrap, "timing6", "warmup", 500)
        for hb in heartbeats:
            for r in range(runs):
                group = f"t-{delay_ms}-{hb}-{r}"
                client_s = one_run(b.bootstrap, "timing6", group, hb)
                broker_s = broker_join_to_stable(b.stderr_text(), group, 3)
                rec = {"initial_rebalance_delay_ms": delay_ms, "heartbeat_interval_ms": hb, "run": r,
                       "client_join_to_assigned_ms": round(client_s * 1000, 1),
                       "broker_join_to_stable_ms": None if broker_s is None else round(broker_s * 1000, 1)}
                print(json.dumps(rec), flush=True)
                out.append(rec)
    finally:
        if b.running():
            b.stop()
        zk.stop()
    return out


def report(records: list[dict], runs: int, path: Path) -> None:
    lines = [f"# Consumer-group rebalance timing ({datetime.date.today().isoformat()})", "",
             "Three confluent-kafka (librdkafka "
             f"{__import__('confluent_kafka').libversion()[0]}) consumers of a fresh group start at once on a",
             "6-partition topic; one broker, `reactor.threads=2`, 2-core VM shared with other work.",
             "`client` = subscribe() of all three to the last on_assign; `broker` = the group's first",
             "\"preparing to rebalance\" (first JoinGroup) to \"generation N is stable\" for the first",
             "generation holding all three members (broker log timestamps). Median (min-max) of "
             f"{runs} runs, ms.", "",
             "| group.initial.rebalance.delay.ms | heartbeat.interval.ms | client join-to-assigned | broker join-to-stable |",
             "|---|---|---|---|"]
    keys = sorted({(r["initial_rebalance_delay_ms"], r["heartbeat_interval_ms"]) for r in records})
    for d, hb in keys:
        rs = [r for r in records if r["initial_rebalance_delay_ms"] == d and r["heartbeat_interval_ms"] == hb]
        def fmt(k):
            v = [r[k] for r in rs if r[k] is not None]
            return f"{statistics.median(v):.0f} ({min(v):.0f}-{max(v):.0f})" if v else "n/a"
        lines.append(f"| {d} | {hb} | {fmt('client_join_to_assigned_ms')} | {fmt('broker_join_to_stable_ms')} |")
    lines += ["", "Raw runs:", "", "```"] + [json.dumps(r) for r in records] + ["```", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    sys.stderr.write("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / f"groups-{datetime.date.today().isoformat()}.md"))
    args = ap.parse_args()
    import os
    os.environ["SLUICE_BUILD"] = str(Path(args.build).resolve())
    records = []
    with tempfile.TemporaryDirectory(prefix="sluice-groups-bench-") as tmp:
        for delay in (0, 3000):
            records += measure(Path(args.build), Path(tmp), delay, [3000, 500], args.runs)
    report(records, args.runs, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
