"""Process harness for Sluice's integration tests: a throwaway ZooKeeper and Sluice brokers.

Everything here runs on 127.0.0.1 with ports picked by the kernel. Every wait is a bounded
poll of an observable condition (a TCP connect, ZooKeeper's `ruok`, a Metadata answer, a
process exit); nothing sleeps to "give it time". Processes are started by this module,
tracked by PID, and stopped by PID (SIGTERM, then SIGKILL after a bound) -- including at
interpreter exit, so a failing test never leaks a broker or a JVM into the next one.

Concurrency: the classes are not thread-safe; a test drives each object from one thread.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

REPO_ROOT = Path(__file__).resolve().parents[2]
ZK_JARS = ["/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar"]
ZK_MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"

# Every process this module started and has not yet seen exit: pid -> Popen.
_live: dict[int, subprocess.Popen] = {}


class HarnessError(AssertionError):
    """A precondition of the test environment failed (missing binary, process died early).

    It derives from AssertionError on purpose: these are test failures, never skips.
    """


def build_dir() -> Path:
    """The meson build directory, passed by meson as SLUICE_BUILD (default: <repo>/build)."""
    return Path(os.environ.get("SLUICE_BUILD") or REPO_ROOT / "build")


def sluice_binary() -> Path:
    """Path of the broker executable; raises (fails the test) when it has not been built."""
    explicit = os.environ.get("SLUICE_BIN")
    candidates = [Path(explicit)] if explicit else [build_dir() / "sluice", build_dir() / "broker" / "sluice"]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise HarnessError(f"broker binary not found (looked at {', '.join(map(str, candidates))}); "
                       "build it with `meson compile -C build`")


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout_s: float, what: str,
               interval_s: float = 0.05, alive: Optional[Callable[[], None]] = None):
    """Polls `predicate` until it returns a truthy value, at most `timeout_s`.

    `alive` is called before each probe and may raise to abort early (a process died).
    Returns the truthy value; raises TimeoutError naming `what` otherwise.
    """
    deadline = time.monotonic() + timeout_s
    last_error: Optional[BaseException] = None
    while True:
        if alive is not None:
            alive()
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # a probe that throws is a probe that said "not yet"
            last_error = e
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}{detail}")
        time.sleep(interval_s)


def tcp_accepts(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _spawn(argv: list[str], log_path: Path, cwd: Optional[Path] = None) -> subprocess.Popen:
    log = open(log_path, "ab")
    log.write(f"\n===== {time.strftime('%H:%M:%S')} start: {' '.join(argv)}\n".encode())
    log.flush()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            cwd=cwd, start_new_session=True)
    log.close()  # the child holds its own descriptor
    _live[proc.pid] = proc
    return proc


def _reap(proc: subprocess.Popen, timeout_s: float) -> Optional[int]:
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None
    _live.pop(proc.pid, None)
    return code


def _terminate(proc: subprocess.Popen, sig: int, timeout_s: float) -> int:
    """Sends `sig` to the process (by PID), waits up to `timeout_s`, then SIGKILLs it."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    code = _reap(proc, timeout_s)
    if code is None:
        os.kill(proc.pid, signal.SIGKILL)
        code = _reap(proc, 10)
        raise HarnessError(f"pid {proc.pid} ignored signal {sig} for {timeout_s}s; killed (status {code})")
    return code


@atexit.register
def _kill_leftovers() -> None:
    for pid, proc in list(_live.items()):
        if proc.poll() is None:
            os.kill(pid, signal.SIGKILL)
            proc.wait(timeout=10)
        _live.pop(pid, None)


def install_signal_cleanup() -> None:
    """On SIGTERM/SIGINT (meson's timeout, Ctrl-C) kill every process we started, then die
    by that signal. Children live in their own sessions, so nobody else would stop them."""
    def handler(signum, _frame):
        _kill_leftovers()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def tail(path: Path, max_lines: int = 200) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"<{path} does not exist>"
    cut = lines[-max_lines:]
    prefix = f"... ({len(lines) - len(cut)} earlier lines in {path})\n" if len(lines) > len(cut) else ""
    return prefix + "\n".join(cut)


class ZooKeeper:
    """A standalone ZooKeeper (Debian's jars) on a private loopback port and data directory.

    start/stop/kill/restart keep the port and the data directory, so a restart is a restart
    of the same ensemble, not a new one.
    """

    def __init__(self, workdir: Path, port: Optional[int] = None):
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.data_dir = self.workdir / "zk-data"
        self.log_path = self.workdir / "zookeeper.log"
        self._proc: Optional[subprocess.Popen] = None

    @property
    def connect(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "zoo.cfg"
        cfg.write_text("\n".join([
            "tickTime=500",          # minSessionTimeout = 2*tick = 1 s: tests may ask for short sessions
            "maxSessionTimeout=60000",
            f"dataDir={self.data_dir}",
            f"clientPort={self.port}",
            "clientPortAddress=127.0.0.1",
            "maxClientCnxns=0",
            "admin.enableServer=false",
            "4lw.commands.whitelist=ruok,srvr,stat,cons",
            "",
        ]))
        return cfg

    def _four_letter(self, word: bytes) -> bytes:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(word)
                s.settimeout(2)
                out = b""
                while chunk := s.recv(4096):
                    out += chunk
                return out
        except OSError:
            return b""

    def ruok(self) -> bool:
        """ZooKeeper's liveness check. `imok` only means the process listens: it is also
        the answer while the database is still loading."""
        return self._four_letter(b"ruok") == b"imok"

    def serving(self) -> bool:
        """True once the server serves requests: `srvr` reports a mode instead of
        "This ZooKeeper instance is not currently serving requests"."""
        return self.ruok() and b"Mode: " in self._four_letter(b"srvr")

    def _check_alive(self) -> None:
        if not self.running():
            raise HarnessError(f"ZooKeeper exited with status {self._proc.returncode}:\n{tail(self.log_path, 40)}")

    def start(self, timeout_s: float = 30) -> None:
        assert not self.running(), "ZooKeeper already running"
        for jar in ZK_JARS[:1]:
            if not Path(jar).exists():
                raise HarnessError(f"{jar} missing: apt-get install zookeeper")
        cfg = self._write_config()
        argv = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-cp", ":".join(j for j in ZK_JARS if Path(j).exists()), ZK_MAIN, str(cfg)]
        self._proc = _spawn(argv, self.log_path, cwd=self.workdir)
        wait_until(self.serving, timeout_s, f"ZooKeeper on port {self.port} to serve requests (ruok + srvr)",
                   0.1, self._check_alive)

    def stop(self, timeout_s: float = 20) -> int:
        """SIGTERM by PID; returns the exit status (Java exits 143 on SIGTERM)."""
        assert self._proc is not None
        code = _terminate(self._proc, signal.SIGTERM, timeout_s)
        wait_until(lambda: not tcp_accepts("127.0.0.1", self.port), 10, "ZooKeeper port to close")
        return code

    def kill(self) -> int:
        assert self._proc is not None
        return _terminate(self._proc, signal.SIGKILL, 10)

    def restart(self) -> None:
        if self.running():
            self.stop()
        self.start()

    def client(self, chroot: str = "", timeout_s: float = 10):
        """A started kazoo client (the caller stops it); `chroot` like "/sluice"."""
        from kazoo.client import KazooClient
        zk = KazooClient(hosts=self.connect + chroot, timeout=timeout_s)
        zk.start(timeout=timeout_s)
        return zk


class Broker:
    """One Sluice broker process with its own config file, log dir and stderr capture.

    The TCP port, log dir and ZooKeeper chroot are fixed at construction, so `restart()`
    brings back the same broker (same data, same address).
    """

    def __init__(self, workdir: Path, zk: ZooKeeper, broker_id: int = 0, chroot: str = "/sluice",
                 port: Optional[int] = None, overrides: Optional[dict] = None,
                 properties: Optional[dict] = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.zk = zk
        self.broker_id = broker_id
        self.chroot = chroot
        self.port = port or free_port()
        self.log_dir = self.workdir / "data"
        self.config_path = self.workdir / "server.properties"
        self.stderr_path = self.workdir / "sluice.stderr.log"
        self.properties = {
            "broker.id": str(broker_id),
            "log.dirs": str(self.log_dir),
            "zookeeper.connect": f"{zk.connect}{chroot}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "offsets.topic.replication.factor": "1",
            "num.partitions": "1",
        }
        self.properties.update(properties or {})
        # Short ZooKeeper sessions keep restart-after-kill tests fast (the broker waits for
        # its old ephemeral registration to expire); 2 reactors match the CI machine.
        self.overrides = {"zookeeper.session.timeout.ms": "6000", "reactor.threads": "2"}
        # SLUICE_TEST_OVERRIDES="k=v,k=v" runs every broker of a test run with extra
        # settings (e.g. log.append.strategy=direct); a test's own overrides win.
        for item in filter(None, os.environ.get("SLUICE_TEST_OVERRIDES", "").split(",")):
            key, _, value = item.partition("=")
            self.overrides[key.strip()] = value.strip()
        self.overrides.update(overrides or {})
        self._proc: Optional[subprocess.Popen] = None
        self.exit_codes: list[int] = []

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def write_config(self) -> None:
        text = "".join(f"{k}={v}\n" for k, v in self.properties.items())
        self.config_path.write_text("# written by tests/integration/sluice_harness.py\n" + text)

    def argv(self) -> list[str]:
        args = [str(sluice_binary()), str(self.config_path)]
        for key, value in self.overrides.items():
            args += ["--override", f"{key}={value}"]
        return args

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _check_alive(self) -> None:
        if not self.running():
            code = self._proc.returncode if self._proc else None
            raise HarnessError(f"broker {self.broker_id} exited with status {code} before it was ready:\n"
                               f"{tail(self.stderr_path, 60)}")

    def start(self, wait: bool = True, timeout_s: float = 30) -> None:
        assert not self.running(), "broker already running"
        self.write_config()
        self._proc = _spawn(self.argv(), self.stderr_path, cwd=self.workdir)
        if wait:
            self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float = 30) -> None:
        """Port accepts, then a Metadata round trip through librdkafka lists this broker
        and a controller (so topic auto-creation and admin requests can work)."""
        deadline = time.monotonic() + timeout_s
        wait_until(lambda: tcp_accepts("127.0.0.1", self.port), timeout_s,
                   f"broker {self.broker_id} to accept on {self.bootstrap}", 0.05, self._check_alive)
        wait_until(self._metadata_ready, max(1.0, deadline - time.monotonic()),
                   f"broker {self.broker_id} to answer Metadata with itself and a controller",
                   0.1, self._check_alive)

    def _metadata_ready(self) -> bool:
        md = self.metadata(timeout_s=2)
        return self.broker_id in md.brokers and md.controller_id >= 0

    def admin(self, **conf):
        from confluent_kafka.admin import AdminClient
        base = {"bootstrap.servers": self.bootstrap, "log_level": 0, "socket.timeout.ms": 5000}
        base.update(conf)
        return AdminClient(base)

    def metadata(self, topic: Optional[str] = None, timeout_s: float = 10):
        return self.admin().list_topics(topic=topic, timeout=timeout_s)

    def stop(self, timeout_s: float = 30, sig: int = signal.SIGTERM) -> int:
        """`sig` (SIGTERM or SIGINT) by PID, wait for exit; returns the exit status
        (0 is a clean shutdown). A broker still running after `timeout_s` is SIGKILLed
        and the call fails."""
        assert self._proc is not None, "broker never started"
        code = _terminate(self._proc, sig, timeout_s)
        self.exit_codes.append(code)
        return code

    def kill9(self) -> int:
        assert self._proc is not None, "broker never started"
        code = _terminate(self._proc, signal.SIGKILL, 10)
        self.exit_codes.append(code)
        return code

    def signal(self, sig: int) -> None:
        """Sends `sig` (e.g. SIGSTOP/SIGCONT) to this broker's PID."""
        assert self.running(), "broker not running"
        os.kill(self._proc.pid, sig)

    def restart(self, timeout_s: float = 30) -> None:
        if self.running():
            code = self.stop()
            assert code == 0, f"broker exited with status {code} on SIGTERM"
        self.start(timeout_s=timeout_s)


def run_broker_once(workdir: Path, properties: dict, overrides: Iterable[str] = (),
                    timeout_s: float = 15) -> subprocess.CompletedProcess:
    """Runs the broker with exactly these properties (no defaults added) and waits for it
    to exit by itself -- for configuration errors, which must exit before serving."""
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "server.properties"
    cfg.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
    argv = [str(sluice_binary()), str(cfg)]
    for o in overrides:
        argv += ["--override", o]
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, cwd=workdir)
