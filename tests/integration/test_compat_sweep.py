"""Compatibility sweep: the less-travelled client APIs, each checked for real behaviour.

- kcat: -L -J metadata, -Q offsets by timestamp, -o beginning/end/-N/s@ts with -e,
  keys, headers and -p, a -G balanced consumer resuming from its commits, and every
  compression codec both ways (the stored batches really are compressed: read back with
  a raw Fetch and their attributes checked).
- confluent-kafka 1.7: AdminClient topics and configs (validate_only, explicit replica
  assignments, Kafka's error codes), consumer offset APIs (offsets_for_times,
  watermarks, seek, position, committed), a transactional producer that fails at once
  instead of hanging, an idempotent producer whose in-flight requests time out and are
  retried (no duplicates, order kept), and cooperative-sticky incremental rebalancing.
- kafka-python 2.0.2: KafkaAdminClient topics/configs/cluster, KafkaConsumer
  beginning/end offsets, offsets_for_times, seek; producing with auto-creation off.
- kafkajs 2.2.4: the admin client (js/admin_sweep.js).
- Raw frames for what no installed client sends: ListOffsets v7/v9 (max timestamp,
  earliest-local, latest-tiered), Metadata v12 (null topics, topic ids, authorized
  operations), DescribeCluster v0/v1, FindCoordinator and InitProducerId for
  transactions. Encoded here from Kafka's schemas (flexible versions: compact strings,
  unsigned varints, tagged fields), independent of the broker's codec.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import struct
import subprocess
import time
import uuid
from pathlib import Path
from typing import Optional

import pytest

import clients as c
import kwire as kw

JS_DIR = Path(__file__).resolve().parent / "js"
FAST_GROUPS = {"group.initial.rebalance.delay.ms": "0"}

ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_UNKNOWN_TOPIC_ID = 100
ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
ERR_UNSUPPORTED_ENDPOINT_TYPE = 115

# Authorized operations a Kafka broker without an authorizer reports (KIP-430 bit fields).
TOPIC_OPERATIONS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))
CLUSTER_OPERATIONS = sum(1 << op for op in (5, 7, 8, 9, 10, 11, 12))
NOT_REQUESTED = -2147483648

CODECS = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


# ---------------------------------------------------------------------------------------
# Flexible-version wire helpers (request header v2, response header v1).

def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _cstr(s: Optional[str]) -> bytes:
    if s is None:
        return b"\x00"
    raw = s.encode()
    return _uvarint(len(raw) + 1) + raw


def _carr(items: Optional[list[bytes]]) -> bytes:
    return b"\x00" if items is None else _uvarint(len(items) + 1) + b"".join(items)


TAGS = b"\x00"


class FlexReader(kw.Reader):
    def i64(self) -> int:
        return struct.unpack(">q", self.take(8))[0]

    def uvarint(self) -> int:
        n = shift = 0
        while True:
            b = self.take(1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    def cstr(self) -> Optional[str]:
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode()

    def carr(self, element) -> Optional[list]:
        n = self.uvarint()
        return None if n == 0 else [element(self) for _ in range(n - 1)]

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=self.take(16))

    def tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def flex_call(port: int, api_key: int, version: int, body: bytes) -> FlexReader:
    with kw.Conn(port) as conn:
        conn.send(kw.request(api_key, version, 41, body, flexible=True))
        frame = conn.recv_frame()
    r = FlexReader(frame)
    assert r.i32() == 41, "correlation id"
    r.tags()  # response header v1
    return r


def list_offsets(port: int, version: int, topic: str, queries: list[tuple[int, int]]) -> list[dict]:
    """ListOffsets v6+ (flexible): [(partition, timestamp)] -> per-partition answers."""
    parts = [struct.pack(">iiq", p, -1, ts) + TAGS for p, ts in queries]
    body = struct.pack(">ib", -1, 0) + _carr([_cstr(topic) + _carr(parts) + TAGS]) + TAGS
    r = flex_call(port, 2, version, body)
    r.i32()  # throttle

    def partition(r):
        d = {"partition": r.i32(), "error": r.i16(), "timestamp": r.i64(), "offset": r.i64(), "epoch": r.i32()}
        r.tags()
        return d

    def topic_(r):
        name, parts = r.cstr(), r.carr(partition)
        r.tags()
        return name, parts

    topics = r.carr(topic_)
    r.tags()
    r.done()
    assert [name for name, _ in topics] == [topic]
    return topics[0][1]


def metadata_v12(port: int, topics: Optional[list[tuple[Optional[uuid.UUID], Optional[str]]]],
                 allow_auto_create: bool = False, topic_operations: bool = False) -> dict:
    wanted = None if topics is None else [
        (tid.bytes if tid else bytes(16)) + _cstr(name) + TAGS for tid, name in topics]
    body = _carr(wanted) + struct.pack(">bb", int(allow_auto_create), int(topic_operations)) + TAGS
    r = flex_call(port, 3, 12, body)
    r.i32()

    def broker(r):
        b = (r.i32(), r.cstr(), r.i32(), r.cstr())
        r.tags()
        return b

    def partition(r):
        p = {"error": r.i16(), "partition": r.i32(), "leader": r.i32(), "epoch": r.i32(),
             "replicas": r.carr(kw.Reader.i32), "isr": r.carr(kw.Reader.i32), "offline": r.carr(kw.Reader.i32)}
        r.tags()
        return p

    def topic_(r):
        t = {"error": r.i16(), "name": r.cstr(), "id": r.uuid(), "internal": r.i8() != 0,
             "partitions": r.carr(partition), "operations": r.i32()}
        r.tags()
        return t

    out = {"brokers": r.carr(broker), "cluster_id": r.cstr(), "controller": r.i32(), "topics": r.carr(topic_)}
    r.tags()
    r.done()
    return out


def describe_cluster(port: int, version: int, endpoint_type: int = 1, operations: bool = False) -> dict:
    body = struct.pack(">b", int(operations)) + (struct.pack(">b", endpoint_type) if version >= 1 else b"") + TAGS
    r = flex_call(port, 60, version, body)
    r.i32()
    out = {"error": r.i16(), "message": r.cstr()}
    if version >= 1:
        out["endpoint_type"] = r.i8()
    out["cluster_id"], out["controller"] = r.cstr(), r.i32()

    def broker(r):
        b = (r.i32(), r.cstr(), r.i32(), r.cstr())
        r.tags()
        return b

    out["brokers"], out["operations"] = r.carr(broker), r.i32()
    r.tags()
    r.done()
    return out


def fetch_batch_codecs(port: int, topic: str, partition: int = 0) -> list[int]:
    """Fetch v4 (non-flexible) from offset 0: the compression codec of every returned batch."""
    body = (kw.i32(-1) + kw.i32(500) + kw.i32(1) + kw.i32(8 << 20) + kw.i8(0)
            + kw.array([kw.string(topic) + kw.array([kw.i32(partition) + struct.pack(">q", 0) + kw.i32(8 << 20)])]))
    with kw.Conn(port) as conn:
        r = FlexReader(conn.call(kw.API_FETCH, 4, body))
    r.i32()
    codecs = []
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            r.i32()
            assert r.i16() == 0, "fetch error"
            r.i64(), r.i64()
            r.array(lambda a: a.take(16))
            records = r.take(r.i32())
            at = 0
            while at + 61 <= len(records):
                length = struct.unpack(">i", records[at + 8:at + 12])[0]
                if at + 12 + length > len(records):
                    break  # a partial batch at the end of the answer
                assert records[at + 16] == 2, "magic"
                codecs.append(struct.unpack(">h", records[at + 21:at + 23])[0] & 7)
                at += 12 + length
    r.done()
    return codecs


# ---------------------------------------------------------------------------------------
# kcat

def kcat(bootstrap: str, *args: str, stdin: bytes = b"", timeout_s: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["kcat", "-b", bootstrap, *args], input=stdin, capture_output=True, timeout=timeout_s)


def kcat_ok(bootstrap: str, *args: str, stdin: bytes = b"") -> str:
    done = kcat(bootstrap, *args, stdin=stdin)
    assert done.returncode == 0, f"kcat {' '.join(args)} exited {done.returncode}: {done.stderr.decode()[-800:]}"
    return done.stdout.decode()


def create_topic(broker, topic: str, partitions: int, config: Optional[dict] = None) -> None:
    from confluent_kafka.admin import NewTopic
    admin = broker.admin()
    admin.create_topics([NewTopic(topic, partitions, 1, config=config or {})])[topic].result(30)


def test_kcat_metadata_offsets_and_consume_positions(broker):
    topic = "kc-pos"
    create_topic(broker, topic, 2)
    # Partition 0: five keyed records with two headers, one kcat run each, so every
    # record has its own timestamp; partition 1: two records.
    for i in range(5):
        kcat_ok(broker.bootstrap, "-P", "-t", topic, "-p", "0", "-K", ":", "-H", f"seq={i}", "-H", "h=x",
                stdin=f"k{i}:v{i}\n".encode())
        time.sleep(0.01)  # distinct millisecond timestamps
    kcat_ok(broker.bootstrap, "-P", "-t", topic, "-p", "1", "-K", ":", stdin=b"a:1\nb:2\n")

    md = json.loads(kcat_ok(broker.bootstrap, "-L", "-J", "-t", topic))
    assert md["controllerid"] == broker.broker_id
    assert [b["id"] for b in md["brokers"]] == [broker.broker_id]
    assert md["brokers"][0]["name"] == broker.bootstrap
    (t,) = md["topics"]
    assert t["topic"] == topic and "error" not in t
    assert sorted((p["partition"], p["leader"], [r["id"] for r in p["isrs"]]) for p in t["partitions"]) == \
        [(0, 0, [0]), (1, 0, [0])]

    rows = [json.loads(line) for line in kcat_ok(broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning",
                                                 "-e", "-J", "-q", "-X", "check.crcs=true").splitlines()]
    assert [(r["offset"], r["key"], r["payload"], r["headers"]) for r in rows] == \
        [(i, f"k{i}", f"v{i}", ["seq", str(i), "h", "x"]) for i in range(5)]
    stamps = [r["ts"] for r in rows]
    assert stamps == sorted(stamps) and len(set(stamps)) == 5

    fmt = ["-f", "%p:%o:%k=%s\n", "-e", "-q"]
    assert kcat_ok(broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "-2", *fmt) == "0:3:k3=v3\n0:4:k4=v4\n"
    assert kcat_ok(broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "end", *fmt) == ""
    assert kcat_ok(broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "3", *fmt) == "0:3:k3=v3\n0:4:k4=v4\n"
    assert kcat_ok(broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", f"s@{stamps[3]}", *fmt) == \
        "0:3:k3=v3\n0:4:k4=v4\n"
    # Both partitions, whole topic from the beginning.
    everything = sorted(kcat_ok(broker.bootstrap, "-C", "-t", topic, "-o", "beginning", *fmt).splitlines())
    assert everything == ["0:0:k0=v0", "0:1:k1=v1", "0:2:k2=v2", "0:3:k3=v3", "0:4:k4=v4", "1:0:a=1", "1:1:b=2"]

    # -Q: the first offset at or after a timestamp; after the last one: -1 (end).
    q = kcat_ok(broker.bootstrap, "-Q", "-t", f"{topic}:0:{stamps[2]}", "-t", f"{topic}:1:-1")
    assert f"{topic} [0] offset 2" in q and f"{topic} [1] offset 2" in q, q
    assert f"{topic} [0] offset 0" in kcat_ok(broker.bootstrap, "-Q", "-t", f"{topic}:0:-2")
    assert f"{topic} [0] offset -1" in kcat_ok(broker.bootstrap, "-Q", "-t", f"{topic}:0:{stamps[4] + 1}")


def test_kcat_balanced_consumer_resumes_from_commits(make_broker):
    broker = make_broker(overrides=FAST_GROUPS)
    broker.start()
    topic, group = "kc-group", "kc-balanced"
    create_topic(broker, topic, 3)
    for p in range(3):
        kcat_ok(broker.bootstrap, "-P", "-t", topic, "-p", str(p), stdin=f"p{p}-a\np{p}-b\n".encode())
    fmt = ["-f", "%p:%o:%s\n", "-e", "-q", "-X", "auto.offset.reset=earliest"]
    first = kcat_ok(broker.bootstrap, "-G", group, topic, *fmt)
    assert sorted(first.splitlines()) == [f"{p}:{o}:p{p}-{v}" for p in range(3) for o, v in ((0, "a"), (1, "b"))]
    # Committed on exit: a second member of the group starts where the first stopped.
    kcat_ok(broker.bootstrap, "-P", "-t", topic, "-p", "1", stdin=b"p1-c\n")
    assert kcat_ok(broker.bootstrap, "-G", group, topic, *fmt).splitlines() == ["1:2:p1-c"]

    from confluent_kafka import Consumer, TopicPartition
    probe = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "log_level": 3})
    try:
        committed = probe.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    finally:
        probe.close()
    assert [tp.offset for tp in committed] == [2, 3, 2]
    assert group in [g.id for g in broker.admin().list_groups(timeout=10)]


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_kcat_compression_both_ways(broker, codec):
    produced_by_kcat, produced_by_ck = f"kc-z-{codec}", f"ck-z-{codec}"
    lines = [f"{codec} line {i} " * (i % 7 + 1) for i in range(300)]
    kcat_ok(broker.bootstrap, "-P", "-t", produced_by_kcat, "-z", codec, "-X", "enable.idempotence=true",
            "-X", "linger.ms=50", stdin=("\n".join(lines) + "\n").encode())
    codecs = fetch_batch_codecs(broker.port, produced_by_kcat)
    assert codecs and set(codecs) == {CODECS[codec]}, f"stored batches use codecs {codecs}"
    got = c.ck_consume(broker.bootstrap, produced_by_kcat, {0: len(lines)})
    assert [m.value.decode() for m in got[0]] == lines

    records = c.make_records(300, seed=CODECS[codec], compressible=True)
    positions = c.ck_produce(broker.bootstrap, produced_by_ck, records, {"compression.codec": codec})
    assert set(fetch_batch_codecs(broker.port, produced_by_ck)) == {CODECS[codec]}
    out = kcat_ok(broker.bootstrap, "-C", "-t", produced_by_ck, "-o", "beginning", "-e", "-q", "-f", "%o %S\n")
    sizes = [tuple(map(int, line.split())) for line in out.splitlines()]
    assert sizes == [(o, len(r.value)) for (_, o), r in zip(positions, records)]


# ---------------------------------------------------------------------------------------
# confluent-kafka

def _fails_with(future, code: int) -> str:
    try:
        future.result(30)
    except Exception as e:  # confluent_kafka.KafkaException
        assert e.args[0].code() == code, e
        return e.args[0].str()
    raise AssertionError(f"expected error {code}, got success")


def test_confluent_admin_topics_and_configs(broker):
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import ConfigResource, NewPartitions, NewTopic
    admin = broker.admin()
    topic = "ck-admin"
    # validate_only checks everything and creates nothing.
    admin.create_topics([NewTopic(topic, 3, 1, config={"retention.ms": "123456"})], validate_only=True)[topic].result(30)
    assert topic not in admin.list_topics(timeout=10).topics
    _fails_with(admin.create_topics([NewTopic(topic, 3, 1, config={"no.such.config": "1"})],
                                    validate_only=True)[topic], KafkaError.INVALID_CONFIG)

    admin.create_topics([NewTopic(topic, 3, 1, config={"retention.ms": "123456", "cleanup.policy": "compact"})])[
        topic].result(30)
    md = admin.list_topics(timeout=10)
    assert sorted(md.topics[topic].partitions) == [0, 1, 2]
    assert md.controller_id == broker.broker_id and md.cluster_id
    assert "already exists" in _fails_with(admin.create_topics([NewTopic(topic, 1, 1)])[topic],
                                           KafkaError.TOPIC_ALREADY_EXISTS)
    _fails_with(admin.create_topics([NewTopic("ck-rf", 1, 3)])["ck-rf"], KafkaError.INVALID_REPLICATION_FACTOR)
    _fails_with(admin.create_topics([NewTopic("bad name!", 1, 1)])["bad name!"], KafkaError.TOPIC_EXCEPTION)

    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    described = admin.describe_configs([res])[res].result(30)
    assert (described["retention.ms"].value, described["retention.ms"].source) == ("123456", 1)  # dynamic topic
    assert described["cleanup.policy"].value == "compact"
    assert described["segment.bytes"].source == 5 and described["segment.bytes"].is_default  # default config
    admin.alter_configs([ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"retention.ms": "999"})])[
        res].result(30)
    described = admin.describe_configs([res])[res].result(30)
    assert described["retention.ms"].value == "999"
    # AlterConfigs replaces every override: cleanup.policy is back to its default.
    assert (described["cleanup.policy"].value, described["cleanup.policy"].source) == ("delete", 5)
    missing = ConfigResource(ConfigResource.Type.TOPIC, "ck-missing")
    _fails_with(admin.describe_configs([missing])[missing], KafkaError.UNKNOWN_TOPIC_OR_PART)

    broker_res = ConfigResource(ConfigResource.Type.BROKER, str(broker.broker_id))
    broker_configs = admin.describe_configs([broker_res])[broker_res].result(30)
    assert broker_configs["broker.id"].value == str(broker.broker_id)
    assert broker_configs["num.partitions"].value == "1"

    # Explicit replica assignments (librdkafka sends num_partitions/replication_factor -1).
    admin.create_topics([NewTopic("ck-assigned", 3, replica_assignment=[[0], [0], [0]])])["ck-assigned"].result(30)
    assert sorted(admin.list_topics("ck-assigned", timeout=10).topics["ck-assigned"].partitions) == [0, 1, 2]
    admin.create_topics([NewTopic("ck-assigned-v", 2, replica_assignment=[[0], [0]])],
                        validate_only=True)["ck-assigned-v"].result(30)
    assert "ck-assigned-v" not in admin.list_topics(timeout=10).topics
    assert "Duplicate" in _fails_with(admin.create_topics([NewTopic("ck-dup", 1, replica_assignment=[[0, 0]])])[
        "ck-dup"], KafkaError.INVALID_REPLICA_ASSIGNMENT)

    admin.create_partitions([NewPartitions(topic, 5)])[topic].result(30)
    assert sorted(admin.list_topics(topic, timeout=10).topics[topic].partitions) == [0, 1, 2, 3, 4]

    admin.delete_topics([topic])[topic].result(30)
    assert topic not in admin.list_topics(timeout=10).topics
    _fails_with(admin.delete_topics([topic])[topic], KafkaError.UNKNOWN_TOPIC_OR_PART)


def test_confluent_consumer_offset_apis(broker):
    from confluent_kafka import Consumer, TopicPartition
    topic = "ck-offsets"
    create_topic(broker, topic, 1)
    base = int(time.time() * 1000) - 60_000
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": broker.bootstrap, "log_level": 3})
    for i in range(10):
        p.produce(topic, value=f"v{i}".encode(), key=b"k", partition=0, timestamp=base + i * 1000)
    assert p.flush(30) == 0

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "ck-offsets-g", "log_level": 3,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        by_ts = consumer.offsets_for_times([TopicPartition(topic, 0, base + 3500)], timeout=10)
        assert [(tp.offset, tp.error) for tp in by_ts] == [(4, None)]
        exact = consumer.offsets_for_times([TopicPartition(topic, 0, base + 7000)], timeout=10)
        assert exact[0].offset == 7
        after = consumer.offsets_for_times([TopicPartition(topic, 0, base + 60_000)], timeout=10)
        assert after[0].offset == -1  # no record that late: end
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 10)

        consumer.assign([TopicPartition(topic, 0, 2)])
        first = _poll_one(consumer)
        assert (first.offset(), first.value(), first.timestamp()[1]) == (2, b"v2", base + 2000)
        consumer.seek(TopicPartition(topic, 0, 8))
        assert (_poll_one(consumer).offset(), _poll_one(consumer).offset()) == (8, 9)
        assert consumer.position([TopicPartition(topic, 0)])[0].offset == 10
        consumer.commit(offsets=[TopicPartition(topic, 0, 6)], asynchronous=False)
        assert consumer.committed([TopicPartition(topic, 0)], timeout=10)[0].offset == 6
    finally:
        consumer.close()


def _poll_one(consumer, timeout_s: float = 20):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None:
            assert not m.error(), m.error()
            return m
    raise AssertionError("no record within the bound")


def test_transactional_producer_fails_fast_with_a_fatal_error(broker):
    from confluent_kafka import KafkaException, Producer
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "itest-tx", "log_level": 0})
    started = time.monotonic()
    with pytest.raises(KafkaException) as info:
        p.init_transactions(30)
    elapsed = time.monotonic() - started
    err = info.value.args[0]
    assert err.code() == ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, err
    assert err.fatal() and not err.retriable(), err
    assert "not supported" in err.str(), err
    assert elapsed < 10, f"init_transactions took {elapsed:.1f}s to fail"


def test_kafkajs_transactional_producer_fails_fast(broker, tmp_path):
    script = tmp_path / "tx.js"
    script.write_text(
        "const { Kafka, logLevel } = require('kafkajs');\n"
        "(async () => {\n"
        f"  const kafka = new Kafka({{ brokers: ['{broker.bootstrap}'], logLevel: logLevel.NOTHING }});\n"
        "  const p = kafka.producer({ transactionalId: 'itest-tx-js', idempotent: true, maxInFlightRequests: 1 });\n"
        "  await p.connect();\n"
        "  try { await p.transaction(); console.log('began'); } catch (e) { console.log(e.name); }\n"
        "  await p.disconnect();\n"
        "})().catch((e) => { console.error(e); process.exit(1); });\n")
    started = time.monotonic()
    done = subprocess.run(["node", str(script)], cwd=JS_DIR, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "NODE_PATH": str(JS_DIR / "node_modules")})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "KafkaJSGroupCoordinatorNotFound", done.stdout
    assert time.monotonic() - started < 20


class _CountingHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_idempotent_producer_retries_in_flight_requests_without_duplicates(broker):
    """The broker stops (SIGSTOP) while five produce requests per connection are in
    flight; librdkafka times them out, reconnects and sends them again. The broker, when
    it resumes, reads the first copies too: the retried batches must be recognised by
    their producer id and sequence and answered with their first offsets."""
    from confluent_kafka import Producer
    topic = "idem-retry"
    create_topic(broker, topic, 2)
    records = c.make_records(20_000, seed=11, with_headers=False)
    log = logging.getLogger("itest-idem")
    log.setLevel(logging.DEBUG)
    handler = _CountingHandler()
    log.addHandler(handler)
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                  "max.in.flight.requests.per.connection": 5, "linger.ms": 1, "batch.num.messages": 50,
                  "socket.timeout.ms": 1000, "request.timeout.ms": 1000, "message.timeout.ms": 60000,
                  "log_level": 7, "debug": "broker"}, logger=log)
    positions: list[Optional[tuple[int, int]]] = [None] * len(records)
    errors = []

    def report(i):
        def cb(err, msg):
            if err is not None:
                errors.append(err)
            else:
                positions[i] = (msg.partition(), msg.offset())
        return cb

    half = len(records) // 2
    for i, r in enumerate(records[:half]):
        p.produce(topic, key=r.key, value=r.value, on_delivery=report(i))
        p.poll(0)
    assert p.flush(30) == 0  # connected, producer id acquired: the next requests go out at once
    broker.signal(signal.SIGSTOP)
    try:
        for i, r in enumerate(records[half:], start=half):
            p.produce(topic, key=r.key, value=r.value, on_delivery=report(i))
            p.poll(0)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            p.poll(0.1)
    finally:
        broker.signal(signal.SIGCONT)
    assert p.flush(60) == 0
    assert not errors, errors[:3]
    assert any("Timed out ProduceRequest in flight" in line for line in handler.lines), \
        "no produce request timed out: the test did not exercise retries"
    assert None not in positions
    consumed = c.ck_consume(broker.bootstrap, topic, c.partition_counts(positions))
    c.verify(records, positions, consumed)
    # Order: each partition holds its records in the order they were produced.
    for part, msgs in consumed.items():
        keys = [m.key for m in msgs]
        assert keys == [r.key for r, (pp, _) in zip(records, positions) if pp == part]


def test_cooperative_sticky_rebalance_is_incremental(make_broker):
    """librdkafka's cooperative-sticky assignor over the classic protocol: a second member
    joining takes half of the partitions away from the first, which keeps the other half
    (no stop-the-world revocation), and every record is read."""
    import threading
    from confluent_kafka import Consumer
    broker = make_broker(overrides=FAST_GROUPS)
    broker.start()
    topic, group = "coop", "coop-group"
    create_topic(broker, topic, 4)
    records = c.make_records(4000, seed=21, with_headers=False)
    c.ck_produce(broker.bootstrap, topic, records)
    seen: set[tuple[int, int]] = set()
    events: list[tuple[str, str, list[int]]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def member(name: str, pause_s: float) -> None:
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "log_level": 3,
                             "partition.assignment.strategy": "cooperative-sticky",
                             "auto.offset.reset": "earliest", "auto.commit.interval.ms": 200})

        def note(kind):
            return lambda _c, parts: events.append((name, kind, sorted(p.partition for p in parts)))
        consumer.subscribe([topic], on_assign=note("assign"), on_revoke=note("revoke"))
        deadline = time.monotonic() + 40
        try:
            while time.monotonic() < deadline and not stop.is_set():
                m = consumer.poll(0.2)
                if m is not None and not m.error():
                    with lock:
                        seen.add((m.partition(), m.offset()))
                    time.sleep(pause_s)  # slow enough that the second member joins mid-way
        finally:
            consumer.close()

    first = threading.Thread(target=member, args=("a", 0.003))
    first.start()
    deadline = time.monotonic() + 20
    while not any(e[:2] == ("a", "assign") and e[2] for e in events) and time.monotonic() < deadline:
        time.sleep(0.05)
    second = threading.Thread(target=member, args=("b", 0))
    second.start()
    deadline = time.monotonic() + 40
    while len(seen) < len(records) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    first.join(30)
    second.join(30)
    assert len(seen) == len(records), f"read {len(seen)} of {len(records)} records"
    a_assigned = [e[2] for e in events if e[:2] == ("a", "assign") and e[2]]
    assert a_assigned and a_assigned[0] == [0, 1, 2, 3], events
    # The first non-empty assignment of b is what a gave up first, half of the partitions
    # (later events come from the shutdown at the end).
    b_assigned = [e[2] for e in events if e[:2] == ("b", "assign") and e[2]]
    a_revoked = [e[2] for e in events if e[:2] == ("a", "revoke")]
    assert b_assigned and a_revoked and len(b_assigned[0]) == 2 and a_revoked[0] == b_assigned[0], events


# ---------------------------------------------------------------------------------------
# kafka-python

def test_kafka_python_admin_and_consumer_offsets(broker):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
    from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    topic = "kp-admin"
    try:
        admin.create_topics([NewTopic(topic, 2, 1)], validate_only=True)
        assert topic not in admin.list_topics()
        admin.create_topics([NewTopic(topic, 2, 1, topic_configs={"retention.ms": "5000000"})])
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([NewTopic(topic, 2, 1)])
        assert topic in admin.list_topics()
        (described,) = admin.describe_topics([topic])
        assert described["error_code"] == 0
        assert [(p["partition"], p["leader"], p["isr"]) for p in described["partitions"]] == [(0, 0, [0]), (1, 0, [0])]
        cluster = admin.describe_cluster()
        assert cluster["controller_id"] == broker.broker_id and cluster["cluster_id"]
        assert [(b["node_id"], b["port"]) for b in cluster["brokers"]] == [(broker.broker_id, broker.port)]

        def topic_configs():
            (resp,) = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            error_code, _, _, name, entries = resp.resources[0]
            assert (error_code, name) == (0, topic)
            return {e[0]: e[1] for e in entries}
        assert topic_configs()["retention.ms"] == "5000000"
        altered = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "7777"})])
        assert altered.resources[0][0] == 0
        assert topic_configs()["retention.ms"] == "7777"
        (resp,) = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, str(broker.broker_id))])
        assert resp.resources[0][0] == 0 and any(e[0] == "log.dirs" for e in resp.resources[0][4])

        admin.create_topics([NewTopic("kp-assigned", -1, -1, replica_assignments={0: [0], 1: [0]})])
        assert [p["partition"] for p in admin.describe_topics(["kp-assigned"])[0]["partitions"]] == [0, 1]

        admin.create_partitions({topic: NewPartitions(6)}, validate_only=True)
        assert len(admin.describe_topics([topic])[0]["partitions"]) == 2
        admin.create_partitions({topic: NewPartitions(4)})
        assert len(admin.describe_topics([topic])[0]["partitions"]) == 4

        producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
        base = int(time.time() * 1000) - 60_000
        for i in range(10):
            producer.send(topic, key=b"k", value=f"v{i}".encode(), partition=0, timestamp_ms=base + i * 1000)
        producer.flush(30)
        producer.close()

        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, consumer_timeout_ms=10000)
        tp = TopicPartition(topic, 0)
        try:
            assert consumer.beginning_offsets([tp]) == {tp: 0}
            assert consumer.end_offsets([tp]) == {tp: 10}
            found = consumer.offsets_for_times({tp: base + 5500})[tp]
            assert (found.offset, found.timestamp) == (6, base + 6000)
            assert consumer.offsets_for_times({tp: base + 60_000}) == {tp: None}
            consumer.assign([tp])
            consumer.seek(tp, 7)
            got = []
            deadline = time.monotonic() + 20
            while len(got) < 3 and time.monotonic() < deadline:
                for msgs in consumer.poll(timeout_ms=500).values():
                    got += [(m.offset, m.value) for m in msgs]
            assert got == [(7, b"v7"), (8, b"v8"), (9, b"v9")]
        finally:
            consumer.close()

        admin.delete_topics([topic])
        assert topic not in admin.list_topics()
        with pytest.raises(UnknownTopicOrPartitionError):
            admin.delete_topics([topic])
    finally:
        admin.close()


def test_producing_to_a_missing_topic_with_auto_creation_off(make_broker):
    from kafka import KafkaProducer
    from kafka.errors import KafkaTimeoutError
    broker = make_broker(overrides={"auto.create.topics.enable": "false"})
    broker.start()
    topic = "never-there"
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, max_block_ms=3000)
    try:
        with pytest.raises(KafkaTimeoutError):
            producer.send(topic, b"v").get(timeout=10)
    finally:
        producer.close(timeout=5)
    done = kcat(broker.bootstrap, "-P", "-t", topic, "-X", "message.timeout.ms=3000", stdin=b"v\n")
    # librdkafka gives a missing topic topic.metadata.propagation.max.ms (30 s) to appear,
    # so the shorter message timeout is what fails the record here (as against Kafka).
    assert done.returncode != 0 and b"Delivery failed" in done.stderr, done.stderr
    md = metadata_v12(broker.port, [(None, topic)], allow_auto_create=True)
    assert [(t["name"], t["error"]) for t in md["topics"]] == [(topic, ERR_UNKNOWN_TOPIC_OR_PARTITION)]
    assert topic not in {t["name"] for t in metadata_v12(broker.port, None)["topics"]}


# ---------------------------------------------------------------------------------------
# kafkajs

def test_kafkajs_admin_sweep(make_broker):
    broker = make_broker(overrides=FAST_GROUPS)
    broker.start()
    topic, group = "js-sweep", "js-sweep-group"
    done = subprocess.run(["node", str(JS_DIR / "admin_sweep.js"), broker.bootstrap, topic, group], cwd=JS_DIR,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["created"] is True and out["createdAgain"] is False
    assert topic in out["listTopics"]
    assert out["metadata"] == [{"name": topic, "partitions": [[0, 0], [1, 0]]}]
    assert out["cluster"]["controller"] == broker.broker_id
    assert out["cluster"]["brokers"] == [{"nodeId": broker.broker_id, "host": "127.0.0.1", "port": broker.port}]
    assert out["offsets"] == [{"partition": 0, "offset": "10", "high": "10", "low": "0"},
                              {"partition": 1, "offset": "0", "high": "0", "low": "0"}]
    assert out["offsetsAtTs"] == [{"partition": 0, "offset": "5"}, {"partition": 1, "offset": "0"}]
    assert out["offsetsBeforeAll"] == [{"partition": 0, "offset": "0"}, {"partition": 1, "offset": "0"}]
    assert sorted(out["topicConfigs"]) == [["cleanup.policy", "delete", 5], ["retention.ms", "7200000", 1]]
    assert {"broker.id", "log.dirs", "num.partitions"} <= set(out["brokerConfigNames"])
    assert out["alteredRetention"] == "3600000"
    assert out["alterUnknownKey"] == "INVALID_CONFIG"
    assert out["fetchedOffsets"] == [{"topic": topic, "partitions": [
        {"partition": 0, "offset": "4", "metadata": None}, {"partition": 1, "offset": "0", "metadata": None}]}]
    # kafkajs resets by committing -2 (earliest), which the broker stores as given, as Kafka does.
    assert [p["offset"] for p in out["resetOffsets"][0]["partitions"]] == ["-2", "-2"]
    assert {"groupId": group, "protocolType": "consumer"} in out["groups"]
    assert out["describedGroups"] == [{"groupId": group, "state": "Empty", "protocolType": "consumer", "members": 0}]
    assert out["partitionsAfterGrow"] == [0, 1, 2]
    assert out["offsetsAfterDelete"][0] == {"partition": 0, "offset": "10", "high": "10", "low": "3"}
    assert out["deletedGroups"] == [{"groupId": group, "errorCode": 0}]
    assert out["deleteUnknownGroup"] == "GROUP_ID_NOT_FOUND"
    assert topic not in out["topicsAfterDelete"]


# ---------------------------------------------------------------------------------------
# Raw frames

def test_list_offsets_special_timestamps(broker):
    topic = "lo-special"
    create_topic(broker, topic, 1)
    base = int(time.time() * 1000) - 60_000
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": broker.bootstrap, "log_level": 3, "linger.ms": 0})
    # Timestamps out of order: the largest (base + 9000) is at offset 3.
    for i, ts in enumerate((base, base + 1000, base + 2000, base + 9000, base + 4000, base + 5000)):
        p.produce(topic, value=f"v{i}".encode(), partition=0, timestamp=ts)
        p.flush(10)
    answers = list_offsets(broker.port, 7, topic, [(0, -3), (0, -1), (0, -2), (0, base + 3000), (0, base + 20000),
                                                   (4, -1)])
    got = [(a["partition"], a["error"], a["offset"], a["timestamp"]) for a in answers]
    assert got == [(0, 0, 3, base + 9000),   # max timestamp (v7+)
                   (0, 0, 6, -1),            # latest
                   (0, 0, 0, -1),            # earliest
                   (0, 0, 3, base + 9000),   # first timestamp >= base + 3000
                   (0, 0, -1, -1),           # none that late
                   (4, ERR_UNKNOWN_TOPIC_OR_PARTITION, -1, -1)]
    assert all(a["epoch"] >= 0 for a in answers[:5])
    # v9: -4 earliest-local (no tiered storage: the log start), -5 latest-tiered (none: -1).
    answers = list_offsets(broker.port, 9, topic, [(0, -4), (0, -5)])
    assert [(a["error"], a["offset"]) for a in answers] == [(0, 0), (0, -1)]
    answers = list_offsets(broker.port, 7, "lo-missing", [(0, -1)])
    assert [a["error"] for a in answers] == [ERR_UNKNOWN_TOPIC_OR_PARTITION]


def test_metadata_v12_topic_ids_and_authorized_operations(broker):
    topic = "md12"
    create_topic(broker, topic, 2)
    everything = metadata_v12(broker.port, None)
    assert everything["brokers"] == [(broker.broker_id, "127.0.0.1", broker.port, None)]
    assert everything["controller"] == broker.broker_id and everything["cluster_id"]
    (t,) = [t for t in everything["topics"] if t["name"] == topic]
    assert t["id"] != uuid.UUID(int=0) and t["error"] == 0 and not t["internal"]
    assert [(p["partition"], p["leader"], p["replicas"], p["isr"]) for p in t["partitions"]] == \
        [(0, 0, [0], [0]), (1, 0, [0], [0])]
    assert t["operations"] == NOT_REQUESTED

    # By id alone: the name comes back. An unknown id: UNKNOWN_TOPIC_ID and a null name.
    (by_id,) = metadata_v12(broker.port, [(t["id"], None)])["topics"]
    assert (by_id["name"], by_id["id"], by_id["error"]) == (topic, t["id"], 0)
    stranger = uuid.uuid4()
    (unknown,) = metadata_v12(broker.port, [(stranger, None)])["topics"]
    assert (unknown["name"], unknown["id"], unknown["error"]) == (None, stranger, ERR_UNKNOWN_TOPIC_ID)
    (missing,) = metadata_v12(broker.port, [(None, "md12-missing")])["topics"]
    assert (missing["name"], missing["error"]) == ("md12-missing", ERR_UNKNOWN_TOPIC_OR_PARTITION)
    assert metadata_v12(broker.port, [])["topics"] == []

    (with_ops,) = metadata_v12(broker.port, [(None, topic)], topic_operations=True)["topics"]
    assert with_ops["operations"] == TOPIC_OPERATIONS

    # v9 (flexible, before topic ids) still has the cluster's authorized operations.
    body = _carr([_cstr(topic) + TAGS]) + struct.pack(">bbb", 0, 1, 1) + TAGS
    r = flex_call(broker.port, 3, 9, body)
    r.i32()
    r.carr(lambda r: (r.i32(), r.cstr(), r.i32(), r.cstr(), r.tags()))
    r.cstr(), r.i32()

    def topic_v9(r):
        error, name = r.i16(), r.cstr()
        r.i8()  # is_internal
        r.carr(lambda r: (r.i16(), r.i32(), r.i32(), r.i32(), r.carr(kw.Reader.i32), r.carr(kw.Reader.i32),
                          r.carr(kw.Reader.i32), r.tags()))
        operations = r.i32()
        r.tags()
        return error, name, operations
    assert r.carr(topic_v9) == [(0, topic, TOPIC_OPERATIONS)]
    assert r.i32() == CLUSTER_OPERATIONS
    r.tags()
    r.done()


def test_describe_cluster(broker):
    for version in (0, 1):
        d = describe_cluster(broker.port, version)
        assert (d["error"], d["controller"]) == (0, broker.broker_id)
        assert d["brokers"] == [(broker.broker_id, "127.0.0.1", broker.port, None)]
        assert d["cluster_id"] == metadata_v12(broker.port, [])["cluster_id"]
        assert d["operations"] == NOT_REQUESTED
    assert describe_cluster(broker.port, 1, operations=True)["operations"] == CLUSTER_OPERATIONS
    # v1 asking for controller endpoints (KRaft only): refused, as a ZooKeeper-mode Kafka does.
    refused = describe_cluster(broker.port, 1, endpoint_type=2)
    assert refused["error"] == ERR_UNSUPPORTED_ENDPOINT_TYPE and "CONTROLLER" in refused["message"]


def test_transaction_coordinator_and_transactional_producer_ids_are_refused(broker):
    # FindCoordinator v3 (flexible), key type 1 (transaction).
    r = flex_call(broker.port, 10, 3, _cstr("itest-txn") + kw.i8(1) + TAGS)
    r.i32()
    error, message, node = r.i16(), r.cstr(), r.i32()
    assert (error, node) == (ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1)
    assert "not supported" in message
    # v4 (batched keys).
    r = flex_call(broker.port, 10, 4, kw.i8(1) + _carr([_cstr("a"), _cstr("b")]) + TAGS)
    r.i32()

    def coordinator(r):
        row = (r.cstr(), r.i32(), r.cstr(), r.i32(), r.i16(), r.cstr())
        r.tags()
        return row
    rows = r.carr(coordinator)
    assert [(key, err) for key, _, _, _, err, _ in rows] == [("a", 53), ("b", 53)]
    # InitProducerId v2 (flexible) with a transactional id.
    r = flex_call(broker.port, 22, 2, _cstr("itest-txn") + kw.i32(60000) + TAGS)
    r.i32()
    assert (r.i16(), r.i64(), r.i16()) == (ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1, -1)
