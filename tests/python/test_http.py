"""JSON Lines over HTTP (protocol.md §6) and the admin API (health, readiness,
Prometheus metrics, /datasets, /streams), with real HTTP clients from the standard
library against a real server following a real anvil node (docs/http.md).

The truth for JSON Lines is the Flight answer of the same query, converted to JSON
here by an independent implementation of the encoding (hex for binary, exact
integers and decimals, ISO-8601 UTC timestamps, null); the truth for the chain
metrics is the node's JSON-RPC."""
from __future__ import annotations

import datetime
import gzip
import http.client
import json
import re
import urllib.error
import urllib.request
from decimal import Decimal

import pyarrow as pa

from sluice_harness import StreamReader, anvil_reorg, query, rpc, wait_for

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def post_sql(srv, sql: str, headers: dict | None = None, timeout: float = 120):
    """POST `sql` to the JSON Lines endpoint: (status, headers, body bytes)."""
    req = urllib.request.Request(srv.jsonl_url + "/", sql.encode(), headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def parse_lines(body: bytes) -> list:
    # Decimals with a fraction as Decimal: every digit kept (integers are exact anyway).
    return [json.loads(line, parse_float=Decimal) for line in body.decode().splitlines()]


def jsonl_rows(srv, sql: str) -> list:
    status, headers, body = post_sql(srv, sql)
    assert status == 200, body
    assert headers["content-type"] == "application/x-ndjson"
    return parse_lines(body)


def get(url: str):
    """GET `url`: (status, content-type, body text)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.headers["content-type"], resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["content-type"], e.read().decode()


def get_json(url: str):
    status, _, body = get(url)
    return status, json.loads(body)


def metrics(srv) -> dict:
    """GET /metrics, parsed: {(name, ((label, value), ...)): value}."""
    status, ctype, text = get(srv.admin_url + "/metrics")
    assert status == 200 and ctype.startswith("text/plain"), (status, ctype)
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)', line)
        assert m, f"not a sample line: {line!r}"
        labels = tuple(sorted(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                         m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def queries_total(srv, kind: str, outcome: str) -> float:
    return metric(metrics(srv), "sluice_queries_total", kind=kind, outcome=outcome)


_TS_UNITS = {"s": (1, 0), "ms": (10**3, 3), "us": (10**6, 6), "ns": (10**9, 9)}


def iso_utc(value: int, unit: str) -> str:
    per_second, digits = _TS_UNITS[unit]
    seconds, fraction = divmod(value, per_second)
    text = (datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=seconds)).strftime(
        "%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + str(fraction).zfill(digits)
    return text + "Z"


def to_json_value(v):
    if isinstance(v, bytes):
        return "0x" + v.hex()
    if isinstance(v, list):
        return [to_json_value(x) for x in v]
    if isinstance(v, dict):
        return {k: to_json_value(x) for k, x in v.items()}
    return v  # None, bool, int, str, Decimal (== the parsed int or Decimal)


def expected_rows(table: pa.Table) -> list:
    """The JSON Lines rows a Flight answer must become."""
    columns = {}
    for name, col in zip(table.column_names, table.columns):
        if pa.types.is_timestamp(col.type):
            unit = col.type.unit
            columns[name] = [None if v is None else iso_utc(v, unit)
                             for v in col.cast(pa.int64()).to_pylist()]
        else:
            columns[name] = [to_json_value(v) for v in col.to_pylist()]
    return [{name: columns[name][i] for name in table.column_names}
            for i in range(table.num_rows)]


def assert_same_as_flight(srv, sql: str) -> list:
    want = expected_rows(query(srv.client(), sql))
    got = jsonl_rows(srv, sql)
    assert len(got) == len(want), (len(got), len(want))
    for i, (g, w) in enumerate(zip(got, want)):
        assert list(g) == list(w), f"row {i}: keys {list(g)} != {list(w)}"
        assert g == w, f"row {i}: {g} != {w}"
    return got


# ---------------------------------------------------------------------------
# JSON Lines
# ---------------------------------------------------------------------------

def test_jsonl_rows_equal_the_flight_answer(server, chain):
    blocks = assert_same_as_flight(server, """
        SELECT block_num, timestamp, hash, parent_hash, miner, gas_used, base_fee_per_gas,
               difficulty, total_difficulty, extra_data, logs_bloom, withdrawals_root, nonce
        FROM eth_rpc.blocks ORDER BY block_num""")
    assert len(blocks) == chain.head() + 1
    # Independent truth for a few values: the node's JSON-RPC.
    node = rpc(chain.url, "eth_getBlockByNumber", [hex(5), False])
    assert blocks[5]["hash"] == node["hash"]
    assert blocks[5]["miner"] == node["miner"].lower()
    assert blocks[5]["gas_used"] == int(node["gasUsed"], 16)
    assert blocks[5]["base_fee_per_gas"] == int(node["baseFeePerGas"], 16)
    ts = datetime.datetime.fromtimestamp(int(node["timestamp"], 16), datetime.timezone.utc)
    assert blocks[5]["timestamp"] == ts.strftime("%Y-%m-%dT%H:%M:%SZ")

    txs = assert_same_as_flight(server, """
        SELECT block_num, tx_index, tx_hash, "to", "from", value, gas_price, max_fee_per_gas,
               status, v_parity, input, type, chain_id
        FROM eth_rpc.transactions ORDER BY block_num, tx_index""")
    assert any(t["to"] is None for t in txs), "a contract creation (to = null)"
    assert any(t["status"] is False for t in txs), "a failed transaction"
    logs = assert_same_as_flight(server, """
        SELECT block_num, log_index, tx_hash, address, topic0, topic1, topic2, topic3, data
        FROM eth_rpc.logs ORDER BY block_num, log_index""")
    assert any(r["topic3"] is None for r in logs) and any(r["topic3"] for r in logs)


def test_jsonl_values_exact(server):
    sql = """SELECT 18446744073709551615::UBIGINT AS max_u64,
                    9007199254740993::UBIGINT AS above_2_53,
                    CAST('-9223372036854775808' AS BIGINT) AS min_i64,
                    CAST('123456789012345678901234567890' AS DECIMAL(38,0)) AS wei,
                    12.500::DECIMAL(10,3) AS price,
                    TIMESTAMPTZ '2024-01-01 00:00:00+00' AS t0,
                    TIMESTAMPTZ '2024-01-01 00:00:00.25+00' AS t1,
                    NULL::INTEGER AS nothing, true AS yes,
                    'q"b\\' || chr(10) || 'ü' AS s,
                    [1, NULL, 3] AS l, {'x': 1, 'y': 'z'} AS st,
                    '\\x00\\xff'::BLOB AS b"""
    rows = assert_same_as_flight(server, sql)
    assert len(rows) == 1
    r = rows[0]
    assert r["max_u64"] == 18446744073709551615 and r["above_2_53"] == 9007199254740993
    assert r["min_i64"] == -9223372036854775808
    assert r["wei"] == 123456789012345678901234567890
    assert r["price"] == Decimal("12.500")
    assert (r["t0"], r["t1"]) == ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00.250000Z")
    assert r["nothing"] is None and r["yes"] is True
    assert r["s"] == 'q"b\\\nü'
    assert r["l"] == [1, None, 3] and r["st"] == {"x": 1, "y": "z"}
    assert r["b"] == "0x00ff"
    # Exact digits on the wire, not floats.
    _, _, body = post_sql(server, sql)
    assert b'"max_u64":18446744073709551615,' in body
    assert b'"wei":123456789012345678901234567890,' in body and b'"price":12.500,' in body


def test_jsonl_gzip(server):
    sql = "SELECT block_num, hash, timestamp FROM eth_rpc.blocks ORDER BY block_num"
    status, headers, plain = post_sql(server, sql)
    assert status == 200 and headers.get("content-encoding") is None
    status, headers, body = post_sql(server, sql, {"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert headers["content-type"] == "application/x-ndjson"
    assert body[:2] == b"\x1f\x8b"
    assert gzip.decompress(body) == plain
    assert parse_lines(plain) == expected_rows(query(server.client(), sql))


def test_jsonl_large_answer_streams_and_a_disconnect_cancels_it(server):
    before = metrics(server)
    rows_before = metric(before, "sluice_rows_sent_total", kind="jsonl")
    cancelled_before = metric(before, "sluice_queries_total", kind="jsonl", outcome="cancelled")
    conn = http.client.HTTPConnection("127.0.0.1", server.jsonl_port, timeout=60)
    conn.request("POST", "/", body=b"SELECT * FROM range(10000000)")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("transfer-encoding") == "chunked"
    for i in range(1000):
        assert json.loads(resp.readline()) == {"range": i}
    # The first rows arrived while the server had sent only a small part of the
    # answer: it is stopped by this client not reading, not done.
    sent = metric(metrics(server), "sluice_rows_sent_total", kind="jsonl") - rows_before
    assert 1000 <= sent < 5_000_000, sent
    resp.close()
    conn.close()  # unread data: the server's next write fails and the query is interrupted
    wait_for(lambda: metric(metrics(server), "sluice_queries_total", kind="jsonl",
                            outcome="cancelled") == cancelled_before + 1,
             60, "the abandoned query to be counted as cancelled")
    sent = metric(metrics(server), "sluice_rows_sent_total", kind="jsonl") - rows_before
    assert sent < 5_000_000, sent
    # The server is fine.
    assert jsonl_rows(server, "SELECT 42 AS x") == [{"x": 42}]


def _peak_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))


def test_jsonl_large_answer_memory_stays_flat(server):
    """10 million rows (about 190 MB of JSON) read to the end: the server's peak
    memory grows by far less than the answer."""
    peak_before = _peak_rss_kb(server.proc.pid)
    ok_before = queries_total(server, "jsonl", "ok")
    conn = http.client.HTTPConnection("127.0.0.1", server.jsonl_port, timeout=120)
    conn.request("POST", "/", body=b"SELECT * FROM range(10000000)")
    resp = conn.getresponse()
    assert resp.status == 200
    lines, size, tail = 0, 0, b""
    while True:
        chunk = resp.read(1 << 20)
        if not chunk:
            break
        lines += chunk.count(b"\n")
        size += len(chunk)
        tail = (tail + chunk)[-64:]
    conn.close()
    assert lines == 10_000_000 and size > 150_000_000
    assert tail.endswith(b'{"range":9999999}\n')
    grown_mb = (_peak_rss_kb(server.proc.pid) - peak_before) / 1024
    assert grown_mb < 100, f"peak memory grew by {grown_mb:.0f} MB"
    wait_for(lambda: queries_total(server, "jsonl", "ok") == ok_before + 1, 30, "ok counted")


def test_jsonl_errors(server):
    cases = [
        ("SELEC 1", 400, "INVALID_ARGUMENT", "syntax error"),
        ("SELECT * FROM eth_rpc.nope", 400, "INVALID_ARGUMENT", "nope"),
        ("SELECT * FROM read_csv('/etc/passwd')", 400, "INVALID_ARGUMENT", "read_csv"),
        ("COPY (SELECT 1) TO '/tmp/x.csv'", 400, "INVALID_ARGUMENT", ""),
        ("SELECT block_num FROM eth_rpc.blocks SETTINGS stream = true", 400,
         "STREAMING_NOT_SUPPORTED", "Flight"),
        ("SELECT 1 SETTINGS strem = true", 400, "INVALID_ARGUMENT", "strem"),
        ("", 400, "INVALID_ARGUMENT", "SQL"),
    ]
    for sql, want_status, want_code, want_text in cases:
        status, headers, body = post_sql(server, sql)
        assert status == want_status, (sql, status, body)
        assert headers["content-type"] == "application/json", sql
        err = json.loads(body)
        assert set(err) == {"error_code", "error_message"}, err
        assert err["error_code"] == want_code, (sql, err)
        assert want_text in err["error_message"], (sql, err)
    # The header asks for streaming too (it wins over the clause).
    status, _, body = post_sql(server, "SELECT block_num FROM eth_rpc.blocks",
                               {"amp-stream": "true"})
    assert status == 400 and json.loads(body)["error_code"] == "STREAMING_NOT_SUPPORTED"
    # The same message as over Flight (DuckDB's, from the engine).
    status, _, body = post_sql(server, "SELECT nope FROM eth_rpc.blocks")
    try:
        query(server.client(), "SELECT nope FROM eth_rpc.blocks")
        raise AssertionError("Flight accepted a bad column")
    except pa.ArrowInvalid as e:
        assert json.loads(body)["error_message"].split("\n")[0] in str(e)
    # Only POST / runs queries.
    assert get(server.jsonl_url + "/")[0] == 405
    assert get(server.jsonl_url + "/health")[:1] == (200,)


def test_jsonl_error_after_rows_ends_the_stream_with_an_error_line(server):
    errors_before = queries_total(server, "jsonl", "error")
    sql = ("SELECT CASE WHEN range < 5000000 THEN range ELSE error('boom at 5000000') END AS x "
           "FROM range(10000000)")
    status, _, body = post_sql(server, sql)
    assert status == 200  # rows went out before the engine met the error
    lines = body.decode().splitlines()
    *rows, last = [json.loads(line) for line in lines]
    assert rows and [r["x"] for r in rows] == list(range(len(rows)))
    assert set(last) == {"error_code", "error_message"}
    assert "boom at 5000000" in last["error_message"]
    assert queries_total(server, "jsonl", "error") == errors_before + 1


# ---------------------------------------------------------------------------
# admin API
# ---------------------------------------------------------------------------

def test_health_and_ready(server):
    assert get_json(server.admin_url + "/health") == (200, {"status": "ok"})
    assert get_json(server.jsonl_url + "/health") == (200, {"status": "ok"})
    wait_for(lambda: get_json(server.admin_url + "/ready") ==
             (200, {"status": "ready", "datasets": {"eth_rpc": "ready"}}), 30,
             "/ready to say ready")
    assert get_json(server.admin_url + "/ready/eth_rpc") == \
        (200, {"status": "ready", "datasets": {"eth_rpc": "ready"}})
    assert get_json(server.admin_url + "/ready/nope")[0] == 404
    assert get(server.admin_url + "/nope")[0] == 404


def test_not_ready_when_the_node_is_unreachable(make_server, tmp_path):
    srv = make_server(tmp_path / "data", "http://127.0.0.1:1")  # nothing listens on port 1
    assert get_json(srv.admin_url + "/health") == (200, {"status": "ok"})

    def not_ready():
        status, body = get_json(srv.admin_url + "/ready")
        return status == 503 and body

    body = wait_for(not_ready, 30, "/ready to answer 503")
    assert body["status"] == "not_ready"
    assert "node" in body["reason"] and "127.0.0.1:1" in body["reason"], body
    samples = metrics(srv)
    assert metric(samples, "sluice_rpc_errors_total", dataset="eth_rpc") >= 1
    assert metric(samples, "sluice_node_head_block", dataset="eth_rpc") is None  # never polled


def test_metrics_text_format(server):
    status, ctype, text = get(server.admin_url + "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    helps = set(re.findall(r"^# HELP (\S+) ", text, re.M))
    assert set(types) == helps
    for name in ("sluice_queries_total", "sluice_rows_sent_total", "sluice_bytes_sent_total",
                 "sluice_microbatches_total", "sluice_reorgs_total", "sluice_rpc_errors_total"):
        assert types[name] == "counter", name
    for name in ("sluice_active_streams", "sluice_stored_head_block", "sluice_node_head_block",
                 "sluice_head_lag_blocks"):
        assert types[name] == "gauge", name
    assert types["sluice_reorg_depth_blocks"] == "histogram"
    assert all(name.endswith("_total") for name, t in types.items() if t == "counter")
    samples = metrics(server)
    for kind in ("batch", "stream", "jsonl"):
        for outcome in ("ok", "error", "cancelled"):
            assert metric(samples, "sluice_queries_total", kind=kind, outcome=outcome) is not None


def test_metrics_follow_queries_and_blocks(server, chain):
    before = metrics(server)
    t = query(server.client(), "SELECT block_num FROM eth_rpc.blocks")
    try:
        query(server.client(), "SELECT nope FROM eth_rpc.blocks")
    except pa.ArrowInvalid:
        pass
    jsonl_rows(server, "SELECT 1 AS one")
    after = metrics(server)

    def delta(name, **labels):
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta("sluice_queries_total", kind="batch", outcome="ok") == 1
    assert delta("sluice_queries_total", kind="batch", outcome="error") == 1
    assert delta("sluice_queries_total", kind="jsonl", outcome="ok") == 1
    assert delta("sluice_rows_sent_total", kind="batch") == t.num_rows
    assert delta("sluice_bytes_sent_total", kind="batch") > 8 * t.num_rows
    assert delta("sluice_rows_sent_total", kind="jsonl") == 1
    assert delta("sluice_bytes_sent_total", kind="jsonl") == len(b'{"one":1}\n')

    # New blocks: the stored head gauge follows the node's head (JSON-RPC).
    chain.mine(3)
    head = int(rpc(chain.url, "eth_blockNumber"), 16)

    def caught_up():
        s = metrics(server)
        return (metric(s, "sluice_stored_head_block", dataset="eth_rpc") == head
                and metric(s, "sluice_node_head_block", dataset="eth_rpc") == head
                and metric(s, "sluice_head_lag_blocks", dataset="eth_rpc") == 0)

    wait_for(caught_up, 60, f"the head gauges to reach block {head}")


def test_active_streams_gauge_and_streams_view(server, chain):
    before = metrics(server)
    assert metric(before, "sluice_active_streams") == 0
    sql = "SELECT block_num, hash FROM eth_rpc.blocks"
    reader = StreamReader(server.location, sql + " SETTINGS stream = true")
    try:
        wait_for(lambda: metric(metrics(server), "sluice_active_streams") == 1, 30,
                 "one active stream")
        head = server.stored_head()

        def listed():
            streams = get_json(server.admin_url + "/streams")[1]["streams"]
            return (len(streams) == 1 and streams[0]["cursor"] is not None
                    and streams[0]["cursor"]["block_number"] == head
                    and streams[0]["rows_sent"] == head + 1 and streams[0])

        s = wait_for(listed, 30, "/streams to show the stream caught up")
        assert s["query"] == sql and s["dataset"] == "eth_rpc"
        assert s["microbatches"] >= 1 and s["bytes_sent"] > 0
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", s["started_at"])
        hashes = {r["block_num"]: "0x" + r["hash"].hex() for r in query(
            server.client(), "SELECT block_num, hash FROM eth_rpc.blocks").to_pylist()}
        assert s["cursor"]["hash"] == hashes[head]
        after = metrics(server)
        assert (metric(after, "sluice_microbatches_total")
                > metric(before, "sluice_microbatches_total"))
        assert (metric(after, "sluice_rows_sent_total", kind="stream")
                >= metric(before, "sluice_rows_sent_total", kind="stream") + head + 1)
    finally:
        reader.close()
    wait_for(lambda: metric(metrics(server), "sluice_active_streams") == 0, 30,
             "no active stream once cancelled")
    assert get_json(server.admin_url + "/streams") == (200, {"streams": []})
    wait_for(lambda: queries_total(server, "stream", "cancelled")
             == metric(before, "sluice_queries_total", kind="stream", outcome="cancelled") + 1,
             30, "the cancelled stream to be counted")


def test_datasets_view_equals_the_store(server, chain):
    def same():
        status, body = get_json(server.admin_url + "/datasets")
        assert status == 200
        (d,) = body["datasets"]
        t = query(server.client(),
                  "SELECT min(block_num) AS lo, max(block_num) AS hi FROM eth_rpc.blocks")
        lo, hi = t.column("lo")[0].as_py(), t.column("hi")[0].as_py()
        return d["blocks"] == {"start": lo, "end": hi} and d

    d = wait_for(same, 30, "/datasets to equal min/max(block_num)")
    assert d["name"] == "eth_rpc" and d["network"] == "anvil"
    assert d["tables"] == ["blocks", "transactions", "logs"]
    head = d["blocks"]["end"]
    assert d["head"]["number"] == head
    assert d["head"]["hash"] == rpc(chain.url, "eth_getBlockByNumber", [hex(head), False])["hash"]
    assert d["extracting"] is True
    assert d["node_head"] >= head and d["lag"] == d["node_head"] - head


def test_reorg_counted_with_its_depth(make_anvil, make_server, tmp_path):
    node = make_anvil()
    node.traffic(blocks=8, txs_per_block=2, seed=5)
    srv = make_server(tmp_path / "data", node.url)
    head = node.head()
    srv.wait_head(head)
    assert metric(metrics(srv), "sluice_reorgs_total", dataset="eth_rpc") == 0
    anvil_reorg(node.url, 3)  # the top 3 blocks (with transactions) become empty ones
    new_head_hash = rpc(node.url, "eth_getBlockByNumber", [hex(head), False])["hash"]

    def followed():
        s = metrics(srv)
        return (metric(s, "sluice_reorgs_total", dataset="eth_rpc") == 1
                and metric(s, "sluice_reorg_depth_blocks_count", dataset="eth_rpc") == 1
                and metric(s, "sluice_stored_head_block", dataset="eth_rpc") == head and s)

    s = wait_for(followed, 60, "the reorg to be followed and counted")
    bucket = lambda le: metric(s, "sluice_reorg_depth_blocks_bucket", dataset="eth_rpc", le=le)  # noqa: E731
    assert (bucket("2"), bucket("4"), bucket("+Inf")) == (0, 1, 1)
    assert metric(s, "sluice_reorg_depth_blocks_sum", dataset="eth_rpc") == 3
    wait_for(lambda: get_json(srv.admin_url + "/datasets")[1]["datasets"][0]["head"]["hash"]
             == new_head_hash, 30, "/datasets to show the new head")
