"""High watermarks survive a restart (replication-offset-checkpoint).

A replica that starts following truncates its log to its high watermark (Kafka's rule
before KIP-101), so the records an old leader took but nobody committed go. After a
restart that only works if the high watermark was written down: without the checkpoint
every log's high watermark is its log end, and a restarted old leader whose extra records
sit below the new leader's log end keeps them and splices the new leader's after them.

The judge is the disk (the restarted broker's `.log` files must hold exactly the new
leader's batches) and a consumer (once the restarted broker leads again, it serves
exactly what the new leader served).
"""

from __future__ import annotations

import re
import signal as sig
from pathlib import Path

import clients as c
from sluice_harness import wait_until
from test_replication import _log_end, _log_of, _metadata, _wait_replicated

TOPIC = "hwckpt"
COMMITTED = 500   # acks=all while both replicas fetch
ONLY_A = 20       # acks=1 on A while B is paused: never committed
ONLY_B = 40       # acks=1 on B once it leads: its log end passes A's
ONE_PER_BATCH = {"acks": "1", "linger.ms": 0, "batch.num.messages": 1}


def _checkpointed_high_watermark(broker, topic: str, partition: int):
    """The offset replication-offset-checkpoint holds for the partition, or None."""
    f = Path(broker.log_dir) / "replication-offset-checkpoint"
    if not f.exists():
        return None
    lines = f.read_text().splitlines()
    assert lines[0] == "0" and int(lines[1]) == len(lines) - 2, lines
    for line in lines[2:]:
        t, p, off = line.split(" ")
        if t == topic and int(p) == partition:
            return int(off)
    return None


def _file_end(broker) -> int:
    return _log_end(b"".join(_log_of(broker, TOPIC, 0).values()))


def _start_pair(make_broker, overrides: dict):
    """Brokers 1 (A) and 2 (B) and topic TOPIC with one partition assigned [1, 2]: A leads,
    both in the ISR."""
    from confluent_kafka.admin import AdminClient, NewTopic
    brokers = {i: make_broker(broker_id=i, overrides=dict(overrides)) for i in (1, 2)}
    for br in brokers.values():
        br.start()
    bootstrap = ",".join(br.bootstrap for br in brokers.values())
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})  # must outlive the future
    admin.create_topics([NewTopic(TOPIC, num_partitions=1, replica_assignment=[[1, 2]])])[TOPIC].result(30)
    md = wait_until(lambda: (lambda m: m if m[0][0] == 1 and sorted(m[0][2]) == [1, 2] else None)(
        _metadata(bootstrap, TOPIC)), 30, f"broker 1 to lead {TOPIC} with ISR [1, 2]")
    return brokers, bootstrap, md


def _checkpoint_rewrites(broker, n: int, timeout_s: float):
    """Waits until replication-offset-checkpoint has been replaced n times."""
    f = Path(broker.log_dir) / "replication-offset-checkpoint"
    seen = {f.stat().st_mtime_ns}

    def rewritten():
        seen.add(f.stat().st_mtime_ns)
        return len(seen) > n
    wait_until(rewritten, timeout_s, f"{n} more high watermark checkpoints on broker {broker.broker_id}",
               interval_s=0.02)


def test_a_restarted_old_leader_truncates_to_its_checkpointed_high_watermark(make_broker):
    """A leads [A, B]; COMMITTED records reach both. B is paused (SIGSTOP, shorter than its
    ZooKeeper session and replica.lag.time.max.ms, so it stays in the ISR) while A takes
    ONLY_A more with acks=1: the ISR still holds B, so A's high watermark stays at
    COMMITTED. A is killed -9; B resumes and, being in the ISR, is elected; B takes ONLY_B
    other records, so its log end passes A's. A restarts as B's follower: from its
    checkpoint its high watermark is COMMITTED, it cuts its log there and copies B's."""
    overrides = {"replica.lag.time.max.ms": "60000",  # B stays in the ISR while paused
                 "replica.high.watermark.checkpoint.interval.ms": "200"}
    brokers, bootstrap, md = _start_pair(make_broker, overrides)
    a, b = brokers[1], brokers[2]

    committed = c.make_records(COMMITTED, seed=51)
    c.ck_produce(bootstrap, TOPIC, committed, conf={"acks": "all"})
    _wait_replicated(brokers, TOPIC, md, 20)
    # Both replicas write the high watermark down (the follower learns it from A's fetch
    # responses).
    for br in (a, b):
        wait_until(lambda br=br: _checkpointed_high_watermark(br, TOPIC, 0) == COMMITTED, 10,
                   f"broker {br.broker_id} to checkpoint high watermark {COMMITTED}")

    only_a = c.make_records(ONLY_A, seed=52)
    b.signal(sig.SIGSTOP)
    try:
        # A fetch B had parked on A may still carry the first of these to B's socket (see
        # test_replication.py), so it goes alone; the rest never reach B.
        c.ck_produce(a.bootstrap, TOPIC, only_a[:1], conf=ONE_PER_BATCH, timeout_s=10)
        c.ck_produce(a.bootstrap, TOPIC, only_a[1:], conf=ONE_PER_BATCH, timeout_s=10)
        assert _file_end(a) == COMMITTED + ONLY_A
        # A's high watermark waits for B (in the ISR, silent): the next checkpoints still
        # say COMMITTED. Two file replacements after the produce prove a fresh one.
        _checkpoint_rewrites(a, 2, 3)
        assert _checkpointed_high_watermark(a, TOPIC, 0) == COMMITTED
        a.kill9()
    finally:
        b.signal(sig.SIGCONT)
    wait_until(lambda: _metadata(b.bootstrap, TOPIC)[0][0] == 2, 40, "broker 2 to be elected after broker 1 died")
    leaked = _file_end(b) - COMMITTED
    assert leaked in (0, 1), leaked

    only_b = c.make_records(ONLY_B, seed=53)
    c.ck_produce(b.bootstrap, TOPIC, only_b, conf=ONE_PER_BATCH, timeout_s=20)
    b_end = _file_end(b)
    assert b_end == COMMITTED + leaked + ONLY_B > COMMITTED + ONLY_A, b_end
    served_by_b = c.ck_consume(b.bootstrap, TOPIC, {0: b_end}, timeout_s=30)[0]
    assert [(g.key, g.value) for g in served_by_b] == \
        [(r.key, r.value) for r in committed + only_a[:leaked] + only_b]

    # A restarts with a log that runs past its high watermark and stays below B's end.
    a.start()
    new_md = {0: (2, [1, 2], [])}
    _wait_replicated(brokers, TOPIC, new_md, 30)
    cut = [int(n) for n in re.findall(rf"{TOPIC}-0: follows broker 2 \(leader epoch \d+\) from offset \d+ "
                                      r"\(log start \d+\); truncated (\d+) offsets", a.stderr_text())]
    assert cut == [ONLY_A], (cut, a.stderr_text()[-3000:])

    # A rejoins the ISR; B dies; A leads and serves exactly what B served.
    wait_until(lambda: sorted(_metadata(b.bootstrap, TOPIC)[0][2]) == [1, 2], 30, "broker 1 to rejoin the ISR")
    b.kill9()
    wait_until(lambda: _metadata(a.bootstrap, TOPIC)[0][0] == 1, 40, "broker 1 to be elected after broker 2 died")
    served_by_a = c.ck_consume(a.bootstrap, TOPIC, {0: b_end}, timeout_s=30)[0]
    assert [(g.offset, g.key, g.value, g.headers) for g in served_by_a] == \
        [(g.offset, g.key, g.value, g.headers) for g in served_by_b]


def test_a_clean_shutdown_writes_the_high_watermark_and_the_restart_truncates_to_it(make_broker):
    """SIGTERM writes replication-offset-checkpoint with the other checkpoints. A leader
    whose follower is paused (in the ISR) stops cleanly with records past its high
    watermark; the controller elects the follower; the old leader restarts, follows it and
    cuts its log at the high watermark it wrote at shutdown."""
    overrides = {"replica.lag.time.max.ms": "60000",
                 "replica.high.watermark.checkpoint.interval.ms": "600000"}  # only the shutdown writes it
    brokers, bootstrap, md = _start_pair(make_broker, overrides)
    a, b = brokers[1], brokers[2]
    committed = c.make_records(300, seed=61)
    c.ck_produce(bootstrap, TOPIC, committed, conf={"acks": "all"})
    assert _checkpointed_high_watermark(a, TOPIC, 0) is None

    b.signal(sig.SIGSTOP)
    try:
        c.ck_produce(a.bootstrap, TOPIC, c.make_records(1, seed=62), conf=ONE_PER_BATCH, timeout_s=10)
        c.ck_produce(a.bootstrap, TOPIC, c.make_records(9, seed=63), conf=ONE_PER_BATCH, timeout_s=10)
        assert a.stop() == 0
    finally:
        b.signal(sig.SIGCONT)
    assert _file_end(a) == 310
    assert _checkpointed_high_watermark(a, TOPIC, 0) == 300
    wait_until(lambda: _metadata(b.bootstrap, TOPIC)[0][0] == 2, 40, "broker 2 to be elected after broker 1 stopped")
    leaked = _file_end(b) - 300
    assert leaked in (0, 1), leaked
    c.ck_produce(b.bootstrap, TOPIC, c.make_records(20, seed=64), conf=ONE_PER_BATCH, timeout_s=20)

    a.start()
    _wait_replicated(brokers, TOPIC, {0: (2, [1, 2], [])}, 30)
    cut = [int(n) for n in re.findall(rf"{TOPIC}-0: follows broker 2 \(leader epoch \d+\) from offset \d+ "
                                      r"\(log start \d+\); truncated (\d+) offsets", a.stderr_text())]
    assert cut == [10], (cut, a.stderr_text()[-3000:])
