"""Brokers in one cluster with replicated partitions, driven by confluent-kafka.

Followers copy their leaders' logs (broker/replication); the leader keeps the ISR and the
high watermark. So: a new RF=2 topic has both replicas in its ISR; acks=all is answered
once both have the records; when a leader is killed -9 the controller hands its partitions
to the follower and no acknowledged record is lost; a follower that stops fetching leaves
the ISR after replica.lag.time.max.ms (then acks=all with min.insync.replicas=2 is refused
with NOT_ENOUGH_REPLICAS) and rejoins once it has caught up.
"""

from __future__ import annotations

import time

import clients as c
from sluice_harness import wait_until

LAG_MS = 3000  # replica.lag.time.max.ms in these tests (Kafka's default is 30 s)


def _metadata(bootstrap: str, topic: str) -> dict[int, tuple[int, list[int], list[int]]]:
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    t = md.topics[topic]
    assert t.error is None, t.error
    return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in t.partitions.values()}


def _brokers(make_broker, n: int):
    brokers = [make_broker(broker_id=i, overrides={"offsets.topic.replication.factor": "1",
                                                   "replica.lag.time.max.ms": str(LAG_MS)})
               for i in range(1, n + 1)]
    for b in brokers:
        b.start()
    return brokers, ",".join(b.bootstrap for b in brokers)


def _two_brokers(make_broker):
    (b1, b2), bootstrap = _brokers(make_broker, 2)
    return b1, b2, bootstrap


def test_two_brokers_replicate_and_a_killed_leader_loses_no_acknowledged_record(make_broker):
    from confluent_kafka.admin import AdminClient, NewTopic
    b1, b2, bootstrap = _two_brokers(make_broker)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("spread", 4, 2)])["spread"].result(30)

    md = _metadata(bootstrap, "spread")
    assert {leader for leader, _, _ in md.values()} == {1, 2}, md  # leadership is spread
    for p, (leader, replicas, isr) in md.items():
        assert sorted(replicas) == [1, 2], md
        assert sorted(isr) == [1, 2], f"partition {p}: a new partition's ISR is every live replica: {md}"

    records = c.make_records(400, seed=3)
    positions = c.ck_produce(bootstrap, "spread", records, conf={"acks": "all"})
    assert {p for p, _ in positions} == {0, 1, 2, 3}
    # Both brokers answer Metadata with the same leaders, and the ISR stayed whole.
    assert _metadata(b2.bootstrap, "spread") == _metadata(b1.bootstrap, "spread")
    assert all(sorted(isr) == [1, 2] for _, _, isr in _metadata(bootstrap, "spread").values())

    # Broker 2 dies: broker 1, in every ISR, takes over its partitions with every record.
    led_by_2 = sorted(p for p, (leader, _, _) in md.items() if leader == 2)
    assert led_by_2
    b2.kill9()
    wait_until(lambda: all(v[0] == 1 for v in _metadata(b1.bootstrap, "spread").values()), 60,
               "broker 1 to lead every partition")
    expected = c.partition_counts(positions)
    consumed = c.ck_consume(b1.bootstrap, "spread", expected, timeout_s=60)
    c.verify(records, positions, consumed)

    # More records while broker 2 is away; it comes back, catches up and rejoins every ISR.
    more = c.make_records(200, seed=4)
    more_positions = c.ck_produce(b1.bootstrap, "spread", more, conf={"acks": "all"})
    b2.start()
    wait_until(lambda: all(sorted(v[2]) == [1, 2] for v in _metadata(b1.bootstrap, "spread").values()), 60,
               "broker 2 to rejoin every ISR")
    # Now broker 1 dies: broker 2 alone must serve all 600 records.
    b1.kill9()
    wait_until(lambda: all(v[0] == 2 for v in _metadata(b2.bootstrap, "spread").values()), 60,
               "broker 2 to lead every partition")
    both = records + more
    both_positions = positions + more_positions
    consumed = c.ck_consume(b2.bootstrap, "spread", c.partition_counts(both_positions), timeout_s=60)
    c.verify(both, both_positions, consumed)


def test_a_stopped_follower_leaves_the_isr_and_acks_all_then_needs_min_insync_replicas(make_broker):
    from confluent_kafka import KafkaError, Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    b1, b2, bootstrap = _two_brokers(make_broker)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    # Broker 1 leads (preferred replica first); broker 2 follows.
    admin.create_topics([NewTopic("strict", num_partitions=1, replica_assignment=[[1, 2]],
                                  config={"min.insync.replicas": "2"})])["strict"].result(30)
    positions = c.ck_produce(bootstrap, "strict", c.make_records(50, seed=1), conf={"acks": "all"})
    assert [o for _, o in positions] == list(range(50))

    # The follower stops; after replica.lag.time.max.ms the leader drops it from the ISR.
    b2.kill9()
    t0 = time.monotonic()
    wait_until(lambda: _metadata(b1.bootstrap, "strict")[0][2] == [1], 30, "broker 2 to leave the ISR")
    assert time.monotonic() - t0 > LAG_MS / 1000 * 0.5, "the ISR shrank before replica.lag.time.max.ms"

    errors = []
    p = Producer({"bootstrap.servers": b1.bootstrap, "acks": "all", "message.timeout.ms": 5000,
                  "retries": 0, "log_level": 3})
    p.produce("strict", value=b"must not be acknowledged", on_delivery=lambda e, m: errors.append(e))
    p.flush(20)
    assert len(errors) == 1 and errors[0] is not None, errors
    assert errors[0].code() == KafkaError.NOT_ENOUGH_REPLICAS, errors[0]

    # acks=1 does not need the ISR.
    more = c.ck_produce(b1.bootstrap, "strict", c.make_records(5, seed=2), conf={"acks": "1"})
    assert [o for _, o in more] == [50, 51, 52, 53, 54]

    # The follower returns, catches up, rejoins; acks=all works again.
    b2.start()
    wait_until(lambda: sorted(_metadata(b1.bootstrap, "strict")[0][2]) == [1, 2], 30, "broker 2 to rejoin the ISR")
    again = c.ck_produce(bootstrap, "strict", c.make_records(5, seed=3), conf={"acks": "all"})
    assert [o for _, o in again] == [55, 56, 57, 58, 59]


def test_acks_all_survives_a_leader_killed_mid_stream_with_three_replicas(make_broker):
    """The durability promise: with acks=all and min.insync.replicas=2 on RF=3, kill -9 the
    leader while a producer is sending; every record the producer saw acknowledged is then
    read back from the new leader, at its acknowledged offset."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    brokers, bootstrap = _brokers(make_broker, 3)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("durable", 2, 3, config={"min.insync.replicas": "2"})])["durable"].result(30)
    md = _metadata(bootstrap, "durable")
    victim_id = md[0][0]
    victim = brokers[victim_id - 1]

    records = c.make_records(6000, seed=9)
    acked: dict[int, tuple[int, int]] = {}
    failed = []

    def on_delivery(i):
        def cb(err, msg):
            if err is None:
                acked[i] = (msg.partition(), msg.offset())
            else:
                failed.append((i, err))
        return cb

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 2, "message.timeout.ms": 60000, "log_level": 3})
    deadline = time.monotonic() + 90
    for i, r in enumerate(records):
        if i == len(records) // 3:
            p.flush(30)  # a third is certainly acknowledged before the kill
            victim.kill9()
        while True:
            try:
                p.produce("durable", key=r.key, value=r.value, headers=list(r.headers) or None,
                          on_delivery=on_delivery(i))
                break
            except BufferError:
                assert time.monotonic() < deadline, "producer queue stayed full"
                p.poll(0.1)
        p.poll(0)
    p.flush(max(1.0, deadline - time.monotonic()))
    assert len(acked) >= len(records) // 3, f"only {len(acked)} acknowledged"
    assert not failed, f"{len(failed)} records failed (idempotent producer retries through a failover): {failed[:3]}"

    survivors = [b for b in brokers if b is not victim]
    live = ",".join(b.bootstrap for b in survivors)
    wait_until(lambda: all(v[0] in {b.broker_id for b in survivors}
                           for v in _metadata(live, "durable").values()), 60, "new leaders")
    order = sorted(acked)
    got_records = [records[i] for i in order]
    positions = [acked[i] for i in order]
    consumed = c.ck_consume(live, "durable", c.partition_counts(positions), timeout_s=60)
    c.verify(got_records, positions, consumed)


def test_committed_offsets_survive_the_coordinators_death_with_a_replicated_offsets_topic(make_broker):
    """__consumer_offsets with replication factor 2: the group coordinator is killed -9 and
    the follower, now leading that __consumer_offsets partition, serves the same commits."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    brokers = [make_broker(broker_id=i, overrides={"offsets.topic.replication.factor": "2",
                                                   "offsets.topic.num.partitions": "4",
                                                   "group.initial.rebalance.delay.ms": "0",
                                                   "replica.lag.time.max.ms": str(LAG_MS)})
               for i in (1, 2)]
    for b in brokers:
        b.start()
    bootstrap = ",".join(b.bootstrap for b in brokers)
    admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive the future
    admin.create_topics([NewTopic("work", 2, 2)])["work"].result(30)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(1000):
        p.produce("work", key=str(i).encode(), value=str(i).encode())
    assert p.flush(60) == 0

    conf = {"bootstrap.servers": bootstrap, "group.id": "durable-group", "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "log_level": 3}
    c = Consumer(conf)
    c.subscribe(["work"])
    seen = 0
    deadline = time.monotonic() + 60
    while seen < 600 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            seen += 1
    c.commit(asynchronous=False)
    parts = [TopicPartition("work", 0), TopicPartition("work", 1)]
    committed = {tp.partition: tp.offset for tp in c.committed(parts, timeout=20)}
    c.close()
    assert sum(committed.values()) == seen, (committed, seen)

    # Kill the group's coordinator: the leader of __consumer_offsets partition
    # abs(javaHashCode(group)) % offsets.topic.num.partitions, as Kafka places groups.
    wait_until(lambda: all(sorted(v[2]) == [1, 2] for v in _metadata(bootstrap, "__consumer_offsets").values()),
               30, "__consumer_offsets to be fully replicated")
    h = 0
    for ch in "durable-group":
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    h = h - (1 << 32) if h >= (1 << 31) else h
    group_partition = (0 if h == -(1 << 31) else abs(h)) % 4
    coordinator_id = _metadata(bootstrap, "__consumer_offsets")[group_partition][0]
    survivor = brokers[1] if coordinator_id == 1 else brokers[0]
    brokers[coordinator_id - 1].kill9()
    wait_until(lambda: all(v[0] == survivor.broker_id
                           for v in _metadata(survivor.bootstrap, "__consumer_offsets").values()), 60,
               "the survivor to lead every __consumer_offsets partition")
    after = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        probe = Consumer({**conf, "bootstrap.servers": survivor.bootstrap})
        try:
            after = {tp.partition: tp.offset for tp in probe.committed(parts, timeout=10)}
        except Exception:  # the new coordinator may still be loading the partition
            after = None
        finally:
            probe.close()
        if after == committed:
            break
        time.sleep(0.5)
    assert after == committed
