"""confluent-kafka-python 1.7 (librdkafka 2.0.2): every compression codec, 3 partitions,
consumption by assignment from offset 0 (no group membership), every byte compared."""

from __future__ import annotations

import pytest

import clients as c

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PARTITIONS = 3


@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_consume_each_codec(make_broker, codec):
    broker = make_broker(overrides={"num.partitions": str(PARTITIONS)})
    broker.start()
    topic = f"ck-{codec}"
    # Compressible values so the codec really is used (librdkafka sends a batch
    # uncompressed when compression does not make it smaller), plus empty and random ones.
    records = c.make_records(3000, seed=hash(codec) & 0xFFFF, compressible=True)
    records += c.make_records(500, seed=7, big_every=100, big_sizes=[64 * 1024, 250 * 1024])
    positions = c.ck_produce(broker.bootstrap, topic, records,
                             {"compression.codec": codec, "acks": "all", "batch.num.messages": 500})
    counts = c.partition_counts(positions)
    assert set(counts) == set(range(PARTITIONS)), f"keys should spread over all partitions: {counts}"
    consumed = c.ck_consume(broker.bootstrap, topic, counts)
    c.verify(records, positions, consumed)


@pytest.mark.parametrize("strategy", ["splice", "mmap_copy", "buffered"])
def test_each_fetch_send_strategy(make_broker, strategy):
    """The same bytes come back whichever way the broker sends log data to the socket."""
    broker = make_broker(overrides={"fetch.send.strategy": strategy, "log.segment.bytes": str(1024 * 1024)})
    broker.start()
    topic = f"strategy-{strategy}"
    # Several segments (1 MiB each), values from empty to 700 KiB.
    records = c.make_records(3000, seed=61, big_every=300, big_sizes=[700 * 1024, 90 * 1024, 333 * 1024])
    positions = c.ck_produce(broker.bootstrap, topic, records, partition=0)
    consumed = c.ck_consume(broker.bootstrap, topic, {0: len(records)},
                            conf={"fetch.max.bytes": 2 * 1024 * 1024, "max.partition.fetch.bytes": 1024 * 1024})
    c.verify(records, positions, consumed)
    segments = list((broker.log_dir / f"{topic}-0").glob("*.log"))
    assert len(segments) >= 3, f"expected the log to roll into several segments: {segments}"


def test_null_keys_and_values_and_acks_1(broker):
    topic = "ck-nulls"
    records = [c.Rec(None, b"v0"), c.Rec(b"k1", None), c.Rec(None, None), c.Rec(b"", b""),
               c.Rec(b"k4", b"x" * 10, (("h", b""),)), c.Rec(b"k5", b"y", (("h", b"1"), ("h", b"2")))]
    positions = c.ck_produce(broker.bootstrap, topic, records, {"acks": "1"}, partition=0)
    assert positions == [(0, i) for i in range(len(records))]
    consumed = c.ck_consume(broker.bootstrap, topic, {0: len(records)})
    c.verify(records, positions, consumed)


def test_consume_from_middle_offset_and_continue_after_new_writes(broker):
    from confluent_kafka import Consumer, TopicPartition
    topic = "ck-middle"
    first = c.make_records(1000, seed=11)
    pos1 = c.ck_produce(broker.bootstrap, topic, first, partition=0)
    assert pos1 == [(0, i) for i in range(1000)]
    second = c.make_records(200, seed=12)
    pos2 = c.ck_produce(broker.bootstrap, topic, second, partition=0)
    assert pos2 == [(0, 1000 + i) for i in range(200)]

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "itest-assign",
                         "enable.auto.commit": False, "log_level": 3})
    try:
        consumer.assign([TopicPartition(topic, 0, 777)])
        got = []
        import time
        deadline = time.monotonic() + 60
        while len(got) < 1200 - 777 and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is not None and not m.error():
                got.append(m)
        assert [m.offset() for m in got] == list(range(777, 1200))
        expected = (first + second)[777:]
        assert [(m.key(), m.value()) for m in got] == [(r.key, r.value) for r in expected]
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        assert (low, high) == (0, 1200)
    finally:
        consumer.close()
