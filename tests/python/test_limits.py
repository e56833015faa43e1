"""Limits (docs/security.md), end to end against the real server and real
clients: concurrent queries and streams, query timeout, engine memory, a client
that cancels, disconnects or reads slowly, and values too large for one message.

Truths: the limits are checked by what a second client sees (refused, then
served again); the server's work is checked by the server's own process (its
CPU time and resident memory in /proc), not by timing; answers are compared with
arithmetic over `range` or with the node's JSON-RPC."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from sluice_harness import PYTHON, Anvil, Server, query, wait_for

# A batch query that keeps the engine busy for minutes (5e10 hashes) and sends
# nothing until it is done.
SLOW_SQL = "SELECT sum(hash(i)) AS s FROM range(50000000000) t(i)"
# A batch query with a large answer, sent as it is computed.
BIG_SQL = "SELECT i, repeat('x', 1000) AS pad FROM range(5000000) t(i)"
STREAM_SQL = "SELECT block_num, hash FROM eth_rpc.blocks SETTINGS stream = true"


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def metrics(srv) -> dict:
    with urllib.request.urlopen(srv.admin_url + "/metrics", timeout=30) as resp:
        text = resp.read().decode()
    out = {}
    for m in re.finditer(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$', text, re.M):
        out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def running_queries(srv) -> float:
    return metrics(srv)[("sluice_running_queries", "")]


def refusals(srv, limit: str) -> float:
    return metrics(srv).get(("sluice_limit_refusals_total", f'limit="{limit}"'), 0)


def open_streams(srv) -> list:
    with urllib.request.urlopen(srv.admin_url + "/streams", timeout=30) as resp:
        return json.loads(resp.read())["streams"]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (seconds)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def start(client: flight.FlightClient, sql: str, headers=(), timeout=None):
    """GetFlightInfo + DoGet; the reader (DoGet has started on the server)."""
    options = flight.FlightCallOptions(headers=list(headers), timeout=timeout)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), options)
    return client.do_get(info.endpoints[0].ticket, options)


def post_sql(srv, sql: str, timeout: float = 120):
    req = urllib.request.Request(srv.jsonl_url + "/", sql.encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def assert_idle(srv, seconds: float = 1.0, max_cpu: float = 0.3) -> None:
    """The server does no query work: over `seconds` it uses at most `max_cpu`
    seconds of CPU (a running query would use about two per second here)."""
    before = cpu_seconds(srv.proc.pid)
    time.sleep(seconds)
    used = cpu_seconds(srv.proc.pid) - before
    assert used <= max_cpu, f"server used {used:.2f} s of CPU in {seconds} s: still working"


def assert_serves(srv) -> None:
    assert query(srv.client(), "SELECT 40 + 2 AS x").column("x")[0].as_py() == 42


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = Anvil(tmp_path_factory.mktemp("lim-chain"))
    n.mine(5)
    yield n
    n.stop()


@pytest.fixture(scope="module")
def limited(node, tmp_path_factory):
    """A server allowing 2 batch queries and 1 stream at once."""
    srv = Server(tmp_path_factory.mktemp("lim") / "data", node.url,
                 "--max-concurrent-queries", "2", "--max-concurrent-streams", "1")
    srv.wait_head(node.head())
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def timed(node, tmp_path_factory):
    """A server stopping batch queries after 2 s."""
    srv = Server(tmp_path_factory.mktemp("timed") / "data", node.url,
                 "--query-timeout-secs", "2")
    srv.wait_head(node.head())
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def plain(node, tmp_path_factory):
    """A server with the default limits (no timeout) and small record batches."""
    srv = Server(tmp_path_factory.mktemp("plain") / "data", node.url, "--rows-per-batch", "1000")
    srv.wait_head(node.head())
    yield srv
    srv.stop()


# ---------------------------------------------------------------------------
# concurrency
# ---------------------------------------------------------------------------

def test_concurrent_queries_beyond_the_limit_are_refused_then_served(limited):
    client = flight.connect(limited.location)
    held = [start(client, BIG_SQL), start(client, BIG_SQL)]  # both running, unread
    wait_for(lambda: running_queries(limited) == 2, 30, "two running queries")
    before = refusals(limited, "concurrent_queries")
    # UNAVAILABLE (retryable; Arrow Flight servers cannot send RESOURCE_EXHAUSTED),
    # the limit named in the message.
    with pytest.raises(flight.FlightUnavailableError) as e:
        start(client, "SELECT 1 AS x").read_all()
    assert str(e.value).startswith("RESOURCE_EXHAUSTED: too many queries running "
                                   "(max_concurrent_queries = 2)")
    # JSON Lines shares the limit: 429 with Retry-After.
    status, headers, body = post_sql(limited, "SELECT 1 AS x")
    assert status == 429 and headers["Retry-After"] == "1"
    assert json.loads(body)["error_code"] == "RESOURCE_EXHAUSTED"
    assert refusals(limited, "concurrent_queries") == before + 2
    # The held answers are intact: their first rows are range's.
    assert held[0].read_chunk().data.column("i")[0].as_py() == 0
    # One ends (the client cancels it): a slot is free again.
    held[0].cancel()
    wait_for(lambda: running_queries(limited) == 1, 30, "the cancelled query to end")
    assert query(client, "SELECT 7 AS x").column("x")[0].as_py() == 7
    held[1].cancel()
    wait_for(lambda: running_queries(limited) == 0, 30, "every query to end")
    status, _, body = post_sql(limited, "SELECT 8 AS x")
    assert status == 200 and json.loads(body) == {"x": 8}


def test_concurrent_streams_beyond_the_limit_are_refused_then_served(limited):
    client = flight.connect(limited.location)
    first = start(client, STREAM_SQL)
    assert first.read_chunk() is not None
    wait_for(lambda: len(open_streams(limited)) == 1, 30, "the stream to be listed")
    with pytest.raises(flight.FlightUnavailableError) as e:
        start(client, STREAM_SQL).read_chunk()
    assert str(e.value).startswith("RESOURCE_EXHAUSTED: too many streaming queries open "
                                   "(max_concurrent_streams = 1)")
    # Batch queries are not streams: still served.
    assert query(client, "SELECT 1 AS x").num_rows == 1
    first.cancel()
    wait_for(lambda: not open_streams(limited), 30, "the stream to close")
    second = start(client, STREAM_SQL)
    assert second.read_chunk() is not None
    second.cancel()


# ---------------------------------------------------------------------------
# timeout
# ---------------------------------------------------------------------------

def test_a_query_past_its_timeout_is_stopped(timed):
    before = refusals(timed, "query_timeout")
    client = flight.connect(timed.location)
    with pytest.raises(flight.FlightTimedOutError) as e:
        start(client, SLOW_SQL).read_all()
    assert "query_timeout_secs" in str(e.value)
    assert refusals(timed, "query_timeout") == before + 1
    wait_for(lambda: running_queries(timed) == 0, 30, "the query to end")
    assert_idle(timed)  # the engine stopped, not just the answer
    assert_serves(timed)


def test_a_slow_reader_is_stopped_at_the_timeout_too(timed):
    client = flight.connect(timed.location)
    reader = start(client, BIG_SQL)
    reader.read_chunk()
    time.sleep(3)  # past the 2 s timeout, reading nothing
    with pytest.raises(flight.FlightTimedOutError):
        while True:
            reader.read_chunk()
    wait_for(lambda: running_queries(timed) == 0, 30, "the query to end")
    assert_serves(timed)


def test_jsonl_query_past_its_timeout(timed):
    status, _, body = post_sql(timed, SLOW_SQL)
    assert status == 504, body
    err = json.loads(body)
    assert err["error_code"] == "DEADLINE_EXCEEDED" and "query_timeout_secs" in err["error_message"]
    assert_serves(timed)


# ---------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------

def test_engine_memory_limit_spills_or_fails_cleanly(node, make_server, tmp_path):
    srv = make_server(tmp_path / "data", node.url, "--query-max-mem-mb", "200",
                      "--query-threads", "2")
    client = flight.connect(srv.location)
    # Larger than the limit but able to spill to the data directory: right answer.
    t = query(client, "SELECT count(*) AS n, sum(i) AS s FROM "
                      "(SELECT DISTINCT i FROM range(20000000) t(i))")
    assert t.to_pylist() == [{"n": 20000000, "s": 20000000 * 19999999 // 2}]
    # Memory that cannot spill (one list of 100M values): a clean refusal with
    # DuckDB's message (gRPC UNKNOWN: Arrow Flight has no RESOURCE_EXHAUSTED).
    with pytest.raises(flight.FlightServerError, match="Out of Memory Error"):
        query(client, "SELECT list(i) AS l FROM range(100000000) t(i)")
    # JSON Lines: 503 RESOURCE_EXHAUSTED.
    status, _, body = post_sql(srv, "SELECT list(i) AS l FROM range(100000000) t(i)")
    assert status == 503 and json.loads(body)["error_code"] == "RESOURCE_EXHAUSTED", body
    assert_serves(srv)


# ---------------------------------------------------------------------------
# cancel, disconnect
# ---------------------------------------------------------------------------

def test_client_deadline_stops_the_engine(plain):
    client = flight.connect(plain.location)
    with pytest.raises(flight.FlightTimedOutError):
        start(client, SLOW_SQL, timeout=2).read_all()  # gRPC cancels the call at 2 s
    wait_for(lambda: running_queries(plain) == 0, 30, "the query to end")
    assert_idle(plain)
    assert_serves(plain)


def test_client_killed_mid_query_stops_the_engine(plain):
    code = ("import pyarrow.flight as f, sys\n"
            "c = f.connect(sys.argv[1])\n"
            "i = c.get_flight_info(f.FlightDescriptor.for_command(sys.argv[2].encode()))\n"
            "print('started', flush=True)\n"
            "c.do_get(i.endpoints[0].ticket).read_all()\n")
    proc = subprocess.Popen([str(PYTHON), "-c", code, plain.location, SLOW_SQL],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    wait_for(lambda: running_queries(plain) == 1, 30, "the query to run")
    cpu = cpu_seconds(plain.proc.pid)
    wait_for(lambda: cpu_seconds(plain.proc.pid) - cpu > 0.5, 30, "the engine to work")
    proc.send_signal(signal.SIGKILL)  # a disconnect, not a polite cancel
    proc.wait()
    wait_for(lambda: running_queries(plain) == 0, 30, "the query to end")
    assert_idle(plain)
    assert_serves(plain)


def test_cancelled_stream_leaves_the_server(plain):
    client = flight.connect(plain.location)
    reader = start(client, STREAM_SQL)
    reader.read_chunk()
    wait_for(lambda: len(open_streams(plain)) == 1, 30, "the stream to be listed")
    reader.cancel()
    wait_for(lambda: not open_streams(plain), 30, "the stream to leave /streams")


# ---------------------------------------------------------------------------
# slow consumers, huge values
# ---------------------------------------------------------------------------

def test_slow_consumer_costs_a_few_batches_of_memory(plain):
    # 5M rows of ~1 KB: a 5 GB answer, 1000 rows (~1 MB) per record batch.
    pid = plain.proc.pid
    base = rss_mb(pid)
    client = flight.connect(plain.location)
    reader = start(client, BIG_SQL)
    seen = 0
    for _ in range(5):
        chunk = reader.read_chunk()
        assert chunk.data.column("i").to_pylist() == list(range(seen, seen + chunk.data.num_rows))
        seen += chunk.data.num_rows
        time.sleep(1)  # the server could produce gigabytes meanwhile
    grown = rss_mb(pid) - base
    assert grown < 300, f"server RSS grew {grown:.0f} MB for a client that read {seen} rows"
    reader.cancel()
    wait_for(lambda: running_queries(plain) == 0, 30, "the query to end")


def test_wide_rows_are_split_into_smaller_messages(plain):
    # 300 rows of 1 MB come from the engine as one 300 MB chunk: they go out as
    # record batches of about 64 MiB (sql::kMaxBatchBytes), every row once, in order.
    reader = start(flight.connect(plain.location),
                   "SELECT i, repeat('x', 1000000) AS v FROM range(300) t(i)")
    rows, sizes = [], []
    for chunk in reader:
        if chunk.data.num_rows:
            rows += chunk.data.column("i").to_pylist()
            assert all(len(v) == 1000000 for v in chunk.data.column("v").to_pylist())
            sizes.append(chunk.data.nbytes)
    assert rows == list(range(300))
    assert len(sizes) >= 4 and max(sizes) <= 70 * 2**20, sizes


def test_huge_values_are_sent_or_refused_clearly(plain):
    client = flight.connect(plain.location)
    # One 200 MB value: one message of its own.
    t = query(client, "SELECT length(repeat(repeat('x', 1000), 200000)) AS n, "
                      "repeat(repeat('x', 1000), 200000) AS v")
    assert t.column("n")[0].as_py() == 200000000 and len(t.column("v")[0].as_py()) == 200000000
    del t
    # One value beyond what an Arrow string array (and a gRPC message) can hold:
    # refused with the engine's message; the server serves on.
    with pytest.raises(pa.ArrowInvalid, match="2147483647"):
        query(client, "SELECT repeat(repeat('x', 100000), 22000) AS v")
    assert_serves(plain)
