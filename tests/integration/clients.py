"""Real-client drivers shared by the tests: deterministic record sets, confluent-kafka
(librdkafka) produce/consume, and the byte-for-byte verification every test ends with.

Every loop here is bounded by a deadline; a timeout is a test failure naming what was missing.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Rec:
    key: Optional[bytes]
    value: Optional[bytes]
    headers: tuple = ()  # ((name: str, value: bytes), ...)


@dataclass
class Got:
    """One consumed record with its position."""
    partition: int
    offset: int
    key: Optional[bytes]
    value: Optional[bytes]
    headers: tuple = ()


def make_records(n: int, seed: int, big_every: int = 0, big_sizes=(), compressible: bool = False,
                 with_headers: bool = True) -> list[Rec]:
    """n keyed records: mostly small random values, every 10th value empty, and every
    `big_every`-th record a large value cycling through `big_sizes`."""
    rnd = random.Random(seed)
    out = []
    big_i = 0
    for i in range(n):
        key = f"key-{seed}-{i}".encode()
        if big_every and i % big_every == big_every // 2 and big_sizes:
            size = big_sizes[big_i % len(big_sizes)]
            big_i += 1
            value = rnd.randbytes(size)
        elif i % 10 == 3:
            value = b""
        elif compressible:
            value = (f"value {i} " * rnd.randint(1, 40)).encode()
        else:
            value = rnd.randbytes(rnd.randint(1, 200))
        headers = ()
        if with_headers and i % 4 != 1:
            headers = (("seq", str(i).encode()), ("blob", rnd.randbytes(rnd.randint(0, 16))))
        out.append(Rec(key, value, headers))
    return out


def _ck_headers(headers) -> tuple:
    """confluent-kafka gives None (no headers) or a list of (name, value) pairs."""
    return tuple(tuple(pair) for pair in (headers or ()))


def ck_produce(bootstrap: str, topic: str, records: list[Rec], conf: Optional[dict] = None,
               partition: Optional[int] = None, timeout_s: float = 120) -> list[tuple[int, int]]:
    """Produces with confluent-kafka and returns (partition, offset) per record, in order.
    Fails if any delivery report carries an error or does not arrive in time."""
    from confluent_kafka import Producer
    base = {"bootstrap.servers": bootstrap, "linger.ms": 5, "log_level": 3, "message.timeout.ms": 60000}
    base.update(conf or {})
    p = Producer(base)
    results: list[Optional[tuple]] = [None] * len(records)
    errors = []

    def on_delivery(i):
        def cb(err, msg):
            if err is not None:
                errors.append((i, err))
            else:
                results[i] = (msg.partition(), msg.offset())
        return cb

    deadline = time.monotonic() + timeout_s
    for i, r in enumerate(records):
        kwargs = {"key": r.key, "value": r.value, "headers": list(r.headers) or None, "on_delivery": on_delivery(i)}
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                p.produce(topic, **kwargs)
                break
            except BufferError:  # local queue full: serve delivery reports, then retry
                assert time.monotonic() < deadline, "timed out with the producer queue full"
                p.poll(0.1)
        p.poll(0)
    remaining = p.flush(max(1.0, deadline - time.monotonic()))
    assert not errors, f"{len(errors)} delivery errors, first: record {errors[0][0]}: {errors[0][1]}"
    assert remaining == 0, f"{remaining} records not acknowledged within {timeout_s}s"
    missing = [i for i, r in enumerate(results) if r is None]
    assert not missing, f"no delivery report for records {missing[:10]}"
    return results


def ck_consume(bootstrap: str, topic: str, expected: dict[int, int], timeout_s: float = 120,
               conf: Optional[dict] = None) -> dict[int, list[Got]]:
    """Reads partitions from offset 0 by assignment (no group membership) until
    `expected[p]` records arrived on each. Returns per-partition lists in arrival order."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    base = {"bootstrap.servers": bootstrap, "group.id": "itest-assign", "enable.auto.commit": False,
            "enable.auto.offset.store": False, "auto.offset.reset": "error", "log_level": 3,
            "enable.partition.eof": False, "fetch.wait.max.ms": 100}
    base.update(conf or {})
    c = Consumer(base)
    try:
        c.assign([TopicPartition(topic, p, 0) for p in expected])
        got: dict[int, list[Got]] = {p: [] for p in expected}
        deadline = time.monotonic() + timeout_s
        while any(len(got[p]) < n for p, n in expected.items()):
            if time.monotonic() > deadline:
                counts = {p: len(v) for p, v in got.items()}
                raise AssertionError(f"consumed {counts} of {expected} from {topic} within {timeout_s}s")
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(f"consumer error: {msg.error()}")
            got.setdefault(msg.partition(), []).append(
                Got(msg.partition(), msg.offset(), msg.key(), msg.value(), _ck_headers(msg.headers())))
        return got
    finally:
        c.close()


def verify(records: list[Rec], positions: list[tuple[int, int]], consumed: dict[int, list[Got]],
           allow_extra: bool = False) -> None:
    """Every record is at its acknowledged (partition, offset) with identical key, value and
    headers; each partition's offsets are dense from 0 in consumption order."""
    for p, msgs in consumed.items():
        offsets = [m.offset for m in msgs]
        assert offsets == list(range(len(msgs))), \
            f"partition {p}: offsets not dense from 0: first mismatch at index " \
            f"{next(i for i, o in enumerate(offsets) if o != i)}"
    by_pos = {(m.partition, m.offset): m for msgs in consumed.values() for m in msgs}
    for i, (rec, pos) in enumerate(zip(records, positions)):
        m = by_pos.get(pos)
        assert m is not None, f"record {i} acknowledged at {pos} was not read back"
        assert m.key == rec.key, f"record {i} at {pos}: key {m.key!r} != {rec.key!r}"
        assert m.value == rec.value, (f"record {i} at {pos}: value differs "
                                      f"(got {_describe(m.value)}, sent {_describe(rec.value)})")
        assert tuple(m.headers) == tuple(rec.headers), \
            f"record {i} at {pos}: headers {m.headers!r} != {rec.headers!r}"
    if not allow_extra:
        total = sum(len(v) for v in consumed.values())
        assert total == len(records), f"read {total} records, produced {len(records)}"
        assert len(set(positions)) == len(positions), "two records acknowledged at the same offset"


def _describe(v: Optional[bytes]) -> str:
    if v is None:
        return "null"
    if len(v) <= 32:
        return v.hex()
    return f"{len(v)} bytes {v[:16].hex()}..{v[-16:].hex()}"


def partition_counts(positions: list[tuple[int, int]]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for p, _ in positions:
        counts[p] = counts.get(p, 0) + 1
    return counts
