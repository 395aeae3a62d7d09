"""ZooKeeper mode: Kafka's znode layout under the chroot, surviving a ZooKeeper restart,
and re-registering after the broker's session expired.

Znodes are read with kazoo, an independent ZooKeeper client, so the layout is checked
against what Kafka tools would see, not against the broker's own reader.
"""

from __future__ import annotations

import base64
import json
import re
import signal

import clients as c
import sluice_harness as h

UUID_B64 = re.compile(r"^[A-Za-z0-9_-]{22}$")


def _json(client, path: str):
    data, stat = client.get(path)
    return json.loads(data), stat


def _assert_kafka_uuid(value: str, what: str) -> None:
    assert UUID_B64.match(value), f"{what} {value!r} is not a 22-character URL-safe base64 UUID"
    assert base64.urlsafe_b64decode(value + "==") != bytes(16), f"{what} is the zero UUID"


def test_znodes_after_start_and_topic_creation(make_broker, zk):
    broker = make_broker(overrides={"num.partitions": "2"})
    broker.start()
    client = zk.client(broker.chroot)
    try:
        cluster, _ = _json(client, "/cluster/id")
        assert cluster["version"] == "1", "Kafka writes the /cluster/id version as a string"
        _assert_kafka_uuid(cluster["id"], "cluster id")

        reg, stat = _json(client, "/brokers/ids/0")
        assert stat.ephemeralOwner != 0, "/brokers/ids/0 must be ephemeral"
        assert reg["version"] >= 4
        assert reg["host"] == "127.0.0.1" and reg["port"] == broker.port
        assert reg["endpoints"] == [f"PLAINTEXT://127.0.0.1:{broker.port}"]
        assert reg["listener_security_protocol_map"] == {"PLAINTEXT": "PLAINTEXT"}
        assert reg["jmx_port"] == -1
        assert re.fullmatch(r"\d{13}", reg["timestamp"]), reg["timestamp"]
        assert "rack" not in reg, "rack is written only when broker.rack is set"

        controller, cstat = _json(client, "/controller")
        assert cstat.ephemeralOwner != 0, "/controller must be ephemeral"
        assert controller["brokerid"] == 0
        controller_epoch = int(client.get("/controller_epoch")[0])
        assert controller_epoch >= 1

        for path in ("/brokers/topics", "/config/topics", "/admin/delete_topics", "/brokers/seqid",
                     "/isr_change_notification", "/config/changes"):
            assert client.exists(path) is not None, f"{path} missing"

        topic = "zk-layout"
        c.ck_produce(broker.bootstrap, topic, c.make_records(50, seed=1))
        assignment, _ = _json(client, f"/brokers/topics/{topic}")
        assert assignment["partitions"] == {"0": [0], "1": [0]}
        _assert_kafka_uuid(assignment["topic_id"], "topic_id")
        assert sorted(client.get_children(f"/brokers/topics/{topic}/partitions")) == ["0", "1"]
        for p in ("0", "1"):
            state, _ = _json(client, f"/brokers/topics/{topic}/partitions/{p}/state")
            assert state["leader"] == 0 and state["isr"] == [0], state
            assert state["leader_epoch"] >= 0
            assert state["controller_epoch"] == controller_epoch
    finally:
        client.stop()


def test_broker_survives_zookeeper_restart(make_broker, zk_private):
    broker = make_broker(zk_server=zk_private)
    broker.start()
    before = c.make_records(500, seed=21)
    pos_before = c.ck_produce(broker.bootstrap, "zk-restart", before, partition=0)

    zk_private.stop()
    assert broker.running(), "the broker must not exit when ZooKeeper goes away"
    # Existing partitions keep serving without ZooKeeper.
    during = c.make_records(500, seed=22)
    pos_during = c.ck_produce(broker.bootstrap, "zk-restart", during, partition=0, timeout_s=60)
    c.verify(before + during, pos_before + pos_during,
             c.ck_consume(broker.bootstrap, "zk-restart", {0: 1000}))

    zk_private.start()
    client = zk_private.client(broker.chroot)
    try:
        h.wait_until(lambda: client.exists("/brokers/ids/0"), 30, "/brokers/ids/0 after ZooKeeper restart")
        h.wait_until(lambda: client.exists("/controller"), 30, "/controller after ZooKeeper restart")
        # New metadata work (auto-creation writes ZooKeeper) works again.
        c.ck_produce(broker.bootstrap, "zk-after-restart", c.make_records(10, seed=23))
        assert client.exists("/brokers/topics/zk-after-restart") is not None
    finally:
        client.stop()
    assert broker.running()


def test_reregisters_after_session_expiry(make_broker, zk_private):
    """SIGSTOP the broker past its session timeout: ZooKeeper expires the session and deletes
    the ephemeral registration; after SIGCONT the broker must register again."""
    broker = make_broker(zk_server=zk_private, overrides={"zookeeper.session.timeout.ms": "2000"})
    broker.start()
    client = zk_private.client(broker.chroot)
    try:
        _, stat = client.get("/brokers/ids/0")
        old_czxid = stat.czxid
        broker.signal(signal.SIGSTOP)
        try:
            h.wait_until(lambda: client.exists("/brokers/ids/0") is None, 30,
                         "ZooKeeper to expire the stopped broker's registration")
        finally:
            broker.signal(signal.SIGCONT)
        stat = h.wait_until(lambda: client.exists("/brokers/ids/0"), 30, "/brokers/ids/0 to reappear")
        assert stat.czxid != old_czxid and stat.ephemeralOwner != 0
        h.wait_until(lambda: client.exists("/controller"), 30, "a controller after re-registration")
    finally:
        client.stop()
    records = c.make_records(200, seed=31)
    positions = c.ck_produce(broker.bootstrap, "after-expiry", records)
    c.verify(records, positions, c.ck_consume(broker.bootstrap, "after-expiry", c.partition_counts(positions)))
