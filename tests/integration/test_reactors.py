"""reactor.threads=2: connections spread over both reactors (the reactor whose socket accepted
hands the descriptor to the one with fewer open connections), partitions spread over both
shards, and confluent-kafka produces and consumes every partition through them.

What we observe: the broker's per-shard stats line (every reactor.stats.interval.ms, and at
shutdown) and the CPU time of its reactor threads, which are named sluice-shardN
(/proc/PID/task/*/comm and schedstat)."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import clients as c
import sluice_harness as h

STATS = re.compile(r"shard (\d+) (now|at shutdown): (\d+) connections open \((\d+) accepted here, "
                   r"(\d+) handed to other shards, (\d+) taken from them\), (\d+) partitions, "
                   r"(\d+) hand-offs of request work to other shards")
LISTENING = re.compile(r"shard (\d+) listening on 127\.0\.0\.1:(\d+)")
TWO_REACTORS = {"reactor.threads": "2", "reactor.stats.interval.ms": "100"}


def latest_stats(broker: h.Broker) -> dict[int, dict[str, int]]:
    """The newest stats line of each shard."""
    out: dict[int, dict[str, int]] = {}
    for m in STATS.finditer(broker.stderr_text()):
        out[int(m.group(1))] = {"open": int(m.group(3)), "accepted": int(m.group(4)), "handed": int(m.group(5)),
                                "adopted": int(m.group(6)), "partitions": int(m.group(7)),
                                "invokes": int(m.group(8))}
    return out


def shard_cpu_ns(pid: int) -> dict[str, int]:
    """CPU time (ns, from schedstat) of each reactor thread of the broker."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            if name.startswith("sluice-shard"):
                out[name] = int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def test_connections_spread_evenly_over_both_reactors(make_broker):
    broker = make_broker(overrides=TWO_REACTORS)
    broker.start()
    h.wait_until(lambda: len(latest_stats(broker)) == 2, 10, "a stats line from both shards")
    socks = []
    try:
        for _ in range(16):
            socks.append(socket.create_connection(("127.0.0.1", broker.port), timeout=5))

        def spread():
            st = latest_stats(broker)
            opened = [st[i]["open"] for i in (0, 1)]
            return sum(opened) >= 16 and abs(opened[0] - opened[1]) <= 2

        # The kernel's SO_REUSEPORT hash alone leaves 16 connections 3 or more apart about
        # half the time; the balancer keeps them within one (two if two accepts race).
        h.wait_until(spread, 10, f"16 connections spread over both shards (stats: {latest_stats(broker)})")
        st = latest_stats(broker)
        assert st[0]["adopted"] + st[1]["adopted"] >= 1, f"no socket was handed between reactors: {st}"
        assert st[0]["handed"] + st[1]["handed"] == st[0]["adopted"] + st[1]["adopted"], st
    finally:
        for s in socks:
            s.close()
    h.wait_until(lambda: sum(v["open"] for v in latest_stats(broker).values()) <= 2, 10,
                 "closed connections to leave the shards' counts")
    # A second wave is balanced too: closed connections were released from the counts.
    socks = [socket.create_connection(("127.0.0.1", broker.port), timeout=5) for _ in range(8)]
    try:
        h.wait_until(lambda: sum(v["open"] for v in latest_stats(broker).values()) >= 8
                     and abs(latest_stats(broker)[0]["open"] - latest_stats(broker)[1]["open"]) <= 2, 10,
                     f"8 more connections spread over both shards ({latest_stats(broker)})")
    finally:
        for s in socks:
            s.close()


def test_confluent_kafka_across_both_shards(make_broker):
    broker = make_broker(overrides=TWO_REACTORS)
    broker.start()
    topic, partitions = "across-shards", 12
    from confluent_kafka.admin import NewTopic
    admin = broker.admin()
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    futures[topic].result(timeout=30)
    del admin
    cpu_before = shard_cpu_ns(broker.pid)
    assert sorted(cpu_before) == ["sluice-shard0", "sluice-shard1"], cpu_before

    records = c.make_records(12000, seed=23, big_every=500, big_sizes=[200 * 1024])
    positions = c.ck_produce(broker.bootstrap, topic, records, {"acks": "all", "batch.num.messages": 1000})
    counts = c.partition_counts(positions)
    assert set(counts) == set(range(partitions)), f"keys should reach every partition: {counts}"
    consumed = c.ck_consume(broker.bootstrap, topic, counts)
    c.verify(records, positions, consumed)

    # Both reactor threads worked: the topic's partitions are split 6/6 between the shards.
    cpu_after = shard_cpu_ns(broker.pid)
    used_ms = {k: (cpu_after[k] - cpu_before[k]) / 1e6 for k in cpu_before}
    assert all(ms >= 2 for ms in used_ms.values()), f"a reactor thread did (almost) nothing: {used_ms} ms"
    h.wait_until(lambda: all(v["partitions"] >= partitions // 2 for v in latest_stats(broker).values()), 10,
                 f"both shards to own half of the {partitions} partitions ({latest_stats(broker)})")
    # Every connection's requests name partitions of both shards: some work crossed over.
    assert sum(v["invokes"] for v in latest_stats(broker).values()) > 0, latest_stats(broker)
    assert broker.stop() == 0
    final = {int(m.group(1)): m for m in STATS.finditer(broker.stderr_text()) if m.group(2) == "at shutdown"}
    assert sorted(final) == [0, 1], "one shutdown stats line per shard"
    served = {i: int(m.group(4)) - int(m.group(5)) + int(m.group(6)) for i, m in final.items()}
    assert all(n >= 1 for n in served.values()), f"connections served per shard: {served}"


def test_port_zero_is_one_port_for_every_reactor(make_broker):
    """listeners=...:0: shard 0 binds a kernel-chosen port and every other shard binds the
    same one (SO_REUSEPORT), so the broker serves one port whichever reactor accepts."""
    broker = make_broker(overrides=TWO_REACTORS, properties={"listeners": "PLAINTEXT://127.0.0.1:0"})
    broker.start(wait=False)
    h.wait_until(lambda: len(LISTENING.findall(broker.stderr_text())) >= 2 or not broker.running(), 20,
                 "both shards to listen")
    found = dict(LISTENING.findall(broker.stderr_text()))
    assert sorted(found) == ["0", "1"], broker.stderr_text()[-2000:]
    assert found["0"] == found["1"] and int(found["0"]) != 0, f"shards listen on different ports: {found}"
    port = int(found["0"])
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(6)]
    try:
        h.wait_until(lambda: sum(v["open"] for v in latest_stats(broker).values()) >= 6, 10,
                     f"6 connections on port {port} ({latest_stats(broker)})")
    finally:
        for s in socks:
            s.close()


def test_stats_interval_must_be_a_non_negative_integer(tmp_path, zk):
    props = {"broker.id": "0", "log.dirs": str(tmp_path / "data"), "zookeeper.connect": f"{zk.connect}/bad-stats",
             "listeners": f"PLAINTEXT://127.0.0.1:{h.free_port()}"}
    for bad in ("-1", "soon"):
        done = h.run_broker_once(tmp_path / f"run{bad}", props, [f"reactor.stats.interval.ms={bad}"])
        assert done.returncode != 0
        assert b"reactor.stats.interval.ms" in done.stderr, done.stderr[-500:]


IN_PLACE = re.compile(r"shard (\d+) at shutdown: .*?, (\d+) large frames received in place \((\d+) bytes\)")


def test_large_produce_requests_are_received_in_place(make_broker):
    """A Produce frame with >= socket.receive.direct.min.bytes still to come is received
    straight into its own buffer (net/connection.h). confluent-kafka sends 1 MB batches, some
    records larger than a receive buffer; every byte must come back as sent, with the in-place
    path on (the default) and off."""
    records = c.make_records(3000, seed=41, big_every=100, big_sizes=[70 * 1024, 300 * 1024])
    records += [c.Rec(f"bulk-{i}".encode(), bytes([i % 251]) * 4000, ()) for i in range(3000)]
    conf = {"acks": "all", "batch.size": 1000000, "linger.ms": 200, "compression.type": "none"}
    for min_bytes, expect_in_place in (("65536", True), ("0", False)):
        broker = make_broker(overrides={"socket.receive.direct.min.bytes": min_bytes})
        broker.start()
        topic = f"in-place-{min_bytes}"
        positions = c.ck_produce(broker.bootstrap, topic, records, conf)
        counts = c.partition_counts(positions)
        consumed = c.ck_consume(broker.bootstrap, topic, counts)
        c.verify(records, positions, consumed)
        assert broker.stop() == 0
        final = [(int(m.group(2)), int(m.group(3))) for m in IN_PLACE.finditer(broker.stderr_text())]
        assert final, broker.stderr_text()[-2000:]
        frames, nbytes = sum(f for f, _ in final), sum(b for _, b in final)
        print(f"in place with min {min_bytes}: {frames} frames, {nbytes} bytes")
        if expect_in_place:
            # About 17 MB of records in frames of up to a MB; how many of them go in place
            # depends on how much the kernel had buffered when each began (net/connection.h),
            # but the 300 KiB records alone make several frames that must.
            assert frames >= 2 and nbytes >= 1_000_000, final
        else:
            assert frames == 0 and nbytes == 0, final
