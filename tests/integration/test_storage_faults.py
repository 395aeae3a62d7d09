"""Storage faults with the real broker: kill -9 under load, damaged segments, lost or
garbage indexes, a full disk, a log directory that cannot be used.

Each test is bounded (every wait has a deadline; the whole file runs in a few minutes).
Damage is done with the broker stopped; the broker must recover what is recoverable,
say what it did in its log, and keep serving the partitions that were not damaged.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

import clients as c
import sluice_harness as h


def _batches(segment: Path) -> list[tuple[int, int, int]]:
    """(file position, base offset, total size) of each whole batch in the segment."""
    data = segment.read_bytes()
    out, pos = [], 0
    while pos + 12 <= len(data):
        base, length = struct.unpack(">qi", data[pos:pos + 12])
        if length <= 0 or pos + 12 + length > len(data):
            break
        out.append((pos, base, 12 + length))
        pos += 12 + length
    return out


def _segments(broker: h.Broker, topic: str, partition: int = 0) -> list[Path]:
    return sorted((broker.log_dir / f"{topic}-{partition}").glob("*.log"))


def _produce_batches(broker: h.Broker, topic: str, batches: int, per_batch: int, seed: int,
                     partition: int = 0) -> list:
    """Several produce calls so the segment holds several batches; returns the records."""
    records = []
    for i in range(batches):
        chunk = c.make_records(per_batch, seed=seed + i)
        c.ck_produce(broker.bootstrap, topic, chunk, partition=partition,
                     conf={"batch.num.messages": per_batch, "linger.ms": 0})
        records += chunk
    return records


def _create_topic(broker: h.Broker, topic: str, partitions: int, configs: dict | None = None) -> None:
    from confluent_kafka.admin import NewTopic
    admin = broker.admin(**{"socket.timeout.ms": 30000})  # must outlive the future
    futs = admin.create_topics([NewTopic(topic, partitions, 1, config=configs or {})],
                               operation_timeout=30, request_timeout=30)
    futs[topic].result(timeout=60)


# ---- kill -9 under load --------------------------------------------------------------------

def _produce_until_killed(broker: h.Broker, topic: str, round_no: int, kill_after_s: float):
    """Produces unique values as fast as it can from this thread while another thread
    kill -9s the broker after `kill_after_s`. Returns [(offset, value)] acknowledged."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 2,
                  "message.timeout.ms": 4000, "retries": 0, "log_level": 0,
                  "queue.buffering.max.messages": 200000})
    acked: list[tuple[int, bytes]] = []

    def on_delivery(err, msg):
        if err is None:
            acked.append((msg.offset(), msg.value()))

    killer = threading.Timer(kill_after_s, broker.kill9)
    killer.start()
    deadline = time.monotonic() + kill_after_s + 10
    i = 0
    while broker.running() and time.monotonic() < deadline and i < 100_000:
        try:
            p.produce(topic, value=f"r{round_no}-{i:08d}".encode(), partition=0, on_delivery=on_delivery)
            i += 1
        except BufferError:
            p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
    killer.join()
    p.flush(10)
    return acked


def test_kill9_during_heavy_produce_repeated(make_broker):
    broker = make_broker()
    broker.start()
    topic = "faults-kill9"
    _create_topic(broker, topic, 1)
    all_acked: list[tuple[int, bytes]] = []
    for round_no in range(5):
        acked = _produce_until_killed(broker, topic, round_no, kill_after_s=2.0 + 0.2 * round_no)
        assert acked, f"round {round_no}: nothing acknowledged before the kill"
        all_acked += acked
        broker.start(timeout_s=60)
    all_acked.sort()
    # Everything up to the last acknowledged offset must be readable (unacknowledged
    # records may also have landed: they are allowed, they just are not checked).
    end = max(o for o, _ in all_acked) + 1
    consumed = c.ck_consume(broker.bootstrap, topic, {0: end}, timeout_s=120)[0]
    by_value: dict[bytes, list[int]] = {}
    for g in consumed:
        by_value.setdefault(g.value, []).append(g.offset)
    offsets = [g.offset for g in consumed]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets), "offsets increase, no repeats"
    for off, value in all_acked:
        assert by_value.get(value) == [off], f"acknowledged {value!r} at {off}: found at {by_value.get(value)}"
    # Within each round, acknowledged records are in produce order.
    for round_no in range(5):
        mine = [v for _, v in all_acked if v.startswith(f"r{round_no}-".encode())]
        assert mine == sorted(mine), f"round {round_no} out of order"


# ---- damaged segments ----------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["truncate-random-byte", "flip-bytes-in-batch"])
def test_damaged_segment_truncated_at_first_bad_batch(make_broker, damage):
    broker = make_broker()
    broker.start()
    topic = f"faults-{damage}"
    _create_topic(broker, topic, 2)
    records = _produce_batches(broker, topic, 8, 50, seed=10)
    other = _produce_batches(broker, topic, 2, 50, seed=90, partition=1)
    broker.kill9()  # unclean: the next start re-validates every batch

    segment = _segments(broker, topic)[0]
    batches = _batches(segment)
    assert len(batches) >= 6, batches
    rng = random.Random(damage)
    victim = rng.randrange(2, len(batches) - 1)
    pos, base, size = batches[victim]
    if damage == "truncate-random-byte":
        os.truncate(segment, pos + rng.randrange(1, size))
    else:
        with open(segment, "r+b") as f:
            for _ in range(4):  # inside the CRC-covered part of the batch
                at = pos + rng.randrange(21, size)
                f.seek(at)
                byte = f.read(1)[0]
                f.seek(at)
                f.write(bytes([byte ^ 0xFF]))
    log_before = broker.stderr_path.stat().st_size
    broker.start(timeout_s=60)
    said = broker.stderr_path.read_bytes()[log_before:].decode(errors="replace")
    assert "truncated" in said and segment.name in said, said[-3000:]

    survivors = base  # offsets == record index: one producer, dense offsets
    consumed = c.ck_consume(broker.bootstrap, topic, {0: survivors, 1: len(other)})
    c.verify(records[:survivors], [(0, i) for i in range(survivors)], {0: consumed[0]})
    c.verify(other, [(1, i) for i in range(len(other))], {1: consumed[1]})
    more = c.make_records(20, seed=777)
    positions = c.ck_produce(broker.bootstrap, topic, more, partition=0)
    assert positions == [(0, survivors + i) for i in range(20)], "writes continue at the truncation point"


# ---- indexes -------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["missing", "garbage"])
def test_lost_or_garbage_index_is_rebuilt(make_broker, damage):
    broker = make_broker(properties={"log.index.interval.bytes": "1024"})
    broker.start()
    topic = f"faults-index-{damage}"
    _create_topic(broker, topic, 1)
    records = _produce_batches(broker, topic, 6, 200, seed=30)
    assert broker.stop() == 0  # clean: only the index sanity check stands between us and garbage
    index = _segments(broker, topic)[0].with_suffix(".index")
    assert index.stat().st_size > 0, "the test needs a non-empty index"
    if damage == "missing":
        index.unlink()
    else:
        index.write_bytes(random.Random(5).randbytes(index.stat().st_size))
    log_before = broker.stderr_path.stat().st_size
    broker.start(timeout_s=60)
    said = broker.stderr_path.read_bytes()[log_before:].decode(errors="replace")
    assert "rebuilding" in said, said[-3000:]
    consumed = c.ck_consume(broker.bootstrap, topic, {0: len(records)})
    c.verify(records, [(0, i) for i in range(len(records))], consumed)
    assert broker.stop() == 0
    assert index.exists() and index.stat().st_size % 8 == 0 and index.stat().st_size > 0
    data = index.read_bytes()
    entries = [struct.unpack(">II", data[i:i + 8]) for i in range(0, len(data), 8)]
    assert entries == sorted(entries) and len(set(entries)) == len(entries), "rebuilt entries increase"


# ---- full disk -----------------------------------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)],
                       capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        print(f"cannot mount a tmpfs ({r.stderr.strip()}): skipping the disk-full test")
        pytest.skip(f"mount not permitted: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=20)


def _produce_one(bootstrap: str, topic: str, value: bytes):
    """One record, no retries: returns (error code or None, offset)."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "retries": 0, "acks": "all", "log_level": 0,
                  "message.timeout.ms": 10000})
    out = []
    p.produce(topic, value=value, partition=0,
              on_delivery=lambda err, msg: out.append((err.code() if err else None, msg.offset())))
    p.flush(15)
    assert out, "no delivery report"
    return out[0]


def test_disk_full_gives_storage_error_and_recovers(make_broker, small_tmpfs):
    from confluent_kafka import KafkaError
    broker = make_broker(properties={"log.dirs": str(small_tmpfs / "data"),
                                     "log.segment.bytes": str(4 * 1024 * 1024)})
    broker.log_dir = small_tmpfs / "data"
    broker.start()
    topic = "faults-disk-full"
    _create_topic(broker, topic, 1)
    records = _produce_batches(broker, topic, 2, 50, seed=50)
    # Fill the filesystem, leaving less than one record.
    filler = small_tmpfs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for chunk in (65536, 4096, 512):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
    code, _ = _produce_one(broker.bootstrap, topic, b"x" * 20000)
    assert code == KafkaError.KAFKA_STORAGE_ERROR, f"got {code}"
    assert broker.running(), "the broker must stay up on ENOSPC"
    assert "No space left on device" in broker.stderr_text()
    consumed = c.ck_consume(broker.bootstrap, topic, {0: len(records)})
    c.verify(records, [(0, i) for i in range(len(records))], consumed)
    filler.unlink()
    code, offset = _produce_one(broker.bootstrap, topic, b"after the disk was freed")
    assert code is None and offset == len(records), (code, offset)
    assert broker.stop() == 0


# ---- unusable log directory ----------------------------------------------------------------

def test_partition_dir_replaced_by_a_file_goes_offline_alone(make_broker):
    broker = make_broker()
    broker.start()
    topic = "faults-dir"
    _create_topic(broker, topic, 2)
    records0 = _produce_batches(broker, topic, 1, 30, seed=60)
    records1 = _produce_batches(broker, topic, 1, 30, seed=61, partition=1)
    assert broker.stop() == 0
    part0 = broker.log_dir / f"{topic}-0"
    shutil.rmtree(part0)
    part0.write_text("not a directory\n")
    broker.start(timeout_s=60)
    assert broker.running()
    assert f"{topic}-0" in broker.stderr_text() and "cannot open log" in broker.stderr_text()
    consumed = c.ck_consume(broker.bootstrap, topic, {1: len(records1)})
    c.verify(records1, [(1, i) for i in range(len(records1))], consumed)
    code, _ = _produce_one(broker.bootstrap, topic, b"to the offline partition")
    assert code is not None, "an offline partition must not accept writes"
    part0.unlink()
    assert records0
