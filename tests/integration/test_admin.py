"""Topic administration beyond create/delete, with real admin clients: CreatePartitions
through confluent-kafka's AdminClient, kafka-python's KafkaAdminClient and kafkajs.

The new partitions must be usable at once (the answer waits for their leaders), keep
the existing partitions' data, and requests Kafka refuses must be refused with Kafka's
error codes.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import clients as c

JS_DIR = Path(__file__).resolve().parent / "js"


def _partition_leaders(bootstrap: str, topic: str) -> dict[int, int]:
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    return {p.id: p.leader for p in md.topics[topic].partitions.values()}


def test_confluent_create_partitions_grows_a_live_topic(broker):
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic = "grow-me"
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
    before = c.make_records(200, seed=7)
    positions = c.ck_produce(broker.bootstrap, topic, before)

    # validate_only changes nothing.
    admin.create_partitions([NewPartitions(topic, 6)], validate_only=True)[topic].result(30)
    assert len(_partition_leaders(broker.bootstrap, topic)) == 2

    admin.create_partitions([NewPartitions(topic, 5)])[topic].result(30)
    leaders = _partition_leaders(broker.bootstrap, topic)
    assert sorted(leaders) == [0, 1, 2, 3, 4]
    assert all(leader == broker.broker_id for leader in leaders.values()), leaders

    # The new partitions take records at once; the old ones kept theirs.
    added = c.make_records(90, seed=8)
    new_positions = []
    for i, p in enumerate((2, 3, 4)):
        new_positions += c.ck_produce(broker.bootstrap, topic, added[i * 30:(i + 1) * 30], partition=p)
    assert [o for p, o in new_positions] == list(range(30)) * 3
    consumed = c.ck_consume(broker.bootstrap, topic, {0: sum(1 for p, _ in positions if p == 0),
                                                      1: sum(1 for p, _ in positions if p == 1),
                                                      2: 30, 3: 30, 4: 30})
    c.verify(before + added, positions + new_positions, consumed)

    # Shrinking and unknown topics are refused with Kafka's codes.
    try:
        admin.create_partitions([NewPartitions(topic, 3)])[topic].result(30)
        raise AssertionError("shrinking a topic must fail")
    except Exception as e:  # confluent_kafka.KafkaException
        assert e.args[0].code() == KafkaError.INVALID_PARTITIONS, e
    try:
        admin.create_partitions([NewPartitions("no-such-topic", 3)])["no-such-topic"].result(30)
        raise AssertionError("growing an unknown topic must fail")
    except Exception as e:
        assert e.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, e


def test_create_partitions_with_explicit_assignment_and_a_bad_one(broker):
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic = "grow-assigned"
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    bid = broker.broker_id
    admin.create_partitions([NewPartitions(topic, 3, [[bid], [bid]])])[topic].result(30)
    assert sorted(_partition_leaders(broker.bootstrap, topic)) == [0, 1, 2]
    try:
        admin.create_partitions([NewPartitions(topic, 4, [[bid + 17]])])[topic].result(30)
        raise AssertionError("an assignment to an unknown broker must fail")
    except Exception as e:
        assert e.args[0].code() == KafkaError.INVALID_REPLICA_ASSIGNMENT, e
    assert len(_partition_leaders(broker.bootstrap, topic)) == 3


def test_kafka_python_create_partitions(broker):
    from kafka.admin import KafkaAdminClient, NewPartitions, NewTopic
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=30000)
    try:
        admin.create_topics([NewTopic("kp-grow", 1, 1)])
        deadline = time.monotonic() + 30
        while "kp-grow" not in admin.list_topics():
            assert time.monotonic() < deadline
            time.sleep(0.2)
        resp = admin.create_partitions({"kp-grow": NewPartitions(4)})
        assert all(err == 0 for _, err, *rest in resp.topic_errors), resp
    finally:
        admin.close()
    assert sorted(_partition_leaders(broker.bootstrap, "kp-grow")) == [0, 1, 2, 3]


def test_kafkajs_create_partitions(broker):
    assert (JS_DIR / "node_modules" / "kafkajs").is_dir(), f"kafkajs is not installed: run `npm ci` in {JS_DIR}"
    proc = subprocess.run(["node", str(JS_DIR / "create_partitions.js"), broker.bootstrap, "js-grow"], cwd=JS_DIR,
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    out = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert out["created"] is True
    assert sorted(p["id"] for p in out["partitions"]) == [0, 1, 2]
    assert all(p["leader"] == broker.broker_id for p in out["partitions"])
    assert out["shrinkError"] == "INVALID_PARTITIONS", out
