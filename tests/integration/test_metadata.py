"""Metadata: advertised address, a real controller id, cluster id, topic auto-creation.

Checked both through librdkafka and through raw requests (kwire), so the response
layout itself is verified per version, not just what a lenient client accepts.
"""

from __future__ import annotations

import json

import clients as c
import kwire
import sluice_harness as h


def test_advertised_listener_controller_and_cluster_id(make_broker, zk):
    broker = make_broker(broker_id=7)
    broker.properties["advertised.listeners"] = f"PLAINTEXT://localhost:{broker.port}"
    broker.start()

    for version in (1, 2, 3, 4):
        md = kwire.metadata(broker.port, version, None)
        assert md.brokers == {7: ("localhost", broker.port, None)}, f"Metadata v{version}: {md.brokers}"
        assert md.controller_id == 7, f"Metadata v{version}: controller {md.controller_id}"
    md0 = kwire.metadata(broker.port, 0, [])
    assert md0.brokers == {7: ("localhost", broker.port, None)}

    client = zk.client(broker.chroot)
    try:
        cluster = json.loads(client.get("/cluster/id")[0])
    finally:
        client.stop()
    assert kwire.metadata(broker.port, 2, None).cluster_id == cluster["id"]

    lib_md = broker.metadata()
    assert lib_md.controller_id == 7
    assert lib_md.cluster_id == cluster["id"]
    assert {b.id: (b.host, b.port) for b in lib_md.brokers.values()} == {7: ("localhost", broker.port)}


def test_auto_creation_on_produce(make_broker):
    broker = make_broker(broker_id=2, overrides={"num.partitions": "3"})
    broker.start()
    topic = "auto-created-by-produce"
    assert topic not in kwire.metadata(broker.port, 1, None).topics
    positions = c.ck_produce(broker.bootstrap, topic, c.make_records(300, seed=9))
    assert set(p for p, _ in positions) == {0, 1, 2}

    md = kwire.metadata(broker.port, 1, [topic])
    t = md.topics[topic]
    assert t.error_code == kwire.ERR_NONE and not t.is_internal
    assert sorted(p.partition for p in t.partitions) == [0, 1, 2]
    for p in t.partitions:
        assert (p.error_code, p.leader, p.replicas, p.isr) == (0, 2, [2], [2]), p
    # Metadata v0 with an empty list means "all topics" (kafka-python's version probe).
    assert topic in kwire.metadata(broker.port, 0, []).topics


def test_auto_creation_by_metadata_request(make_broker):
    broker = make_broker(overrides={"num.partitions": "2"})
    broker.start()
    topic = "auto-created-by-metadata"
    # v4 with allow_auto_topic_creation=false must not create it ...
    md = kwire.metadata(broker.port, 4, [topic], allow_auto_create=False)
    assert md.topics[topic].error_code == kwire.ERR_UNKNOWN_TOPIC_OR_PARTITION
    assert topic not in kwire.metadata(broker.port, 1, None).topics
    # ... while v1 (implied allow) creates it; the first answer may still say "no leader yet".
    first = kwire.metadata(broker.port, 1, [topic]).topics[topic]
    assert first.error_code in (kwire.ERR_NONE, kwire.ERR_LEADER_NOT_AVAILABLE), first

    def ready():
        t = kwire.metadata(broker.port, 1, [topic]).topics[topic]
        return t.error_code == 0 and len(t.partitions) == 2 and all(p.leader == 0 for p in t.partitions)
    h.wait_until(ready, 20, f"{topic} to have 2 led partitions")


def test_auto_creation_disabled(make_broker):
    from confluent_kafka import Producer
    broker = make_broker(overrides={"auto.create.topics.enable": "false"})
    broker.start()
    topic = "never-created"
    for version, allow in ((1, True), (4, True), (4, False)):
        md = kwire.metadata(broker.port, version, [topic], allow_auto_create=allow)
        assert md.topics[topic].error_code == kwire.ERR_UNKNOWN_TOPIC_OR_PARTITION, (version, md.topics[topic])

    errors = []
    p = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": 5000, "log_level": 0})
    p.produce(topic, b"v", on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(30) == 0
    assert len(errors) == 1 and errors[0] is not None, "produce to a missing topic must fail"
    assert topic not in kwire.metadata(broker.port, 1, None).topics
