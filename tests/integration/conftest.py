"""pytest fixtures for Sluice's integration tests.

- `zk`: one ZooKeeper per test module (each pytest process runs one module under meson);
  brokers isolate themselves from each other with a per-test chroot.
- `zk_private`: a ZooKeeper of the test's own, for tests that stop or restart it.
- `broker`: a started broker on `zk` (SIGTERM'd at teardown, which must exit 0).
- `make_broker`: a factory for brokers with custom properties/overrides (not started).

When a test fails, the stderr of every broker it created (and the ZooKeeper log) is
attached to the failure report, so a CI log shows what the broker said.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import sluice_harness as h

# Processes created by the running test, for the failure report.
_report_logs: list[tuple[str, Path]] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        seen = set()
        for title, path in _report_logs:
            if path not in seen:
                seen.add(path)
                report.sections.append((title, h.tail(path, 150)))


@pytest.fixture(autouse=True)
def _collect_logs():
    _report_logs.clear()
    yield
    # cleared at the start of the next test, so teardown failures still see them


def _chroot_for(request) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:80]
    return f"/sluice-{name}"


@pytest.fixture(scope="module")
def zk(tmp_path_factory):
    server = h.ZooKeeper(tmp_path_factory.mktemp("zk"))
    server.start()
    yield server
    if server.running():
        server.stop()


@pytest.fixture
def zk_private(tmp_path):
    server = h.ZooKeeper(tmp_path / "zk-private")
    server.workdir.mkdir(parents=True, exist_ok=True)
    server.start()
    _report_logs.append(("zookeeper log", server.log_path))
    yield server
    if server.running():
        server.stop()


@pytest.fixture
def make_broker(request, tmp_path, zk):
    """make_broker(broker_id=0, zk=None, overrides=None, properties=None, chroot=None) -> Broker.

    The broker is not started. At teardown every broker still running is SIGTERM'd and
    must exit 0: an unclean shutdown fails the test.
    """
    created: list[h.Broker] = []

    def factory(broker_id: int = 0, zk_server=None, overrides=None, properties=None, chroot=None,
                port=None) -> h.Broker:
        server = zk_server or zk
        b = h.Broker(tmp_path / f"broker-{broker_id}-{len(created)}", server, broker_id=broker_id,
                     chroot=chroot or _chroot_for(request), port=port, overrides=overrides,
                     properties=properties)
        created.append(b)
        _report_logs.append((f"broker {broker_id} stderr ({b.stderr_path})", b.stderr_path))
        if server is zk:
            _report_logs.append(("zookeeper log", zk.log_path))
        return b

    yield factory
    problems = []
    for b in created:
        if b.running():
            try:
                code = b.stop()
            except h.HarnessError as e:
                problems.append(str(e))
                continue
            if code != 0:
                problems.append(f"broker {b.broker_id} exited with status {code} on SIGTERM")
    assert not problems, "; ".join(problems)


@pytest.fixture
def broker(make_broker) -> h.Broker:
    b = make_broker()
    b.start()
    return b


def pytest_configure(config):
    h.install_signal_cleanup()


def pytest_report_header(config):
    try:
        binary = h.sluice_binary()
    except h.HarnessError as e:
        binary = f"MISSING ({e})"
    return [f"sluice build dir: {h.build_dir()}", f"sluice binary: {binary}",
            f"kcat: {shutil.which('kcat')}, node: {shutil.which('node')}"]
