"""Follower replication: brokers that host a partition without leading it copy the leader's
batches with Fetch requests (replica_id = their broker id) into their own logs.

The judge is the disk: a follower's `.log` segments must hold exactly the leader's batches,
byte for byte (the leader's offsets, leader epochs, CRCs and record bytes), found by
walking the batch headers of both files. Records are produced with confluent-kafka.
"""

from __future__ import annotations

import re
import signal as sig
import struct
import threading
import time
from pathlib import Path

import clients as c
from sluice_harness import wait_until


def _start_cluster(make_broker, ids, overrides=None):
    brokers = {i: make_broker(broker_id=i, overrides=dict(overrides or {})) for i in ids}
    for b in brokers.values():
        b.start()
    bootstrap = ",".join(b.bootstrap for b in brokers.values())
    return brokers, bootstrap


def _metadata(bootstrap: str, topic: str) -> dict[int, tuple[int, list[int], list[int]]]:
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(topic, timeout=10)
    t = md.topics[topic]
    assert t.error is None, t.error
    return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in t.partitions.values()}


def _create(bootstrap: str, topic: str, partitions: int, rf: int) -> dict:
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})  # must outlive the future
    admin.create_topics([NewTopic(topic, partitions, rf)])[topic].result(30)
    return wait_until(lambda: (lambda md: md if len(md) == partitions and all(l >= 0 for l, _, _ in md.values())
                               else None)(_metadata(bootstrap, topic)), 30, f"leaders for every partition of {topic}")


def _batch_bytes(data: bytes) -> bytes:
    """The prefix of a segment file made of whole v2 batches (a file may run past its last
    batch while the broker runs: O_DIRECT appends write whole blocks)."""
    pos = 0
    while len(data) - pos >= 61:
        _base, length = struct.unpack_from(">qi", data, pos)
        if length < 49 or data[pos + 16] != 2 or pos + 12 + length > len(data):
            break
        pos += 12 + length
    return data[:pos]


def _log_of(broker, topic: str, partition: int) -> dict[str, bytes]:
    """Segment file name -> its whole batches."""
    d = Path(broker.log_dir) / f"{topic}-{partition}"
    return {f.name: _batch_bytes(f.read_bytes()) for f in sorted(d.glob("*.log"))}


def _replica_differences(brokers: dict, topic: str, md: dict) -> list[str]:
    """Human-readable differences between every follower's log and its leader's; [] if none."""
    out = []
    for p, (leader, replicas, _) in md.items():
        want = _log_of(brokers[leader], topic, p)
        assert sum(len(v) for v in want.values()) > 0, f"leader {leader} of {topic}-{p} has an empty log"
        for r in replicas:
            if r == leader:
                continue
            got = _log_of(brokers[r], topic, p)
            if got != want:
                sizes = {k: len(v) for k, v in got.items()}
                out.append(f"{topic}-{p}: follower {r} has {sizes}, leader {leader} has "
                           f"{ {k: len(v) for k, v in want.items()} }")
    return out


def _wait_replicated(brokers: dict, topic: str, md: dict, timeout_s: float):
    last: list[str] = []

    def same():
        nonlocal last
        last = _replica_differences(brokers, topic, md)
        return not last
    try:
        wait_until(same, timeout_s, f"followers of {topic} to hold the leader's batches", interval_s=0.2)
    except TimeoutError as e:
        raise AssertionError(f"{e}: {last}") from None


def test_three_followers_copy_the_leaders_batches_byte_for_byte(make_broker):
    brokers, bootstrap = _start_cluster(make_broker, (1, 2, 3))
    md = _create(bootstrap, "copied", 3, 3)
    assert {leader for leader, _, _ in md.values()} == {1, 2, 3}, md  # each broker leads one, follows two
    for p, (_, replicas, _) in md.items():
        assert sorted(replicas) == [1, 2, 3], md

    records = c.make_records(20_000, seed=11)
    positions = c.ck_produce(bootstrap, "copied", records, conf={"acks": "1"})
    counts = c.partition_counts(positions)
    assert set(counts) == {0, 1, 2} and sum(counts.values()) == 20_000, counts

    _wait_replicated(brokers, "copied", md, 20)
    # So every replica holds every record: the leader's log ends with the last one produced.
    for p, (leader, _, _) in md.items():
        batches = b"".join(_log_of(brokers[leader], "copied", p).values())
        assert _log_end(batches) == counts[p], (p, _log_end(batches), counts[p])

    # Each broker followed the two partitions it does not lead.
    for b in brokers.values():
        text = b.stderr_text()
        assert text.count("follows broker") >= 2, text[-3000:]


def _log_end(batches: bytes) -> int:
    """The offset after the last batch (0 for none)."""
    if not batches:
        return 0
    at = _last_batch_at(batches)
    base, = struct.unpack_from(">q", batches, at)
    last_delta, = struct.unpack_from(">i", batches, at + 23)
    return base + last_delta + 1


def _last_batch_at(batches: bytes) -> int:
    pos, last = 0, 0
    while pos < len(batches):
        last = pos
        pos += 12 + struct.unpack_from(">i", batches, pos + 8)[0]
    return last


def test_a_killed_follower_catches_up_after_restart(make_broker):
    brokers, bootstrap = _start_cluster(make_broker, (1, 2, 3))
    md = _create(bootstrap, "catchup", 1, 3)
    leader, replicas, _ = md[0]
    follower = next(r for r in replicas if r != leader)

    first = c.make_records(3_000, seed=21)
    c.ck_produce(bootstrap, "catchup", first, conf={"acks": "1"})
    _wait_replicated(brokers, "catchup", md, 20)

    # Kill the follower -9 while a producer is writing to the leader: 30 chunks of 500
    # records, each flushed, paced so that the kill lands in the middle of the stream.
    second = c.make_records(15_000, seed=22)
    produced: list = []
    failure: list = []

    def produce():
        try:
            for i in range(0, len(second), 500):
                produced.extend(c.ck_produce(bootstrap, "catchup", second[i:i + 500], conf={"acks": "1"},
                                             timeout_s=30))
                time.sleep(0.05)
        except BaseException as e:  # reported below
            failure.append(e)

    before = len(b"".join(_log_of(brokers[leader], "catchup", 0).values()))
    t = threading.Thread(target=produce)
    t.start()
    wait_until(lambda: len(b"".join(_log_of(brokers[leader], "catchup", 0).values())) > before + 200_000, 20,
               "the producer to be under way")
    brokers[follower].kill9()
    t.join(90)
    assert not t.is_alive(), "producer did not finish"
    assert not failure, failure
    assert len(produced) == len(second)

    # Behind now; after a restart it catches up with everything produced meanwhile.
    behind = len(b"".join(_log_of(brokers[follower], "catchup", 0).values()))
    total = len(b"".join(_log_of(brokers[leader], "catchup", 0).values()))
    assert behind < total - 200_000, (behind, total)
    brokers[follower].start()
    _wait_replicated(brokers, "catchup", md, 30)
    assert "follows broker" in brokers[follower].stderr_text()


def test_a_deposed_leader_drops_records_past_its_high_watermark_when_it_follows(make_broker):
    """Broker L leads, follower F is paused (SIGSTOP) while L takes records F never sees;
    then L is paused past its ZooKeeper session, so the controller elects F (still in the
    ISR) and F takes other records at the same offsets. When L resumes it follows F: it
    must first cut its log back to its high watermark (F never confirmed the extra
    records), or it would keep records nobody committed and splice F's after them."""
    overrides = {"replica.lag.time.max.ms": "60000"}  # F stays in the ISR while paused
    brokers, bootstrap = _start_cluster(make_broker, (1, 2), overrides)
    md = _create(bootstrap, "diverge", 1, 2)
    leader, replicas, isr = md[0]
    assert sorted(isr) == sorted(replicas), f"a new partition's ISR is every live replica: {md}"
    follower = next(r for r in replicas if r != leader)
    lead_b, follow_b = brokers[leader], brokers[follower]

    c.ck_produce(bootstrap, "diverge", c.make_records(1_000, seed=31), conf={"acks": "1"})
    _wait_replicated(brokers, "diverge", md, 20)

    paused = []
    try:
        follow_b.signal(sig.SIGSTOP)
        paused.append(follow_b)
        # Two flushed halves: a fetch F had parked on L before the pause may still carry
        # the first batches to F's socket, never the second half.
        for seed in (32, 33):
            c.ck_produce(lead_b.bootstrap, "diverge", c.make_records(1_000, seed=seed), conf={"acks": "1"},
                         timeout_s=20)
        lead_b.signal(sig.SIGSTOP)
        paused.append(lead_b)
        follow_b.signal(sig.SIGCONT)
        paused.remove(follow_b)
        wait_until(lambda: _metadata(follow_b.bootstrap, "diverge")[0][0] == follower, 40,
                   f"broker {follower} to be elected while broker {leader} is paused")
        # Other records at the offsets L took on its own, in batches that end exactly where
        # L's log ends (3,000): L's fetch from there then gets a batch boundary and nothing
        # to re-align with, so only its own truncation can remove the records it holds.
        f_end = _log_end(b"".join(_log_of(follow_b, "diverge", 0).values()))
        assert 1_000 <= f_end < 3_000, f_end
        for n, seed in ((3_000 - f_end, 34), (2_000, 35)):
            c.ck_produce(follow_b.bootstrap, "diverge", c.make_records(n, seed=seed), conf={"acks": "1"},
                         timeout_s=20)
    finally:
        for b in paused:
            b.signal(sig.SIGCONT)
    # L follows F now and holds exactly F's batches (without the truncation it would keep
    # its own records at the offsets where F has others, and differ).
    _wait_replicated(brokers, "diverge", {0: (follower, replicas, [])}, 40)
    cut = [int(n) for n in re.findall(r"diverge-0: follows broker \d+ \(leader epoch \d+\) from offset \d+ "
                                       r"\(log start \d+\); truncated (\d+) offsets", lead_b.stderr_text())]
    assert len(cut) == 1 and 1_000 <= cut[0] <= 2_000, (cut, lead_b.stderr_text()[-3000:])


def test_a_restarted_leader_with_unreplicated_records_truncates_to_the_new_leaders_end(make_broker):
    """L takes records while its follower F is paused, then dies (kill -9). F is elected
    and L restarts as F's follower with a log that runs past F's: its fetch is out of
    range, it asks F for its log end (ListOffsets) and truncates there, then copies what
    F takes next."""
    # F stays in the ISR while paused; no high-watermark checkpoint is written, so the
    # restarted leader can only learn that its log ran past F's through OFFSET_OUT_OF_RANGE
    # (test_replication_restart.py covers the checkpointed case).
    overrides = {"replica.lag.time.max.ms": "60000", "replica.high.watermark.checkpoint.interval.ms": "3600000"}
    brokers, bootstrap = _start_cluster(make_broker, (1, 2), overrides)
    md = _create(bootstrap, "crashed", 1, 2)
    leader, replicas, isr = md[0]
    assert sorted(isr) == sorted(replicas), f"a new partition's ISR is every live replica: {md}"
    follower = next(r for r in replicas if r != leader)
    lead_b, follow_b = brokers[leader], brokers[follower]

    c.ck_produce(bootstrap, "crashed", c.make_records(1_000, seed=41), conf={"acks": "1"})
    _wait_replicated(brokers, "crashed", md, 20)
    follow_b.signal(sig.SIGSTOP)
    try:
        for seed in (42, 43):  # see the previous test: the second half never reaches F
            c.ck_produce(lead_b.bootstrap, "crashed", c.make_records(1_000, seed=seed), conf={"acks": "1"},
                         timeout_s=20)
        lead_b.kill9()
    finally:
        follow_b.signal(sig.SIGCONT)
    wait_until(lambda: _metadata(follow_b.bootstrap, "crashed")[0][0] == follower, 40,
               f"broker {follower} to be elected after broker {leader} died")
    f_end = _log_end(b"".join(_log_of(follow_b, "crashed", 0).values()))
    assert 1_000 <= f_end <= 2_000, f_end

    lead_b.start()
    new_md = {0: (follower, replicas, [])}
    _wait_replicated(brokers, "crashed", new_md, 30)
    assert re.search(rf"crashed-0: truncated \d+ offsets: our log ran past broker {follower}'s end {f_end}",
                     lead_b.stderr_text()), lead_b.stderr_text()[-3000:]
    c.ck_produce(follow_b.bootstrap, "crashed", c.make_records(500, seed=44), conf={"acks": "1"})
    _wait_replicated(brokers, "crashed", new_md, 20)
