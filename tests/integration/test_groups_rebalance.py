"""Consumer-group rebalances with real confluent-kafka members running as subprocesses:
a fourth member joins a three-member group mid-stream, one member is killed with kill -9
and another leaves cleanly (close()), while 30,000 records are produced and consumed; a
stopped group resumes from its committed offsets; a damaged __consumer_offsets batch is
skipped, not loaded, when the coordinator reads the partition back.

What the rebalance test checks, from the members' own logs: every record is seen at least
once; a record seen twice was seen by the killed member and then by the partition's next
owner, lies in a partition the killed member owned, at or after the last offset it had
committed there (its uncommitted tail); the committed offsets end at the log end.

This file is also the member program: `python3 test_groups_rebalance.py member ...`
(see member_main), so the member under kill -9 is a real, separate client process."""
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

GROUP_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}
SESSION_TIMEOUT_MS = 6000  # the broker's default group.min.session.timeout.ms
COMMIT_EVERY = 100


# ---- the member program (runs in its own process) ------------------------------------

def member_main(bootstrap, topic, group, out_path, stop_path):
    """Consumes `topic` in `group`, committing every COMMIT_EVERY records and on revoke,
    until `stop_path` exists; then commits, closes (LeaveGroup) and exits. Every event is
    one line in `out_path`, written through to the kernel so a kill -9 keeps it:
      A p...        assigned partitions        R p...   revoked partitions
      M p o v       record at partition p, offset o, value v (before it is committed)
      C p o         offset o of partition p committed (the broker acknowledged it)
      E code        a commit failed              X        closed cleanly
    """
    from confluent_kafka import KafkaException
    out = open(out_path, "a", buffering=1)

    def emit(*parts):
        out.write(" ".join(str(p) for p in parts) + "\n")

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "session.timeout.ms": SESSION_TIMEOUT_MS,
                  "heartbeat.interval.ms": 500, "log_level": 3})

    def commit():
        try:
            done = c.commit(asynchronous=False)
        except KafkaException as e:
            emit("E", e.args[0].code())
            return
        for tp in done or []:
            if tp.error is None and tp.offset >= 0:
                emit("C", tp.partition, tp.offset)

    def on_assign(_c, parts):
        emit("A", *sorted(p.partition for p in parts))

    def on_revoke(_c, parts):
        commit()
        emit("R", *sorted(p.partition for p in parts))

    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    since_commit = 0
    deadline = time.time() + 180  # never outlive a broken test
    while not os.path.exists(stop_path) and time.time() < deadline:
        m = c.poll(0.2)
        if m is None or m.error():
            continue
        emit("M", m.partition(), m.offset(), int(m.value()))
        since_commit += 1
        if since_commit >= COMMIT_EVERY:
            commit()
            since_commit = 0
    commit()
    c.close()
    emit("X")


# ---- the test side --------------------------------------------------------------------

class Member:
    """One member process and its event log."""

    def __init__(self, workdir: Path, name: str, bootstrap, topic, group):
        self.name = name
        self.out = workdir / f"{name}.events"
        self.stop_file = workdir / f"{name}.stop"
        self.proc = subprocess.Popen([sys.executable, __file__, "member", bootstrap, topic, group,
                                      str(self.out), str(self.stop_file)],
                                     stdin=subprocess.DEVNULL, stderr=open(workdir / f"{name}.stderr", "wb"))

    def events(self):
        try:
            text = self.out.read_text()
        except FileNotFoundError:
            return []
        lines = text.split("\n")[:-1]  # a line cut by kill -9 has no newline: dropped
        return [line.split() for line in lines if line]

    def assignment(self):
        """Partitions held now (after the last assign/revoke event)."""
        held = set()
        for e in self.events():
            if e[0] == "A":
                held = set(map(int, e[1:]))
            elif e[0] == "R":
                held = set()
        return held

    def assigns(self):
        return sum(1 for e in self.events() if e[0] == "A")

    def stop(self, timeout_s=30):
        self.stop_file.write_text("")
        try:
            self.proc.wait(timeout=timeout_s)
        finally:
            self.kill()

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, 9)
            self.proc.wait(timeout=10)


def wait_for(pred, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def create_topic(bootstrap, name, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)


def produce_range(bootstrap, topic, first, count, per_second=None):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    step = 500
    for start in range(first, first + count, step):
        t0 = time.monotonic()
        for i in range(start, min(start + step, first + count)):
            p.produce(topic, key=str(i).encode(), value=str(i).encode())
        p.poll(0)
        if per_second:
            time.sleep(max(0.0, step / per_second - (time.monotonic() - t0)))
    assert p.flush(60) == 0


def seen_values(members):
    vals = set()
    for m in members:
        vals.update(int(e[3]) for e in m.events() if e[0] == "M")
    return vals


def committed(bootstrap, group, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return [tp.offset for tp in c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=20)]
    finally:
        c.close()


def check_duplicates(members, victim):
    """Every record seen twice belongs to the victim's uncommitted tail."""
    sightings = defaultdict(list)  # value -> [(member name, partition, offset)]
    for m in members:
        for e in m.events():
            if e[0] == "M":
                sightings[int(e[3])].append((m.name, int(e[1]), int(e[2])))
    # The victim's last assignment, and per partition the lowest offset that may come
    # back: its last acknowledged commit there, else the first offset it read there
    # after that assignment.
    owned, floor = set(), {}
    for e in victim.events():
        if e[0] == "A":
            owned, floor = set(map(int, e[1:])), {}
        elif e[0] == "C" and int(e[1]) in owned:
            floor[int(e[1])] = int(e[2])
        elif e[0] == "M" and int(e[1]) in owned:
            floor.setdefault(int(e[1]), int(e[2]))
    dups = {v: s for v, s in sightings.items() if len(s) > 1}
    for v, s in dups.items():
        assert len(s) == 2, f"value {v} seen {len(s)} times: {s}"
        assert len({(p, o) for _, p, o in s}) == 1, f"value {v} at two positions: {s}"
        assert victim.name in {n for n, _, _ in s}, f"value {v} seen twice, not by the killed member: {s}"
        _, p, o = s[0]
        assert p in owned, f"value {v} (partition {p}) seen twice, but {victim.name} owned {sorted(owned)}"
        assert o >= floor[p], f"value {v} at {p}/{o} seen twice, below {victim.name}'s commit {floor[p]}"
    return dups


def test_fourth_member_joins_then_one_killed_one_leaves(make_broker, tmp_path):
    total = 30000
    b = make_broker(overrides=GROUP_OVERRIDES)
    b.start()
    topic, group = "reb6", "reb"
    create_topic(b.bootstrap, topic, 6)
    producer = threading.Thread(target=produce_range, args=(b.bootstrap, topic, 0, total, 1500))
    members = []
    try:
        producer.start()
        members = [Member(tmp_path, f"m{i}", b.bootstrap, topic, group) for i in range(3)]
        wait_for(lambda: len(seen_values(members)) >= 4000, 60, "three members to read 4,000 records")
        assert sorted(p for m in members for p in m.assignment()) == list(range(6))
        # A fourth member joins mid-stream and gets partitions.
        members.append(Member(tmp_path, "m3", b.bootstrap, topic, group))
        wait_for(lambda: members[3].assignment(), 60, "the fourth member's assignment")
        wait_for(lambda: len(seen_values(members)) >= 12000, 60, "12,000 records")
        # kill -9 one of the first members that owns partitions and has read from them.
        victim = next(m for m in members[:3] if m.assignment())
        victim_owned = victim.assignment()
        assigns_before = {m.name: m.assigns() for m in members if m is not victim}
        victim.kill()
        survivors = [m for m in members if m is not victim]
        # After the session timeout the survivors rebalance and take its partitions over.
        wait_for(lambda: all(m.assigns() > assigns_before[m.name] for m in survivors) and
                 set().union(*(m.assignment() for m in survivors)) == set(range(6)),
                 SESSION_TIMEOUT_MS / 1000 + 30, f"{victim.name}'s partitions {sorted(victim_owned)} to move")
        wait_for(lambda: len(seen_values(members)) >= 20000, 60, "20,000 records")
        # One more member leaves cleanly: close() commits (on revoke) and sends LeaveGroup.
        leaver = survivors.pop(0)
        leaver.stop()
        assert leaver.events()[-1] == ["X"], leaver.events()[-3:]
        producer.join(timeout=90)
        assert not producer.is_alive()
        wait_for(lambda: len(seen_values(members)) >= total, 90, "every record to be read")
        for m in survivors:
            m.stop()
    finally:
        for m in members:
            m.kill()
        producer.join(timeout=90)
    assert seen_values(members) == set(range(total))
    dups = check_duplicates(members, victim)
    assert len(dups) <= len(victim_owned) * (COMMIT_EVERY + 1), len(dups)
    # The group committed everything it read: the offsets end at the log end.
    assert sum(committed(b.bootstrap, group, topic, 6)) == total
    print(f"duplicates (the killed member's uncommitted tail): {len(dups)}")


def test_stopped_group_resumes_from_committed_offsets(make_broker):
    """Three members consume and commit, all stop; a new member of the same group then
    reads exactly the records produced after the commits."""
    b = make_broker(overrides=GROUP_OVERRIDES)
    b.start()
    topic, group = "resume6", "resume"
    create_topic(b.bootstrap, topic, 6)
    produce_range(b.bootstrap, topic, 0, 6000)
    seen, lock = [], threading.Lock()

    def member():
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                      "enable.auto.commit": False, "session.timeout.ms": SESSION_TIMEOUT_MS})
        c.subscribe([topic])
        deadline = time.time() + 60
        while time.time() < deadline:
            m = c.poll(0.3)
            if m is None:
                with lock:
                    if len(seen) >= 6000:
                        break
                continue
            if not m.error():
                with lock:
                    seen.append(int(m.value()))
                if m.offset() % 50 == 0:
                    commit(c)
        commit(c)
        c.close()

    def commit(c):
        try:
            c.commit(asynchronous=False)
        except KafkaException as e:  # nothing new to commit, or the partition moved
            assert e.args[0].code() in (KafkaError._NO_OFFSET, KafkaError.REBALANCE_IN_PROGRESS,
                                        KafkaError.ILLEGAL_GENERATION), e

    threads = [threading.Thread(target=member) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(6000))
    assert sum(committed(b.bootstrap, group, topic, 6)) == 6000
    produce_range(b.bootstrap, topic, 6000, 500)
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    rest = []
    try:
        deadline = time.time() + 30
        quiet_until = None
        while time.time() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                rest.append(int(m.value()))
            if len(rest) >= 500 and quiet_until is None:
                quiet_until = time.time() + 1.0  # anything older would show up now
            if quiet_until is not None and time.time() > quiet_until:
                break
    finally:
        c.close()
    assert sorted(rest) == list(range(6000, 6500))


def java_hash(s):
    """Java's String.hashCode (ASCII names), which picks a group's __consumer_offsets partition."""
    h = 0
    for ch in s:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def test_damaged_offsets_batch_is_skipped_on_load(make_broker):
    """A __consumer_offsets batch whose CRC does not match is skipped when the coordinator
    loads the partition (logged); the commits in the batches around it still load."""
    import struct
    b = make_broker(overrides=GROUP_OVERRIDES)
    b.start()
    topic = "crc1"
    create_topic(b.bootstrap, topic, 1)
    # Two groups on the same __consumer_offsets partition, each committing once.
    part = lambda g: abs(java_hash(g)) % 50
    names = [f"crc-{i}" for i in range(200)]
    a = names[0]
    other = next(n for n in names[1:] if part(n) == part(a))
    for group, offset in ((a, 7), (other, 9)):
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group})
        c.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
        c.close()
    assert committed(b.bootstrap, other, topic, 1) == [9]
    assert b.stop() == 0
    seg = b.log_dir / f"__consumer_offsets-{part(a)}" / "00000000000000000000.log"
    data = bytearray(seg.read_bytes())
    at, damaged = 0, False
    while at + 61 <= len(data):
        length = struct.unpack(">i", data[at + 8:at + 12])[0]
        end = at + 12 + length
        if a.encode() in data[at:end] and topic.encode() in data[at:end]:
            data[end - 1] ^= 0xFF  # inside the last record: the CRC no longer matches
            damaged = True
        at = end
    assert damaged, "the commit batch of the first group was not found"
    seg.write_bytes(bytes(data))
    b.start()
    wait_for(lambda: "bad CRC" in b.stderr_text(), 30, "the load to report the damaged batch")
    assert committed(b.bootstrap, other, topic, 1) == [9]
    assert committed(b.bootstrap, a, topic, 1) == [-1001]  # skipped, not garbage


if __name__ == "__main__" and len(sys.argv) >= 2 and sys.argv[1] == "member":
    member_main(*sys.argv[2:7])
