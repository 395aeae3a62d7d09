"""kcat (librdkafka 2.0.2): 100,000 keyed records with headers in, the same bytes out.

Produce runs read records from a file separated by multi-byte delimiters (so values can
hold any other byte, including newlines); each run adds its own header set with -H.
The consumer prints `offset keylen valuelen headers\\n key value \\n` with -f, which the
test parses by length, so every key and value byte is compared.
"""

from __future__ import annotations

import random
import subprocess

MSG_DELIM = b"\x1e\x1d\x1c\x1b"   # between records
KEY_DELIM = b"\x1f\x17"            # between key and value
# One kcat -P invocation each: headers given with -H, record count, sizes of large values.
RUNS = [
    ((("trace", "run-0"), ("empty", "")), 30_000, [900 * 1024, 512 * 1024]),
    ((("dup", "1"), ("dup", "2")), 30_000, [100 * 1024, 899 * 1024 + 7]),
    ((("utf8", "h\u00e9llo w\u00f6rld"),), 30_000, [300 * 1024]),
    ((("n", "v=with=equals"), ("x", "y")), 10_000, []),
]
assert sum(count for _, count, _ in RUNS) == 100_000


def _escape(delim: bytes) -> str:
    return "".join(f"\\x{b:02x}" for b in delim)


def _records(run: int, count: int, rnd: random.Random, big_sizes: list[int]) -> list[tuple[bytes, bytes]]:
    """Keys are unique ASCII; values mostly small random bytes, every 17th empty, and the
    large ones spread evenly. MSG_DELIM has no self-overlap, so removing it from values is
    enough to keep the framing unambiguous."""
    big_at = {count * (j + 1) // (len(big_sizes) + 1): size for j, size in enumerate(big_sizes)}
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789"
    out = []
    for i in range(count):
        key = f"r{run}-k{i}-".encode() + bytes(rnd.choice(alphabet) for _ in range(rnd.randint(0, 8)))
        if i in big_at:
            value = rnd.randbytes(big_at[i])
        elif i % 17 == 5:
            value = b""  # empty, not null: kcat sends an empty value as empty without -Z
        else:
            value = rnd.randbytes(rnd.randint(1, 120))
        while MSG_DELIM in value:
            value = value.replace(MSG_DELIM, b"")
        out.append((key, value))
    return out


def _parse_kcat_output(raw: bytes) -> list[tuple[int, bytes, bytes, str]]:
    """Parses repeated `<offset> <keylen> <valuelen> <headers>\\n<key><value>\\n`."""
    out, pos = [], 0
    while pos < len(raw):
        nl = raw.index(b"\n", pos)
        offset_s, klen_s, vlen_s, headers = raw[pos:nl].decode().split(" ", 3)
        klen, vlen = int(klen_s), int(vlen_s)
        pos = nl + 1
        key = raw[pos:pos + max(klen, 0)]
        pos += max(klen, 0)
        value = raw[pos:pos + max(vlen, 0)]
        pos += max(vlen, 0)
        assert raw[pos:pos + 1] == b"\n", f"framing lost after offset {offset_s}"
        pos += 1
        out.append((int(offset_s), key, value, headers))
    return out


def test_kcat_100k_records_round_trip_byte_for_byte(broker, tmp_path):
    topic = "kcat-roundtrip"
    rnd = random.Random(20261125)
    expected: list[tuple[bytes, bytes, str]] = []
    for run, (headers, count, big_sizes) in enumerate(RUNS):
        records = _records(run, count, rnd, big_sizes)
        path = tmp_path / f"run{run}.in"
        path.write_bytes(b"".join(k + KEY_DELIM + v + MSG_DELIM for k, v in records))
        argv = ["kcat", "-P", "-b", broker.bootstrap, "-t", topic, "-p", "0",
                "-D", _escape(MSG_DELIM), "-K", _escape(KEY_DELIM), "-l", str(path),
                "-X", "linger.ms=20", "-X", "message.timeout.ms=60000"]
        for name, value in headers:
            argv += ["-H", f"{name}={value}"]
        proc = subprocess.run(argv, capture_output=True, timeout=180)
        assert proc.returncode == 0, f"kcat -P run {run} failed: {proc.stderr.decode(errors='replace')}"
        header_text = ",".join(f"{n}={v}" for n, v in headers)
        expected += [(k, v, header_text) for k, v in records]
    assert sum(len(v) >= 100 * 1024 for _, v, _ in expected) == sum(len(b) for _, _, b in RUNS), "the large values are in the set"
    total = sum(c for _, c, _ in RUNS)
    assert len(expected) == total

    out_path = tmp_path / "consumed.bin"
    with open(out_path, "wb") as out:
        proc = subprocess.run(["kcat", "-C", "-b", broker.bootstrap, "-t", topic, "-p", "0",
                               "-o", "beginning", "-e", "-f", "%o %K %S %h\\n%k%s\\n"],
                              stdout=out, stderr=subprocess.PIPE, timeout=300)
    assert proc.returncode == 0, f"kcat -C failed: {proc.stderr.decode(errors='replace')}"
    got = _parse_kcat_output(out_path.read_bytes())

    assert [g[0] for g in got] == list(range(total)), "offsets are not exactly 0..N-1 in order"
    for i, ((key, value, headers), (offset, gkey, gvalue, gheaders)) in enumerate(zip(expected, got)):
        assert gkey == key, f"offset {offset}: key {gkey!r} != {key!r}"
        assert gvalue == value, f"offset {offset}: value of {len(gvalue)} bytes differs from the {len(value)} sent"
        assert gheaders == headers, f"offset {offset}: headers {gheaders!r} != {headers!r}"


def test_kcat_metadata_listing(broker):
    proc = subprocess.run(["kcat", "-L", "-b", broker.bootstrap, "-J"], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    import json
    md = json.loads(proc.stdout)
    assert [b["id"] for b in md["brokers"]] == [broker.broker_id]
    assert md["brokers"][0]["name"] == f"127.0.0.1:{broker.port}"
    assert md["controllerid"] == broker.broker_id
