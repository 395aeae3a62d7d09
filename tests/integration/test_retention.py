"""Retention through the broker, beyond what test_configs.py covers (a live retention.ms
change, DeleteRecords): retention.bytes deletes old segments and moves the log start
(ListOffsets earliest), a fetch below it is OFFSET_OUT_OF_RANGE, `.deleted` files appear
and are unlinked after file.delete.delay.ms -- also when no retention pass follows --, the
periodic log-start-offset-checkpoint survives a kill -9, and 2000 partitions are served
under `ulimit -n 1024` (the segment descriptor budget).

Clients: confluent-kafka 1.7 (produce, consume, watermarks), raw Fetch v4 frames."""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import pytest

import clients as c
import kwire as kw
import sluice_harness as h
from test_configs import ck_create, delete_records_v0, watermarks

ERR_NONE = 0
ERR_OFFSET_OUT_OF_RANGE = 1


def fetch_v4(port: int, topic: str, partition: int, offset: int) -> tuple[int, int, int]:
    """One Fetch v4 for one partition: (error code, high watermark, record bytes)."""
    part = kw.i32(partition) + struct.pack(">q", offset) + kw.i32(1 << 20)
    body = (kw.i32(-1) + kw.i32(0) + kw.i32(0) + kw.i32(1 << 20) + kw.i8(0)
            + kw.array([kw.string(topic) + kw.array([part])]))
    with kw.Conn(port) as conn:
        r = kw.Reader(conn.call(1, 4, body))
    r.i32()  # throttle

    def partition_entry(p):
        index, error = p.i32(), p.i16()
        hw, _lso = struct.unpack(">qq", p.take(16))
        p.array(lambda a: a.take(16))  # aborted transactions
        (size,) = struct.unpack(">i", p.take(4))
        if size > 0:
            p.take(size)
        return index, error, hw, max(size, 0)
    topics = r.array(lambda t: (t.string(), t.array(partition_entry)))
    r.done()
    [(name, [(index, error, hw, size)])] = topics
    assert (name, index) == (topic, partition)
    return error, hw, size


def part_dir(broker, topic: str, partition: int = 0) -> Path:
    return broker.log_dir / f"{topic}-{partition}"


def deleted_files(broker, topic: str) -> list[str]:
    return sorted(p.name for p in part_dir(broker, topic).glob("*.deleted"))


def live_log_bytes(broker, topic: str) -> int:
    return sum(p.stat().st_size for p in part_dir(broker, topic).glob("*.log"))


def watch_deleted_files(broker, topic: str, timeout_s: float) -> tuple[float, float]:
    """Polls until `.deleted` files appeared and then vanished; returns (first seen, gone)
    as monotonic times."""
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        now = time.monotonic()
        present = deleted_files(broker, topic)
        if present and seen is None:
            seen = now
        if seen is not None and not present:
            return seen, now
        time.sleep(0.05)
    raise AssertionError(f".deleted files {'never appeared' if seen is None else 'never went'} "
                         f"within {timeout_s}s")


def test_retention_bytes_moves_log_start_and_survives_kill9(make_broker):
    broker = make_broker(properties={"log.retention.check.interval.ms": "300",
                                     "log.flush.start.offset.checkpoint.interval.ms": "300"})
    broker.start()
    topic = "ret-bytes"
    ck_create(broker, topic, {"segment.bytes": "4096", "retention.bytes": "8192", "file.delete.delay.ms": "2000"})
    records = c.make_records(300, seed=21, with_headers=False)
    positions = c.ck_produce(broker.bootstrap, topic, records, {"linger.ms": 0, "batch.num.messages": 10},
                             partition=0)
    assert [off for _, off in positions] == list(range(300))

    # Retention renames the old segments to .deleted and unlinks them 2 s later.
    seen, gone = watch_deleted_files(broker, topic, 20)
    assert gone - seen >= 1.0, f".deleted files went after {gone - seen:.2f}s, before file.delete.delay.ms"
    low, high = watermarks(broker, topic)  # ListOffsets earliest / latest
    assert 0 < low < 300 and high == 300
    assert live_log_bytes(broker, topic) <= 8192 + 4096, "retention.bytes keeps at most one extra segment"

    # Below the log start: OFFSET_OUT_OF_RANGE; at it: data.
    assert fetch_v4(broker.port, topic, 0, 0)[0] == ERR_OFFSET_OUT_OF_RANGE
    assert fetch_v4(broker.port, topic, 0, low - 1)[0] == ERR_OFFSET_OUT_OF_RANGE
    err, hw, size = fetch_v4(broker.port, topic, 0, low)
    assert (err, hw) == (ERR_NONE, 300) and size > 0
    got = c.ck_consume(broker.bootstrap, topic, {0: 300 - low}, timeout_s=30,
                       conf={"auto.offset.reset": "earliest"})
    assert [m.offset for m in got[0]] == list(range(low, 300))
    assert [m.value for m in got[0]] == [r.value for r in records[low:]]

    # A consumer that insists on offset 0 with auto.offset.reset=error hears about it.
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "itest-oor", "log_level": 0,
                         "auto.offset.reset": "error", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline, error = time.monotonic() + 20, None
        while error is None and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is not None:
                assert m.error() is not None, f"read offset {m.offset()} below the log start {low}"
                error = m.error()
        assert error is not None and "out of range" in error.str().lower(), error
    finally:
        consumer.close()

    # The periodic checkpoint (not only shutdown) carries the new log start: a kill -9 keeps it.
    checkpoint = broker.log_dir / "log-start-offset-checkpoint"
    h.wait_until(lambda: checkpoint.exists() and f"{topic} 0 {low}" in checkpoint.read_text().splitlines(),
                 20, "the log start in log-start-offset-checkpoint")
    broker.kill9()
    broker.start()
    assert watermarks(broker, topic) == (low, 300)
    assert fetch_v4(broker.port, topic, 0, low - 1)[0] == ERR_OFFSET_OUT_OF_RANGE


def test_deleted_files_go_without_another_retention_pass(make_broker):
    # No retention pass for five minutes: only the duty timer can unlink the files. The
    # delay comes from the broker-level synonym log.segment.delete.delay.ms.
    broker = make_broker(properties={"log.retention.check.interval.ms": "300000",
                                     "log.segment.delete.delay.ms": "1500"})
    broker.start()
    topic = "ret-delay"
    ck_create(broker, topic, {"segment.bytes": "4096"})
    records = c.make_records(200, seed=22, with_headers=False)
    c.ck_produce(broker.bootstrap, topic, records, {"linger.ms": 0, "batch.num.messages": 10}, partition=0)
    segments_before = len(list(part_dir(broker, topic).glob("*.log")))
    assert delete_records_v0(broker.port, topic, 0, 150) == (0, 150)
    assert deleted_files(broker, topic), "DeleteRecords renames whole segments below the new start to .deleted"
    assert len(list(part_dir(broker, topic).glob("*.log"))) < segments_before
    start = time.monotonic()
    h.wait_until(lambda: not deleted_files(broker, topic), 15, ".deleted files to be unlinked", 0.05)
    assert time.monotonic() - start >= 1.0, "unlinked before file.delete.delay.ms"
    assert "removed" in broker.stderr_text() and "after file.delete.delay.ms" in broker.stderr_text()
    assert watermarks(broker, topic) == (150, 200)


@pytest.mark.parametrize("strategy", ["mmap_copy", "splice"])
def test_2000_partitions_under_ulimit_1024(make_broker, strategy):
    # mmap_copy: a fetch touching all 2000 partitions sends their (resident) bytes from
    # the mappings. splice (the default) reopens a descriptor per partition inside one
    # response, beyond what any budget can release while the response holds the
    # segments (see broker/maintenance/fd_budget.h); when open() or pipe() hits EMFILE
    # the connection sends those pieces from the mapping instead (net/connection.h), so
    # clients still get every record.
    broker = make_broker(overrides={"fetch.send.strategy": strategy})
    plain_argv = broker.argv
    broker.argv = lambda: ["prlimit", "--nofile=1024:1024", "--"] + plain_argv()
    broker.start()
    limits = Path(f"/proc/{broker.pid}/limits").read_text()
    assert any(line.startswith("Max open files") and line.split()[3:5] == ["1024", "1024"]
               for line in limits.splitlines()), limits
    started = time.monotonic()
    topic, n = "many", 2000
    ck_create(broker, topic, {"segment.bytes": str(1 << 20), "segment.index.bytes": "65536"}, partitions=n)

    def all_led():
        md = broker.metadata(topic, timeout_s=10).topics[topic]
        return md.error is None and len(md.partitions) == n and all(p.leader >= 0 for p in md.partitions.values())
    h.wait_until(all_led, 40, f"{n} partitions with a leader")

    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20, "log_level": 3,
                  "message.timeout.ms": 60000})
    errors = []
    for i in range(n):
        p.produce(topic, key=f"k{i}".encode(), value=f"value-{i}".encode(), partition=i,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
        p.poll(0)
    assert p.flush(60) == 0 and not errors, errors[:3]
    got = c.ck_consume(broker.bootstrap, topic, {i: 1 for i in range(n)}, timeout_s=60)
    assert all(got[i][0].value == f"value-{i}".encode() and got[i][0].offset == 0 for i in range(n))

    fds = len(os.listdir(f"/proc/{broker.pid}/fd"))
    assert fds < 1024, f"{fds} descriptors open"
    # After the next sweep the budget (512) holds again.
    h.wait_until(lambda: len(os.listdir(f"/proc/{broker.pid}/fd")) < 512 + 100, 10,
                 "open descriptors back within the budget")
    log = broker.stderr_text()
    assert "segment descriptor budget: 512" in log, "half the soft limit by default"
    if strategy == "mmap_copy":
        assert "Too many open files" not in log
    assert broker.running()
    print(f"2000 partitions under ulimit -n 1024: {fds} descriptors open, {time.monotonic() - started:.1f}s")
    assert time.monotonic() - started < 90
