"""Hostile and broken clients on raw sockets. After each, the broker must still answer a
real client (librdkafka Metadata plus a produce/consume round trip) and a raw ApiVersions.

Kafka's behaviour is the reference: an invalid frame size or an unknown API key/version
closes the connection; an unsupported ApiVersions version gets error 35 in the v0 layout.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time

import pytest

import clients as c
import kwire

MAX_REQUEST = 1024 * 1024  # socket.request.max.bytes for these tests


@pytest.fixture
def small_broker(make_broker):
    b = make_broker(overrides={"socket.request.max.bytes": str(MAX_REQUEST)})
    b.start()
    return b


def assert_still_serving(broker, topic: str = "still-serving") -> None:
    assert broker.running(), f"broker exited with status {broker._proc.returncode}"
    versions = kwire.api_versions(broker.port)
    assert versions.error_code == 0 and kwire.API_METADATA in versions.ranges
    md = broker.metadata(timeout_s=10)
    assert broker.broker_id in md.brokers
    records = c.make_records(20, seed=len(topic))
    positions = c.ck_produce(broker.bootstrap, topic, records, partition=0, timeout_s=30)
    consumed = c.ck_consume(broker.bootstrap, topic, {0: positions[-1][1] + 1}, timeout_s=30)
    by_offset = {m.offset: m for m in consumed[0]}
    for r, (_, off) in zip(records, positions):
        assert by_offset[off].value == r.value


def _send_and_expect_close(broker, payload: bytes, what: str) -> None:
    with kwire.Conn(broker.port) as conn:
        conn.send(payload)
        assert conn.closed_by_peer(10), f"broker kept the connection open after {what}"


def test_http_request_is_rejected(small_broker):
    # "GET " read as a size is 1195725856: far beyond socket.request.max.bytes.
    _send_and_expect_close(small_broker, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "an HTTP request")
    assert_still_serving(small_broker)


def test_random_garbage(small_broker):
    rnd = random.Random(5)
    for i in range(20):
        with kwire.Conn(small_broker.port) as conn:
            size = rnd.randint(8, 200)
            try:
                conn.send(struct.pack(">i", size) + rnd.randbytes(size))
                conn.closed_by_peer(2)  # either answer-and-close or close; it must not crash
            except (ConnectionResetError, BrokenPipeError):
                pass
    assert_still_serving(small_broker)


def test_truncated_frame_then_close(small_broker):
    for cut in (1, 3, 4, 10):
        frame = kwire.request(kwire.API_METADATA, 1, 1, kwire.metadata_body(1, ["t"]))
        with socket.create_connection(("127.0.0.1", small_broker.port), timeout=5) as s:
            s.sendall(frame[:cut])
        # closed by us mid-frame
    assert_still_serving(small_broker)


@pytest.mark.parametrize("size", [-1, -2147483648, 0, 1, 3])
def test_invalid_sizes_close_the_connection(small_broker, size):
    # Sizes below a minimal request header (api key, version, correlation id) are invalid too.
    _send_and_expect_close(small_broker, struct.pack(">i", size) + b"\x00" * 8, f"frame size {size}")
    assert_still_serving(small_broker)


def test_size_above_socket_request_max_bytes(small_broker):
    with kwire.Conn(small_broker.port) as conn:
        conn.send(struct.pack(">i", MAX_REQUEST + 1) + b"\x00\x03\x00\x01")
        assert conn.closed_by_peer(10), "an oversized frame must close the connection before its body arrives"
    assert_still_serving(small_broker)


def test_unknown_api_key_closes_the_connection(small_broker):
    for api_key in (999, 32767, -5):
        _send_and_expect_close(small_broker, kwire.request(api_key, 0, 1, b""), f"api key {api_key}")
    assert_still_serving(small_broker)


def test_unsupported_version_of_a_known_api_closes_the_connection(small_broker):
    _send_and_expect_close(small_broker, kwire.request(kwire.API_METADATA, 999, 1, b""), "Metadata v999")
    assert_still_serving(small_broker)


@pytest.mark.parametrize("version", [127, 32767])
def test_unknown_api_versions_version_gets_error_35_in_v0_layout(small_broker, version):
    with kwire.Conn(small_broker.port) as conn:
        # Header v2 (ApiVersions v3+ is flexible), as librdkafka sends it. The body is a v3
        # body; Kafka does not parse the body of an unsupported version.
        body = kwire.compact_string("sluice-itest") + kwire.compact_string("1.0") + b"\x00"
        conn.send(kwire.request(kwire.API_API_VERSIONS, version, 42, body, flexible=True))
        frame = conn.recv_frame()
        assert struct.unpack(">i", frame[:4])[0] == 42
        answer = kwire.parse_api_versions_v0(frame[4:])
        assert answer.error_code == kwire.ERR_UNSUPPORTED_VERSION
        assert kwire.API_API_VERSIONS in answer.ranges
        lo, hi = answer.ranges[kwire.API_API_VERSIONS]
        assert lo == 0 and 3 <= hi < version
        # the connection stays usable: the client retries with a version it knows
        ok = kwire.parse_api_versions_v0(conn.call(kwire.API_API_VERSIONS, 0, b""))
        assert ok.error_code == 0
        assert ok.ranges[kwire.API_API_VERSIONS] == (lo, hi)
    assert_still_serving(small_broker)


def test_api_versions_v0_lists_what_librdkafka_needs(small_broker):
    ranges = kwire.api_versions(small_broker.port).ranges
    for key, version in ((kwire.API_PRODUCE, 3), (kwire.API_PRODUCE, 7), (kwire.API_FETCH, 4),
                         (kwire.API_FETCH, 10), (kwire.API_METADATA, 4), (kwire.API_API_VERSIONS, 3)):
        lo, hi = ranges[key]
        assert lo <= version <= hi, f"api {key} v{version} outside advertised {lo}-{hi}"


def test_lengths_inside_a_valid_frame_pointing_past_the_end(small_broker):
    header = kwire.i16(kwire.API_METADATA) + kwire.i16(1) + kwire.i32(9)
    bodies = {
        "client id length past end": kwire.i16(kwire.API_METADATA) + kwire.i16(1) + kwire.i32(9) + kwire.i16(500) + b"ab",
        "topic name length past end": header + kwire.string("c") + kwire.i32(1) + kwire.i16(1000) + b"t",
        "topic count past end": header + kwire.string("c") + kwire.i32(0x7FFFFFFF) + kwire.string("t"),
        "negative topic count": header + kwire.string("c") + kwire.i32(-7),
        "negative name length": header + kwire.string("c") + kwire.i32(1) + kwire.i16(-3),
        "header only, body missing": header + kwire.string("c"),
        "ApiVersions v127 header claiming 7 tagged fields": kwire.i16(kwire.API_API_VERSIONS) + kwire.i16(127)
            + kwire.i32(9) + kwire.string("c") + b"\x07garbage",
    }
    for what, body in bodies.items():
        with kwire.Conn(small_broker.port) as conn:
            conn.send(kwire.i32(len(body)) + body)
            # Kafka closes on a malformed request; an error answer would also be acceptable,
            # but the connection must not hang waiting for bytes that are not coming.
            try:
                frame = conn.recv_frame(10)
            except (ConnectionError, OSError):
                continue
            assert struct.unpack(">i", frame[:4])[0] == 9, f"{what}: answered with a wrong correlation id"
    assert_still_serving(small_broker)


def test_slow_client_does_not_stall_others(small_broker):
    """One client dribbles an ApiVersions request at 1 byte per 100 ms while another
    produces and consumes normally; both must be served correctly."""
    # ~120 bytes: about 12 s of dribbling, far longer than the fast client needs.
    frame = kwire.request(kwire.API_API_VERSIONS, 0, 77, b"", client_id="slow-client-" + "x" * 95)
    result: dict = {}

    def dribble():
        try:
            with kwire.Conn(small_broker.port, timeout_s=30) as conn:
                for b in frame:
                    conn.send(bytes([b]))
                    time.sleep(0.1)  # the point of the test: pacing, not synchronisation
                result["frame"] = conn.recv_frame(10)
        except Exception as e:  # reported by the main thread
            result["error"] = e

    t = threading.Thread(target=dribble, daemon=True)
    started = time.monotonic()
    t.start()
    records = c.make_records(2000, seed=99)
    positions = c.ck_produce(small_broker.bootstrap, "beside-slow", records, partition=0)
    c.verify(records, positions, c.ck_consume(small_broker.bootstrap, "beside-slow", {0: 2000}))
    assert t.is_alive(), (f"the fast client took {time.monotonic() - started:.1f}s: "
                          "it should finish while the slow one is still sending")
    t.join(timeout=len(frame) * 0.1 + 30)
    assert not t.is_alive(), "slow client never finished"
    assert "error" not in result, f"slow client failed: {result.get('error')!r}"
    assert struct.unpack(">i", result["frame"][:4])[0] == 77
    assert kwire.parse_api_versions_v0(result["frame"][4:]).error_code == 0
    assert_still_serving(small_broker)


def test_many_idle_connections_then_service(small_broker):
    conns = [socket.create_connection(("127.0.0.1", small_broker.port), timeout=5) for _ in range(200)]
    try:
        assert_still_serving(small_broker)
    finally:
        for s in conns:
            s.close()
    assert_still_serving(small_broker, "after-idle")


@pytest.mark.parametrize("version", [0, 2])
def test_legacy_message_set_in_old_produce_is_refused_per_partition(small_broker, version):
    """Produce v0-2 is advertised (librdkafka needs v0 in the range to compress), but only
    record batch v2 is stored: a magic-1 message set gets UNSUPPORTED_FOR_MESSAGE_FORMAT
    (43) for its partition, nothing is written, and the connection stays usable."""
    import zlib
    topic = f"legacy-v{version}"
    small_broker.metadata(topic, timeout_s=10)  # auto-creates it
    c.ck_produce(small_broker.bootstrap, topic, c.make_records(3, seed=1), partition=0)
    # One magic-1 message: crc covers magic..value; key null, value b"old".
    body = struct.pack(">bbq", 1, 0, 1_700_000_000_000) + kwire.i32(-1) + kwire.i32(3) + b"old"
    message = struct.pack(">I", zlib.crc32(body)) + body
    message_set = struct.pack(">qi", 0, len(message)) + message
    partition = kwire.i32(0) + kwire.i32(len(message_set)) + message_set
    request = (kwire.i16(1) + kwire.i32(5000)
               + kwire.array([kwire.string(topic) + kwire.array([partition])]))
    with kwire.Conn(small_broker.port) as conn:
        resp = conn.call(kwire.API_PRODUCE, version, request)
        (n_topics,) = struct.unpack_from(">i", resp, 0)
        (name_len,) = struct.unpack_from(">h", resp, 4)
        at = 6 + name_len
        n_parts, index, error = struct.unpack_from(">iih", resp, at)
        assert (n_topics, n_parts, index) == (1, 1, 0)
        assert error == 43, f"expected UNSUPPORTED_FOR_MESSAGE_FORMAT, got {error}"
        assert kwire.api_versions(small_broker.port).ranges[kwire.API_PRODUCE][0] == 0
    assert small_broker.metadata(topic, timeout_s=10).topics[topic].error is None
    consumed = c.ck_consume(small_broker.bootstrap, topic, {0: 3}, timeout_s=30)
    assert [m.offset for m in consumed[0]] == [0, 1, 2]  # nothing was appended
    assert_still_serving(small_broker)
