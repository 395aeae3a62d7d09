"""Configuration contract: required keys, malformed values, unknown keys, --override.

`build/sluice CONFIG [--override key=value ...]`: a missing or malformed required key
exits with status 2 and one stderr line naming the key; an unknown key is logged and the
broker starts anyway.
"""

from __future__ import annotations

import pytest

import sluice_harness as h


def _valid_props(tmp_path, zk) -> dict:
    return {
        "broker.id": "0",
        "log.dirs": str(tmp_path / "data"),
        "zookeeper.connect": f"{zk.connect}/sluice-config",
        "listeners": f"PLAINTEXT://127.0.0.1:{h.free_port()}",
        "offsets.topic.replication.factor": "1",
    }


def _assert_config_error(proc, key: str) -> None:
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == 2, f"exit status {proc.returncode}, expected 2; stderr:\n{stderr}"
    naming = [line for line in stderr.splitlines() if key in line]
    assert len(naming) == 1, f"expected exactly one stderr line naming {key!r}, got:\n{stderr}"


@pytest.mark.parametrize("key", ["broker.id", "log.dirs", "zookeeper.connect"])
def test_missing_required_key_exits_2_naming_it(tmp_path, zk, key):
    props = _valid_props(tmp_path, zk)
    del props[key]
    _assert_config_error(h.run_broker_once(tmp_path / "run", props), key)


@pytest.mark.parametrize("key,value", [
    ("broker.id", "abc"),
    ("broker.id", "1.5"),
    ("broker.id", "99999999999999"),
    ("zookeeper.connect", "127.0.0.1:notaport"),
    ("num.partitions", "many"),
    ("listeners", "PLAINTEXT://127.0.0.1:notaport"),
])
def test_malformed_value_exits_2_naming_it(tmp_path, zk, key, value):
    props = _valid_props(tmp_path, zk)
    props[key] = value
    _assert_config_error(h.run_broker_once(tmp_path / "run", props), key)


def test_malformed_override_exits_2(tmp_path, zk):
    props = _valid_props(tmp_path, zk)
    _assert_config_error(h.run_broker_once(tmp_path / "run", props, ["broker.id=abc"]), "broker.id")


def test_override_supplies_missing_required_key(make_broker):
    """--override completes the file: broker.id only on the command line is enough."""
    broker = make_broker(broker_id=3)
    del broker.properties["broker.id"]
    broker.overrides["broker.id"] = "3"
    broker.start()
    assert broker.metadata().controller_id == 3


def test_unknown_key_is_logged_and_broker_starts(make_broker):
    broker = make_broker(properties={"sluice.itest.no.such.key": "42"})
    broker.start()
    assert "sluice.itest.no.such.key" in broker.stderr_text()
    md = broker.metadata()
    assert list(md.brokers) == [broker.broker_id]


def test_override_wins_over_file(make_broker):
    import clients as c
    broker = make_broker(properties={"num.partitions": "1"}, overrides={"num.partitions": "4"})
    broker.start()
    positions = c.ck_produce(broker.bootstrap, "override-wins", c.make_records(200, seed=1))
    assert set(p for p, _ in positions) == {0, 1, 2, 3}
    assert len(broker.metadata("override-wins").topics["override-wins"].partitions) == 4


def test_sigint_is_a_clean_shutdown(make_broker):
    import signal
    broker = make_broker()
    broker.start()
    assert broker.stop(sig=signal.SIGINT) == 0


def test_command_line_errors(tmp_path):
    import subprocess
    binary = str(h.sluice_binary())
    no_args = subprocess.run([binary], capture_output=True, timeout=15)
    assert no_args.returncode == 2 and b"usage" in no_args.stderr.lower(), no_args
    missing = tmp_path / "does-not-exist.properties"
    no_file = subprocess.run([binary, str(missing)], capture_output=True, timeout=15)
    assert no_file.returncode != 0, "a missing config file must not start a broker"
    assert str(missing).encode() in no_file.stderr, no_file.stderr
    dangling = subprocess.run([binary, str(missing), "--override"], capture_output=True, timeout=15)
    assert dangling.returncode == 2, dangling
