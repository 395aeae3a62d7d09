#!/usr/bin/python3
"""Smoke test of `sluice-loadgen --tls` against a real broker's SSL listener (meson suite
'bench'; a few seconds).

ZooKeeper and the broker come from tests/integration's harness; the broker serves
PLAINTEXT and SSL (a self-signed P-256 certificate made with the openssl CLI), with
fetch.send.strategy=buffered. Through the SSL port, verifying the certificate with --ca:
produce 24 MiB, fetch it back streamed and with every CRC checked; through the PLAINTEXT
port, fetch the same bytes. Every figure must agree, and the JSON must name the suite.
Exit 0 on success, 1 with the reason on stderr otherwise.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "integration"))
import sluice_harness as h  # noqa: E402

TOPIC = "tls-smoke"


def loadgen(*args: str) -> dict:
    binary = h.build_dir() / "bench" / "sluice-loadgen"
    proc = subprocess.run([str(binary), "--timeout", "60", "--io-timeout-ms", "10000", *args],
                          capture_output=True, text=True, timeout=90)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"sluice-loadgen {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return json.loads(lines[-1])


def make_keystore(d: Path) -> tuple[Path, Path]:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "1", "-subj", "/CN=sluice-bench-smoke", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(d / "server.key"),
                    "-out", str(d / "server.pem")], check=True, capture_output=True, timeout=60)
    keystore = d / "keystore.pem"
    keystore.write_text((d / "server.key").read_text() + (d / "server.pem").read_text())
    return keystore, d / "server.pem"


def check(cond: bool, what: str, record: dict) -> None:
    if not cond:
        raise AssertionError(f"{what}: {json.dumps(record)}")


def run(work: Path) -> None:
    keystore, ca = make_keystore(work)
    zk = h.ZooKeeper(work / "zk")
    zk.workdir.mkdir(parents=True, exist_ok=True)
    zk.start()
    broker = None
    try:
        ssl_port = h.free_port()
        broker = h.Broker(work / "broker", zk, chroot="/bench-tls-smoke",
                          properties={"ssl.keystore.type": "PEM", "ssl.keystore.location": str(keystore)},
                          overrides={"fetch.send.strategy": "buffered"})
        broker.properties["listeners"] = f"PLAINTEXT://127.0.0.1:{broker.port},SSL://127.0.0.1:{ssl_port}"
        broker.start()
        tls = ["--tls", "--ca", str(ca), "--bootstrap", f"127.0.0.1:{ssl_port}", "--topic", TOPIC]
        pid = ["--broker-pid", str(broker.pid)]
        produced = loadgen("--mode", "produce", *tls, *pid, "--partitions", "2", "--record-size", "1000",
                           "--batch-bytes", "256k", "--pipeline", "4", "--bytes", "24m")
        check(produced["complete"] and produced["bytes"] >= 24 << 20, "produce over TLS", produced)
        check(produced.get("tls_cipher", "").startswith("TLSv1."), "produce names the TLS suite", produced)
        streamed = loadgen("--mode", "fetch", *tls, *pid)
        verified = loadgen("--mode", "fetch", *tls, "--verify-crc")
        plain = loadgen("--mode", "fetch", "--bootstrap", broker.bootstrap, "--topic", TOPIC)
        for name, r in (("streamed TLS fetch", streamed), ("CRC-checked TLS fetch", verified),
                        ("plaintext fetch", plain)):
            check(r["complete"] and r["error_responses"] == 0, name, r)
            check(r["bytes"] == produced["bytes"] and r["records"] == produced["records"],
                  f"{name} reads back every produced byte ({produced['bytes']})", r)
        check(streamed["tls"] and streamed.get("tls_cipher") == produced.get("tls_cipher"), "fetch suite", streamed)
        check(not plain["tls"] and "tls_cipher" not in plain, "plaintext stays plaintext", plain)
        check(streamed.get("broker_cpu_s", 0) > 0, "broker CPU measured", streamed)
        print(f"ok: {produced['bytes']} bytes produced and fetched over {streamed['tls_cipher']}, "
              f"{streamed['gb_s']:.3f} GB/s streamed (unloaded figures come from bench/suite.sh)")
        if broker.stop() != 0:
            raise AssertionError(f"broker exited uncleanly:\n{broker.stderr_text()[-3000:]}")
    except BaseException:
        if broker is not None:
            sys.stderr.write(f"broker stderr (tail):\n{broker.stderr_text()[-3000:]}\n")
        raise
    finally:
        if broker is not None and broker.running():
            broker.kill9()
        if zk.running():
            zk.stop()


def main() -> int:
    h.install_signal_cleanup()
    with tempfile.TemporaryDirectory(prefix="sluice-bench-tls-") as d:
        try:
            run(Path(d))
        except (AssertionError, subprocess.SubprocessError) as e:
            sys.stderr.write(f"FAIL: {e}\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
