"""Static group membership (KIP-345) with confluent-kafka (librdkafka) members:

- a static member closed and started again within its session timeout gets its partitions
  back without a rebalance: the other member's on_assign/on_revoke are not called again,
  the broker starts no new generation, and the group keeps both members, Stable;
- two live consumers with the same group.instance.id: the newer one takes the identity
  and the older one is fenced (librdkafka raises a fatal FENCED_INSTANCE_ID error)."""
import re
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

GROUP_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}
SESSION_TIMEOUT_MS = 10000


def create_topic(bootstrap, name, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)


def produce(bootstrap, topic, n):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(n):
        p.produce(topic, key=str(i).encode(), value=str(i).encode())
    assert p.flush(30) == 0


def wait_for(pred, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


class StaticMember:
    """A confluent-kafka consumer with a group.instance.id, polled by its own thread;
    `events` records its assign/revoke callbacks and errors."""

    def __init__(self, bootstrap, topic, group, instance_id):
        self.events, self.errors, self.assigned = [], [], set()
        self._stop = threading.Event()
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                  "group.instance.id": instance_id, "auto.offset.reset": "earliest",
                                  "session.timeout.ms": SESSION_TIMEOUT_MS, "heartbeat.interval.ms": 500,
                                  "enable.auto.commit": False, "log_level": 0})
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _on_assign(self, _c, parts):
        self.assigned = {p.partition for p in parts}
        self.events.append(("assign", sorted(self.assigned)))

    def _on_revoke(self, _c, parts):
        self.assigned = set()
        self.events.append(("revoke", sorted(p.partition for p in parts)))

    def _run(self):
        deadline = time.time() + 120
        while not self._stop.is_set() and time.time() < deadline:
            m = self.consumer.poll(0.2)
            if m is not None and m.error():
                self.errors.append(m.error())
                if is_fatal(m.error()):
                    break

    def close(self):
        """Stops polling and closes; a static member sends no LeaveGroup."""
        self._stop.set()
        self._thread.join(timeout=30)
        self.consumer.close()


def is_fatal(e):
    # librdkafka delivers a fatal error as a message error with code _FATAL; its
    # KafkaError.fatal() flag is only set on errors raised from API calls.
    return e.fatal() or e.code() == KafkaError._FATAL


def group_lines(log, group, what):
    return [l for l in log.splitlines() if f"group {group}:" in l and what in l]


def describe(bootstrap, group):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return admin.list_groups(group=group, timeout=20)[0]


def test_restarted_static_member_does_not_trigger_a_rebalance(make_broker):
    b = make_broker(overrides=GROUP_OVERRIDES)
    b.start()
    topic, group = "static4", "statics"
    create_topic(b.bootstrap, topic, 4)
    produce(b.bootstrap, topic, 400)
    a = StaticMember(b.bootstrap, topic, group, "static-a")
    other = StaticMember(b.bootstrap, topic, group, "static-b")
    try:
        wait_for(lambda: len(a.assigned) + len(other.assigned) == 4 and a.assigned and other.assigned, 40,
                 "both static members to share the four partitions")
        wait_for(lambda: describe(b.bootstrap, group).state == "Stable", 20, "a Stable group")
        a_partitions = set(a.assigned)
        other_events = list(other.events)
        before = describe(b.bootstrap, group)
        ids_before = {m.client_id: m.id for m in before.members}
        rebalances = len(group_lines(b.stderr_text(), group, "preparing to rebalance"))
        stables = len(group_lines(b.stderr_text(), group, "is stable"))

        a.close()
        restarted = StaticMember(b.bootstrap, topic, group, "static-a")
        try:
            wait_for(lambda: restarted.assigned, 30, "the restarted static member's assignment")
            assert restarted.assigned == a_partitions
            # Give the other member several heartbeats in which a rebalance would reach it.
            time.sleep(3)
            log = b.stderr_text()
            assert group_lines(log, group, "static member static-a rejoined"), "no static rejoin in the log"
            assert not group_lines(log, group, "left"), "a static member sent LeaveGroup on close"
            assert len(group_lines(log, group, "preparing to rebalance")) == rebalances
            assert len(group_lines(log, group, "is stable")) == stables
            assert other.events == other_events, "the other member was revoked/reassigned"
            assert not other.errors and not restarted.errors, (other.errors, restarted.errors)
            after = describe(b.bootstrap, group)
            assert after.state == "Stable" and len(after.members) == 2
            ids_after = {m.client_id: m.id for m in after.members}
            assert len(set(ids_after.values()) & set(ids_before.values())) == 1, (ids_before, ids_after)
        finally:
            restarted.close()
    finally:
        other.close()
        if not a._stop.is_set():
            a.close()


def test_second_consumer_with_same_instance_id_fences_the_first(make_broker):
    b = make_broker(overrides=GROUP_OVERRIDES)
    b.start()
    topic, group = "fence2", "fenced"
    create_topic(b.bootstrap, topic, 2)
    old = StaticMember(b.bootstrap, topic, group, "twin")
    new = None
    try:
        wait_for(lambda: old.assigned == {0, 1}, 30, "the first consumer's assignment")
        new = StaticMember(b.bootstrap, topic, group, "twin")
        wait_for(lambda: new.assigned == {0, 1}, 30, "the second consumer to take over the identity")
        wait_for(lambda: any(is_fatal(e) for e in old.errors), 20, "the first consumer to be fenced")
        fatal = next(e for e in old.errors if is_fatal(e))
        # librdkafka raises the broker's FENCED_INSTANCE_ID as a fatal consumer error.
        assert re.search("fenced by other consumer with same group.instance.id", fatal.str()), fatal.str()
        assert not new.errors, new.errors
        d = describe(b.bootstrap, group)
        assert len(d.members) == 1 and d.state == "Stable"
        print(f"librdkafka reports: {fatal.code()} {fatal.name()}: {fatal.str()}")
    finally:
        old.close()
        if new is not None:
            new.close()
