"""Group administration through real admin clients:

- librdkafka's consumer-group Admin API (ListConsumerGroups with a states filter,
  DescribeConsumerGroups, DeleteGroups, ListConsumerGroupOffsets, AlterConsumerGroupOffsets,
  DeleteConsumerGroupOffsets -> OffsetDelete). Debian's confluent-kafka 1.7 predates these
  methods in Python, so the test calls the same librdkafka 2.0 the package runs on,
  through ctypes (RdKafkaAdmin below);
- confluent_kafka's AdminClient.list_groups (ListGroups + DescribeGroups);
- kafka-python's KafkaAdminClient: list_consumer_groups, describe_consumer_groups,
  list_consumer_group_offsets, delete_consumer_groups.

Groups: "busy" has one live member (Stable), "idle" had one and is Empty with offsets."""
import ctypes
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

GROUP_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}
TOPIC = "adm3"

# librdkafka constants (rdkafka.h, 2.0.x)
OP_DELETEGROUPS, OP_DELETECONSUMERGROUPOFFSETS = 7, 8
OP_LISTCONSUMERGROUPS, OP_DESCRIBECONSUMERGROUPS = 12, 13
OP_LISTCONSUMERGROUPOFFSETS, OP_ALTERCONSUMERGROUPOFFSETS = 14, 15
STATE = {1: "PreparingRebalance", 2: "CompletingRebalance", 3: "Stable", 4: "Dead", 5: "Empty", 0: "Unknown"}
STATE_CODE = {v: k for k, v in STATE.items()}
NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND, UNKNOWN_MEMBER_ID, GROUP_SUBSCRIBED_TO_TOPIC = 68, 69, 25, 86


class TopicPartitionC(ctypes.Structure):
    _fields_ = [("topic", ctypes.c_char_p), ("partition", ctypes.c_int32), ("offset", ctypes.c_int64),
                ("metadata", ctypes.c_void_p), ("metadata_size", ctypes.c_size_t), ("opaque", ctypes.c_void_p),
                ("err", ctypes.c_int), ("_private", ctypes.c_void_p)]


class TopicPartitionListC(ctypes.Structure):
    _fields_ = [("cnt", ctypes.c_int), ("size", ctypes.c_int), ("elems", ctypes.POINTER(TopicPartitionC))]


def _lib():
    lib = ctypes.CDLL("librdkafka.so.1")
    P, S, I = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    sz, psz = ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)
    tpl = ctypes.POINTER(TopicPartitionListC)
    sigs = {
        "rd_kafka_conf_new": ([], P), "rd_kafka_conf_set": ([P, S, S, S, sz], I),
        "rd_kafka_new": ([I, P, S, sz], P), "rd_kafka_destroy": ([P], None),
        "rd_kafka_queue_new": ([P], P), "rd_kafka_queue_destroy": ([P], None),
        "rd_kafka_queue_poll": ([P, I], P), "rd_kafka_event_destroy": ([P], None),
        "rd_kafka_event_error": ([P], I), "rd_kafka_event_error_string": ([P], S),
        "rd_kafka_error_code": ([P], I), "rd_kafka_err2name": ([I], S),
        "rd_kafka_AdminOptions_new": ([P, I], P), "rd_kafka_AdminOptions_destroy": ([P], None),
        "rd_kafka_AdminOptions_set_request_timeout": ([P, I, S, sz], I),
        "rd_kafka_AdminOptions_set_match_consumer_group_states": ([P, ctypes.POINTER(I), sz], P),
        "rd_kafka_topic_partition_list_new": ([I], tpl),
        "rd_kafka_topic_partition_list_destroy": ([tpl], None),
        "rd_kafka_topic_partition_list_add": ([tpl, S, ctypes.c_int32], ctypes.POINTER(TopicPartitionC)),
        # ListConsumerGroups
        "rd_kafka_ListConsumerGroups": ([P, P, P], None),
        "rd_kafka_event_ListConsumerGroups_result": ([P], P),
        "rd_kafka_ListConsumerGroups_result_valid": ([P, psz], ctypes.POINTER(P)),
        "rd_kafka_ListConsumerGroups_result_errors": ([P, psz], ctypes.POINTER(P)),
        "rd_kafka_ConsumerGroupListing_group_id": ([P], S),
        "rd_kafka_ConsumerGroupListing_state": ([P], I),
        "rd_kafka_ConsumerGroupListing_is_simple_consumer_group": ([P], I),
        # DescribeConsumerGroups
        "rd_kafka_DescribeConsumerGroups": ([P, ctypes.POINTER(S), sz, P, P], None),
        "rd_kafka_event_DescribeConsumerGroups_result": ([P], P),
        "rd_kafka_DescribeConsumerGroups_result_groups": ([P, psz], ctypes.POINTER(P)),
        "rd_kafka_ConsumerGroupDescription_group_id": ([P], S),
        "rd_kafka_ConsumerGroupDescription_error": ([P], P),
        "rd_kafka_ConsumerGroupDescription_partition_assignor": ([P], S),
        "rd_kafka_ConsumerGroupDescription_state": ([P], I),
        "rd_kafka_ConsumerGroupDescription_coordinator": ([P], P),
        "rd_kafka_ConsumerGroupDescription_member_count": ([P], sz),
        "rd_kafka_ConsumerGroupDescription_member": ([P, sz], P),
        "rd_kafka_MemberDescription_client_id": ([P], S),
        "rd_kafka_MemberDescription_group_instance_id": ([P], S),
        "rd_kafka_MemberDescription_consumer_id": ([P], S),
        "rd_kafka_MemberDescription_host": ([P], S),
        "rd_kafka_MemberDescription_assignment": ([P], P),
        "rd_kafka_MemberAssignment_partitions": ([P], tpl),
        "rd_kafka_Node_id": ([P], I), "rd_kafka_Node_host": ([P], S), "rd_kafka_Node_port": ([P], ctypes.c_uint16),
        # DeleteGroups
        "rd_kafka_DeleteGroup_new": ([S], P), "rd_kafka_DeleteGroup_destroy": ([P], None),
        "rd_kafka_DeleteGroups": ([P, ctypes.POINTER(P), sz, P, P], None),
        "rd_kafka_event_DeleteGroups_result": ([P], P),
        "rd_kafka_DeleteGroups_result_groups": ([P, psz], ctypes.POINTER(P)),
        "rd_kafka_group_result_error": ([P], P), "rd_kafka_group_result_name": ([P], S),
        "rd_kafka_group_result_partitions": ([P], tpl),
        # Offsets
        "rd_kafka_ListConsumerGroupOffsets_new": ([S, tpl], P),
        "rd_kafka_ListConsumerGroupOffsets_destroy": ([P], None),
        "rd_kafka_ListConsumerGroupOffsets": ([P, ctypes.POINTER(P), sz, P, P], None),
        "rd_kafka_event_ListConsumerGroupOffsets_result": ([P], P),
        "rd_kafka_ListConsumerGroupOffsets_result_groups": ([P, psz], ctypes.POINTER(P)),
        "rd_kafka_AlterConsumerGroupOffsets_new": ([S, tpl], P),
        "rd_kafka_AlterConsumerGroupOffsets_destroy": ([P], None),
        "rd_kafka_AlterConsumerGroupOffsets": ([P, ctypes.POINTER(P), sz, P, P], None),
        "rd_kafka_event_AlterConsumerGroupOffsets_result": ([P], P),
        "rd_kafka_AlterConsumerGroupOffsets_result_groups": ([P, psz], ctypes.POINTER(P)),
        "rd_kafka_DeleteConsumerGroupOffsets_new": ([S, tpl], P),
        "rd_kafka_DeleteConsumerGroupOffsets_destroy": ([P], None),
        "rd_kafka_DeleteConsumerGroupOffsets": ([P, ctypes.POINTER(P), sz, P, P], None),
        "rd_kafka_event_DeleteConsumerGroupOffsets_result": ([P], P),
        "rd_kafka_DeleteConsumerGroupOffsets_result_groups": ([P, psz], ctypes.POINTER(P)),
    }
    for name, (args, res) in sigs.items():
        f = getattr(lib, name)
        f.argtypes, f.restype = args, res
    return lib


def _s(b):
    return None if b is None else b.decode()


class RdKafkaAdmin:
    """The consumer-group calls of librdkafka's Admin API, each waited for (bounded)."""

    def __init__(self, bootstrap):
        self.lib = L = _lib()
        errstr = ctypes.create_string_buffer(512)
        conf = L.rd_kafka_conf_new()
        for k, v in (("bootstrap.servers", bootstrap), ("log_level", "3")):
            assert L.rd_kafka_conf_set(conf, k.encode(), v.encode(), errstr, 512) == 0, errstr.value
        self.rk = L.rd_kafka_new(0, conf, errstr, 512)  # RD_KAFKA_PRODUCER
        assert self.rk, errstr.value
        self.q = L.rd_kafka_queue_new(self.rk)

    def close(self):
        self.lib.rd_kafka_queue_destroy(self.q)
        self.lib.rd_kafka_destroy(self.rk)

    def _options(self, op):
        opts = self.lib.rd_kafka_AdminOptions_new(self.rk, op)
        errstr = ctypes.create_string_buffer(512)
        assert self.lib.rd_kafka_AdminOptions_set_request_timeout(opts, 20000, errstr, 512) == 0
        return opts

    def _wait(self, opts, timeout_s=30):
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                ev = self.lib.rd_kafka_queue_poll(self.q, 200)
                if ev:
                    return ev
            raise AssertionError("librdkafka admin call did not complete")
        finally:
            self.lib.rd_kafka_AdminOptions_destroy(opts)

    def _check_event(self, ev):
        e = self.lib.rd_kafka_event_error(ev)
        assert e == 0, f"{_s(self.lib.rd_kafka_err2name(e))}: {_s(self.lib.rd_kafka_event_error_string(ev))}"

    def _err(self, error_ptr):
        return 0 if not error_ptr else self.lib.rd_kafka_error_code(error_ptr)

    def _partitions(self, tpl):
        if not tpl:
            return {}
        lst = tpl.contents
        return {(_s(lst.elems[i].topic), lst.elems[i].partition): (lst.elems[i].offset, lst.elems[i].err)
                for i in range(lst.cnt)}

    def _tpl(self, entries):
        L = self.lib
        tpl = L.rd_kafka_topic_partition_list_new(max(len(entries), 1))
        for topic, partition, offset in entries:
            L.rd_kafka_topic_partition_list_add(tpl, topic.encode(), partition).contents.offset = offset
        return tpl

    def list_groups(self, states=None):
        """{group id: state name}, optionally only groups in `states`."""
        L = self.lib
        opts = self._options(OP_LISTCONSUMERGROUPS)
        if states is not None:
            arr = (ctypes.c_int * len(states))(*[STATE_CODE[s] for s in states])
            err = L.rd_kafka_AdminOptions_set_match_consumer_group_states(opts, arr, len(states))
            assert not err, "set_match_consumer_group_states failed"
        L.rd_kafka_ListConsumerGroups(self.rk, opts, self.q)
        ev = self._wait(opts)
        try:
            self._check_event(ev)
            res = L.rd_kafka_event_ListConsumerGroups_result(ev)
            n = ctypes.c_size_t()
            errs = L.rd_kafka_ListConsumerGroups_result_errors(res, ctypes.byref(n))
            assert n.value == 0, [self._err(errs[i]) for i in range(n.value)]
            valid = L.rd_kafka_ListConsumerGroups_result_valid(res, ctypes.byref(n))
            return {_s(L.rd_kafka_ConsumerGroupListing_group_id(valid[i])):
                    STATE[L.rd_kafka_ConsumerGroupListing_state(valid[i])] for i in range(n.value)}
        finally:
            L.rd_kafka_event_destroy(ev)

    def describe(self, groups):
        L = self.lib
        opts = self._options(OP_DESCRIBECONSUMERGROUPS)
        arr = (ctypes.c_char_p * len(groups))(*[g.encode() for g in groups])
        L.rd_kafka_DescribeConsumerGroups(self.rk, arr, len(groups), opts, self.q)
        ev = self._wait(opts)
        try:
            self._check_event(ev)
            res = L.rd_kafka_event_DescribeConsumerGroups_result(ev)
            n = ctypes.c_size_t()
            descs = L.rd_kafka_DescribeConsumerGroups_result_groups(res, ctypes.byref(n))
            out = {}
            for i in range(n.value):
                d = descs[i]
                node = L.rd_kafka_ConsumerGroupDescription_coordinator(d)
                members = []
                for j in range(L.rd_kafka_ConsumerGroupDescription_member_count(d)):
                    m = L.rd_kafka_ConsumerGroupDescription_member(d, j)
                    a = L.rd_kafka_MemberDescription_assignment(m)
                    members.append({
                        "client_id": _s(L.rd_kafka_MemberDescription_client_id(m)),
                        "group_instance_id": _s(L.rd_kafka_MemberDescription_group_instance_id(m)),
                        "consumer_id": _s(L.rd_kafka_MemberDescription_consumer_id(m)),
                        "host": _s(L.rd_kafka_MemberDescription_host(m)),
                        "assignment": sorted(self._partitions(L.rd_kafka_MemberAssignment_partitions(a)) if a else [])})
                out[_s(L.rd_kafka_ConsumerGroupDescription_group_id(d))] = {
                    "error": self._err(L.rd_kafka_ConsumerGroupDescription_error(d)),
                    "state": STATE[L.rd_kafka_ConsumerGroupDescription_state(d)],
                    "assignor": _s(L.rd_kafka_ConsumerGroupDescription_partition_assignor(d)),
                    "coordinator": None if not node else (L.rd_kafka_Node_id(node), _s(L.rd_kafka_Node_host(node)),
                                                          L.rd_kafka_Node_port(node)),
                    "members": members}
            return out
        finally:
            L.rd_kafka_event_destroy(ev)

    def delete_groups(self, groups):
        """{group: error code}"""
        L = self.lib
        opts = self._options(OP_DELETEGROUPS)
        objs = [L.rd_kafka_DeleteGroup_new(g.encode()) for g in groups]
        arr = (ctypes.c_void_p * len(objs))(*objs)
        L.rd_kafka_DeleteGroups(self.rk, arr, len(objs), opts, self.q)
        ev = self._wait(opts)
        for o in objs:
            L.rd_kafka_DeleteGroup_destroy(o)
        try:
            self._check_event(ev)
            res = L.rd_kafka_event_DeleteGroups_result(ev)
            n = ctypes.c_size_t()
            rs = L.rd_kafka_DeleteGroups_result_groups(res, ctypes.byref(n))
            return {_s(L.rd_kafka_group_result_name(rs[i])): self._err(L.rd_kafka_group_result_error(rs[i]))
                    for i in range(n.value)}
        finally:
            L.rd_kafka_event_destroy(ev)

    def _group_offsets_call(self, kind, op, group, entries):
        """One of the three offsets calls for one group: (group error, {(topic, p): (offset, err)})."""
        L = self.lib
        opts = self._options(op)
        tpl = self._tpl(entries) if entries is not None else None
        obj = getattr(L, f"rd_kafka_{kind}_new")(group.encode(), tpl)
        if tpl:
            L.rd_kafka_topic_partition_list_destroy(tpl)
        arr = (ctypes.c_void_p * 1)(obj)
        getattr(L, f"rd_kafka_{kind}")(self.rk, arr, 1, opts, self.q)
        ev = self._wait(opts)
        getattr(L, f"rd_kafka_{kind}_destroy")(obj)
        try:
            self._check_event(ev)
            res = getattr(L, f"rd_kafka_event_{kind}_result")(ev)
            n = ctypes.c_size_t()
            rs = getattr(L, f"rd_kafka_{kind}_result_groups")(res, ctypes.byref(n))
            assert n.value == 1
            return (self._err(L.rd_kafka_group_result_error(rs[0])),
                    self._partitions(L.rd_kafka_group_result_partitions(rs[0])))
        finally:
            L.rd_kafka_event_destroy(ev)

    def list_offsets(self, group, partitions=None):
        entries = None if partitions is None else [(TOPIC, p, -1) for p in partitions]
        return self._group_offsets_call("ListConsumerGroupOffsets", OP_LISTCONSUMERGROUPOFFSETS, group, entries)

    def alter_offsets(self, group, offsets):
        return self._group_offsets_call("AlterConsumerGroupOffsets", OP_ALTERCONSUMERGROUPOFFSETS, group,
                                        [(TOPIC, p, o) for p, o in offsets.items()])

    def delete_offsets(self, group, partitions):
        return self._group_offsets_call("DeleteConsumerGroupOffsets", OP_DELETECONSUMERGROUPOFFSETS, group,
                                        [(TOPIC, p, -1) for p in partitions])


# ---- fixtures: one Stable group and one Empty group with offsets ----------------------

def wait_for(pred, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def consume_all_and_commit(bootstrap, group, n):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([TOPIC])
    got, deadline = 0, time.time() + 30
    while got < n and time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got += 1
    c.commit(asynchronous=False)
    c.close()
    assert got == n


class LiveMember:
    def __init__(self, bootstrap, group):
        self.assigned = []
        self.stop = threading.Event()
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": "busy-client",
                           "auto.offset.reset": "earliest", "enable.auto.commit": True,
                           "auto.commit.interval.ms": 200})
        self.c.subscribe([TOPIC], on_assign=lambda _c, ps: self.assigned.extend(p.partition for p in ps))
        self.t = threading.Thread(target=self._run)
        self.t.start()

    def _run(self):
        deadline = time.time() + 120
        while not self.stop.is_set() and time.time() < deadline:
            self.c.poll(0.1)

    def close(self):
        self.stop.set()
        self.t.join(timeout=30)
        self.c.close()


@pytest.fixture
def groups_setup(make_broker):
    b = make_broker(overrides=GROUP_OVERRIDES)
    b.start()
    creator = AdminClient({"bootstrap.servers": b.bootstrap})  # must outlive the future
    creator.create_topics([NewTopic(TOPIC, 3, 1)])[TOPIC].result(30)
    p = Producer({"bootstrap.servers": b.bootstrap})
    for i in range(300):
        p.produce(TOPIC, key=str(i).encode(), value=str(i).encode())
    assert p.flush(30) == 0
    consume_all_and_commit(b.bootstrap, "idle", 300)
    busy = LiveMember(b.bootstrap, "busy")
    try:
        wait_for(lambda: sorted(busy.assigned) == [0, 1, 2], 30, "the busy group's member to be assigned")
        yield b, busy
    finally:
        busy.close()


# ---- tests ----------------------------------------------------------------------------

def test_librdkafka_group_admin_api(groups_setup):
    b, busy = groups_setup
    admin = RdKafkaAdmin(b.bootstrap)
    try:
        groups = wait_for(lambda: (lambda g: g if g.get("busy") == "Stable" else None)(admin.list_groups()),
                          20, "ListGroups to show busy as Stable")
        assert groups["idle"] == "Empty", groups
        assert set(admin.list_groups(["Empty"])) >= {"idle"} and "busy" not in admin.list_groups(["Empty"])
        assert "busy" in admin.list_groups(["Stable"]) and "idle" not in admin.list_groups(["Stable"])

        d = admin.describe(["busy", "idle", "nosuch"])
        assert d["busy"]["error"] == 0 and d["busy"]["state"] == "Stable" and d["busy"]["assignor"] == "range"
        assert d["busy"]["coordinator"] == (0, "127.0.0.1", b.port)
        [m] = d["busy"]["members"]
        assert m["client_id"] == "busy-client" and m["consumer_id"].startswith("busy-client-")
        assert m["host"] == "/127.0.0.1" and m["group_instance_id"] is None
        assert m["assignment"] == [(TOPIC, 0), (TOPIC, 1), (TOPIC, 2)]
        assert d["idle"]["state"] == "Empty" and d["idle"]["members"] == []
        assert d["nosuch"]["state"] == "Dead" and d["nosuch"]["members"] == []

        err, offs = admin.list_offsets("idle")
        assert err == 0 and sum(o for o, _ in offs.values()) == 300 and len(offs) == 3, offs

        # AlterConsumerGroupOffsets: fine on the Empty group, refused while busy has members.
        err, res = admin.alter_offsets("idle", {0: 5})
        assert err == 0 and res[(TOPIC, 0)] == (5, 0), res
        assert admin.list_offsets("idle", [0])[1][(TOPIC, 0)][0] == 5
        err, res = admin.alter_offsets("busy", {0: 1})
        assert err == UNKNOWN_MEMBER_ID or res[(TOPIC, 0)][1] == UNKNOWN_MEMBER_ID, (err, res)

        # DeleteConsumerGroupOffsets (OffsetDelete): a subscribed topic is refused.
        err, res = admin.delete_offsets("busy", [0])
        assert err == GROUP_SUBSCRIBED_TO_TOPIC or res[(TOPIC, 0)][1] == GROUP_SUBSCRIBED_TO_TOPIC, (err, res)
        err, res = admin.delete_offsets("idle", [1])
        assert err == 0 and res[(TOPIC, 1)][1] == 0, (err, res)
        offs = admin.list_offsets("idle")[1]
        assert offs.get((TOPIC, 1), (-1001, 0))[0] < 0 and offs[(TOPIC, 0)][0] == 5, offs

        # DeleteGroups: a group with members is refused; an Empty one goes with its offsets.
        assert admin.delete_groups(["busy"]) == {"busy": NON_EMPTY_GROUP}
        assert admin.delete_groups(["idle"]) == {"idle": 0}
        offs = admin.list_offsets("idle")[1]
        assert all(o < 0 for o, _ in offs.values()), offs
        assert "idle" not in admin.list_groups()
        assert admin.delete_groups(["idle"]) == {"idle": GROUP_ID_NOT_FOUND}
        log = b.stderr_text()
        assert "group idle deleted" in log
    finally:
        admin.close()


def test_confluent_adminclient_list_groups(groups_setup):
    b, busy = groups_setup
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    g = wait_for(lambda: (lambda gs: gs[0] if gs and gs[0].state == "Stable" else None)(
        admin.list_groups(group="busy", timeout=20)), 20, "busy to be Stable")
    assert g.protocol_type == "consumer" and g.protocol == "range"
    [m] = g.members
    assert m.client_id == "busy-client" and m.client_host == "/127.0.0.1" and len(m.assignment) > 0
    listed = {x.id: x.state for x in admin.list_groups(timeout=20)}
    assert listed.get("busy") == "Stable" and listed.get("idle") == "Empty", listed


def test_kafka_python_admin(groups_setup):
    from kafka import KafkaAdminClient, TopicPartition as KTP
    b, busy = groups_setup
    admin = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=20000)
    try:
        listed = dict(admin.list_consumer_groups())
        assert listed.get("busy") == "consumer" and listed.get("idle") == "consumer", listed
        [d] = admin.describe_consumer_groups(["busy"])
        assert d.group == "busy" and d.state == "Stable" and d.protocol_type == "consumer" and d.protocol == "range"
        [m] = d.members
        assert m.client_id == "busy-client" and m.client_host == "/127.0.0.1"
        assert sorted(p for t in m.member_assignment.assignment for p in t[1]) == [0, 1, 2]
        offs = admin.list_consumer_group_offsets("idle")
        assert set(offs) == {KTP(TOPIC, p) for p in range(3)}, offs
        assert sum(o.offset for o in offs.values()) == 300, offs
        res = dict(admin.delete_consumer_groups(["idle", "busy"]))
        assert res["idle"].errno == 0 and res["busy"].errno == NON_EMPTY_GROUP, res
        assert "idle" not in dict(admin.list_consumer_groups())
    finally:
        admin.close()
