"""kafkajs 2.2.4 (node): admin.createTopics to the controller, producer.send (plain and
gzip, acks -1 and 1), then every record read back with confluent-kafka by assignment.

kafkajs consumers need consumer groups, which are out of scope for this suite.
"""

from __future__ import annotations

import base64
import json
import random
import subprocess
from pathlib import Path

import clients as c

JS_DIR = Path(__file__).resolve().parent / "js"
PARTITIONS = 3


def _b64(v):
    return None if v is None else base64.b64encode(v).decode()


def _run_driver(spec: dict, tmp_path: Path) -> dict:
    assert (JS_DIR / "node_modules" / "kafkajs").is_dir(), \
        f"kafkajs is not installed: run `npm ci` in {JS_DIR} (tools/test.sh does)"
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    proc = subprocess.run(["node", str(JS_DIR / "produce.js"), str(spec_path)], cwd=JS_DIR,
                          capture_output=True, timeout=240)
    assert proc.returncode == 0, f"kafkajs driver failed:\n{proc.stderr.decode(errors='replace')[-4000:]}"
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def test_kafkajs_create_topic_and_produce(broker, tmp_path):
    topic = "kafkajs-topic"
    partitions = PARTITIONS
    rnd = random.Random(42)
    sends = []
    records_per_send = []
    for s, (acks, compression) in enumerate([(-1, "none"), (1, "gzip"), (-1, "gzip"), (1, "none")]):
        recs = []
        for i in range(400):
            value = b"" if i % 13 == 0 else (f"kafkajs {s}/{i} ".encode() * rnd.randint(1, 20)
                                            if compression == "gzip" else rnd.randbytes(rnd.randint(1, 300)))
            key = None if i % 29 == 0 else f"k{s}-{i}".encode()
            headers = (("h-a", f"{i}".encode()), ("h-b", rnd.randbytes(4))) if i % 3 else ()
            recs.append((i % partitions, c.Rec(key, value, headers)))
        records_per_send.append(recs)
        sends.append({"acks": acks, "compression": compression, "messages": [
            {"partition": p, "key": _b64(r.key), "value": _b64(r.value),
             "headers": {n: _b64(v) for n, v in r.headers}} for p, r in recs]})

    out = _run_driver({"brokers": [broker.bootstrap], "topic": topic, "numPartitions": partitions,
                       "sends": sends}, tmp_path)
    assert out["created"] is True, "createTopics should report the topic as created"
    assert out["createdAgain"] is False, "a second createTopics of the same topic must not create it"
    assert sorted(p["id"] for p in out["partitions"]) == list(range(partitions))
    assert all(p["leader"] == broker.broker_id for p in out["partitions"])

    # Offsets: each send answers one baseOffset per partition; that partition's records of
    # that send follow it densely, in order.
    records, positions = [], []
    next_offset = {p: 0 for p in range(partitions)}
    for recs, metas in zip(records_per_send, out["results"]):
        base = {m["partition"]: int(m["baseOffset"]) for m in metas}
        assert all(m["errorCode"] == 0 for m in metas), metas
        seen = {p: 0 for p in base}
        for p, r in recs:
            assert base[p] == next_offset[p], f"partition {p}: baseOffset {base[p]}, expected {next_offset[p]}"
            records.append(r)
            positions.append((p, base[p] + seen[p]))
            seen[p] += 1
        for p, n in seen.items():
            next_offset[p] += n
    consumed = c.ck_consume(broker.bootstrap, topic, c.partition_counts(positions))
    c.verify(records, positions, consumed)
