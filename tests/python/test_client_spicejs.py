"""spice.js (npm @spiceai/spice 3.2.0; tests/clients/js/spice_client.mjs) and the
Spice HTTP API it falls back to, `POST /v1/sql`, against a real server and anvil
(docs/clients.md): queries over Flight and over HTTP equal to pyarrow's answer, a
failed query showing sluice's error (not "HTTP query failed with status 404"), auth
on and off, and /v1/sql's answers, errors, encodings and limits."""
from __future__ import annotations

import gzip
import http.client
import json
import re
import subprocess
import urllib.error
import urllib.request

import pytest

from client_tools import JS_DIR, ROWS_SQL, expected_rows, need_node, run_json
from sluice_harness import ROOT, Server
from test_security import KEY, REFUSAL, WRONG, bearer, wait_stored

SCRIPT = JS_DIR / "spice_client.mjs"
DOC = ROOT / "docs" / "clients.md"
HTTP_SQL = "SELECT block_num, hash, gas_used FROM eth_rpc.blocks ORDER BY block_num"


@pytest.fixture(scope="module")
def node_bin():
    return need_node()


@pytest.fixture(scope="module")
def keyed(chain, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLUICE_API_KEYS", KEY)
        srv = Server(tmp_path_factory.mktemp("spicejs-keyed") / "data", chain.url)
    wait_stored(srv, chain.head(), bearer(KEY))
    yield srv
    srv.stop()


def spice(node_bin, srv, mode, sql, key=None) -> dict:
    return run_json([node_bin, str(SCRIPT), mode, f"127.0.0.1:{srv.port}", srv.jsonl_url, sql]
                    + ([key] if key else []))


def post(srv, body: bytes, path="/v1/sql", headers=None):
    req = urllib.request.Request(srv.jsonl_url + path, body, headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_flight_query_equals_pyarrow(node_bin, server):
    got = spice(node_bin, server, "default", ROWS_SQL)
    truth = expected_rows(server.client(), ROWS_SQL)
    assert len(truth) > 100 and got.get("rows") == truth, str(got)[:500]


def test_http_query_equals_pyarrow(node_bin, server):
    got = spice(node_bin, server, "http", HTTP_SQL)
    assert got.get("rows") == expected_rows(server.client(), HTTP_SQL), str(got)[:500]


def test_a_failed_query_shows_sluices_error(node_bin, server):
    """On a Flight error spice.js retries over HTTP POST /v1/sql and shows that answer."""
    got = spice(node_bin, server, "default", "SELEC 1")
    assert got["error"].startswith("HTTP query failed with status 400: ")
    body = json.loads(got["error"].split(": ", 1)[1])
    assert body["error_code"] == "INVALID_ARGUMENT"
    assert 'syntax error at or near "SELEC"' in body["error_message"]
    got = spice(node_bin, server, "flight", "SELECT nope FROM eth_rpc.blocks")
    assert 'Referenced column "nope" not found' in got["error"], got


def test_auth(node_bin, server, keyed):
    truth = expected_rows(keyed.client(), HTTP_SQL, bearer(KEY))
    assert spice(node_bin, keyed, "default", HTTP_SQL, KEY)["rows"] == truth
    assert spice(node_bin, keyed, "http", HTTP_SQL, KEY)["rows"] == truth
    for key in (WRONG, None):
        got = spice(node_bin, keyed, "default", HTTP_SQL, key)
        assert "status 401" in got["error"] and REFUSAL in got["error"], got
    # Off: a key is not needed, and one given is ignored.
    assert spice(node_bin, server, "default", "SELECT 1 AS x", "whatever-key")["rows"] == [{"x": "1"}]


def test_v1_sql_answers_a_json_array(server):
    sql = "SELECT block_num, hash, timestamp, base_fee_per_gas FROM eth_rpc.blocks ORDER BY block_num"
    status, headers, body = post(server, sql.encode(), headers={"Content-Type": "text/plain"})
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    rows = json.loads(body)
    _, _, lines = post(server, sql.encode(), path="/")  # the JSON Lines endpoint: same values
    assert rows == [json.loads(line) for line in lines.decode().splitlines()]
    assert len(rows) == server.stored_head() + 1
    # Spice's envelope, and gzip (one Content-Encoding: gzip, a whole JSON document).
    status, headers, body = post(server, json.dumps({"sql": sql}).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(body)) == rows
    assert post(server, b"SELECT 1 AS x WHERE false")[2] == b"[]\n"


def test_v1_sql_errors(server, keyed):
    def error(status, body):
        obj = json.loads(body)
        return status, obj["error_code"], obj["error_message"]

    assert error(*post(server, b"SELEC 1")[::2])[:2] == (400, "INVALID_ARGUMENT")
    status, code, message = error(*post(server, b"SELECT * FROM eth_rpc.blocks SETTINGS stream = true")[::2])
    assert (status, code) == (400, "STREAMING_NOT_SUPPORTED")
    status, code, message = error(*post(server, json.dumps({"sql": "SELECT $1", "parameters": [1]}).encode(),
                                        headers={"Content-Type": "application/json"})[::2])
    assert status == 400 and "parameters" in message
    status, code, message = error(*post(keyed, HTTP_SQL.encode())[::2])
    assert (status, code) == (401, "UNAUTHENTICATED") and REFUSAL in message
    assert post(keyed, HTTP_SQL.encode(), headers={"X-API-Key": KEY})[0] == 200
    with pytest.raises(urllib.error.HTTPError, match="405"):
        urllib.request.urlopen(server.jsonl_url + "/v1/sql", timeout=30)


def test_v1_sql_error_after_rows_is_no_complete_answer(server):
    """Once rows went out, an error leaves the array unclosed, adds the error object on
    a line of its own, and ends the connection without the last chunk."""
    sql = ("SELECT CASE WHEN range < 1000000 THEN range ELSE error('boom at 1000000') END AS x "
           "FROM range(2000000)")
    conn = http.client.HTTPConnection("127.0.0.1", server.jsonl_port, timeout=60)
    conn.request("POST", "/v1/sql", sql)
    resp = conn.getresponse()
    assert resp.status == 200
    with pytest.raises(http.client.IncompleteRead) as e:
        resp.read()
    text = e.value.partial.decode()
    head, last = text.rstrip("\n").rsplit("\n", 1)
    assert head.startswith('[{"x":0},{"x":1},') and not head.endswith("]")
    assert "boom at 1000000" in json.loads(last)["error_message"]


def test_docs_curl_examples(server):
    """The curl examples of docs/clients.md (spice.js section), run as written."""
    examples = [b for b in re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S) if "/v1/sql" in b]
    assert examples
    for example in examples:
        script = example.replace("localhost:1603", f"127.0.0.1:{server.jsonl_port}")
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", script], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0 and proc.stdout.strip(), (script, proc.stderr)
        for line in proc.stdout.strip().splitlines():
            json.loads(line)  # every answer is JSON
