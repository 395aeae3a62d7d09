"""TLS listeners (SSL://) configured the Kafka way, driven by real clients over TLS.

Key material is made per module with the `openssl` CLI: a CA, a server certificate for
127.0.0.1/localhost, a client certificate, and the stores Kafka users hand a broker (a PEM
keystore with key + chain, an encrypted PKCS#8 key, a PKCS12 keystore). Every broker here
serves PLAINTEXT and SSL side by side; the clients verify the server against the CA.
"""

from __future__ import annotations

import json
import random
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

import clients as c
import kwire
import sluice_harness as h

JS_DIR = Path(__file__).resolve().parent / "js"
KEY_PASSWORD = "k3y-pass"
P12_PASSWORD = "p12-pass"


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=60)
    assert proc.returncode == 0, f"openssl {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}"


class Pki:
    def __init__(self, d: Path):
        self.dir = d
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                 "-subj", "/CN=sluice-itest-ca", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
        (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        for name in ("server", "client", "other"):
            _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
            _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                     "-out", f"{name}.pem", "-days", "2", "-extfile", "san.cnf", cwd=d)
        # Kafka's PEM keystore: the private key and the certificate chain in one file.
        self.keystore = d / "server.keystore.pem"
        self.keystore.write_text((d / "server.key").read_text() + (d / "server.pem").read_text() +
                                 (d / "ca.pem").read_text())
        _openssl("pkcs8", "-topk8", "-in", "server.key", "-out", "server.enc.key", "-v2", "aes-256-cbc",
                 "-passout", f"pass:{KEY_PASSWORD}", cwd=d)
        self.encrypted_keystore = d / "server.enc.keystore.pem"
        self.encrypted_keystore.write_text((d / "server.enc.key").read_text() + (d / "server.pem").read_text())
        _openssl("pkcs12", "-export", "-in", "server.pem", "-inkey", "server.key", "-certfile", "ca.pem",
                 "-out", "server.p12", "-passout", f"pass:{P12_PASSWORD}", cwd=d)
        # A keystore whose key belongs to another certificate.
        self.mismatched = d / "mismatched.pem"
        self.mismatched.write_text((d / "other.key").read_text() + (d / "server.pem").read_text())
        self.ca = d / "ca.pem"
        self.client_cert = d / "client.pem"
        self.client_key = d / "client.key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def _ssl_broker(make_broker, pki: Pki, overrides=None, extra=None):
    """A started broker with PLAINTEXT (broker.port) and SSL listeners; returns (broker, ssl_port)."""
    port, ssl_port = h.free_port(), h.free_port()
    props = {"listeners": f"PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{ssl_port}",
             "ssl.keystore.type": "PEM", "ssl.keystore.location": str(pki.keystore)}
    props.update(extra or {})
    b = make_broker(port=port, properties=props, overrides=overrides)
    b.start()
    return b, ssl_port


def _ck_ssl(pki: Pki) -> dict:
    return {"security.protocol": "ssl", "ssl.ca.location": str(pki.ca)}


def _kcat(*args: str, timeout: float = 120, stdout=None) -> subprocess.CompletedProcess:
    return subprocess.run(["kcat", *args], capture_output=stdout is None, stdout=stdout,
                          stderr=subprocess.PIPE if stdout is not None else None, timeout=timeout)


def test_kcat_over_ssl_10k_records_byte_for_byte_and_metadata_names_the_ssl_endpoint(make_broker, pki, tmp_path):
    b, ssl_port = _ssl_broker(make_broker, pki)
    tls = ["-b", f"127.0.0.1:{ssl_port}", "-X", "security.protocol=ssl", "-X", f"ssl.ca.location={pki.ca}"]

    md = _kcat("-L", "-J", *tls, timeout=60)
    assert md.returncode == 0, md.stderr.decode(errors="replace")
    brokers = json.loads(md.stdout)["brokers"]
    assert [x["name"] for x in brokers] == [f"127.0.0.1:{ssl_port}"], "Metadata over SSL must advertise the SSL endpoint"
    plain_md = json.loads(_kcat("-L", "-J", "-b", b.bootstrap, timeout=60).stdout)
    assert [x["name"] for x in plain_md["brokers"]] == [b.bootstrap]

    rnd = random.Random(443)
    delim, kdelim = b"\x1e\x1d\x1c\x1b", b"\x1f\x17"
    records = []
    for i in range(10_000):
        value = rnd.randbytes(900 * 1024) if i == 5000 else rnd.randbytes(rnd.randint(0, 300))
        while delim in value:
            value = value.replace(delim, b"")
        records.append((f"key-{i}".encode(), value))
    src = tmp_path / "in.bin"
    src.write_bytes(b"".join(k + kdelim + v + delim for k, v in records))
    esc = lambda d: "".join(f"\\x{x:02x}" for x in d)
    prod = _kcat("-P", *tls, "-t", "tls-kcat", "-p", "0", "-D", esc(delim), "-K", esc(kdelim), "-l", str(src),
                 "-X", "linger.ms=20", timeout=120)
    assert prod.returncode == 0, prod.stderr.decode(errors="replace")

    out = tmp_path / "out.bin"
    with open(out, "wb") as f:
        cons = _kcat("-C", *tls, "-t", "tls-kcat", "-p", "0", "-o", "beginning", "-e", "-f", "%o %K %S\\n%k%s\\n",
                     stdout=f, timeout=120)
    assert cons.returncode == 0, cons.stderr.decode(errors="replace")
    raw, pos, got = out.read_bytes(), 0, []
    while pos < len(raw):
        nl = raw.index(b"\n", pos)
        off, klen, vlen = (int(x) for x in raw[pos:nl].split())
        pos = nl + 1
        key, value = raw[pos:pos + klen], raw[pos + klen:pos + klen + max(vlen, 0)]
        pos += klen + max(vlen, 0) + 1
        got.append((off, key, value))
    assert [g[0] for g in got] == list(range(len(records)))
    for (off, key, value), (k, v) in zip(got, records):
        assert key == k and value == v, f"offset {off}: record differs ({len(value)} bytes read, {len(v)} sent)"


@pytest.mark.parametrize("strategy", ["splice", "mmap_copy", "buffered"])
def test_confluent_over_ssl_with_every_fetch_send_strategy(make_broker, pki, strategy):
    b, ssl_port = _ssl_broker(make_broker, pki, overrides={"fetch.send.strategy": strategy})
    topic = f"tls-ck-{strategy}"
    records = c.make_records(3000, seed=len(strategy), big_every=500, big_sizes=[700 * 1024, 64 * 1024])
    ssl_bootstrap = f"127.0.0.1:{ssl_port}"
    positions = c.ck_produce(ssl_bootstrap, topic, records, conf=_ck_ssl(pki), partition=0)
    got = c.ck_consume(ssl_bootstrap, topic, {0: len(records)}, conf=_ck_ssl(pki))
    c.verify(records, positions, got)
    # The same bytes over the PLAINTEXT listener of the same broker.
    c.verify(records, positions, c.ck_consume(b.bootstrap, topic, {0: len(records)}))


def test_kafka_python_over_ssl_with_a_pkcs12_keystore(make_broker, pki):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    b, ssl_port = _ssl_broker(make_broker, pki, extra={
        "ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(pki.dir / "server.p12"),
        "ssl.keystore.password": P12_PASSWORD})
    ssl_bootstrap = f"127.0.0.1:{ssl_port}"
    topic = "tls-kafka-python"
    c.ck_produce(b.bootstrap, topic, [c.Rec(b"seed", b"seed")], partition=0)  # topic exists
    producer = KafkaProducer(bootstrap_servers=ssl_bootstrap, security_protocol="SSL", ssl_cafile=str(pki.ca),
                             acks="all", api_version_auto_timeout_ms=10000)
    rnd = random.Random(7)
    values = [rnd.randbytes(rnd.randint(0, 5000)) for _ in range(500)]
    futures = [producer.send(topic, key=f"k{i}".encode(), value=v, partition=0) for i, v in enumerate(values)]
    producer.flush(timeout=60)
    offsets = [f.get(timeout=30).offset for f in futures]
    producer.close(timeout=10)
    assert offsets == list(range(1, 501))

    consumer = KafkaConsumer(bootstrap_servers=ssl_bootstrap, security_protocol="SSL", ssl_cafile=str(pki.ca),
                             enable_auto_commit=False, consumer_timeout_ms=20000)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek(TopicPartition(topic, 0), 1)
    got = []
    deadline = time.monotonic() + 60
    while len(got) < 500 and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=1000).values():
            got += [(m.offset, m.key, m.value) for m in batch]
    consumer.close()
    assert [g[0] for g in got] == list(range(1, 501))
    assert [g[2] for g in got] == values
    assert [g[1] for g in got] == [f"k{i}".encode() for i in range(500)]


def test_kafkajs_over_ssl_produce_and_group_consume(make_broker, pki):
    assert (JS_DIR / "node_modules" / "kafkajs").is_dir(), f"kafkajs is not installed: run `npm ci` in {JS_DIR}"
    b, ssl_port = _ssl_broker(make_broker, pki)
    proc = subprocess.run(["node", str(JS_DIR / "tls_roundtrip.js"), f"127.0.0.1:{ssl_port}", "tls-kafkajs",
                           str(pki.ca), "300"], cwd=JS_DIR, capture_output=True, timeout=120)
    assert proc.returncode == 0, f"kafkajs over TLS failed:\n{proc.stderr.decode(errors='replace')[-3000:]}"
    values = json.loads(proc.stdout.decode().strip().splitlines()[-1])["values"]
    assert sorted(values) == sorted(f"tls-{i}" for i in range(300))


def test_mtls_required_on_a_named_listener_with_per_listener_overrides(make_broker, pki):
    port, mtls_port = h.free_port(), h.free_port()
    b = make_broker(port=port, properties={
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CLIENTS://127.0.0.1:{mtls_port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CLIENTS:SSL",
        # The global keystore is wrong on purpose: the per-listener keys must win.
        "ssl.keystore.location": "/nonexistent/ignored.pem",
        "listener.name.clients.ssl.keystore.location": str(pki.encrypted_keystore),
        "listener.name.clients.ssl.key.password": KEY_PASSWORD,
        "listener.name.clients.ssl.truststore.type": "PEM",
        "listener.name.clients.ssl.truststore.location": str(pki.ca),
        "listener.name.clients.ssl.client.auth": "required",
    })
    b.start()
    tls = ["-b", f"127.0.0.1:{mtls_port}", "-X", "security.protocol=ssl", "-X", f"ssl.ca.location={pki.ca}"]
    refused = _kcat("-L", "-J", *tls, "-m", "5", timeout=60)
    assert refused.returncode != 0, "a client without a certificate must be refused"
    with_cert = _kcat("-L", "-J", *tls, "-X", f"ssl.certificate.location={pki.client_cert}",
                      "-X", f"ssl.key.location={pki.client_key}", timeout=60)
    assert with_cert.returncode == 0, with_cert.stderr.decode(errors="replace")
    assert [x["name"] for x in json.loads(with_cert.stdout)["brokers"]] == [f"127.0.0.1:{mtls_port}"]
    failures = [l for l in b.stderr_text().splitlines() if "TLS handshake failed" in l]
    assert failures and all("certificate" in l for l in failures), b.stderr_text()[-3000:]


def test_plaintext_and_garbage_on_the_ssl_port_do_not_hurt_the_broker(make_broker, pki):
    b, ssl_port = _ssl_broker(make_broker, pki)
    # A Kafka request in the clear: no Kafka response, at most a TLS alert, then EOF.
    with kwire.Conn(ssl_port, timeout_s=10) as conn:
        conn.send(kwire.request(kwire.API_API_VERSIONS, 0, 1, b""))
        data = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = conn.sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            data += chunk
        assert data == b"" or data[0] == 0x15, f"expected nothing or a TLS alert, got {data[:16].hex()}"
    for seed in range(20):
        with socket.create_connection(("127.0.0.1", ssl_port), timeout=5) as s:
            junk = random.Random(seed).randbytes(1 + seed * 997)
            try:
                s.sendall(bytes([0x16]) + junk if seed % 2 else junk)
            except (BrokenPipeError, ConnectionResetError):
                pass
    # librdkafka speaking PLAINTEXT to the SSL port fails on its side only.
    bad = _kcat("-L", "-b", f"127.0.0.1:{ssl_port}", "-m", "3", timeout=60)
    assert bad.returncode != 0
    # Python's own TLS stack, then a real client: the broker still serves both listeners.
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    with socket.create_connection(("127.0.0.1", ssl_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(kwire.request(kwire.API_API_VERSIONS, 0, 7, b""))
            size = int.from_bytes(s.recv(4), "big")
            body = b""
            while len(body) < size:
                body += s.recv(size - len(body))
            assert body[:4] == (7).to_bytes(4, "big")
            assert kwire.parse_api_versions_v0(body[4:]).error_code == 0
    assert b.running()
    md = b.metadata()
    assert b.broker_id in md.brokers
    tls_md = b.admin(**_ck_ssl(pki), **{"bootstrap.servers": f"127.0.0.1:{ssl_port}"}).list_topics(timeout=10)
    assert b.broker_id in tls_md.brokers
    assert "TLS handshake failed" in b.stderr_text()


def _config(tmp_path: Path, pki: Pki, **ssl_props) -> dict:
    props = {"broker.id": "0", "log.dirs": str(tmp_path / "data"), "zookeeper.connect": "127.0.0.1:1/sluice",
             "listeners": f"PLAINTEXT://127.0.0.1:{h.free_port()},SSL://127.0.0.1:{h.free_port()}"}
    props.update({k.replace("_", "."): v for k, v in ssl_props.items()})
    return props


@pytest.mark.parametrize("case,key", [
    ("missing", "ssl.keystore.location"),
    ("mismatched", "ssl.keystore.location"),
    ("jks", "ssl.keystore.type"),
    ("no_password", "ssl.key.password"),
    ("sasl", "listeners"),
    ("client_auth", "ssl.client.auth"),
])
def test_bad_tls_config_exits_2_with_one_line_naming_the_key(tmp_path, pki, case, key):
    props = {
        "missing": _config(tmp_path, pki, ssl_keystore_location="/nonexistent/keystore.pem"),
        "mismatched": _config(tmp_path, pki, ssl_keystore_location=str(pki.mismatched)),
        "jks": _config(tmp_path, pki, ssl_keystore_type="JKS", ssl_keystore_location=str(pki.keystore)),
        "no_password": _config(tmp_path, pki, ssl_keystore_location=str(pki.encrypted_keystore)),
        "sasl": dict(_config(tmp_path, pki), listeners=f"SASL_SSL://127.0.0.1:{h.free_port()}"),
        "client_auth": _config(tmp_path, pki, ssl_keystore_location=str(pki.keystore), ssl_client_auth="maybe"),
    }[case]
    proc = h.run_broker_once(tmp_path / "run", props)
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == 2, f"exit status {proc.returncode}; stderr:\n{stderr}"
    naming = [line for line in stderr.splitlines() if key in line]
    assert len(naming) == 1, f"expected one stderr line naming {key!r}:\n{stderr}"
