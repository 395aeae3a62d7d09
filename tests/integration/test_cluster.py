"""Two brokers in one cluster, driven by confluent-kafka.

Sluice does not replicate yet (followers do not fetch from leaders), so the cluster must
say so truthfully: Metadata lists a replicated partition's followers as replicas but not
in the ISR, acks=all with min.insync.replicas above the ISR size is refused with
NOT_ENOUGH_REPLICAS, and when a leader dies its partitions go offline (leader -1) rather
than being handed to a follower that never received the records -- which would lose
acknowledged data. When the leader returns, every acknowledged record is there.
"""

from __future__ import annotations

import time

import clients as c
from sluice_harness import wait_until


def _metadata(bootstrap: str, topic: str) -> dict[int, tuple[int, list[int], list[int]]]:
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    t = md.topics[topic]
    assert t.error is None, t.error
    return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in t.partitions.values()}


def _two_brokers(make_broker):
    brokers = [make_broker(broker_id=i, overrides={"offsets.topic.replication.factor": "1"}) for i in (1, 2)]
    for b in brokers:
        b.start()
    return brokers[0], brokers[1], f"{brokers[0].bootstrap},{brokers[1].bootstrap}"


def test_two_brokers_serve_their_partitions_and_keep_acknowledged_records(make_broker):
    from confluent_kafka.admin import AdminClient, NewTopic
    b1, b2, bootstrap = _two_brokers(make_broker)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("spread", 4, 2)])["spread"].result(30)

    md = _metadata(bootstrap, "spread")
    assert {leader for leader, _, _ in md.values()} == {1, 2}, md  # leadership is spread
    for p, (leader, replicas, isr) in md.items():
        assert sorted(replicas) == [1, 2], md
        assert isr == [leader], f"partition {p}: followers do not replicate, so ISR must be the leader: {md}"

    records = c.make_records(400, seed=3)
    positions = c.ck_produce(bootstrap, "spread", records, conf={"acks": "all"})
    assert {p for p, _ in positions} == {0, 1, 2, 3}

    # Both brokers answer Metadata with the same leaders.
    assert _metadata(b2.bootstrap, "spread") == _metadata(b1.bootstrap, "spread")

    # Broker 2 dies: its partitions go offline instead of moving to broker 1's empty copy.
    led_by_2 = sorted(p for p, (leader, _, _) in md.items() if leader == 2)
    b2.kill9()
    wait_until(lambda: all(_metadata(b1.bootstrap, "spread")[p][0] == -1 for p in led_by_2), 60,
               "broker 2's partitions to go offline")
    still = _metadata(b1.bootstrap, "spread")
    for p in md:
        if p not in led_by_2:
            assert still[p][0] == 1, still

    # Back again: it leads its partitions, and every acknowledged record is there.
    b2.start()
    wait_until(lambda: all(_metadata(b1.bootstrap, "spread")[p][0] == 2 for p in led_by_2), 60,
               "broker 2 to lead its partitions again")
    expected = {p: sum(1 for q, _ in positions if q == p) for p in range(4)}
    consumed = c.ck_consume(bootstrap, "spread", expected, timeout_s=60)
    c.verify(records, positions, consumed)


def test_acks_all_is_refused_when_the_isr_is_below_min_insync_replicas(make_broker):
    from confluent_kafka import KafkaError, Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    _, _, bootstrap = _two_brokers(make_broker)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("strict", 1, 2, config={"min.insync.replicas": "2"})])["strict"].result(30)

    errors = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": 5000,
                  "retries": 0, "log_level": 3})
    p.produce("strict", value=b"must not be acknowledged", on_delivery=lambda e, m: errors.append(e))
    p.flush(20)
    assert len(errors) == 1 and errors[0] is not None, errors
    assert errors[0].code() in (KafkaError.NOT_ENOUGH_REPLICAS, KafkaError._MSG_TIMED_OUT), errors[0]

    # acks=1 does not need the ISR.
    positions = c.ck_produce(bootstrap, "strict", c.make_records(5, seed=1), conf={"acks": "1"})
    assert [o for _, o in positions] == [0, 1, 2, 3, 4]
