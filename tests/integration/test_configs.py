"""Topic and broker configs (CreateTopics configs, DescribeConfigs, AlterConfigs,
IncrementalAlterConfigs), DeleteRecords, and the background duties they drive:
retention after a live retention.ms change, and the periodic checkpoints.

Clients: confluent-kafka 1.7 (create_topics/describe_configs/alter_configs; it has no
incremental_alter_configs nor delete_records), kafka-python 2.0.2's KafkaAdminClient
(describe_configs/alter_configs), and raw frames for IncrementalAlterConfigs v0 and
DeleteRecords v0, encoded here from the Kafka schemas (stdlib only, like kwire.py)."""

from __future__ import annotations

import struct
import time

import pytest

import clients as c
import kwire as kw
import sluice_harness as h

ERR_INVALID_CONFIG = 40
ERR_INVALID_REQUEST = 42
ERR_OFFSET_OUT_OF_RANGE = 1
ERR_UNKNOWN_TOPIC = 3

# ConfigSource ids
DYNAMIC_TOPIC_CONFIG = 1
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def ck_create(broker, topic: str, config: dict, partitions: int = 1):
    from confluent_kafka.admin import NewTopic
    admin = broker.admin()  # must outlive the future: a destroyed client fails it
    fs = admin.create_topics([NewTopic(topic, partitions, 1, config=config)], operation_timeout=10)
    return fs[topic].result(timeout=20)


def ck_describe(broker, topic: str) -> dict:
    from confluent_kafka.admin import ConfigResource
    return ck_describe_resource(broker, ConfigResource(ConfigResource.Type.TOPIC, topic))


def ck_describe_resource(broker, res) -> dict:
    admin = broker.admin()
    return admin.describe_configs([res])[res].result(timeout=20)


def ck_alter(broker, res):
    admin = broker.admin()
    return admin.alter_configs([res])[res].result(timeout=20)


def watermarks(broker, topic: str, partition: int = 0) -> tuple[int, int]:
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "itest-wm", "log_level": 3})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    finally:
        consumer.close()


# ---------------------------------------------------------------- raw frames

def incremental_alter_v0(port: int, topic: str, ops: list[tuple[str, int, str | None]],
                         validate_only: bool = False) -> list[tuple[int, str | None, int, str]]:
    configs = [kw.string(name) + kw.i8(op) + kw.string(value) for name, op, value in ops]
    body = kw.array([kw.i8(2) + kw.string(topic) + kw.array(configs)]) + kw.i8(1 if validate_only else 0)
    with kw.Conn(port) as conn:
        r = kw.Reader(conn.call(44, 0, body))
    r.i32()  # throttle
    out = r.array(lambda rr: (rr.i16(), rr.string(), rr.i8(), rr.string()))
    r.done()
    return out


def delete_records_v0(port: int, topic: str, partition: int, offset: int) -> tuple[int, int]:
    body = kw.array([kw.string(topic) + kw.array([kw.i32(partition) + i64(offset)])]) + kw.i32(10000)
    with kw.Conn(port) as conn:
        r = kw.Reader(conn.call(21, 0, body))
    r.i32()
    topics = r.array(lambda rr: (rr.string(), rr.array(
        lambda p: (p.i32(), struct.unpack(">q", p.take(8))[0], p.i16()))))
    r.done()
    (name, parts), = topics
    assert name == topic
    (index, low, error), = parts
    assert index == partition
    return error, low


# ---------------------------------------------------------------- tests

def test_create_topic_with_configs_then_describe(make_broker):
    from confluent_kafka.admin import ConfigSource
    broker = make_broker(properties={"log.segment.bytes": str(8 * 1024 * 1024)})
    broker.start()
    ck_create(broker, "cfg-a", {"retention.ms": "3600000", "cleanup.policy": "compact,delete"})
    entries = ck_describe(broker, "cfg-a")
    assert entries["retention.ms"].value == "3600000"
    assert entries["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert not entries["retention.ms"].is_default
    assert entries["cleanup.policy"].value == "compact,delete"
    # From server.properties, and from Kafka's defaults.
    assert entries["segment.bytes"].value == str(8 * 1024 * 1024)
    assert entries["segment.bytes"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert entries["max.message.bytes"].value == "1048588"
    assert entries["max.message.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    assert not entries["retention.ms"].is_read_only
    # Synonyms (DescribeConfigs v1+): the server.properties key (then its default).
    syn = entries["segment.bytes"].synonyms
    # (confluent-kafka keys them by name, so the static entry and the default collapse.)
    assert "log.segment.bytes" in syn, syn


@pytest.mark.parametrize("config,needle", [
    ({"retention.ms": "abc"}, "Not a number of type LONG"),
    ({"no.such.config": "1"}, "Unknown topic config name"),
    ({"segment.bytes": "10"}, "at least 14"),
    ({"message.timestamp.type": "Wall"}, "CreateTime"),
])
def test_create_topic_rejects_bad_configs(broker, config, needle):
    from confluent_kafka import KafkaException
    with pytest.raises(KafkaException) as e:
        ck_create(broker, "cfg-bad", config)
    err = e.value.args[0]
    assert err.code() == ERR_INVALID_CONFIG, err
    assert needle in err.str(), err.str()
    assert "cfg-bad" not in broker.metadata().topics


def test_alter_configs_replaces_overrides(broker):
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import ConfigResource
    ck_create(broker, "cfg-alter", {"retention.ms": "1000000"})
    res = ConfigResource(ConfigResource.Type.TOPIC, "cfg-alter", set_config={"retention.bytes": "123456"})
    ck_alter(broker, res)
    entries = ck_describe(broker, "cfg-alter")
    assert entries["retention.bytes"].value == "123456"
    assert entries["retention.ms"].value == "604800000"  # AlterConfigs replaced the whole set
    assert entries["retention.ms"].is_default

    bad = ConfigResource(ConfigResource.Type.TOPIC, "cfg-alter", set_config={"retention.bytes": "lots"})
    with pytest.raises(KafkaException) as e:
        ck_alter(broker, bad)
    assert e.value.args[0].code() == ERR_INVALID_CONFIG
    assert ck_describe(broker, "cfg-alter")["retention.bytes"].value == "123456"

    missing = ConfigResource(ConfigResource.Type.TOPIC, "cfg-nope", set_config={"retention.bytes": "1"})
    with pytest.raises(KafkaException) as e:
        ck_alter(broker, missing)
    assert e.value.args[0].code() == ERR_UNKNOWN_TOPIC


def test_overrides_are_kafka_znodes(broker):
    ck_create(broker, "cfg-zk", {"retention.ms": "5000"})
    zk = broker.zk.client(chroot=broker.chroot)
    try:
        import json
        data, _ = zk.get("/config/topics/cfg-zk")
        assert json.loads(data) == {"version": 1, "config": {"retention.ms": "5000"}}
        from confluent_kafka.admin import ConfigResource
        res = ConfigResource(ConfigResource.Type.TOPIC, "cfg-zk", set_config={"retention.ms": "6000"})
        ck_alter(broker, res)
        data, _ = zk.get("/config/topics/cfg-zk")
        assert json.loads(data)["config"] == {"retention.ms": "6000"}
        changes = zk.get_children("/config/changes")
        notes = [json.loads(zk.get("/config/changes/" + n)[0]) for n in changes]
        assert {"version": 2, "entity_path": "topics/cfg-zk"} in notes
    finally:
        zk.stop() if hasattr(zk, "stop") else zk.close()


def test_incremental_alter_configs_raw(broker):
    ck_create(broker, "cfg-inc", {"retention.ms": "1000000"})
    [(err, msg, rtype, name)] = incremental_alter_v0(
        broker.port, "cfg-inc", [("segment.ms", 0, "3600000"), ("cleanup.policy", 2, "compact")])
    assert (err, rtype, name) == (0, 2, "cfg-inc"), msg
    entries = ck_describe(broker, "cfg-inc")
    assert entries["retention.ms"].value == "1000000"  # untouched by an incremental change
    assert entries["segment.ms"].value == "3600000"
    assert entries["cleanup.policy"].value == "delete,compact"

    [(err, _, _, _)] = incremental_alter_v0(broker.port, "cfg-inc", [("retention.ms", 1, None)])
    assert err == 0
    assert ck_describe(broker, "cfg-inc")["retention.ms"].is_default

    [(err, msg, _, _)] = incremental_alter_v0(broker.port, "cfg-inc", [("retention.ms", 2, "5")])
    assert err == ERR_INVALID_CONFIG, msg
    [(err, msg, _, _)] = incremental_alter_v0(broker.port, "cfg-inc", [("segment.bytes", 0, "1")])
    assert err == ERR_INVALID_CONFIG and "at least 14" in msg
    # validate_only writes nothing.
    [(err, _, _, _)] = incremental_alter_v0(broker.port, "cfg-inc", [("segment.ms", 0, "7")], validate_only=True)
    assert err == 0
    assert ck_describe(broker, "cfg-inc")["segment.ms"].value == "3600000"


def test_describe_broker_configs(make_broker):
    from confluent_kafka.admin import ConfigResource, ConfigSource
    broker = make_broker(broker_id=3, properties={"log.retention.hours": "12"})
    broker.start()
    res = ConfigResource(ConfigResource.Type.BROKER, "3")
    entries = ck_describe_resource(broker, res)
    assert entries["broker.id"].value == "3"
    assert entries["broker.id"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert entries["broker.id"].is_read_only
    assert entries["log.retention.hours"].value == "12"
    assert entries["log.retention.check.interval.ms"].value == "300000"
    assert entries["log.retention.check.interval.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    # A topic inherits the broker's retention (hours scaled to ms).
    ck_create(broker, "cfg-inherit", {})
    assert ck_describe(broker, "cfg-inherit")["retention.ms"].value == str(12 * 3600 * 1000)

    other = ConfigResource(ConfigResource.Type.BROKER, "4")
    from confluent_kafka import KafkaException
    with pytest.raises(KafkaException):
        ck_describe_resource(broker, other)


def test_kafka_python_admin_describe_and_alter(broker):
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
    ck_create(broker, "cfg-kp", {"retention.ms": "999999"})
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        [resp] = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "cfg-kp")])
        [(err, msg, rtype, name, entries)] = resp.resources
        assert err == 0, msg
        values = {e[0]: e[1] for e in entries}
        assert values["retention.ms"] == "999999"
        assert values["cleanup.policy"] == "delete"

        resp = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "cfg-kp",
                                                   configs={"retention.ms": "888888"})])
        [(err, msg, rtype, name)] = resp.resources
        assert err == 0, msg
        [resp] = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "cfg-kp")])
        values = {e[0]: e[1] for e in resp.resources[0][4]}
        assert values["retention.ms"] == "888888"

        [resp] = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, str(broker.broker_id))])
        values = {e[0]: e[1] for e in resp.resources[0][4]}
        assert values["broker.id"] == str(broker.broker_id)
    finally:
        admin.close()


def segment_files(broker, topic: str) -> list:
    return sorted((broker.log_dir / f"{topic}-0").glob("*.log"))


def test_live_retention_change_deletes_old_segments(make_broker):
    broker = make_broker(properties={"log.retention.check.interval.ms": "300"})
    broker.start()
    topic = "cfg-retention"
    ck_create(broker, topic, {"segment.bytes": "4096"})
    records = c.make_records(300, seed=5, with_headers=False)
    c.ck_produce(broker.bootstrap, topic, records, {"linger.ms": 0, "batch.num.messages": 10}, partition=0)
    before = segment_files(broker, topic)
    assert len(before) >= 4, f"expected several small segments: {before}"
    assert watermarks(broker, topic) == (0, 300)
    # Nothing is old enough under the default 7 days: a few retention passes delete nothing.
    time.sleep(1)
    assert segment_files(broker, topic) == before

    from confluent_kafka.admin import ConfigResource
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"segment.bytes": "4096", "retention.ms": "1"})
    ck_alter(broker, res)
    h.wait_until(lambda: watermarks(broker, topic)[0] > 0, 20, "the log start to move after retention.ms=1")
    low, high = watermarks(broker, topic)
    assert high == 300
    h.wait_until(lambda: len(segment_files(broker, topic)) == 1, 20, "old segments to be deleted")
    low, high = watermarks(broker, topic)
    assert 0 < low <= 300
    # The earliest readable record is the new log start.
    got = c.ck_consume(broker.bootstrap, topic, {0: 0}) if low == 300 else None
    assert got is None or got == {0: []}


def test_delete_records_moves_log_start_and_survives_restart(make_broker):
    broker = make_broker()
    broker.start()
    topic = "cfg-delrec"
    ck_create(broker, topic, {"segment.bytes": "4096"})
    records = c.make_records(200, seed=9, with_headers=False)
    c.ck_produce(broker.bootstrap, topic, records, {"linger.ms": 0, "batch.num.messages": 10}, partition=0)
    err, low = delete_records_v0(broker.port, topic, 0, 120)
    assert (err, low) == (0, 120)
    assert watermarks(broker, topic) == (120, 200)
    # Beyond the high watermark: OFFSET_OUT_OF_RANGE; backwards: no change.
    assert delete_records_v0(broker.port, topic, 0, 201)[0] == ERR_OFFSET_OUT_OF_RANGE
    assert delete_records_v0(broker.port, topic, 0, 50) == (0, 120)
    assert delete_records_v0(broker.port, topic, 7, 1)[0] == ERR_UNKNOWN_TOPIC

    # A consumer starting below the log start is reset to it (it got OFFSET_OUT_OF_RANGE).
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "itest-delrec", "log_level": 3,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 10)])
        deadline = time.monotonic() + 30
        first = None
        while first is None and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is not None and not m.error():
                first = m
        assert first is not None and first.offset() == 120
        assert first.value() == records[120].value
    finally:
        consumer.close()

    broker.restart()
    assert watermarks(broker, topic) == (120, 200)
    # -1: up to the high watermark.
    assert delete_records_v0(broker.port, topic, 0, -1) == (0, 200)


def test_background_flush_and_recovery_point_checkpoint(make_broker):
    broker = make_broker(properties={"log.flush.offset.checkpoint.interval.ms": "300",
                                     "log.flush.start.offset.checkpoint.interval.ms": "300"})
    broker.start()
    topic = "cfg-flush"
    ck_create(broker, topic, {"flush.messages": "1"})
    c.ck_produce(broker.bootstrap, topic, c.make_records(50, seed=3), partition=0)
    checkpoint = broker.log_dir / "recovery-point-offset-checkpoint"

    def flushed():
        if not checkpoint.exists():
            return False
        return f"{topic} 0 50" in checkpoint.read_text().splitlines()

    # Written while the broker runs (not only at shutdown).
    h.wait_until(flushed, 20, "the recovery point of the flushed partition in the checkpoint")
    assert broker.running()
