"""Durability across restarts: a clean SIGTERM restart keeps every record; a kill -9 in the
middle of producing keeps every acknowledged record (acks=1 and acks=all), and offsets stay
dense. The OS does not crash here, so acknowledged bytes in the page cache must survive.

After kill -9 the broker's old ZooKeeper registration lives until its session expires
(zookeeper.session.timeout.ms=6000 in these tests); the restarted broker waits for it.
"""

from __future__ import annotations

import time

import pytest

import clients as c


# Both log.append.strategy paths: page cache, and O_DIRECT from the broker's own chunks
# (which zero-pads the active segment to 4 KiB until a clean stop cuts it, and serves the
# newest bytes from memory).
APPEND = ["buffered", "direct"]


@pytest.mark.parametrize("append", APPEND)
def test_clean_restart_keeps_everything(make_broker, append):
    broker = make_broker(overrides={"num.partitions": "2", "log.append.strategy": append})
    broker.start()
    first = c.make_records(5000, seed=1, big_every=1000, big_sizes=[300 * 1024])
    pos_first = c.ck_produce(broker.bootstrap, "restart-clean", first, {"acks": "all"})

    assert broker.stop() == 0, "SIGTERM must be a clean shutdown (exit 0)"
    _assert_segments_end_at_last_batch(broker.log_dir, "restart-clean")
    broker.start()
    c.verify(first, pos_first, c.ck_consume(broker.bootstrap, "restart-clean", c.partition_counts(pos_first)))

    # The log continues where it ended: offsets resume, nothing is overwritten.
    second = c.make_records(1000, seed=2)
    pos_second = c.ck_produce(broker.bootstrap, "restart-clean", second, {"acks": "all"})
    counts = c.partition_counts(pos_first + pos_second)
    c.verify(first + second, pos_first + pos_second, c.ck_consume(broker.bootstrap, "restart-clean", counts))

    assert broker.stop() == 0
    broker.start()
    c.verify(first + second, pos_first + pos_second, c.ck_consume(broker.bootstrap, "restart-clean", counts))


def _assert_segments_end_at_last_batch(log_dir, topic: str) -> None:
    """After a clean stop every segment file ends exactly after its last batch (direct
    appends pad the active segment to 4 KiB while running; the clean stop cuts that)."""
    import struct
    logs = sorted(log_dir.glob(f"{topic}-*/*.log"))
    assert logs, f"no segments for {topic} under {log_dir}"
    for path in logs:
        data = path.read_bytes()
        pos = 0
        while pos + 12 <= len(data):
            (length,) = struct.unpack_from(">i", data, pos + 8)
            assert length > 0, f"{path}: batch length {length} at {pos} (padding left in the file?)"
            pos += 12 + length
        assert pos == len(data), f"{path}: batches end at {pos}, file is {len(data)} bytes"


def _produce_until_killed(broker, topic: str, acks: str, kill_after: int, budget_s: float = 90):
    """Produces continuously; once `kill_after` records are acknowledged, kill -9 the broker
    and collect the outcome of every record still in flight. Returns (records, positions)
    of the acknowledged records only."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": acks, "linger.ms": 2,
                  "message.timeout.ms": 8000, "retries": 0, "log_level": 0,
                  "batch.num.messages": 200})
    acked: dict[int, tuple[int, int]] = {}
    failed: set[int] = set()
    records: list[c.Rec] = []

    def report(i):
        def cb(err, msg):
            if err is None:
                acked[i] = (msg.partition(), msg.offset())
            else:
                failed.add(i)
        return cb

    def produce_chunk(seed: int, n: int) -> None:
        for r in c.make_records(n, seed=seed):
            try:
                p.produce(topic, key=r.key, value=r.value, headers=list(r.headers) or None,
                          on_delivery=report(len(records)))
                records.append(r)
            except BufferError:  # local queue full: this record is simply not sent
                p.poll(0.05)

    deadline = time.monotonic() + budget_s
    chunk = 0
    while len(acked) < kill_after:
        assert time.monotonic() < deadline, f"only {len(acked)} records acknowledged in {budget_s}s"
        produce_chunk(1000 + chunk, 100)
        p.poll(0)
        chunk += 1
    # Queue a last chunk and kill at once: it is still lingering or in flight, so the kill
    # lands in the middle of produce traffic.
    produce_chunk(1000 + chunk, 1000)
    broker.kill9()
    remaining = p.flush(30)
    assert remaining == 0, f"{remaining} records have neither been acknowledged nor failed"
    assert len(acked) + len(failed) == len(records)
    print(f"acks={acks}: {len(acked)} acknowledged, {len(failed)} failed by the kill")
    assert failed, "the kill should have caught records in flight (else it was not 'during produce')"
    order = sorted(acked)
    return [records[j] for j in order], [acked[j] for j in order]


@pytest.mark.parametrize("append", APPEND)
@pytest.mark.parametrize("acks", ["1", "all"])
def test_kill_9_during_produce_keeps_acknowledged_records(make_broker, acks, append):
    broker = make_broker(overrides={"num.partitions": "2", "log.append.strategy": append})
    broker.start()
    topic = f"kill9-acks-{acks}-{append}"
    records, positions = _produce_until_killed(broker, topic, acks, kill_after=20_000)
    assert len(records) >= 20_000

    broker.start(timeout_s=60)  # waits out the old session's registration
    counts = c.partition_counts(positions)
    # Records may exist beyond the acknowledged ones (written, reply lost); read up to the end.
    from confluent_kafka import Consumer, TopicPartition
    probe = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "itest-probe", "log_level": 0})
    try:
        ends = {p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in counts}
    finally:
        probe.close()
    for p, (low, high) in ends.items():
        assert low == 0 and high >= max(o for q, o in positions if q == p) + 1, (p, low, high)
    consumed = c.ck_consume(broker.bootstrap, topic, {p: high for p, (_, high) in ends.items()})
    c.verify(records, positions, consumed, allow_extra=True)

    # And the partition accepts new writes at the next dense offset.
    more = c.make_records(100, seed=77)
    pos_more = c.ck_produce(broker.bootstrap, topic, more, partition=0)
    assert pos_more[0] == (0, ends[0][1])
