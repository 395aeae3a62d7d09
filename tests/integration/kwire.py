"""A tiny, independent Kafka wire codec for raw-socket tests (stdlib only).

Written from the schemas in shared/kafka-protocol/messages, not from the broker's code, so
it can catch the broker's codec disagreeing with the spec.

Framing: every request and response is `int32 size` (big-endian, bytes that follow) then
the body. Request header v1: int16 api_key, int16 api_version, int32 correlation_id,
int16-length client_id (-1 = null). Response header v0: int32 correlation_id.
Only the non-flexible versions used here are implemented (ApiVersions v0, Metadata v1/v4).
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Optional

API_PRODUCE = 0
API_FETCH = 1
API_METADATA = 3
API_API_VERSIONS = 18

ERR_NONE = 0
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_LEADER_NOT_AVAILABLE = 5
ERR_UNSUPPORTED_VERSION = 35


def i8(v: int) -> bytes:
    return struct.pack(">b", v)


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def string(s: Optional[str]) -> bytes:
    if s is None:
        return i16(-1)
    raw = s.encode()
    return i16(len(raw)) + raw


def array(items: Optional[list[bytes]]) -> bytes:
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(items)


def compact_string(s: str) -> bytes:
    raw = s.encode()
    assert len(raw) < 127, "one-byte unsigned varint length only"
    return bytes([len(raw) + 1]) + raw


def request(api_key: int, version: int, correlation_id: int, body: bytes,
            client_id: Optional[str] = "itest", flexible: bool = False) -> bytes:
    """A whole frame (size prefix included) with request header v1, or v2 when `flexible`
    (an empty tagged-field section after the still int16-length client_id)."""
    payload = i16(api_key) + i16(version) + i32(correlation_id) + string(client_id)
    if flexible:
        payload += b"\x00"
    payload += body
    return i32(len(payload)) + payload


def metadata_body(version: int, topics: Optional[list[str]], allow_auto_create: bool = True) -> bytes:
    """v0: an empty list means all topics (None is not allowed); v1+: None means all."""
    assert version >= 1 or topics is not None, "Metadata v0 has no null topic list"
    body = array(None if topics is None else [string(t) for t in topics])
    if version >= 4:
        body += i8(1 if allow_auto_create else 0)
    return body


class DecodeError(AssertionError):
    pass


class Reader:
    """Bounds-checked big-endian reader; any overrun is a test failure (DecodeError)."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError(f"wanted {n} bytes at offset {self.pos}, {len(self.data) - self.pos} left")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def i8(self) -> int:
        return struct.unpack(">b", self.take(1))[0]

    def i16(self) -> int:
        return struct.unpack(">h", self.take(2))[0]

    def i32(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def string(self) -> Optional[str]:
        n = self.i16()
        return None if n == -1 else self.take(n).decode()

    def array(self, element) -> Optional[list]:
        n = self.i32()
        if n == -1:
            return None
        if n < 0 or n > len(self.data):
            raise DecodeError(f"implausible array length {n} at offset {self.pos - 4}")
        return [element(self) for _ in range(n)]

    def done(self) -> None:
        if self.pos != len(self.data):
            raise DecodeError(f"{len(self.data) - self.pos} trailing bytes after offset {self.pos}")


@dataclass
class ApiVersions:
    error_code: int
    ranges: dict[int, tuple[int, int]]


def parse_api_versions_v0(body: bytes) -> ApiVersions:
    r = Reader(body)
    error = r.i16()
    entries = r.array(lambda r: (r.i16(), r.i16(), r.i16()))
    r.done()
    return ApiVersions(error, {k: (lo, hi) for k, lo, hi in entries})


@dataclass
class PartitionMd:
    error_code: int
    partition: int
    leader: int
    replicas: list[int]
    isr: list[int]


@dataclass
class TopicMd:
    error_code: int
    name: str
    is_internal: bool
    partitions: list[PartitionMd] = field(default_factory=list)


@dataclass
class Metadata:
    brokers: dict[int, tuple[str, int, Optional[str]]]
    cluster_id: Optional[str]
    controller_id: int
    topics: dict[str, TopicMd]


def parse_metadata(version: int, body: bytes) -> Metadata:
    """Metadata response v0..v4: v1 adds rack, controller_id and is_internal; v2 adds
    cluster_id; v3/v4 add throttle_time_ms first."""
    assert 0 <= version <= 4, "only v0-v4 are implemented here"
    r = Reader(body)
    if version >= 3:
        r.i32()  # throttle_time_ms
    brokers = r.array(lambda r: (r.i32(), r.string(), r.i32(), r.string() if version >= 1 else None))
    cluster_id = r.string() if version >= 2 else None
    controller_id = r.i32() if version >= 1 else -1

    def partition(r: Reader) -> PartitionMd:
        return PartitionMd(r.i16(), r.i32(), r.i32(), r.array(Reader.i32), r.array(Reader.i32))

    def topic(r: Reader) -> TopicMd:
        return TopicMd(r.i16(), r.string(), r.i8() != 0 if version >= 1 else False, r.array(partition))

    topics = r.array(topic)
    r.done()
    return Metadata({b[0]: (b[1], b[2], b[3]) for b in brokers}, cluster_id, controller_id,
                    {t.name: t for t in topics})


class Conn:
    """A blocking client connection with bounded waits on every read."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout_s: float = 10):
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout_s = timeout_s
        self._next_corr = 1

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv_exact(self, n: int, deadline: float) -> bytes:
        out = bytearray()
        while len(out) < n:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError(f"connection closed after {len(out)} of {n} bytes")
            out += chunk
        return bytes(out)

    def recv_frame(self, timeout_s: Optional[float] = None) -> bytes:
        """One response body (size prefix stripped); raises on close or timeout."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        (size,) = struct.unpack(">i", self._recv_exact(4, deadline))
        if size < 4 or size > 64 * 1024 * 1024:
            raise DecodeError(f"implausible response size {size}")
        return self._recv_exact(size, deadline)

    def call(self, api_key: int, version: int, body: bytes, client_id: Optional[str] = "itest") -> bytes:
        """Sends one request and returns the response body after checking the correlation id."""
        corr = self._next_corr
        self._next_corr += 1
        self.send(request(api_key, version, corr, body, client_id))
        frame = self.recv_frame()
        (got,) = struct.unpack(">i", frame[:4])
        if got != corr:
            raise DecodeError(f"correlation id {got}, expected {corr}")
        return frame[4:]

    def closed_by_peer(self, timeout_s: float = 10) -> bool:
        """True when the broker closes (EOF or reset) within the bound, draining any bytes
        it sends first; False if the connection is still open at the deadline."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
        return False


def api_versions(port: int) -> ApiVersions:
    with Conn(port) as c:
        return parse_api_versions_v0(c.call(API_API_VERSIONS, 0, b""))


def metadata(port: int, version: int, topics: Optional[list[str]], allow_auto_create: bool = True,
             host: str = "127.0.0.1") -> Metadata:
    with Conn(port, host) as c:
        return parse_metadata(version, c.call(API_METADATA, version,
                                              metadata_body(version, topics, allow_auto_create)))
