"""Consumer groups with real clients: confluent-kafka (three members, exactly once, commits),
committed offsets surviving kill -9, kafka-python and kafkajs group consumers, and the
offsets.topic.replication.factor=3-on-one-broker trap (COORDINATOR_NOT_AVAILABLE, one clear log line)."""
import json
import subprocess
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

JS_DIR = Path(__file__).parent / "js"
GROUP_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}


def create_topic(bootstrap, name, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive the future
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)


def produce(bootstrap, topic, n):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(n):
        p.produce(topic, key=str(i).encode(), value=str(i).encode())
    assert p.flush(60) == 0


def consume_in_group(bootstrap, topic, group, members, total, deadline_s=90):
    seen, lock = [], threading.Lock()

    def member():
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe([topic])
        deadline = time.time() + deadline_s
        while time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                with lock:
                    if len(seen) >= total:
                        break
                continue
            if m.error():
                continue
            with lock:
                seen.append(int(m.value()))
            c.commit(m, asynchronous=False)
        c.close()

    threads = [threading.Thread(target=member) for _ in range(members)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return seen


def committed(bootstrap, group, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return [tp.offset for tp in c.committed([TopicPartition(topic, p) for p in range(partitions)],
                                                 timeout=20)]
    finally:
        c.close()


def test_three_members_consume_each_record_once_and_commit(make_broker):
    b = make_broker(overrides=GROUP_OVERRIDES)
    b.start()
    create_topic(b.bootstrap, "g6", 6)
    produce(b.bootstrap, "g6", 30000)
    seen = consume_in_group(b.bootstrap, "g6", "three", 3, 30000)
    assert len(seen) == 30000 and set(seen) == set(range(30000))
    offsets = committed(b.bootstrap, "three", "g6", 6)
    assert sum(offsets) == 30000, offsets
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    groups = admin.list_groups(timeout=20)
    assert "three" in [g.id for g in groups]


def test_committed_offsets_survive_kill9(make_broker):
    b = make_broker(overrides={**GROUP_OVERRIDES, "zookeeper.session.timeout.ms": "6000"})
    b.start()
    create_topic(b.bootstrap, "gk", 3)
    produce(b.bootstrap, "gk", 3000)
    seen = consume_in_group(b.bootstrap, "gk", "survivor", 1, 3000)
    assert set(seen) == set(range(3000))
    before = committed(b.bootstrap, "survivor", "gk", 3)
    assert sum(before) == 3000
    b.kill9()
    b.restart()
    after = None
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            after = committed(b.bootstrap, "survivor", "gk", 3)
            if after == before:
                break
        except KafkaException:
            pass
        time.sleep(0.5)
    assert after == before
    # A restarted member resumes from the committed offsets: nothing left to read.
    produce(b.bootstrap, "gk", 30)
    rest = consume_in_group(b.bootstrap, "gk", "survivor", 1, 30, deadline_s=30)
    assert sorted(rest) == list(range(30))


def test_kafka_python_group_consumer(make_broker):
    from kafka import KafkaConsumer
    b = make_broker(overrides=GROUP_OVERRIDES)
    b.start()
    create_topic(b.bootstrap, "gkp", 3)
    produce(b.bootstrap, "gkp", 2000)
    c = KafkaConsumer("gkp", bootstrap_servers=b.bootstrap, group_id="kp",
                      auto_offset_reset="earliest", consumer_timeout_ms=15000)
    values = set()
    for m in c:
        values.add(int(m.value))
        if len(values) == 2000:
            break
    c.commit()
    c.close()
    assert values == set(range(2000))
    assert sum(committed(b.bootstrap, "kp", "gkp", 3)) == 2000


@pytest.mark.parametrize("mode", ["eachMessage", "eachBatch"])
def test_kafkajs_group_consumer(make_broker, mode):
    assert (JS_DIR / "node_modules" / "kafkajs").is_dir(), "kafkajs not installed (tools/test.sh runs npm ci)"
    b = make_broker(overrides=GROUP_OVERRIDES)
    b.start()
    topic = f"gjs-{mode.lower()}"
    create_topic(b.bootstrap, topic, 3)
    produce(b.bootstrap, topic, 1500)
    proc = subprocess.run(["node", str(JS_DIR / "group_consume.js"), b.bootstrap, topic, f"js-{mode}",
                           "1500", mode], cwd=JS_DIR, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    values = json.loads(proc.stdout.strip().splitlines()[-1])["values"]
    assert set(int(v) for v in values) == set(range(1500))


def test_replication_factor_three_on_one_broker_is_reported(make_broker):
    b = make_broker(overrides={**GROUP_OVERRIDES, "offsets.topic.replication.factor": "3"})
    b.start()
    create_topic(b.bootstrap, "gtrap", 1)
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "trapped", "auto.offset.reset": "earliest"})
    errors = []
    try:
        c.subscribe(["gtrap"])
        deadline = time.time() + 8
        while time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error():
                errors.append(m.error().code())
    finally:
        c.close()
    log = b.stderr_text()
    assert "offsets.topic.replication.factor" in log
    lines = [l for l in log.splitlines() if "offsets.topic.replication.factor=1" in l]
    assert len(lines) == 1, lines  # logged once, naming the fix
