"""Authentication and TLS (docs/security.md), end to end: a real anvil node, the
real server with API keys and certificates, and real clients — pyarrow.flight
(header auth and the Basic handshake), the `sluice` Python package, the `sluice
query` CLI, and the standard library's HTTP(S) client.

The truth for answers is the node's own JSON-RPC; for refusals, a refusal must
say the same whether the credential was missing or wrong."""
from __future__ import annotations

import base64
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow.flight as flight
import pytest

from sluice_harness import ROOT, SLUICE, Anvil, Server, rpc

sys.path.insert(0, str(ROOT / "python"))
import sluice  # noqa: E402

KEY = "sk-test-0123456789abcdef"        # configured (config file)
KEY_ENV = "sk-env-fedcba9876543210"     # configured (SLUICE_API_KEYS)
KEY_FILE = "sk-file-5555aaaa5555aaaa"   # configured (api_keys_file)
WRONG = "sk-test-0123456789abcdeX"      # one character off

REFUSAL = "authentication required"     # common::kUnauthenticatedMessage starts so
BLOCKS_SQL = "SELECT block_num, hash FROM eth_rpc.blocks ORDER BY block_num"


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

class SecureServer(Server):
    """A server reached as `localhost`, the name in the test certificate (the
    harness reads each endpoint's scheme: grpc+tls://, https://)."""

    host = "localhost"


def bearer(credential: str) -> list:
    return [(b"authorization", b"Bearer " + credential.encode())]


def flight_query(client: flight.FlightClient, sql: str, headers=()):
    options = flight.FlightCallOptions(headers=list(headers))
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), options)
    return client.do_get(info.endpoints[0].ticket, options).read_all()


def node_blocks(node: Anvil) -> list:
    """[(number, hash hex)] of every block of the node, from its JSON-RPC."""
    head = node.head()
    return [(n, rpc(node.url, "eth_getBlockByNumber", [hex(n), False])["hash"])
            for n in range(head + 1)]


def as_blocks(table) -> list:
    return [(r["block_num"], "0x" + r["hash"].hex()) for r in table.to_pylist()]


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         context: ssl.SSLContext | None = None):
    """One request: (status, headers, body bytes); HTTP errors are answers too."""
    req = urllib.request.Request(url, body, headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60, context=context) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def wait_stored(srv: Server, head: int, headers, client=None) -> None:
    import time
    client = client or flight.connect(srv.location)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        t = flight_query(client, "SELECT max(block_num) AS m FROM eth_rpc.blocks", headers)
        if (t.column("m")[0].as_py() or -1) >= head:
            return
        time.sleep(0.1)
    raise TimeoutError(f"block {head} not stored")


def flight_refusal(call) -> str:
    """Run `call`, which must be refused UNAUTHENTICATED; return the message."""
    with pytest.raises(flight.FlightUnauthenticatedError) as e:
        call()
    return str(e.value).split(". Detail:")[0]


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = Anvil(tmp_path_factory.mktemp("sec-chain"))
    n.mine(5)
    yield n
    n.stop()


@pytest.fixture(scope="module")
def keyed(node, tmp_path_factory):
    """A server with three API keys, one from each source, logging at trace level
    (so that the log check below sees every line the server can write)."""
    tmp = tmp_path_factory.mktemp("sec-keyed")
    config = tmp / "config.toml"
    config.write_text(f'api_keys = ["{KEY}"]\n')
    key_file = tmp / "keys.txt"
    key_file.write_text(f"# one key per line\n\n  {KEY_FILE}  \n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLUICE_API_KEYS", f" {KEY_ENV} ,")
        mp.setenv("SLUICE_TEST_LOG_LEVEL", "trace")
        srv = SecureServer(tmp / "data", node.url, "--config", str(config),
                           "--api-keys-file", str(key_file))
    wait_stored(srv, node.head(), bearer(KEY))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """A self-signed certificate for localhost and 127.0.0.1, made by openssl now:
    (certificate path, key path)."""
    tmp = tmp_path_factory.mktemp("sec-cert")
    crt, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(crt), "-days", "1", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return crt, key


@pytest.fixture(scope="module")
def tls_server(node, cert, tmp_path_factory):
    """A server with TLS on every endpoint, and an API key."""
    tmp = tmp_path_factory.mktemp("sec-tls")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLUICE_API_KEYS", KEY)
        srv = SecureServer(tmp / "data", node.url, "--tls-cert-file", str(cert[0]),
                           "--tls-key-file", str(cert[1]))
    yield srv
    srv.stop()


# ---------------------------------------------------------------------------
# Flight: keys, tokens, refusals
# ---------------------------------------------------------------------------

def test_flight_answers_with_any_configured_key(keyed, node):
    truth = node_blocks(node)
    client = flight.connect(keyed.location)
    for key in (KEY, KEY_ENV, KEY_FILE):
        assert as_blocks(flight_query(client, BLOCKS_SQL, bearer(key))) == truth


def test_flight_refuses_missing_and_wrong_credentials_alike(keyed):
    client = flight.connect(keyed.location)
    descriptor = flight.FlightDescriptor.for_command(BLOCKS_SQL.encode())
    messages = set()
    for headers in ([], bearer(WRONG), bearer(""), [(b"authorization", b"Token " + KEY.encode())],
                    [(b"x-api-key", KEY.encode())], bearer(KEY[:-1]), bearer(KEY + KEY),
                    bearer("sluice1.0000000000000000.0000000000000000." + "0" * 64)):
        options = flight.FlightCallOptions(headers=headers)
        messages.add(flight_refusal(lambda: client.get_flight_info(descriptor, options)))
    assert len(messages) == 1, messages  # no hint of what was wrong
    assert REFUSAL in messages.pop()


def test_every_flight_call_needs_a_credential(keyed):
    client = flight.connect(keyed.location)
    descriptor = flight.FlightDescriptor.for_command(BLOCKS_SQL.encode())
    info = client.get_flight_info(descriptor, flight.FlightCallOptions(headers=bearer(KEY)))
    ticket = info.endpoints[0].ticket  # genuine, but worth nothing without a key
    none = flight.FlightCallOptions()
    flight_refusal(lambda: client.do_get(ticket, none).read_all())
    flight_refusal(lambda: client.do_get(ticket, flight.FlightCallOptions(
        headers=bearer(WRONG))).read_all())
    # (pyarrow raises a plain OSError for GetSchema; the status is the same.)
    with pytest.raises(OSError, match=REFUSAL + ".*Detail: Unauthenticated"):
        client.get_schema(descriptor, none)
    flight_refusal(lambda: list(client.list_flights(options=none)))
    flight_refusal(lambda: list(client.list_actions(none)))
    flight_refusal(lambda: list(client.do_action(flight.Action("x", b""), none)))
    # The same ticket with the key: the server still serves.
    rows = client.do_get(ticket, flight.FlightCallOptions(headers=bearer(KEY))).read_all()
    assert rows.num_rows > 0


def test_basic_handshake_answers_a_bearer_token(keyed, node):
    client = flight.connect(keyed.location)
    name, value = client.authenticate_basic_token(b"", KEY.encode())
    assert name == b"authorization" and value.startswith(b"Bearer ")
    token = value[len(b"Bearer "):].decode()
    assert KEY not in token and token.startswith("sluice1.")
    # The token on every later call (what pyarrow's docs show), on a new connection too.
    assert as_blocks(flight_query(client, BLOCKS_SQL, [(name, value)])) == node_blocks(node)
    other = flight.connect(keyed.location)
    assert flight_query(other, "SELECT 42 AS x", bearer(token)).column("x")[0].as_py() == 42
    # Over HTTP too.
    status, _, body = http("POST", keyed.jsonl_url + "/", b"SELECT 7 AS x",
                           {"Authorization": f"Bearer {token}"})
    assert status == 200 and json.loads(body) == {"x": 7}
    # A user name is ignored; a token from a handshake with a bearer key works alike.
    _, value2 = client.authenticate_basic_token(b"anyone", KEY_ENV.encode())
    assert flight_query(client, "SELECT 1 AS x", [(b"authorization", value2)]).num_rows == 1


def test_tampered_or_foreign_tokens_are_refused(keyed):
    client = flight.connect(keyed.location)
    _, value = client.authenticate_basic_token(b"", KEY.encode())
    token = value[len(b"Bearer "):].decode()
    _, exp, kid, mac = token.split(".")
    assert exp == "0" * 16  # auth_token_ttl_secs = 0 (default): valid while the key is
    later = f"{int(exp, 16) + 10**9:016x}"
    descriptor = flight.FlightDescriptor.for_command(b"SELECT 1")
    for forged in (f"sluice1.{later}.{kid}.{mac}",                        # an expiry added
                   f"sluice1.{exp}.{'0' * 16}.{mac}",                      # another key id
                   f"sluice1.{exp}.{kid}.{mac[:-1]}{'0' if mac[-1] != '0' else '1'}",
                   f"sluice1.{'0' * 15}1.{kid}.{mac}"):                    # expired in 1970
        options = flight.FlightCallOptions(headers=bearer(forged))
        flight_refusal(lambda: client.get_flight_info(descriptor, options))


def test_basic_handshake_with_a_wrong_key_is_refused(keyed):
    client = flight.connect(keyed.location)
    msg_wrong = flight_refusal(lambda: client.authenticate_basic_token(b"", WRONG.encode()))
    msg_empty = flight_refusal(lambda: client.authenticate_basic_token(b"", b""))
    assert msg_wrong == msg_empty and REFUSAL in msg_wrong


def test_seed_client_with_api_key(keyed, node):
    # seed 000: client = Client(os.environ["API_KEY"]); client.query(sql).read_pandas()
    with sluice.Client(KEY, flight_url=keyed.location) as client:
        df = client.query(BLOCKS_SQL).read_pandas()
        assert [(n, "0x" + h.hex()) for n, h in zip(df["block_num"], df["hash"])] == \
            node_blocks(node)
        reader = client.query("SELECT block_num FROM eth_rpc.blocks ORDER BY block_num")
        chunks = []
        while True:
            try:
                chunks.append(reader.read_chunk().data)
            except StopIteration:
                break
        assert sum(c.num_rows for c in chunks) == node.head() + 1
    with sluice.Client(WRONG, flight_url=keyed.location) as client:
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.query_table("SELECT 1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLUICE_API_KEY", KEY_FILE)  # the key from the environment
        with sluice.Client(flight_url=keyed.location) as client:
            assert client.query_table("SELECT 3 AS x").column("x")[0].as_py() == 3
        mp.delenv("SLUICE_API_KEY")
        with sluice.Client(flight_url=keyed.location) as client:
            with pytest.raises(flight.FlightUnauthenticatedError):
                client.query_table("SELECT 1")


def test_cli_query_with_api_key(keyed):
    args = [str(SLUICE), "query", "-s", keyed.location, "-f", "csv", "SELECT 5 AS x"]
    env = {k: v for k, v in os.environ.items() if k != "SLUICE_API_KEY"}
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 1 and REFUSAL in out.stderr and out.stdout == ""
    out = subprocess.run(args + ["--api-key", KEY], capture_output=True, text=True, timeout=60,
                         env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['"x"', "5"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60,
                         env={**env, "SLUICE_API_KEY": KEY_ENV})
    assert out.returncode == 0 and out.stdout.split() == ['"x"', "5"], out.stderr


# ---------------------------------------------------------------------------
# HTTP: JSON Lines and the admin API
# ---------------------------------------------------------------------------

def test_jsonl_needs_a_key(keyed, node):
    url = keyed.jsonl_url + "/"
    sql = BLOCKS_SQL.encode()
    refusals = []
    for headers in ({}, {"Authorization": f"Bearer {WRONG}"}, {"X-API-Key": WRONG},
                    {"Authorization": f"Basic {KEY}"}, {"X-API-Key": ""}):
        status, resp_headers, body = http("POST", url, sql, headers)
        assert status == 401, (headers, status, body)
        assert resp_headers["WWW-Authenticate"] == "Bearer"
        refusals.append(body)
    assert len(set(refusals)) == 1  # the same body, whatever was wrong
    assert json.loads(refusals[0]) == {"error_code": "UNAUTHENTICATED",
                                       "error_message": json.loads(refusals[0])["error_message"]}
    assert REFUSAL in json.loads(refusals[0])["error_message"]
    truth = node_blocks(node)
    for headers in ({"Authorization": f"Bearer {KEY}"}, {"authorization": f"bearer {KEY_ENV}"},
                    {"X-API-Key": KEY_FILE},
                    {"Authorization": "Basic " + base64.b64encode(f":{KEY}".encode()).decode()}):
        status, _, body = http("POST", url, sql, headers)
        assert status == 200, (headers, body)
        rows = [json.loads(line) for line in body.decode().splitlines()]
        assert [(r["block_num"], r["hash"]) for r in rows] == truth
    # Probes need no key.
    assert http("GET", keyed.jsonl_url + "/health")[0] == 200


def test_admin_api_needs_a_key_except_probes(keyed):
    base = keyed.admin_url
    assert http("GET", base + "/health")[0] == 200
    status, _, body = http("GET", base + "/ready")
    assert status in (200, 503)
    if status == 503:
        assert "reason" not in json.loads(body)  # not without a key
    for path in ("/metrics", "/datasets", "/streams", "/"):
        status, headers, body = http("GET", base + path)
        assert status == 401 and json.loads(body)["error_code"] == "UNAUTHENTICATED", path
        status, _, body = http("GET", base + path, headers={"X-API-Key": WRONG})
        assert status == 401, path
        status, _, body = http("GET", base + path, headers={"X-API-Key": KEY})
        assert status == 200, (path, body)
        status, _, _ = http("GET", base + path, headers={"Authorization": f"Bearer {KEY_ENV}"})
        assert status == 200, path
    client = flight.connect(keyed.location)
    flight_refusal(lambda: list(client.list_actions()))
    _, _, text = http("GET", base + "/metrics", headers={"X-API-Key": KEY})
    failures = {m.group(1): float(m.group(2)) for m in re.finditer(
        r'sluice_auth_failures_total\{endpoint="(\w+)"\} (\S+)', text.decode())}
    assert failures["admin"] >= 8 and failures["flight"] >= 1, failures


def test_ready_says_why_only_with_a_key(tmp_path):
    dead = "http://127.0.0.1:1"  # nothing listens: the server is up, not ready
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLUICE_API_KEYS", KEY)
        srv = SecureServer(tmp_path / "data", dead)
    try:
        def ready(headers=None):
            status, _, body = http("GET", srv.admin_url + "/ready", headers=headers)
            return status, json.loads(body)
        import time
        deadline = time.monotonic() + 30
        while ready({"X-API-Key": KEY})[0] != 503 and time.monotonic() < deadline:
            time.sleep(0.1)
        status, body = ready({"X-API-Key": KEY})
        assert status == 503 and "reason" in body and body["status"] == "not_ready"
        assert ready() == (503, {"status": "not_ready"})  # a probe: no reason
        assert ready({"X-API-Key": WRONG}) == (503, {"status": "not_ready"})
    finally:
        srv.stop()


def test_keys_and_tokens_are_never_logged(keyed):
    # Refusals and answers of every kind happened above (the module's tests run
    # in order); make a few more, then read everything the server wrote.
    client = flight.connect(keyed.location)
    _, token = client.authenticate_basic_token(b"", KEY.encode())
    for credential in (WRONG, KEY):
        try:
            flight_query(client, "SELECT 1", bearer(credential))
        except flight.FlightUnauthenticatedError:
            pass
        http("POST", keyed.jsonl_url + "/", b"SELECT 1", {"X-API-Key": credential})
    log = keyed.log_text()
    assert "refused unauthenticated" in log  # the refusals are logged (trace level) …
    for secret in (KEY, KEY_ENV, KEY_FILE, WRONG, token.decode()[len("Bearer "):]):
        assert secret not in log  # … without any credential
        assert base64.b64encode(f":{secret}".encode()).decode() not in log


def test_bad_key_configuration_is_refused_without_echoing_it(node, tmp_path):
    short = "tooshort"
    env = {**os.environ, "SLUICE_API_KEYS": f"{KEY},{short}"}
    out = subprocess.run([str(SLUICE), "serve", "--rpc-url", node.url, "--data-dir",
                          str(tmp_path / "d"), "--flight-addr", "127.0.0.1:0"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 1
    assert "API key #2" in out.stderr and short not in out.stderr + out.stdout
    out = subprocess.run([str(SLUICE), "serve", "--rpc-url", node.url, "--data-dir",
                          str(tmp_path / "d"), "--api-keys-file", str(tmp_path / "missing")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "api_keys_file" in out.stderr
    out = subprocess.run([str(SLUICE), "serve", "--rpc-url", node.url, "--data-dir",
                          str(tmp_path / "d"), "--tls-cert-file", str(tmp_path / "c.pem")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "tls_key_file" in out.stderr


def test_without_keys_nothing_is_checked(node, tmp_path):
    env_free = {k: v for k, v in os.environ.items() if k != "SLUICE_API_KEYS"}
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SLUICE_API_KEYS", raising=False)
        srv = SecureServer(tmp_path / "data", node.url)
    try:
        assert env_free is not None
        client = flight.connect(srv.location)
        assert flight_query(client, "SELECT 1 AS x").num_rows == 1
        assert flight_query(client, "SELECT 1 AS x", bearer(WRONG)).num_rows == 1  # ignored
        assert http("GET", srv.admin_url + "/metrics")[0] == 200
    finally:
        srv.stop()


# ---------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------

def test_flight_over_tls(tls_server, cert, node):
    assert tls_server.schemes == {"flight": "grpc+tls", "jsonl": "https", "admin": "https"}
    root = cert[0].read_bytes()
    client = flight.connect(tls_server.location, tls_root_certs=root)
    wait_stored(tls_server, node.head(), bearer(KEY), client)
    assert as_blocks(flight_query(client, BLOCKS_SQL, bearer(KEY))) == node_blocks(node)
    flight_refusal(lambda: flight_query(client, "SELECT 1"))  # TLS is not a credential
    # The Python package and the CLI, with the CA file.
    with sluice.Client(KEY, flight_url=tls_server.location, tls_root_certs=cert[0]) as c:
        assert c.query_table("SELECT 9 AS x").column("x")[0].as_py() == 9
    out = subprocess.run([str(SLUICE), "query", "-s", tls_server.location, "--tls-root-certs",
                          str(cert[0]), "--api-key", KEY, "-f", "csv", "SELECT 9 AS x"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.split() == ['"x"', "9"], out.stderr


def test_flight_tls_refuses_plaintext_and_untrusted_clients(tls_server, cert):
    plain = flight.connect(f"grpc://localhost:{tls_server.port}")
    with pytest.raises(flight.FlightUnavailableError):
        flight_query(plain, "SELECT 1", bearer(KEY))
    untrusted = flight.connect(tls_server.location)  # the system's CAs only
    with pytest.raises(flight.FlightUnavailableError):
        flight_query(untrusted, "SELECT 1", bearer(KEY))
    # The server is still up and serving.
    client = flight.connect(tls_server.location, tls_root_certs=cert[0].read_bytes())
    assert flight_query(client, "SELECT 2 AS x", bearer(KEY)).column("x")[0].as_py() == 2


def test_https_endpoints(tls_server, cert, node):
    ctx = ssl.create_default_context(cafile=str(cert[0]))
    status, _, body = http("GET", tls_server.admin_url + "/health", context=ctx)
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, _, body = http("POST", tls_server.jsonl_url + "/", b"SELECT 11 AS x",
                           {"X-API-Key": KEY}, context=ctx)
    assert status == 200 and json.loads(body) == {"x": 11}
    status, _, body = http("POST", tls_server.jsonl_url + "/", b"SELECT 11 AS x", context=ctx)
    assert status == 401
    # Plain HTTP to the HTTPS port gets no answer; an untrusted certificate fails
    # the handshake; the server serves on.
    for port in (tls_server.jsonl_port, tls_server.admin_port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            try:
                answer = s.recv(4096)
            except (ConnectionResetError, socket.timeout):
                answer = b""
            assert not answer.startswith(b"HTTP/1.1 200")
    with pytest.raises(urllib.error.URLError) as e:
        http("GET", tls_server.admin_url + "/health", context=ssl.create_default_context())
    assert isinstance(e.value.reason, ssl.SSLError)
    assert http("GET", tls_server.admin_url + "/health", context=ctx)[0] == 200


def test_tls_with_bad_files_is_refused_naming_them(node, tmp_path, cert):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    other_key = tmp_path / "other-key.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-out", str(other_key)],
                   check=True, capture_output=True, timeout=60)
    for cert_file, key_file, says in ((bad, cert[1], "holds no PEM certificate"),
                                      (cert[0], bad, "holds no unencrypted PEM private key"),
                                      (cert[0], other_key, "does not belong to the certificate")):
        out = subprocess.run([str(SLUICE), "serve", "--rpc-url", node.url, "--data-dir",
                              str(tmp_path / "d"), "--flight-addr", "127.0.0.1:0",
                              "--jsonl-addr", "127.0.0.1:0", "--admin-api-addr", "127.0.0.1:0",
                              "--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and out.stdout == "", out.stdout
        assert out.stderr.startswith("sluice serve:") and says in out.stderr, out.stderr
