"""Recovery of the on-disk log after a crash: Kafka's layout on disk, a torn last batch,
and garbage after the last batch. The broker must start, keep every whole batch byte for
byte, drop the damaged tail, and continue writing at the next dense offset.

The segment format is Kafka's: record batches back to back, each starting with
int64 base_offset and int32 batch_length (bytes after these 12).
"""

from __future__ import annotations

import os
import random
import re
import struct
from pathlib import Path

import pytest

import clients as c


def _batches(segment: Path) -> list[tuple[int, int, int]]:
    """(file position, base offset, total size) of each whole batch in the segment."""
    data = segment.read_bytes()
    out, pos = [], 0
    while pos + 12 <= len(data):
        base, length = struct.unpack(">qi", data[pos:pos + 12])
        if length <= 0 or pos + 12 + length > len(data):
            break
        out.append((pos, base, 12 + length))
        pos += 12 + length
    return out


def _only_segment(broker, topic: str) -> Path:
    segments = sorted((broker.log_dir / f"{topic}-0").glob("*.log"))
    assert len(segments) == 1, segments
    return segments[0]


def test_kafka_layout_on_disk(make_broker):
    broker = make_broker()
    broker.start()
    c.ck_produce(broker.bootstrap, "layout", c.make_records(100, seed=1), partition=0)
    assert broker.stop() == 0
    meta = (broker.log_dir / "meta.properties").read_text()
    assert re.search(r"^broker\.id=0$", meta, re.M), meta
    assert re.search(r"^cluster\.id=\S+$", meta, re.M), meta
    names = sorted(p.name for p in (broker.log_dir / "layout-0").iterdir())
    for suffix in (".log", ".index", ".timeindex"):
        assert f"{0:020d}{suffix}" in names, names
    batches = _batches(_only_segment(broker, "layout"))
    assert batches and batches[0][1] == 0, "the first batch starts at offset 0"
    assert sum(size for _, _, size in batches) == _only_segment(broker, "layout").stat().st_size


@pytest.mark.parametrize("damage", ["torn-last-batch", "garbage-after-last-batch", "zeros-after-last-batch"])
def test_crash_with_damaged_tail(make_broker, damage):
    broker = make_broker()
    broker.start()
    topic = f"recover-{damage}"
    records = []
    for i in range(5):  # several produce calls, so the segment holds several batches
        records += c.make_records(200, seed=100 + i)
        c.ck_produce(broker.bootstrap, topic, records[-200:], partition=0, conf={"batch.num.messages": 50})
    broker.kill9()

    segment = _only_segment(broker, topic)
    batches = _batches(segment)
    assert len(batches) >= 4, batches
    last_pos, last_base, last_size = batches[-1]
    if damage == "torn-last-batch":
        os.truncate(segment, last_pos + last_size // 2)
        survivors = last_base
    else:
        filler = random.Random(3).randbytes(4096) if damage.startswith("garbage") else bytes(4096)
        with open(segment, "ab") as f:
            f.write(filler)
        survivors = len(records)

    broker.start(timeout_s=60)
    kept = records[:survivors]
    consumed = c.ck_consume(broker.bootstrap, topic, {0: survivors})
    c.verify(kept, [(0, i) for i in range(survivors)], consumed)

    more = c.make_records(50, seed=999)
    positions = c.ck_produce(broker.bootstrap, topic, more, partition=0)
    assert positions == [(0, survivors + i) for i in range(50)], "writes continue at the next dense offset"
    c.verify(kept + more, [(0, i) for i in range(survivors + 50)],
             c.ck_consume(broker.bootstrap, topic, {0: survivors + 50}))
