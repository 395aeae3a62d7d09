"""Checks of the harness itself; these need ZooKeeper but no broker.

They keep the rest of the suite honest: if ZooKeeper management, the wire codec or the
"missing binary" path broke, every broker test would fail for the wrong reason.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import kwire
import sluice_harness as h

CAPTURES = Path("/work/shared/wire-captures")


def test_zookeeper_answers_and_keeps_data_across_restart(zk_private):
    assert zk_private.ruok()
    client = zk_private.client()
    try:
        client.ensure_path("/itest/persistent")
        client.set("/itest/persistent", b"kept")
        client.create("/itest/ephemeral", b"gone", ephemeral=True)
    finally:
        client.stop()
    old_pid = zk_private.pid
    zk_private.restart()
    assert zk_private.pid != old_pid
    client = zk_private.client()
    try:
        assert client.get("/itest/persistent")[0] == b"kept"
        # the session that owned it was closed cleanly, so the ephemeral node is gone
        assert client.exists("/itest/ephemeral") is None
    finally:
        client.stop()


def test_zookeeper_stop_frees_port_and_pid(zk_private):
    pid = zk_private.pid
    zk_private.stop()
    assert not zk_private.running()
    assert not zk_private.ruok()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_missing_broker_binary_is_a_failure_not_a_skip(monkeypatch, tmp_path):
    monkeypatch.setenv("SLUICE_BUILD", str(tmp_path))
    monkeypatch.delenv("SLUICE_BIN", raising=False)
    with pytest.raises(h.HarnessError, match="broker binary not found"):
        h.sluice_binary()
    assert issubclass(h.HarnessError, AssertionError)


def test_wait_until_is_bounded():
    with pytest.raises(TimeoutError, match="never"):
        h.wait_until(lambda: False, 0.3, "never")
    assert h.wait_until(lambda: 42, 1, "value") == 42


def _capture_frames(name: str):
    for line in (CAPTURES / name).read_text().splitlines():
        m = re.match(r"api_key=(\d+)\S* v(\d+) corr=(\d+) client_id=(\S+) len=(\d+) hex=([0-9a-f]+)", line)
        if m:
            yield int(m[1]), int(m[2]), int(m[3]), m[4], bytes.fromhex(m[6])


@pytest.mark.skipif(not CAPTURES.exists(), reason="shared wire captures not present on this machine")
def test_kwire_encodes_requests_like_real_clients():
    frames = list(_capture_frames("kafka-python-2.0.2_producer-gzip.txt"))
    api_versions = next(f for f in frames if f[0] == 18 and f[1] == 0)
    _, _, corr, client_id, body = api_versions
    assert kwire.request(18, 0, corr, b"", client_id)[4:] == body
    md = next(f for f in frames if f[0] == 3 and f[1] == 1)
    _, _, corr, client_id, body = md
    assert kwire.request(3, 1, corr, kwire.metadata_body(1, None), client_id)[4:] == body


def test_kwire_parses_metadata_v1():
    body = (kwire.array([kwire.i32(7) + kwire.string("localhost") + kwire.i32(9092) + kwire.string(None)])
            + kwire.i32(7)
            + kwire.array([kwire.i16(0) + kwire.string("t") + kwire.i8(0)
                           + kwire.array([kwire.i16(0) + kwire.i32(0) + kwire.i32(7)
                                          + kwire.array([kwire.i32(7)]) + kwire.array([kwire.i32(7)])])]))
    md = kwire.parse_metadata(1, body)
    assert md.brokers == {7: ("localhost", 9092, None)}
    assert md.controller_id == 7
    assert md.topics["t"].partitions[0].isr == [7]
    with pytest.raises(kwire.DecodeError):
        kwire.parse_metadata(1, body + b"\x00")


def test_tools_are_installed():
    for argv in (["kcat", "-V"], ["node", "--version"], ["java", "-version"]):
        assert subprocess.run(argv, capture_output=True, timeout=30).returncode == 0, argv
    import importlib
    for module in ("confluent_kafka", "kafka", "kazoo"):
        importlib.import_module(module)
