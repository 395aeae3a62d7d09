"""Compaction of compressed batches: kafka-python (gzip, snappy, lz4, zstd) and confluent-kafka
(zstd, see CASES) produce batches of many records each to a compacted topic; the broker's cleaner
decompresses them, keeps the latest record of every key and re-compresses the survivors
with the batch's own codec. A consumer reading from the start then sees exactly the latest
value of every key at the offset it was acknowledged at, and the log on disk shrank: its
batches still carry their codec, a valid CRC32C, and some of them fewer records than
offsets (partly compacted, so re-compressed by the broker).

The segment files are parsed here directly (record batch v2 header, see
storage/record_batch.h) rather than through sluice-dump-log, so the check does not depend
on the broker's own code."""

from __future__ import annotations

import struct

import pytest

import clients as c
import sluice_harness as h
from test_compaction import COMPACT, FAST, check_is_compaction_of, log_bytes, partition_dir, read_all, roll_with
from test_configs import ck_create
from test_kafka_python import kp_produce

CODECS = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

# The cleaner looks every 500 ms; segments are small and roll often.
PROPS = dict(FAST, **{"log.cleaner.backoff.ms": "500"})
TOPIC_CONFIG = dict(COMPACT, **{"segment.bytes": "8192", "segment.ms": "300"})

# Batches close on size (dozens of records each), not on linger.ms.
CK_PRODUCER = {"linger.ms": 500, "batch.num.messages": 40}
# Batches end at batch_size, not at a linger timer: with a 5 ms linger a loaded machine cut
# them wherever a send was late, sometimes exactly where the last round begins, leaving the
# compacted log nothing to rewrite inside a batch.
KP_PRODUCER = {"batch_size": 4000, "linger_ms": 1000}

# Both clients compress all four codecs (librdkafka 2.0.2 only does gzip, snappy and lz4
# because Sluice's Produce range starts at v0, see broker/api_table.cc); the test checks on
# disk that the batches really carry their codec.
CASES = [("confluent", codec) for codec in CODECS] + [("kafka-python", codec) for codec in CODECS]


def produce_compressed(broker, client: str, codec: str, topic: str, sent: list[c.Rec]) -> list[int]:
    if client == "confluent":
        conf = dict(CK_PRODUCER, **{"compression.codec": codec})
        positions = c.ck_produce(broker.bootstrap, topic, sent, conf, partition=0)
    else:
        positions = kp_produce(broker.bootstrap, topic, sent, compression_type=codec, **KP_PRODUCER)
    assert {p for p, _ in positions} == {0}
    return [off for _, off in positions]


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC32C[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def disk_batches(broker, topic: str) -> list[dict]:
    """Every batch header of the partition's segment files, CRC checked."""
    out = []
    for seg in sorted(partition_dir(broker, topic).glob("*.log")):
        data = seg.read_bytes()
        pos = 0
        while pos + 61 <= len(data):
            base, length = struct.unpack_from(">qi", data, pos)
            end = pos + 12 + length
            assert end <= len(data), f"{seg.name}: batch at {pos} runs past the end"
            magic, crc, attrs, last_delta = struct.unpack_from(">bIhi", data, pos + 16)
            count, = struct.unpack_from(">i", data, pos + 57)
            assert magic == 2
            assert crc32c(data[pos + 21:end]) == crc, f"{seg.name}: bad CRC for batch at offset {base}"
            out.append({"base": base, "codec": attrs & 7, "count": count, "offsets": last_delta + 1})
            pos = end
        assert pos == len(data), f"{seg.name}: {len(data) - pos} trailing bytes"
    return out


def records(keys: int, per_key: int) -> list[c.Rec]:
    """Compressible values (the codecs have something to do), keys interleaved so every
    batch holds several keys and compaction removes only part of a batch."""
    return [c.Rec(f"key-{k:03}".encode(), f"key-{k:03}-round-{i:03}-".encode() + b"payload " * 8)
            for i in range(per_key) for k in range(keys)]


@pytest.mark.parametrize("client,codec", CASES)
def test_compressed_batches_are_compacted_and_recompressed(make_broker, client, codec):
    broker = make_broker(properties=PROPS)
    broker.start()
    topic = f"compact-{client}-{codec}"
    ck_create(broker, topic, TOPIC_CONFIG)
    sent = records(keys=25, per_key=24)
    # The last round only for the first 20 keys: keys 20-24 keep their value of round 22,
    # which sits in the middle of a batch.
    sent = sent[:-5]
    offsets = produce_compressed(broker, client, codec, topic, sent)
    produced = disk_batches(broker, topic)
    assert all(b["codec"] == CODECS[codec] for b in produced), [(b["codec"], b["count"]) for b in produced]
    assert len(produced) >= 4 and max(b["count"] for b in produced) >= 20, \
        f"expected several batches of many records, got {[b['count'] for b in produced]}"
    before = log_bytes(broker, topic)
    roll_with(broker, topic, "sentinel", sent, offsets)

    latest = {}
    for off, rec in zip(offsets, sent):
        latest[rec.key] = off
    want = sorted(latest.values())

    def compacted():
        return [g.offset for g in read_all(broker, topic)] == want
    h.wait_until(compacted, 40, f"only the latest record of every key to remain ({codec})", 0.5)

    got = read_all(broker, topic)
    check_is_compaction_of(got, sent, offsets)
    by_offset = dict(zip(offsets, sent))
    assert [(g.key, g.value) for g in got] == [(by_offset[o].key, by_offset[o].value) for o in want]
    after = log_bytes(broker, topic)
    assert after < before / 3, f"{before} -> {after} bytes"

    # On disk: the producer's batches kept their codec, every CRC is valid, and some
    # batch holds fewer records than offsets: the broker rewrote it with that codec.
    cleaned = [b for b in disk_batches(broker, topic) if b["base"] < offsets[-1]]
    assert cleaned
    assert all(b["codec"] == CODECS[codec] for b in cleaned), [b["codec"] for b in cleaned]
    assert any(0 < b["count"] < b["offsets"] for b in cleaned), cleaned
    assert "compaction failed" not in broker.stderr_text()
    assert "whole:" not in broker.stderr_text()  # no batch was left undecompressed
