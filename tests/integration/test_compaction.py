"""Log compaction through the broker: cleanup.policy=compact and compact,delete topics are
cleaned in the background (log.cleaner.backoff.ms), consumers reading from the start see
the latest value of every key at its original offset, tombstones go after
delete.retention.ms, keyless records are refused with INVALID_RECORD, a kill -9 around a
clean leaves a readable log, a live IncrementalAlterConfigs turns compaction on, and the
group coordinator still loads commits from a compacted __consumer_offsets.

Clients: confluent-kafka 1.7 (produce, consume, AdminClient create_topics, group
commits); IncrementalAlterConfigs v0 as a raw frame (confluent 1.7 lacks it)."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Optional

import pytest

import clients as c
import sluice_harness as h
from test_configs import ck_create, incremental_alter_v0, watermarks

ERR_INVALID_RECORD = 87

# Fast duties for every broker here: the cleaner looks every 200 ms, retention every 300 ms.
FAST = {"log.cleaner.backoff.ms": "200", "log.retention.check.interval.ms": "300"}

# Small segments rolled often, every sealed segment cleanable right away.
COMPACT = {"cleanup.policy": "compact", "segment.bytes": "4096", "segment.ms": "300",
           "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "1000"}


def partition_dir(broker, topic: str, partition: int = 0) -> Path:
    return broker.log_dir / f"{topic}-{partition}"


def log_bytes(broker, topic: str, partition: int = 0) -> int:
    return sum(f.stat().st_size for f in partition_dir(broker, topic, partition).glob("*.log"))


def leftovers(broker, topic: str, partition: int = 0) -> list[str]:
    d = partition_dir(broker, topic, partition)
    return sorted(p.name for p in d.iterdir() if p.name.endswith((".cleaned", ".swap")))


def produce(broker, topic: str, records: list[c.Rec]) -> list[int]:
    """Offsets at which partition 0 acknowledged each record (small batches: many segments)."""
    positions = c.ck_produce(broker.bootstrap, topic, records, {"linger.ms": 0, "batch.num.messages": 20},
                             partition=0)
    return [off for _, off in positions]


def read_all(broker, topic: str, partition: int = 0, timeout_s: float = 30, start: int = 0) -> list[c.Got]:
    """Every record from `start` to the end of the partition (partition EOF)."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "itest-compaction",
                         "enable.auto.commit": False, "auto.offset.reset": "error", "log_level": 3,
                         "enable.partition.eof": True, "fetch.wait.max.ms": 50})
    try:
        consumer.assign([TopicPartition(topic, partition, start)])
        got: list[c.Got] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return got
                raise AssertionError(f"consumer error: {msg.error()}")
            got.append(c.Got(msg.partition(), msg.offset(), msg.key(), msg.value()))
        raise AssertionError(f"no end of partition within {timeout_s}s ({len(got)} records read)")
    finally:
        consumer.close()


def check_is_compaction_of(got: list[c.Got], sent: list[c.Rec], offsets: list[int]) -> None:
    """What was read is a subset of what was sent, each record at the offset it was
    acknowledged at, offsets strictly increasing, and the latest record of every key present."""
    by_offset = {off: rec for off, rec in zip(offsets, sent)}
    read_offsets = [g.offset for g in got]
    assert read_offsets == sorted(set(read_offsets)), "offsets not strictly increasing"
    for g in got:
        rec = by_offset.get(g.offset)
        assert rec is not None, f"offset {g.offset} was never acknowledged"
        assert (g.key, g.value) == (rec.key, rec.value), f"offset {g.offset} holds another record"
    latest = {}
    for off, rec in zip(offsets, sent):
        latest[rec.key] = off
    missing = [off for key, off in latest.items() if off not in set(read_offsets)
               and by_offset[off].value is not None]
    assert not missing, f"latest records of {len(missing)} keys missing, first at offset {missing[0]}"


def rounds(keys: int, per_key: int, seed: int) -> list[c.Rec]:
    """Many values for a bounded key set, in a shuffled order."""
    rnd = random.Random(seed)
    out = [c.Rec(f"k{k}".encode(), f"k{k}-v{i}-".encode() + rnd.randbytes(40)) for i in range(per_key)
           for k in range(keys)]
    rnd.shuffle(out)
    return out


def roll_with(broker, topic: str, key: str, sent: list, offsets: list) -> None:
    """One more record after segment.ms: the active segment rolls, so everything before
    it becomes cleanable."""
    time.sleep(0.35)
    rec = c.Rec(key.encode(), b"roll")
    offsets += produce(broker, topic, [rec])
    sent.append(rec)


# ---------------------------------------------------------------- tests

def test_compacted_topic_keeps_latest_value_per_key(make_broker):
    broker = make_broker(properties=FAST)
    broker.start()
    topic = "compact-latest"
    # Tombstones live 3 s: long enough to see them survive the first clean.
    ck_create(broker, topic, dict(COMPACT, **{"delete.retention.ms": "3000"}))
    sent = rounds(keys=20, per_key=40, seed=1)
    offsets = produce(broker, topic, sent)
    # The final round: keys 0-14 get their last value, 15-19 a tombstone.
    final = [c.Rec(f"k{k}".encode(), f"k{k}-final".encode() if k < 15 else None) for k in range(20)]
    offsets += produce(broker, topic, final)
    sent += final
    before = log_bytes(broker, topic)
    roll_with(broker, topic, "sentinel-0", sent, offsets)
    final_offsets = set(offsets[-21:])  # the final round and the sentinel

    def compacted():
        return {g.offset for g in read_all(broker, topic)} == final_offsets
    h.wait_until(compacted, 30, "only the final round (values and tombstones) to remain", 0.5)
    got = read_all(broker, topic)
    check_is_compaction_of(got, sent, offsets)
    tombstones = [g for g in got if g.value is None]
    assert len(tombstones) == 5, "tombstones are kept until delete.retention.ms has passed"
    assert log_bytes(broker, topic) < before / 5, f"{before} -> {log_bytes(broker, topic)} bytes"
    assert "cleaned up to offset" in broker.stderr_text()
    assert watermarks(broker, topic) == (0, offsets[-1] + 1)  # offsets unchanged: same end, same start

    # Tombstones go once delete.retention.ms (1 s) has passed and a later pass runs
    # (new data makes the log dirty again).
    def tombstones_gone():
        roll_with(broker, topic, f"sentinel-{len(sent)}", sent, offsets)
        return all(g.value is not None for g in read_all(broker, topic))
    h.wait_until(tombstones_gone, 30, "tombstones to be removed after delete.retention.ms", 0.5)
    got = read_all(broker, topic)
    check_is_compaction_of(got, sent, offsets)
    keys = {g.key for g in got}
    assert {f"k{k}".encode() for k in range(15)} <= keys
    assert not {f"k{k}".encode() for k in range(15, 20)} & keys
    assert {g.value for g in got if g.key.startswith(b"k")} == {f"k{k}-final".encode() for k in range(15)}


def test_compact_delete_policy_compacts_and_applies_retention(make_broker):
    broker = make_broker(properties=FAST)
    broker.start()
    topic = "compact-delete"
    ck_create(broker, topic, dict(COMPACT, **{"cleanup.policy": "compact,delete", "retention.ms": "4000",
                                              "file.delete.delay.ms": "0"}))
    sent = rounds(keys=10, per_key=40, seed=2)
    offsets = produce(broker, topic, sent)
    before = log_bytes(broker, topic)
    roll_with(broker, topic, "sentinel", sent, offsets)
    h.wait_until(lambda: log_bytes(broker, topic) < before / 3, 20, "compaction to shrink the log")
    check_is_compaction_of(read_all(broker, topic), sent, offsets)
    assert watermarks(broker, topic)[0] == 0
    # ... and the delete half: once the records are older than retention.ms, sealed
    # segments are deleted and the log start moves to the active segment.
    h.wait_until(lambda: watermarks(broker, topic)[0] == offsets[-1], 20,
                 "retention to move the log start to the active segment (the sentinel)")
    low, high = watermarks(broker, topic)
    assert high == offsets[-1] + 1
    assert [g.offset for g in read_all(broker, topic, start=low)] == [offsets[-1]]  # the sentinel
    # Below the new log start the broker answers OFFSET_OUT_OF_RANGE.
    with pytest.raises(AssertionError, match="Offset out of range"):
        read_all(broker, topic, start=0)


def test_keyless_records_are_refused_on_compacted_topics(make_broker):
    from confluent_kafka import KafkaError, Producer
    broker = make_broker(properties=FAST)
    broker.start()
    ck_create(broker, "compact-keys", {"cleanup.policy": "compact"})
    ck_create(broker, "delete-keys", {"cleanup.policy": "delete"})
    reports = {}

    def report(name):
        def cb(err, msg):
            reports[name] = (err, msg.offset() if err is None else None)
        return cb
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "log_level": 3,
                  "message.timeout.ms": 20000, "retries": 0})
    p.produce("compact-keys", value=b"no key", partition=0, on_delivery=report("keyless"))
    p.flush(20)
    p.produce("compact-keys", key=b"k", value=b"with key", partition=0, on_delivery=report("keyed"))
    p.produce("delete-keys", value=b"no key", partition=0, on_delivery=report("plain"))
    assert p.flush(20) == 0
    err, _ = reports["keyless"]
    assert err is not None and err.code() == KafkaError.INVALID_RECORD == ERR_INVALID_RECORD, err
    # Nothing of the refused batch was written; keyed records and other topics are fine.
    assert reports["keyed"] == (None, 0)
    assert reports["plain"] == (None, 0)
    assert watermarks(broker, "compact-keys") == (0, 1)


def test_live_cleanup_policy_change_turns_compaction_on(make_broker):
    broker = make_broker(properties=FAST)
    broker.start()
    topic = "compact-live"
    ck_create(broker, topic, {k: v for k, v in COMPACT.items() if k != "cleanup.policy"})
    sent = rounds(keys=5, per_key=60, seed=3)
    offsets = produce(broker, topic, sent)
    roll_with(broker, topic, "sentinel-a", sent, offsets)
    time.sleep(1.0)  # five cleaner checks under cleanup.policy=delete: nothing may change
    assert len(read_all(broker, topic)) == len(sent)

    [(err, msg, _, _)] = incremental_alter_v0(broker.port, topic, [("cleanup.policy", 0, "compact")])
    assert err == 0, msg
    h.wait_until(lambda: len(read_all(broker, topic)) <= 5 + 2, 20,
                 "the cleaner to compact after cleanup.policy became compact")
    check_is_compaction_of(read_all(broker, topic), sent, offsets)


def test_kill9_around_cleaning_leaves_a_readable_log(make_broker):
    broker = make_broker(properties=FAST)
    broker.start()
    topic = "compact-kill"
    ck_create(broker, topic, dict(COMPACT, **{"segment.bytes": "65536", "segment.ms": "600000"}))
    rnd = random.Random(7)
    sent: list[c.Rec] = []
    offsets: list[int] = []
    for run in range(3):
        batch = rounds(keys=50, per_key=60, seed=10 + run)  # 3000 records, ~300 KB
        offsets += produce(broker, topic, batch)
        sent += batch
        # The cleaner takes the sealed segments within one backoff; kill somewhere
        # before, during or after that clean.
        time.sleep(rnd.uniform(0.05, 0.6))
        broker.kill9()
        # Restart without the cleaner, so any .cleaned/.swap file seen is a leftover of
        # the killed run, not the work of a new clean.
        broker.properties["log.cleaner.enable"] = "false"
        broker.start()
        check_is_compaction_of(read_all(broker, topic), sent, offsets)  # the log is open now
        assert leftovers(broker, topic) == [], "recovery must finish or drop interrupted cleaning"
        broker.properties["log.cleaner.enable"] = "true"
        broker.restart()
    # And after all that the cleaner still works on this log.
    time.sleep(0.3)
    h.wait_until(lambda: len(read_all(broker, topic)) < len(sent) / 2, 30, "compaction after the restarts")
    check_is_compaction_of(read_all(broker, topic), sent, offsets)
    assert leftovers(broker, topic) == []


def test_group_offsets_survive_compaction_of_consumer_offsets(make_broker):
    from confluent_kafka import Consumer, TopicPartition
    broker = make_broker(properties=dict(FAST, **{"offsets.topic.num.partitions": "1"}))
    broker.start()
    # __consumer_offsets made by hand with tiny segments, so many commits span many
    # segments and the cleaner has work (the coordinator's own creation uses 100 MiB).
    ck_create(broker, "__consumer_offsets", COMPACT)
    ck_create(broker, "compact-src", {}, partitions=3)
    group = "compaction-group"
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "log_level": 3,
                         "enable.auto.commit": False})
    try:
        for i in range(1, 301):
            consumer.commit(offsets=[TopicPartition("compact-src", p, i * 10 + p) for p in range(3)],
                            asynchronous=False)
    finally:
        consumer.close()
    offsets_dir = "__consumer_offsets"
    before = log_bytes(broker, offsets_dir)
    time.sleep(0.35)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "log_level": 3,
                         "enable.auto.commit": False})
    try:  # one more commit rolls the active segment (segment.ms)
        consumer.commit(offsets=[TopicPartition("compact-src", p, 3000 + p) for p in range(3)], asynchronous=False)
    finally:
        consumer.close()
    h.wait_until(lambda: log_bytes(broker, offsets_dir) < before / 4, 30,
                 f"__consumer_offsets to be compacted ({before} bytes before)")
    assert "__consumer_offsets-0: cleaned up to offset" in broker.stderr_text()

    broker.restart()  # the coordinator reloads the group from the compacted log
    # Compaction progress is checkpointed in Kafka's file and format ("0", count, entries).
    lines = (broker.log_dir / "cleaner-offset-checkpoint").read_text().splitlines()
    assert lines[0] == "0" and int(lines[1]) == len(lines) - 2, lines
    entries = {tuple(l.split()[:2]): int(l.split()[2]) for l in lines[2:]}
    assert entries.get(("__consumer_offsets", "0"), 0) > 0, lines
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "log_level": 3,
                         "enable.auto.commit": False})
    try:
        committed = consumer.committed([TopicPartition("compact-src", p) for p in range(3)], timeout=20)
    finally:
        consumer.close()
    assert [tp.offset for tp in committed] == [3000, 3001, 3002]
