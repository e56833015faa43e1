"""The C++ client library (client/, docs/cpp-client.md) against a real server on
the demo chain, through its example programs in build/client/: pages of the
fetch size, max_pages, page callbacks, timeouts, cancelling from another thread
(the server stops), streams resumed exactly once after kill -9, and a project
outside the tree building against the installed library with find_package.
The truth is the same query through pyarrow (a second, independent client).
Also the server's `sluice-fetch-size` header, and the Python client sending it."""
from __future__ import annotations

import asyncio
import collections
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.ipc as ipc
import pytest

from sluice_harness import (ROOT, anvil_reorg, moved_txs, query, wait_for,
                            wait_store_matches_node)

BUILD = ROOT / "build"
EXAMPLES = BUILD / "client"
DOC = ROOT / "docs" / "cpp-client.md"

LOGS_SQL = "SELECT block_num, log_index, address, topic0, data FROM eth_rpc.logs " \
           "ORDER BY block_num, log_index"
HUGE_SQL = "SELECT i, i * 3 AS j FROM range(10000000000) t(i)"
# Endless and costly per row: the server's CPU shows whether it still works.
COSTLY_SQL = "SELECT i, md5(i::VARCHAR) AS h FROM range(10000000000) t(i)"


def example(name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXAMPLES / f"sluice_client_{name}"), *args], capture_output=True,
                          text=True, timeout=timeout)


def json_lines(text: str) -> list:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def metric(server, name: str, **labels) -> float:
    """A sample of the server's Prometheus metrics (0 when absent)."""
    with urllib.request.urlopen(server.admin_url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if m and ",".join(sorted(m.group(1).split(","))) == want:
            total += float(m.group(2))
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_in_a_second(pid: int) -> float:
    """CPU seconds a process uses during one second, after waiting a second (time
    for a stop to take effect)."""
    time.sleep(1.0)
    start = cpu_seconds(pid)
    time.sleep(1.0)
    return cpu_seconds(pid) - start


@pytest.fixture(scope="module")
def logs(server):
    t = query(server.client(), LOGS_SQL)
    assert t.num_rows > 20
    return t


# ---- batch queries ---------------------------------------------------------------------


def test_read_all_reads_every_row_in_batches_of_the_fetch_size(server, logs):
    for fetch_size, batches in ((7, math.ceil(logs.num_rows / 7)), (None, 1)):
        args = ["--flight-url", server.location, "--sql", LOGS_SQL]
        if fetch_size:
            args += ["--fetch-size", str(fetch_size)]
        p = example("read_all", *args)
        assert p.returncode == 0, p.stderr
        got = json.loads(p.stdout)
        assert got["rows"] == logs.num_rows
        assert got["batches"] == batches
        assert got["rss_growth_bytes"] >= 0


def test_memory_stays_bounded_whatever_the_answer_size(server):
    # 5,000,000 rows of at least 52 bytes (two int64s, a 32-character md5): 260 MB
    # through the client, read page by page.
    sql = "SELECT i, i * 2 AS j, md5(i::VARCHAR) AS h FROM range(5000000) t(i)"
    p = example("read_all", "--flight-url", server.location, "--sql", sql,
                "--fetch-size", "10000", timeout=300)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got["rows"] == 5_000_000 and got["batches"] == 500
    assert got["rss_growth_bytes"] < 64 << 20, got


def test_pages_have_the_fetch_size_and_callbacks_add_up(server, logs, tmp_path):
    out = tmp_path / "pages.arrows"
    p = example("query", "--flight-url", server.location, "--sql", LOGS_SQL, "--fetch-size", "10",
                "--out", str(out))
    assert p.returncode == 0, p.stderr
    *pages, summary = json_lines(p.stdout)
    assert [pg["page"] for pg in pages] == list(range(1, len(pages) + 1))
    assert all(pg["rows"] == 10 for pg in pages[:-1]) and 1 <= pages[-1]["rows"] <= 10
    assert sum(pg["rows"] for pg in pages) == logs.num_rows
    assert summary == {"rows": logs.num_rows, "pages": len(pages), "complete": True,
                       "timed_out": False, "status": "OK"}
    got = ipc.open_stream(pa.OSFile(str(out))).read_all()
    assert got.equals(logs)
    assert [b.num_rows for b in ipc.open_stream(pa.OSFile(str(out)))] == \
        [pg["rows"] for pg in pages]


def test_max_pages_stops_at_the_page(server, logs, tmp_path):
    out = tmp_path / "three.arrows"
    p = example("query", "--flight-url", server.location, "--sql", LOGS_SQL, "--fetch-size", "5",
                "--max-pages", "3", "--out", str(out))
    assert p.returncode == 0, p.stderr
    *pages, summary = json_lines(p.stdout)
    assert [pg["page"] for pg in pages] == [1, 2, 3]
    assert summary["rows"] == 15 and summary["pages"] == 3 and not summary["complete"]
    assert summary["status"] == "OK"
    assert ipc.open_stream(pa.OSFile(str(out))).read_all().equals(logs.slice(0, 15))


def test_max_pages_stops_the_server(server):
    # An endless answer: only the cancelled call can end it on the server.
    before = metric(server, "sluice_queries_total", kind="batch", outcome="cancelled")
    p = example("query", "--flight-url", server.location, "--sql", HUGE_SQL, "--fetch-size",
                "1000", "--max-pages", "2")
    assert p.returncode == 0, p.stderr
    assert json_lines(p.stdout)[-1]["rows"] == 2000
    wait_for(lambda: metric(server, "sluice_queries_total", kind="batch",
                            outcome="cancelled") >= before + 1, 10, "the query to be cancelled")


def test_cancel_from_another_thread_stops_the_server_work(server):
    srv_pid = server.proc.pid
    before = metric(server, "sluice_queries_total", kind="batch", outcome="cancelled")
    cpu_start = cpu_seconds(srv_pid)
    p = example("query", "--flight-url", server.location, "--sql", COSTLY_SQL, "--fetch-size",
                "50000", "--cancel-after-pages", "60")
    cpu_query = cpu_seconds(srv_pid) - cpu_start
    assert p.returncode == 0, p.stderr
    *pages, summary = json_lines(p.stdout)
    assert len(pages) >= 60 and not summary["complete"]
    assert "Cancelled" in summary["status"]
    wait_for(lambda: metric(server, "sluice_queries_total", kind="batch",
                            outcome="cancelled") >= before + 1, 10, "the query to be cancelled")
    # Within a second the server has stopped computing the (endless) answer: its
    # CPU use over the next second is a fraction of what the query used.
    idle = cpu_in_a_second(srv_pid)
    assert cpu_query > 0.3, f"the query used {cpu_query:.2f}s CPU: too little to tell"
    assert idle < 0.2, f"server still busy after cancel: {idle:.2f}s CPU in 1s"


def test_timeout_stops_a_query_still_computing(server):
    """An aggregate computes for long before its first record batch, writing
    nothing: the server notices the deadline at once (not at its next write)
    and interrupts the engine."""
    srv_pid = server.proc.pid
    sql = "SELECT sum(hash(i)) AS s FROM range(100000000000) t(i)"
    cpu_start = cpu_seconds(srv_pid)
    p = example("query", "--flight-url", server.location, "--sql", sql, "--timeout-ms", "1500")
    cpu_query = cpu_seconds(srv_pid) - cpu_start
    assert p.returncode == 1
    assert "Deadline Exceeded" in p.stderr or "TimedOut" in p.stderr, p.stderr
    idle = cpu_in_a_second(srv_pid)
    assert cpu_query > 0.3, f"the query used {cpu_query:.2f}s CPU: too little to tell"
    assert idle < 0.2, f"server still busy after the deadline: {idle:.2f}s CPU in 1s"
    assert query(server.client(), "SELECT 1 AS one").to_pylist() == [{"one": 1}]


def test_timeout_ends_the_query(server):
    before = metric(server, "sluice_queries_total", kind="batch", outcome="cancelled")
    p = example("query", "--flight-url", server.location, "--sql", HUGE_SQL, "--fetch-size",
                "10000", "--timeout-ms", "1500")
    assert p.returncode == 1
    summary = json_lines(p.stdout)[-1]
    assert summary["timed_out"] is True, summary
    assert summary["rows"] > 0 and not summary["complete"]
    wait_for(lambda: metric(server, "sluice_queries_total", kind="batch",
                            outcome="cancelled") >= before + 1, 10, "the server to stop it")


def test_server_errors_come_back_with_the_servers_message(server):
    p = example("query", "--flight-url", server.location, "--sql", "SELECT nope FROM eth_rpc.blocks")
    assert p.returncode == 1
    assert "Invalid" in p.stderr and "nope" in p.stderr
    p = example("query", "--flight-url", server.location, "--sql", "DROP TABLE eth_rpc.blocks")
    assert p.returncode == 1 and "only read-only queries" in p.stderr


# ---- streaming ---------------------------------------------------------------------------


def stream_truth(server, sql: str, upto: int) -> collections.Counter:
    rows = query(server.client(), f"SELECT * FROM ({sql}) WHERE block_num <= {upto}")
    out = collections.Counter()
    for r in rows.to_pylist():
        out[",".join("" if v is None else "0x" + v.hex() if isinstance(v, bytes) else str(v)
                     for v in r.values())] += 1
    return out


def test_stream_killed_and_restarted_delivers_every_row_exactly_once(make_anvil, make_server,
                                                                    tmp_path):
    node = make_anvil()
    node.traffic(blocks=12, seed=5)
    srv = make_server(tmp_path / "data", node.url, "--server-microbatch-max-interval", "2")
    srv.wait_head(node.head())
    sql = "SELECT block_num, tx_index, tx_hash, value FROM eth_rpc.transactions"
    out, cursor = tmp_path / "rows.txt", tmp_path / "rows.cursor"
    args = [str(EXAMPLES / "sluice_client_stream_to_file"), "--flight-url", srv.location,
            "--sql", sql, "--out", str(out), "--cursor-file", str(cursor), "--fetch-size", "3"]

    stop = threading.Event()

    def mine() -> None:  # new blocks arrive while the client crashes and restarts
        seed = 100
        while not stop.is_set():
            node.traffic(blocks=2, seed=seed)
            seed += 1

    miner = threading.Thread(target=mine, daemon=True)
    miner.start()
    rng = random.Random(7)
    resumed_from, left_past_cursor = [], 0
    try:
        for i in range(12):
            saved = json.loads(cursor.read_text())["anvil"]["block_number"] if \
                cursor.exists() else None
            resumed_from.append(saved)
            if i % 2:  # killed at the worst moment: rows applied, cursor not saved
                p = subprocess.run(args + ["--crash-after", str(rng.randint(1, 3))],
                                   capture_output=True, timeout=120)
                assert p.returncode == -signal.SIGKILL, p.stderr
                after = json.loads(cursor.read_text())["anvil"]["block_number"] if \
                    cursor.exists() else -1
                rows = out.read_text().splitlines()
                left_past_cursor += any(int(r.split(",")[0]) > after for r in rows)
            else:  # killed at a random moment
                p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                time.sleep(rng.uniform(0.1, 1.0))
                p.send_signal(signal.SIGKILL)
                p.wait(10)
    finally:
        stop.set()
        miner.join(120)
    head = node.head()
    srv.wait_head(head)
    p = subprocess.run(args + ["--until-block", str(head)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    final = json.loads(cursor.read_text())["anvil"]["block_number"]
    assert final >= head
    lines = out.read_text().splitlines()
    got = collections.Counter(lines)
    dupes = [line for line, n in got.items() if n > 1]
    assert not dupes, f"rows delivered twice: {dupes[:5]}"
    assert got == stream_truth(srv, sql, final)
    assert len([b for b in resumed_from if b is not None]) >= 6, \
        f"too few restarts resumed from a cursor: {resumed_from}"
    # The crashes did leave rows past the saved cursor, which the restarts dropped.
    assert left_past_cursor >= 3


def test_stream_applies_reorgs(make_anvil, make_server, tmp_path):
    """Across a reorg (Reorg event, then the replacing microbatch), the file the
    example keeps holds exactly the canonical chain's rows."""
    node = make_anvil()
    node.traffic(blocks=10, txs_per_block=4, seed=9)
    srv = make_server(tmp_path / "data", node.url, "--server-microbatch-max-interval", "3")
    head = node.head()
    srv.wait_head(head)
    sql = "SELECT block_num, tx_index, tx_hash FROM eth_rpc.transactions"
    out, cursor = tmp_path / "rows.txt", tmp_path / "rows.cursor"

    def at() -> int:
        return json.loads(cursor.read_text())["anvil"]["block_number"] if cursor.exists() else -1

    p = subprocess.Popen([str(EXAMPLES / "sluice_client_stream_to_file"), "--flight-url",
                          srv.location, "--sql", sql, "--out", str(out), "--cursor-file",
                          str(cursor)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: at() >= head, 60, "the stream to reach the head")
        before = collections.Counter(out.read_text().splitlines())
        anvil_reorg(node.url, 3, moved_txs(node.url, 3))
        node.traffic(blocks=2, txs_per_block=4, seed=11)
        final = wait_store_matches_node(srv, node)
        wait_for(lambda: at() >= final, 60, "the stream to pass the reorg")
    finally:
        p.kill()
        p.wait(10)
    got = collections.Counter(out.read_text().splitlines())
    truth = stream_truth(srv, sql, at())
    assert got == truth
    assert set(before) - set(truth), "the reorg changed no row: the test proves nothing"


def test_stream_refusals_come_back(server, tmp_path):
    # Not --out /dev/null: the example replaces its output file by rename, which as
    # root turns /dev/null into a regular file for the whole machine.
    p = subprocess.run([str(EXAMPLES / "sluice_client_stream_to_file"), "--flight-url",
                        server.location, "--sql", "SELECT count(*) FROM eth_rpc.blocks",
                        "--out", str(tmp_path / "rows.txt"), "--cursor-file", "/nonexistent/c"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "NonIncrementalOp" in p.stderr


# ---- the server's sluice-fetch-size header, and the Python client sending it ------------


def batch_sizes(server, sql: str, headers) -> list:
    c = server.client()
    options = flight.FlightCallOptions(headers=headers)
    info = c.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), options)
    return [chunk.data.num_rows for chunk in c.do_get(info.endpoints[0].ticket, options)
            if chunk.data.num_rows]


def test_fetch_size_header_cuts_the_batches(server):
    sql = "SELECT * FROM range(1000) t(i)"
    assert batch_sizes(server, sql, [(b"sluice-fetch-size", b"300")]) == [300, 300, 300, 100]
    assert batch_sizes(server, sql, [(b"sluice-fetch-size", b"1048576")]) == [1000]
    assert batch_sizes(server, sql, []) == [1000]
    for bad in (b"0", b"-5", b"1048577", b"ten", b"12 ", b""):
        with pytest.raises(pa.ArrowInvalid, match="sluice-fetch-size"):
            batch_sizes(server, sql, [(b"sluice-fetch-size", bad)])
    assert batch_sizes(server, sql, []) == [1000]  # the server is still up


def test_fetch_size_header_cuts_streaming_data_batches(server, logs):
    from sluice_harness import StreamReader
    head = server.stored_head()
    reader = StreamReader(server.location, "SELECT block_num, log_index FROM eth_rpc.logs",
                          headers=[(b"amp-stream", b"true"), (b"sluice-fetch-size", b"2")])
    try:
        messages = reader.until_block(head)
    finally:
        reader.close()
    sizes = [batch.num_rows for kind, _, batch in messages if kind == "data"]
    assert max(sizes) == 2
    assert sum(sizes) == logs.num_rows


def test_python_execute_stream_sends_the_fetch_size(server):
    import sys
    sys.path.insert(0, str(ROOT / "python"))
    try:
        import sluice
    finally:
        sys.path.remove(str(ROOT / "python"))

    async def run() -> list:
        with sluice.Client(flight_url=server.location) as client:
            result = await client.execute_stream(
                "SELECT * FROM range(100) t(i)", stream_config=sluice.StreamConfig(fetch_size=30))
            sizes = [chunk.data.num_rows for chunk in result._reader if chunk.data.num_rows]
            await result.cancel()
            return sizes

    assert asyncio.run(run()) == [30, 30, 30, 10]


# ---- docs/cpp-client.md: its blocks are the examples' code, and its project builds --------


def doc_blocks() -> list:
    """(marker or None, language, code) of each fenced block of the doc."""
    text = DOC.read_text()
    out = []
    for m in re.finditer(r"(?:<!-- (\S+) -->\n)?```(\w+)\n(.*?)```", text, re.S):
        out.append((m.group(1), m.group(2), m.group(3)))
    return out


def region(path: Path, name: str) -> str:
    text = path.read_text()
    m = re.search(rf"[ ]*// \[doc:{name}\]\n(.*?)[ ]*// \[end:{name}\]\n", text, re.S)
    assert m, f"no region {name} in {path}"
    return textwrap.dedent(m.group(1))


def test_doc_shows_the_examples_code():
    shown = [(marker, code) for marker, _, code in doc_blocks()
             if marker and marker.startswith("client/examples/")]
    assert len(shown) >= 4
    for marker, code in shown:
        path, name = marker.split("#")
        assert code == region(ROOT / path, name), f"docs/cpp-client.md block {marker} is stale"


def test_doc_project_builds_against_the_installed_library(server, tmp_path):
    prefix, project = tmp_path / "prefix", tmp_path / "project"
    subprocess.run(["cmake", "--install", str(BUILD), "--component", "sluice_client",
                    "--prefix", str(prefix)], check=True, capture_output=True, timeout=120)
    assert (prefix / "lib" / "cmake" / "sluice_client" / "sluice_clientConfig.cmake").exists()
    assert (prefix / "include" / "sluice" / "client" / "api.h").exists()
    # The client links Arrow Flight only: no DuckDB, none of the server's code.
    libs = subprocess.run(["ldd", str(prefix / "lib" / "libsluice_client.so")],
                          capture_output=True, text=True, check=True).stdout
    assert "libarrow_flight" in libs and "duckdb" not in libs and "not found" not in libs
    files = {marker: code for marker, _, code in doc_blocks() if marker and "/" not in marker}
    project.mkdir()
    for name in ("CMakeLists.txt", "main.cc"):
        (project / name).write_text(files[name])
    env = dict(os.environ, SLUICE_FLIGHT_URL=server.location)
    cmake = ["cmake", "-S", str(project), "-B", str(project / "build"), "-G", "Ninja",
             f"-DCMAKE_PREFIX_PATH={prefix}"]
    if shutil.which("ccache"):
        cmake.append("-DCMAKE_CXX_COMPILER_LAUNCHER=ccache")
    for cmd in (cmake, ["cmake", "--build", str(project / "build")]):
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run([str(project / "build" / "latest_blocks")], capture_output=True, text=True,
                       timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    truth = query(server.client(), "SELECT block_num, gas_used FROM eth_rpc.blocks "
                                   "ORDER BY block_num DESC LIMIT 5").to_pylist()
    assert p.stdout.splitlines() == [f"block {r['block_num']}: {r['gas_used']} gas"
                                     for r in truth]


# ---- parameters: ? / $1 bound by the server as typed values -------------------------------


def run_query(server, sql: str, *params: str, tmp_path, extra=()) -> tuple:
    out = tmp_path / f"q{time.monotonic_ns()}.arrows"
    args = ["--flight-url", server.location, "--sql", sql, "--out", str(out), *extra]
    for p in params:
        args += ["--param", p]
    p = example("query", *args)
    assert p.returncode == 0, p.stderr
    return ipc.open_stream(pa.OSFile(str(out))).read_all(), json_lines(p.stdout)


def test_placeholders_bind_values_like_literals(server, tmp_path):
    n = server.stored_head()
    got, lines = run_query(server, "SELECT block_num, tx_index, tx_hash FROM eth_rpc.transactions "
                           "WHERE block_num BETWEEN ? AND ? ORDER BY block_num, tx_index",
                           f"int64:{n - 5}", f"int64:{n}", tmp_path=tmp_path,
                           extra=["--fetch-size", "3"])
    want = query(server.client(), "SELECT block_num, tx_index, tx_hash FROM eth_rpc.transactions "
                                  f"WHERE block_num BETWEEN {n - 5} AND {n} "
                                  "ORDER BY block_num, tx_index")
    assert want.num_rows > 3
    assert got.equals(want)
    assert all(line["rows"] == 3 for line in lines[:-2])  # the fetch size holds here too


def test_dollar_placeholders_keep_their_types(server, tmp_path):
    got, _ = run_query(server, "SELECT $1 AS a, $2 AS b, $3 AS c, $4 AS d, $5 AS e, $1 + 1 AS f",
                       "int64:41", "double:1.5", "string:héllo, world", "bool:true", "null",
                       tmp_path=tmp_path)
    assert got.to_pylist() == [{"a": 41, "b": 1.5, "c": "héllo, world", "d": True, "e": None,
                                "f": 42}]
    assert got.schema.field("a").type == pa.int64()
    assert got.schema.field("b").type == pa.float64()
    assert got.schema.field("c").type == pa.string()
    assert got.schema.field("d").type == pa.bool_()


def test_a_parameter_holding_sql_is_a_value(server, tmp_path):
    evil = "x' OR 1=1; SELECT * FROM eth_rpc.blocks; --"
    got, _ = run_query(server, "SELECT ? AS v, count(*) AS n FROM eth_rpc.blocks "
                       "WHERE CAST(hash AS VARCHAR) = ?", f"string:{evil}", f"string:{evil}",
                       tmp_path=tmp_path)
    assert got.to_pylist() == [{"v": evil, "n": 0}]
    assert query(server.client(), "SELECT count(*) AS n FROM eth_rpc.blocks").column(0)[0] \
        .as_py() > 0


def test_parameters_that_do_not_fit_are_refused(server):
    p = example("query", "--flight-url", server.location, "--sql", "SELECT ? AS a, ? AS b",
                "--param", "int64:1")
    assert p.returncode == 1 and "parameter" in p.stderr
    p = example("query", "--flight-url", server.location, "--sql", "SELECT 1 AS a",
                "--param", "int64:1")
    assert p.returncode == 1 and "parameter" in p.stderr
