"""kafka-python 2.0.2 (pure Python): produce with every codec whose library is installed,
read back by assign() + seek_to_beginning() (no group), every byte and offset compared.

kafka-python infers the broker's version from ApiVersions v0 and then picks fixed request
versions (Produce v7 / Fetch v4 for "2.1+"), so this also checks that inference works.
"""

from __future__ import annotations

import time

import pytest

import clients as c

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PARTITIONS = 2


def _codec_available(codec: str) -> tuple[bool, str]:
    from kafka import codec as kc
    probe = {"none": lambda: True, "gzip": kc.has_gzip, "snappy": kc.has_snappy,
             "lz4": kc.has_lz4, "zstd": kc.has_zstd}[codec]
    if probe():
        return True, ""
    package = {"snappy": "python3-snappy", "lz4": "python3-lz4", "zstd": "python3-zstandard"}.get(codec, "?")
    return False, f"kafka-python cannot use {codec}: its library is missing (apt-get install {package})"


def kp_produce(bootstrap: str, topic: str, records: list[c.Rec], **conf) -> list[tuple[int, int]]:
    from kafka import KafkaProducer
    conf = {"linger_ms": 5, **conf}
    producer = KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=30000, max_block_ms=60000, **conf)
    try:
        futures = [producer.send(topic, key=r.key, value=r.value, headers=list(r.headers)) for r in records]
        producer.flush(timeout=120)
        metas = [f.get(timeout=60) for f in futures]
        return [(m.partition, m.offset) for m in metas]
    finally:
        producer.close(timeout=30)


def kp_consume(bootstrap: str, topic: str, expected: dict[int, int], timeout_s: float = 120):
    from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="none", fetch_max_wait_ms=100)
    try:
        tps = [TopicPartition(topic, p) for p in expected]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        got: dict[int, list[c.Got]] = {p: [] for p in expected}
        deadline = time.monotonic() + timeout_s
        while any(len(got[p]) < n for p, n in expected.items()):
            assert time.monotonic() < deadline, \
                f"consumed {({p: len(v) for p, v in got.items()})} of {expected} within {timeout_s}s"
            for tp, msgs in consumer.poll(timeout_ms=500).items():
                got[tp.partition] += [c.Got(tp.partition, m.offset, m.key, m.value, tuple(m.headers))
                                      for m in msgs]
        return got
    finally:
        consumer.close()


@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_consume_each_codec(make_broker, codec):
    available, reason = _codec_available(codec)
    if not available:
        print(reason)
        pytest.skip(reason)
    broker = make_broker(overrides={"num.partitions": str(PARTITIONS)})
    broker.start()
    topic = f"kp-{codec}"
    records = c.make_records(2000, seed=len(codec) + 100, compressible=True)
    records += c.make_records(300, seed=5, big_every=100, big_sizes=[200 * 1024])
    conf = {"acks": "all"}
    if codec != "none":
        conf["compression_type"] = codec
    positions = kp_produce(broker.bootstrap, topic, records, **conf)
    counts = c.partition_counts(positions)
    assert set(counts) == set(range(PARTITIONS)), f"keys should spread over all partitions: {counts}"
    c.verify(records, positions, kp_consume(broker.bootstrap, topic, counts))


def test_kafka_python_infers_a_record_batch_v2_broker(broker):
    """kafka-python falls back to magic-1 message sets when it cannot infer >= 0.11."""
    from kafka import KafkaProducer
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    try:
        version = producer.config["api_version"]
        assert version >= (2, 1), f"kafka-python inferred broker version {version}"
    finally:
        producer.close(timeout=10)


def test_acks_1_then_read_with_confluent(broker):
    topic = "kp-acks1"
    records = c.make_records(1000, seed=3)
    positions = kp_produce(broker.bootstrap, topic, records, acks=1)
    assert positions == [(0, i) for i in range(1000)]
    c.verify(records, positions, c.ck_consume(broker.bootstrap, topic, {0: 1000}))
