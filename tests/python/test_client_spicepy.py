"""spicepy 2.0.0, Spice.ai's Python SDK (seed 000 is written for it), installed from
../shared/peers by scripts/install_clients.sh, against a real server and anvil
(docs/clients.md): the seed's code run unchanged, auth on and off, TLS, a client that
handshakes once surviving server restarts while its key is configured, and errors
shown with sluice's message. The truth is pyarrow's answer to the same SQL."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from client_tools import SHARED
from sluice_harness import PYTHON, ROOT, SLUICE, Anvil, Server, free_port, query
from test_security import KEY, REFUSAL, WRONG, SecureServer, bearer, wait_stored

SPICEPY_FILE = SHARED / "peers" / "spicepy-2.0.0-aef0011.tar.gz"
SEED_000 = next((SHARED / "seeds").glob("000_*.txt"), None)
CONFIG = ROOT / "demo" / "config.toml"
NFT = "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512"  # the demo NFT on a fresh anvil (traffic.py)
OTHER_KEY = "sk-test-other-key-000001"


@pytest.fixture(scope="module", autouse=True)
def spicepy_installed():
    if not SPICEPY_FILE.exists():
        pytest.skip(f"spicepy is not available: {SPICEPY_FILE} is missing (../shared/peers)")
    probe = subprocess.run([str(PYTHON), "-c", "import spicepy"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"spicepy is not installed in .venv (scripts/install_clients.sh installs it "
                    f"from {SPICEPY_FILE.name}): {probe.stderr.strip()[-200:]}")


@pytest.fixture(scope="module")
def open_srv(chain, tmp_path_factory):
    """No API keys; the demo configuration (the seed's eth.recent_blocks, eth.nft_owners)."""
    srv = Server(tmp_path_factory.mktemp("spicepy-open") / "data", chain.url, "--config",
                 str(CONFIG))
    srv.wait_head(chain.head())
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("spicepy-cert")
    crt, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(crt), "-days", "1", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def keyed_server(data_dir, chain, cert, port, keys):
    """TLS and API keys, Flight on a fixed port (so that a restart keeps it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLUICE_API_KEYS", ",".join(keys))
        srv = SecureServer(data_dir, chain.url, "--tls-cert-file", str(cert[0]),
                           "--tls-key-file", str(cert[1]), "--flight-addr", f"127.0.0.1:{port}")
    return srv


def tls_client(srv, cert):
    return flight.connect(srv.location, tls_root_certs=cert[0].read_bytes())


def seed_000_code() -> list:
    """The seed's three code blocks, the REPL one turned into statements."""
    blocks = re.findall(r"```python\n(.*?)```", SEED_000.read_text(), re.S)
    assert len(blocks) == 3
    repl = "\n".join(line[4:] for line in blocks[0].splitlines() if line.startswith(">>> "))
    return [repl, blocks[1], blocks[2]]


def test_seed_000_runs_unchanged(open_srv, tmp_path):
    """Seed 000 as written, with the real spicepy: `Client(os.environ["API_KEY"])`
    handshakes with both of its default addresses (SPICE_LOCAL_FLIGHT_URL and
    SPICE_FIRECACHE_URL, pointed at sluice; authentication is off, so any key is
    accepted). The BAYC address (mainnet) is swapped for the demo chain's NFT (data,
    not code). Run in a process of its own: spicepy reads its addresses from the
    environment when imported."""
    if SEED_000 is None:
        pytest.skip(f"seed 000 is not available: {SHARED / 'seeds'}/000_*.txt is missing")
    code = [c.replace("0xbc4ca0eda7647a8ab7c2061c2e118a18a936f13d", NFT) for c in seed_000_code()]
    assert all("from spicepy import Client" in c for c in code[:2])
    out = tmp_path / "seed.json"
    runner = textwrap.dedent(f"""
        import json, sys
        import pandas as pd
        chunks = []
        ns = {{"processChunk": chunks.append}}
        for i, code in enumerate(json.loads(sys.argv[1])):
            exec(compile(code, f"seed-000-block-{{i}}", "exec"), ns)
            if i == 0:
                recent = ns["rdr"].read_all().num_rows
        json.dump({{"type": type(ns["client"]).__module__ + "." + type(ns["client"]).__name__,
                    "recent_blocks": recent,
                    "query": ns["query"],
                    "owners": ns["baycOwners"].astype(str).values.tolist(),
                    "chunks": pd.concat(chunks, ignore_index=True).astype(str).values.tolist()}},
                  open({str(out)!r}, "w"))
    """)
    env = {"API_KEY": "any-key-of-this-user", "SPICE_LOCAL_FLIGHT_URL": open_srv.location,
           "SPICE_FIRECACHE_URL": open_srv.location, "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([str(PYTHON), "-c", runner, json.dumps(code)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(out.read_text())
    assert got["type"] == "spicepy._client.Client"
    recent = query(open_srv.client(), "SELECT * FROM eth.recent_blocks")
    assert got["recent_blocks"] == recent.num_rows > 0
    truth = query(open_srv.client(), got["query"]).to_pandas().astype(str).values.tolist()
    assert len(truth) >= 10
    assert got["owners"] == truth
    assert got["chunks"] == truth


def test_errors_carry_sluices_message(open_srv):
    from spicepy import Client
    client = Client("any-key-of-this-user", flight_url=open_srv.location,
                    firecache_url=open_srv.location)
    with pytest.raises(pa.ArrowInvalid, match='syntax error at or near "SELEC"'):
        client.query("SELEC 1")
    with pytest.raises(pa.ArrowInvalid, match="current_setting is not allowed"):
        client.query("SELECT current_setting('allowed_directories')")
    # The client still works after an error.
    assert client.query("SELECT 41 + 1 AS x").read_all().column("x").to_pylist() == [42]


def test_default_query_timeout_ends_before_spicepys(tmp_path):
    """sluice's default query_timeout_secs is below spicepy's own client timeout, so a
    spicepy user sees sluice's DEADLINE_EXCEEDED message, not a client-side timeout."""
    from spicepy import _client
    help_text = subprocess.run([str(SLUICE), "serve", "--help"], capture_output=True, text=True,
                               timeout=30).stdout
    m = re.search(r"--query-timeout-secs.*?default ([0-9.]+)\]", help_text, re.S)
    assert m, help_text
    assert 0 < float(m.group(1)) < _client.DEFAULT_QUERY_TIMEOUT_SECS


def test_auth_on_tls_handshake_once(chain, cert, tmp_path):
    """With a key and TLS (tls_root_cert): spicepy handshakes once and its bearer stays
    valid for as long as the key is configured — across two restarts of the server —
    and dies with the key. A wrong key, or none, is refused with sluice's message."""
    from spicepy import Client
    port = free_port()
    data = tmp_path / "data"
    srv = keyed_server(data, chain, cert, port, [KEY])
    try:
        wait_stored(srv, chain.head(), bearer(KEY), tls_client(srv, cert))
        client = Client(KEY, flight_url=srv.location, firecache_url=srv.location,
                        tls_root_cert=str(cert[0]))
        sql = "SELECT block_num, hash, gas_used FROM eth_rpc.blocks ORDER BY block_num"
        truth = query(tls_client(srv, cert), sql, bearer(KEY))
        assert client.query(sql).read_all().equals(truth)
        assert client.fire_query(sql).read_all().equals(truth)
        header = client._flight.headers[0]
        assert header[0] == b"authorization" and KEY.encode() not in header[1]

        with pytest.raises(flight.FlightUnauthenticatedError, match=REFUSAL):
            Client(WRONG, flight_url=srv.location, firecache_url=srv.location,
                   tls_root_cert=str(cert[0]))
        anonymous = Client(flight_url=srv.location, firecache_url=srv.location,
                           tls_root_cert=str(cert[0]))  # no key: no handshake
        with pytest.raises(flight.FlightUnauthenticatedError, match=REFUSAL):
            anonymous.query(sql)

        # Restarted with the same key: the token of the first handshake still works.
        srv.stop()
        srv = keyed_server(data, chain, cert, port, [KEY])
        wait_stored(srv, chain.head(), bearer(KEY), tls_client(srv, cert))
        assert client.query(sql).read_all().equals(truth)

        # Restarted without that key: its token is refused (the key is revoked).
        srv.stop()
        srv = keyed_server(data, chain, cert, port, [OTHER_KEY])
        wait_stored(srv, chain.head(), bearer(OTHER_KEY), tls_client(srv, cert))
        with pytest.raises(flight.FlightUnauthenticatedError, match=REFUSAL):
            client.query(sql)
        log = srv.log_text()
        for secret in (KEY, WRONG, OTHER_KEY, header[1].decode()[len("Bearer "):]):
            assert secret not in log
    finally:
        srv.stop()
