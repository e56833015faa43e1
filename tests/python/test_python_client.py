"""The Python package `sluice` (python/, issue 5 part 3), installed by pip from the
tree, against a real anvil node and a real server: the query helpers against raw
pyarrow, stream events and resume cursors (kill -9 of a consumer included), the
asyncio pages of seed 002, Arrow IPC files (seed 003), and every `# test: run`
example of docs/python.md. (Seed 000 runs with spicepy itself:
test_client_spicepy.py.)"""
from __future__ import annotations

import asyncio
import collections
import json
import os
import queue
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from sluice_harness import (PYTHON, ROOT, Server, anvil_reorg, moved_txs, query, rpc,
                            wait_store_matches_node)

PACKAGE = ROOT / "python"
CONFIG = ROOT / "demo" / "config.toml"
DOC = ROOT / "docs" / "python.md"
DOC_URL = "grpc://localhost:1602"
TX_SQL = "SELECT block_num, tx_index, tx_hash, value FROM eth_rpc.transactions"


# ---- fixtures ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sl(tmp_path_factory) -> ModuleType:
    """The package, installed as a user would: `pip install --no-deps
    --no-build-isolation ./python`, offline (--no-index), into a directory of its
    own (--target) so the shared .venv is left alone; imported from there."""
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--target", str(target), str(PACKAGE)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"pip install failed:\n{proc.stdout}\n{proc.stderr}"
    for name in [m for m in sys.modules if m == "sluice" or m.startswith("sluice.")]:
        del sys.modules[name]
    sys.path.insert(0, str(target))
    try:
        import sluice
        assert Path(sluice.__file__).resolve().is_relative_to(target.resolve()), sluice.__file__
        sluice.SITE = target  # for subprocesses
        yield sluice
    finally:
        sys.path.remove(str(target))
        for name in [m for m in sys.modules if m == "sluice" or m.startswith("sluice.")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def pserver(chain, tmp_path_factory):
    """The demo configuration (derived tables eth.*), 4-block microbatches, record
    batches of 100 rows by default (execute_stream asks for `fetch_size` rows per
    batch with the sluice-fetch-size header instead) and a fast keep-alive."""
    tmp = tmp_path_factory.mktemp("pserver")
    srv = Server(tmp / "data", chain.url, "--config", str(CONFIG),
                 "--server-microbatch-max-interval", "4", "--rows-per-batch", "100",
                 "--testing-keep-alive-interval-ms", "400")
    srv.wait_head(chain.head())
    yield srv
    srv.stop()


@pytest.fixture
def client(sl, pserver):
    c = sl.Client(flight_url=pserver.location)
    yield c
    c.close()


def raw(srv, sql):
    """The truth: the same SQL through bare pyarrow.flight."""
    return query(srv.client(), sql)


def healthy(srv) -> None:
    """The server is up and answers a fresh query."""
    assert srv.proc.poll() is None, srv.log_text()
    assert raw(srv, "SELECT 41 + 1 AS x").column("x").to_pylist() == [42]


def key(r):
    return (r["block_num"], r["tx_index"])


# ---- install ----------------------------------------------------------------------------

def test_pip_install_from_the_tree(sl):
    dist = next(sl.SITE.glob("sluice-*.dist-info"))
    meta = (dist / "METADATA").read_text()
    assert f"Version: {sl.__version__}" in meta
    assert re.search(r"^Requires-Dist: pyarrow", meta, re.M), meta
    assert (sl.SITE / "sluice" / "py.typed").exists()  # typed package (PEP 561)
    for name in sl.__all__:
        assert getattr(sl, name) is not None


# ---- batch queries ----------------------------------------------------------------------

def test_query_helpers_equal_raw_pyarrow(sl, client, pserver):
    sql = TX_SQL + " ORDER BY block_num, tx_index"
    want = raw(pserver, sql)
    assert want.num_rows > 100
    reader = client.query(sql)
    assert isinstance(reader, flight.FlightStreamReader)
    assert reader.read_all().equals(want)
    assert client.query_table(sql).equals(want)
    assert client.query_pandas(sql).equals(want.to_pandas())
    batches = list(client.query_batches(sql))
    assert all(isinstance(b, pa.RecordBatch) and b.num_rows for b in batches)
    assert pa.Table.from_batches(batches).equals(want)
    many = list(client.query_batches("SELECT x FROM range(10000) t(x) ORDER BY x"))
    assert len(many) > 1 and all(b.num_rows for b in many)  # the empty end batch skipped
    assert pa.Table.from_batches(many).column("x").to_pylist() == list(range(10000))
    # An API key goes as `authorization: Bearer <key>`; today's server accepts it.
    with sl.Client("k3y", flight_url=pserver.location) as keyed:
        assert (b"authorization", b"Bearer k3y") in keyed._headers
        assert keyed.query_table(sql).equals(want)


def test_query_errors_and_timeout(sl, client, pserver):
    with pytest.raises(pa.ArrowInvalid, match="syntax error"):
        client.query_table("SELEC 1")
    with pytest.raises(pa.ArrowInvalid, match="only read-only queries"):
        client.query_table("CREATE TABLE t (a INT)")
    with pytest.raises(pa.ArrowInvalid, match="NonIncrementalOp: Aggregate function COUNT"):
        client.stream("SELECT count(*) FROM eth_rpc.blocks")
    with pytest.raises(TypeError):
        client.query(b"SELECT 1")
    with sl.Client(flight_url=pserver.location, timeout=0.5) as hasty:
        t0 = time.monotonic()
        with pytest.raises(flight.FlightTimedOutError):
            hasty.query_table("SELECT * FROM range(1000000000) t(x)")
        assert time.monotonic() - t0 < 10
    healthy(pserver)
    dead = sl.Client(flight_url="grpc://127.0.0.1:1", timeout=5)
    with pytest.raises(flight.FlightUnavailableError):
        dead.query_table("SELECT 1")


def test_query_batches_leaving_early_cancels(client, pserver):
    t0 = time.monotonic()
    batches = client.query_batches("SELECT * FROM range(1000000000) t(x)")
    first = next(batches)
    assert first.num_rows > 0
    batches.close()
    assert time.monotonic() - t0 < 10
    healthy(pserver)


# ---- streams ----------------------------------------------------------------------------

def until(sl, stream, block: int, timeout: float = 90) -> list:
    """Events of `stream` up to the MicrobatchEnd at or past `block`; a watchdog
    closes the stream (ending the iteration) after `timeout` seconds."""
    timer = threading.Timer(timeout, stream.close)
    timer.start()
    events = []
    try:
        for ev in stream:
            events.append(ev)
            if isinstance(ev, sl.MicrobatchEnd) and ev.range.end >= block:
                return events
    finally:
        timer.cancel()
    pytest.fail(f"stream ended before block {block}; last events {events[-3:]}")


def check_order(sl, events, first_block: int, block_col: str = "block_num") -> list:
    """The protocol's order: [Reorg] MicrobatchStart (Data|BlockComplete)* MicrobatchEnd,
    microbatches contiguous from first_block, rows in their range and block order,
    blocks announced complete exactly once. Returns the rows (applied per protocol)."""
    held: dict = {}
    expected, current, pending, reorg_from = first_block, None, [], None
    for ev in events:
        if isinstance(ev, sl.KeepAlive):
            assert current is None
        elif isinstance(ev, sl.Reorg):
            assert current is None
            reorg_from = ev.invalidate_from
        elif isinstance(ev, sl.MicrobatchStart):
            assert current is None
            current, pending, complete_next = ev.range, [], ev.range.start
            assert ev.is_reorg == (reorg_from is not None)
            if ev.is_reorg:
                assert ev.range.start == reorg_from <= expected
            else:
                assert ev.range.start == expected, (ev, expected)
            assert isinstance(ev.prev_hash, str) and ev.prev_hash.startswith("0x")
        elif isinstance(ev, sl.Data):
            assert current is not None and ev.range == current and ev.num_rows > 0
            for r in ev.batch.to_pylist():
                assert complete_next <= r[block_col] <= current.end
                assert r[block_col] in current
                pending.append(r)
        elif isinstance(ev, sl.BlockComplete):
            assert current is not None and ev.start == complete_next <= ev.end <= current.end
            complete_next = ev.end + 1
        elif isinstance(ev, sl.MicrobatchEnd):
            assert ev.range == current and complete_next == current.end + 1
            assert ev.cursor["anvil"]["block_number"] == current.end
            if reorg_from is not None:
                held = {b: rs for b, rs in held.items() if b < reorg_from}
            for r in pending:
                held.setdefault(r[block_col], []).append(r)
            expected, current, reorg_from = current.end + 1, None, None
        else:
            pytest.fail(f"unknown event {ev!r}")
    return [r for b in sorted(held) for r in held[b]]


def test_stream_events_in_order_and_rows_exact_as_blocks_are_mined(sl, chain, client, pserver):
    head = pserver.stored_head()
    with client.stream(TX_SQL) as stream:
        assert stream.schema.names == ["block_num", "tx_index", "tx_hash", "value"]
        events = until(sl, stream, head)
        chain.traffic(blocks=3, seed=21)
        new_head = chain.head()
        pserver.wait_head(new_head)
        events += until(sl, stream, new_head)
        assert stream.cursor == events[-1].cursor
    assert stream.closed
    kinds = collections.Counter(type(e).__name__ for e in events)
    assert kinds["MicrobatchStart"] == kinds["MicrobatchEnd"] >= (new_head + 1) // 4
    assert kinds["Data"] > 0 and kinds["BlockComplete"] > 0 and kinds["Reorg"] == 0
    rows = check_order(sl, events, 0)
    want = raw(pserver, f"{TX_SQL} WHERE block_num <= {new_head}").to_pylist()
    assert sorted(rows, key=key) == sorted(want, key=key)
    assert len(rows) == len({r["tx_hash"] for r in rows})


def test_stream_resumes_after_cursor_and_settings_clause(sl, client, pserver):
    head = pserver.stored_head()
    mid = head // 2
    with client.stream(TX_SQL) as stream:
        first = until(sl, stream, mid)
    cursor = first[-1].cursor
    cut = cursor["anvil"]["block_number"]
    # The clause as well as the header; the cursor continues right after `cut`.
    with client.stream(TX_SQL + " SETTINGS stream = true", cursor=cursor) as stream:
        assert stream.cursor == cursor
        second = until(sl, stream, head)
    assert isinstance(second[0], sl.MicrobatchStart) and second[0].range.start == cut + 1
    rows = check_order(sl, first, 0) + check_order(sl, second, cut + 1)
    want = raw(pserver, f"{TX_SQL} WHERE block_num <= {second[-1].range.end}").to_pylist()
    assert sorted(rows, key=key) == sorted(want, key=key)
    with pytest.raises(pa.ArrowInvalid, match="amp-resume"):  # refused cursor: INVALID_ARGUMENT
        client.stream(TX_SQL, cursor={"anvil": {"block_number": 1, "hash": "0x00"}})


def test_stream_keep_alive_and_close_from_another_thread(sl, client, pserver):
    head = pserver.stored_head()
    stream = client.stream("SELECT block_num, hash FROM eth_rpc.blocks")
    until(sl, stream, head)
    ev = next(stream)  # the chain is idle: keep-alives (every 400 ms on this server)
    assert isinstance(ev, sl.KeepAlive) and ev.metadata["kind"] == "keep_alive"
    got = []
    reader = threading.Thread(target=lambda: got.extend(stream), daemon=True)
    reader.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    stream.close()
    reader.join(10)
    assert not reader.is_alive() and time.monotonic() - t0 < 10
    assert all(isinstance(e, sl.KeepAlive) for e in got)
    assert list(stream) == []
    healthy(pserver)


CONSUMER = r'''
"""A consumer that commits each microbatch to an append-only log (one JSON line,
fsynced) and lets sluice keep the cursor file; on start it drops log lines past
the cursor file's microbatch (committed before a crash, not yet covered)."""
import json, os, random, signal, sys, time
from sluice import Client, Data, MicrobatchEnd, MicrobatchStart, load_cursor

url, log_path, cursor_path, stop_at, delay, crash_after = sys.argv[1:7]
stop_at, delay, crash_after = int(stop_at), float(delay), int(crash_after)
SQL = "SELECT block_num, tx_index, tx_hash, value FROM eth_rpc.transactions"

cursor = load_cursor(cursor_path)
lines = open(log_path).readlines() if os.path.exists(log_path) else []
keep = 0
for i, line in enumerate(lines):
    if line.endswith("\n") and json.loads(line)["cursor"] == cursor:
        keep = i + 1
with open(log_path, "w") as f:
    f.writelines(lines[:keep])
    f.flush()
    os.fsync(f.fileno())
print("recovered", keep, "dropped", len(lines) - keep, flush=True)

rng = random.Random()
commits = 0
with open(log_path, "a") as log, Client(flight_url=url).stream(SQL, cursor_file=cursor_path) as s:
    for ev in s:
        time.sleep(rng.uniform(0, delay))
        if isinstance(ev, MicrobatchStart):
            rows, drop_from = [], (ev.range.start if ev.is_reorg else None)
        elif isinstance(ev, Data):
            rows += [dict(r, tx_hash=r["tx_hash"].hex()) for r in ev.batch.to_pylist()]
        elif isinstance(ev, MicrobatchEnd):
            log.write(json.dumps({"start": ev.range.start, "end": ev.range.end,
                                  "drop_from": drop_from, "cursor": ev.cursor,
                                  "rows": rows}) + "\n")
            log.flush()
            os.fsync(log.fileno())
            print("committed", ev.range.end, flush=True)
            commits += 1
            if commits == crash_after:  # die in the window: rows committed, cursor not yet
                os.kill(os.getpid(), signal.SIGKILL)
            if ev.range.end >= stop_at:
                break
print("done", flush=True)
'''


class Consumer:
    def __init__(self, sl, script, srv, tmp, stop_at, delay, crash_after=0):
        env = dict(os.environ, PYTHONPATH=str(sl.SITE))
        self.proc = subprocess.Popen(
            [str(PYTHON), "-u", str(script), srv.location, str(tmp / "rows.jsonl"),
             str(tmp / "rows.cursor"), str(stop_at), str(delay), str(crash_after)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue = queue.Queue()
        self.recovered = None  # (lines kept, lines dropped) at start-up
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            if line.startswith("recovered"):
                self.recovered = (int(line.split()[1]), int(line.split()[3]))
            self.lines.put(line.strip())
        self.lines.put(None)

    def wait_commits(self, n, timeout=60):
        seen, deadline = 0, time.monotonic() + timeout
        while seen < n:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, f"consumer ended: {self.proc.stderr.read()}"
            seen += line.startswith("committed")

    def kill9(self):
        assert self.proc.poll() is None, "the consumer ended before it was killed"
        self.proc.kill()  # SIGKILL
        self.proc.wait()


def test_cursor_file_consumer_killed_resumes_exactly_once(sl, chain, pserver, tmp_path):
    """Consume with cursor_file in a subprocess, kill -9 it at random moments (blocks
    are mined between the kills), restart it with the same files: the log ends holding the
    batch query's rows exactly once. "Delivered" = committed: the rows of a
    microbatch whose MicrobatchEnd the consumer handled, which the cursor file then
    covers; lines past the cursor file's microbatch are dropped on restart."""
    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER)
    # The worst moment, made certain: SIGKILL right after committing the 2nd
    # microbatch's rows, before its cursor is written. The restart drops that line.
    c = Consumer(sl, script, pserver, tmp_path, stop_at=10**9, delay=0.0, crash_after=2)
    assert c.proc.wait(60) == -9
    c = Consumer(sl, script, pserver, tmp_path, stop_at=10**9, delay=0.06)
    c.wait_commits(1)
    assert c.recovered == (1, 1)
    # Then kill -9 at random moments, mining blocks in between.
    rng = random.Random(5)
    for round_ in range(3):
        time.sleep(rng.uniform(0, 0.3))
        c.kill9()
        chain.traffic(blocks=2, seed=40 + round_)
        c = Consumer(sl, script, pserver, tmp_path, stop_at=10**9, delay=0.06)
        c.wait_commits(rng.randint(1, 3))
        assert c.recovered[0] >= 2
    c.kill9()
    final = chain.head()
    pserver.wait_head(final)
    c = Consumer(sl, script, pserver, tmp_path, stop_at=final, delay=0.0)
    assert c.proc.wait(120) == 0, c.proc.stderr.read()

    records = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert records[-1]["end"] >= final
    for prev, rec in zip(records, records[1:]):  # contiguous microbatches, no gap, no overlap
        assert rec["start"] == prev["end"] + 1 and rec["drop_from"] is None
    assert records[0]["start"] == 0
    assert sl.load_cursor(tmp_path / "rows.cursor") == records[-1]["cursor"]
    rows = [r for rec in records for r in rec["rows"]]
    want = raw(pserver, f"{TX_SQL} WHERE block_num <= {records[-1]['end']}").to_pylist()
    for r in want:
        r["tx_hash"] = r["tx_hash"].hex()
    assert sorted(rows, key=key) == sorted(want, key=key)
    assert len({r["tx_hash"] for r in rows}) == len(rows)


def test_cursor_file_written_after_the_microbatch_is_handled(sl, client, tmp_path):
    path = tmp_path / "c.json"
    with client.stream(TX_SQL, cursor_file=path) as stream:
        ends = []
        for ev in stream:
            if isinstance(ev, sl.MicrobatchEnd):
                # yielded, not handled yet: the file still holds the previous cursor
                assert sl.load_cursor(path) == (ends[-1].cursor if ends else None)
                ends.append(ev)
                if len(ends) == 2:
                    break
    assert sl.load_cursor(path) == ends[-1].cursor == stream.cursor  # leaving `with`: handled
    assert not list(tmp_path.glob(".*.tmp"))
    # An exception while handling: the microbatch is not counted as delivered.
    with pytest.raises(RuntimeError):
        with client.stream(TX_SQL, cursor_file=path) as stream:
            for ev in stream:
                if isinstance(ev, sl.MicrobatchStart):
                    assert ev.range.start == ends[-1].range.end + 1  # resumed from the file
                if isinstance(ev, sl.MicrobatchEnd):
                    raise RuntimeError("crash while applying")
    assert sl.load_cursor(path) == ends[-1].cursor
    path.write_text("not json")
    with pytest.raises(ValueError, match="does not hold JSON"):
        client.stream(TX_SQL, cursor_file=path)


# ---- asyncio ----------------------------------------------------------------------------

def test_execute_stream_pages_of_fetch_size(sl, client):
    n = 12_345
    calls = []

    async def main():
        cfg = sl.StreamConfig(fetch_size=1000, page_callback=lambda p, t: calls.append((p, t)))
        result = await client.execute_stream(
            f"SELECT x, x * 2 AS y FROM range({n}) t(x) ORDER BY x", stream_config=cfg)
        pages = []
        async with result:
            async for page in result.pages():
                assert result.page_number == len(pages) + 1
                pages.append(page)
        return result, pages

    result, pages = asyncio.run(main())
    assert [len(p) for p in pages] == [1000] * 12 + [345]
    rows = [r for p in pages for r in p]
    assert [r.x for r in rows] == list(range(n)) and all(r.y == 2 * r.x for r in rows)
    assert rows[0]._fields == ("x", "y") and rows[5]._asdict() == {"x": 5, "y": 10}
    assert result.page_number == 13 and result.total_rows_fetched == n and result.done
    assert calls == [(i + 1, min(n, (i + 1) * 1000)) for i in range(13)]


def test_execute_stream_rows_equal_batch_query(sl, client, pserver):
    sql = TX_SQL + " ORDER BY block_num, tx_index"
    totals = []

    async def main():
        result = await client.execute_stream(sql, stream_config=sl.StreamConfig(
            fetch_size=77, page_callback=lambda p, t: totals.append(t)))
        rows = []
        async for row in result:  # seed 002's CSV export reads rows this way
            rows.append({field: getattr(row, field) for field in row._fields})
        return result, rows

    result, rows = asyncio.run(main())
    want = raw(pserver, sql).to_pylist()
    assert rows == want
    assert totals[-1] == result.total_rows_fetched == len(want)
    assert totals == sorted(totals) and len(totals) == -(-len(want) // 77)


def test_execute_stream_max_pages_stops_and_cancels(sl, client, pserver):
    calls = []

    async def main():
        result = await client.execute_stream(
            "SELECT * FROM range(1000000000) t(x)",
            stream_config=sl.StreamConfig(fetch_size=250, max_pages=3,
                                          page_callback=lambda p, t: calls.append((p, t))))
        pages = [p async for p in result.pages()]
        more = [r async for r in result]
        return result, pages, more

    t0 = time.monotonic()
    result, pages, more = asyncio.run(main())
    assert time.monotonic() - t0 < 10
    assert [len(p) for p in pages] == [250, 250, 250] and more == []
    assert result.page_number == 3 and result.total_rows_fetched == 750 and result.done
    assert calls == [(1, 250), (2, 500), (3, 750)]
    healthy(pserver)


def test_execute_stream_cancel_huge_query_promptly(sl, client, pserver):
    async def main():
        result = await client.execute_stream("SELECT * FROM range(1000000000)",
                                             stream_config=sl.StreamConfig(fetch_size=5000))
        page = await result.next_page()
        t0 = time.monotonic()
        await result.cancel()
        rest = [r async for r in result]
        elapsed = time.monotonic() - t0
        result.cancel()  # seed 002 calls it without await: fine too, and idempotent
        return page, rest, elapsed, result

    t0 = time.monotonic()
    page, rest, elapsed, result = asyncio.run(main())
    assert len(page) == 5000 and rest == [] and result.cancelled
    assert elapsed < 10 and time.monotonic() - t0 < 10
    healthy(pserver)
    assert raw(pserver, "SELECT count(*) AS n FROM eth_rpc.blocks").column("n")[0].as_py() > 0


def test_execute_stream_task_cancellation_cancels_the_call(sl, client, pserver):
    """A consumer task cancelled while waiting (here: a streaming query at the head,
    waiting for blocks) cancels the gRPC call too."""
    async def main():
        result = await client.execute_stream(
            "SELECT block_num FROM eth_rpc.blocks SETTINGS stream = true",
            stream_config=sl.StreamConfig(fetch_size=10))
        rows = []
        for _ in range(1000):
            try:  # pages until caught up with the head; then no block comes
                rows += await asyncio.wait_for(result.next_page(), timeout=1.0)
            except asyncio.TimeoutError:
                break
        assert result.cancelled and await result.next_page() is None
        return rows

    t0 = time.monotonic()
    rows = asyncio.run(main())
    assert [r.block_num for r in rows] == list(range(len(rows)))
    assert len(rows) >= pserver.stored_head() - 10
    assert time.monotonic() - t0 < 30
    healthy(pserver)


def test_execute_stream_concurrent_results_are_independent(sl, client, pserver):
    async def numbers(k):
        n = 1000 * (k + 1) + 7
        result = await client.execute_stream(
            f"SELECT x, {k} AS k FROM range({n}) t(x) ORDER BY x",
            stream_config=sl.StreamConfig(fetch_size=97 + k))
        rows = [r async for r in result]
        return n, rows, result

    async def transactions():
        result = await client.execute_stream(TX_SQL + " ORDER BY block_num, tx_index",
                                             stream_config=sl.StreamConfig(fetch_size=50))
        return [r._asdict() async for r in result]

    async def main():
        return await asyncio.gather(transactions(), *[numbers(k) for k in range(6)])

    t0 = time.monotonic()
    txs, *outs = asyncio.run(main())
    assert time.monotonic() - t0 < 60
    for k, (n, rows, result) in enumerate(outs):
        assert [(r.x, r.k) for r in rows] == [(i, k) for i in range(n)]
        assert result.total_rows_fetched == n and result.page_number == -(-n // (97 + k))
    assert txs == raw(pserver, TX_SQL + " ORDER BY block_num, tx_index").to_pylist()


def test_execute_stream_parameters_timeout_and_errors(sl, client, pserver):
    async def main():
        with pytest.raises(pa.ArrowInvalid, match="0 parameter"):
            await client.execute_stream("SELECT 1", parameters=[1])
        with pytest.raises(pa.ArrowInvalid, match="syntax error"):
            await client.execute_stream("SELEC 1")
        result = await client.execute_stream(
            "SELECT * FROM range(1000000000) t(x)",
            stream_config=sl.StreamConfig(fetch_size=10000, timeout_seconds=1.0))
        t0 = time.monotonic()
        with pytest.raises(flight.FlightTimedOutError):
            async for _ in result.pages():
                pass
        assert time.monotonic() - t0 < 10
        # Rows with names that are not identifiers are renamed by position.
        result = await client.execute_stream("SELECT 1 AS a, 2 AS \"b c\", 3 AS a")
        rows = [r async for r in result]
        assert rows == [(1, 2, 3)] and rows[0]._fields == ("a", "_1", "_2")

    asyncio.run(main())
    with pytest.raises(ValueError):
        sl.StreamConfig(fetch_size=0)
    healthy(pserver)


# ---- Arrow IPC --------------------------------------------------------------------------

def test_ipc_round_trip(sl, client, pserver, tmp_path):
    sql = ("SELECT block_num, log_index, address, topic0, data, x "
           "FROM eth_rpc.logs, range(20) t(x) ORDER BY block_num, log_index, x")
    want = raw(pserver, sql)
    assert want.num_rows > 100
    # stream format, from the FlightStreamReader of query()
    assert sl.write_ipc_stream(client.query(sql), tmp_path / "a.arrows") == want.num_rows
    reader = sl.read_ipc_stream(tmp_path / "a.arrows")
    batches = list(reader)
    assert len(batches) > 1 and all(b.num_rows for b in batches)
    assert pa.Table.from_batches(batches).equals(want)
    assert sl.read_ipc_stream(str(tmp_path / "a.arrows")).read_pandas().equals(want.to_pandas())
    # file format, from query_batches(), compressed
    import pyarrow.ipc as ipc
    n = sl.write_ipc_file(client.query_batches(sql), tmp_path / "a.arrow",
                          options=ipc.IpcWriteOptions(compression="zstd"))
    assert n == want.num_rows
    f = sl.read_ipc_file(tmp_path / "a.arrow")
    assert f.num_record_batches == len(batches)
    assert f.read_all().equals(want)
    assert f.get_batch(1).equals(batches[1])
    # the seed 003 shapes: an in-memory sink, a table; a stream's Data events
    sink = pa.BufferOutputStream()
    sl.write_ipc_stream(want, sink)
    assert pa.ipc.open_stream(sink.getvalue()).read_all().equals(want)
    head = pserver.stored_head()
    with client.stream(TX_SQL) as stream:
        events = until(sl, stream, head)
    sl.write_ipc_file(events, tmp_path / "s.arrow")
    got = sl.read_ipc_file(tmp_path / "s.arrow").read_all().to_pylist()
    expect = raw(pserver, f"{TX_SQL} WHERE block_num <= {events[-1].range.end}").to_pylist()
    assert sorted(got, key=key) == sorted(expect, key=key)
    with pytest.raises(ValueError, match="schema"):
        sl.write_ipc_stream([], tmp_path / "empty.arrows")


# ---- docs/python.md ---------------------------------------------------------------------

def test_docs_examples_run(sl, pserver, tmp_path, monkeypatch, capsys):
    """Every ```python block of docs/python.md marked `# test: run`, in order, in one
    namespace, against this server; then the cursor-file example's log is checked."""
    blocks = [b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
              if b.startswith("# test: run")]
    assert len(blocks) >= 8
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "docs_python_example"}
    for i, code in enumerate(blocks):
        code = code.replace(DOC_URL, pserver.location)
        t0 = time.monotonic()
        exec(compile(code, f"docs/python.md example {i + 1}", "exec"), ns)  # noqa: S102
        assert time.monotonic() - t0 < 60, f"example {i + 1} is slow"
    out = capsys.readouterr().out
    assert "transactions, each once" in out and "pages, then the call was cancelled" in out
    state = ns["replay"]()  # the cursor-file example's log, followed up to the head
    rows = [dict(r, tx_hash=bytes.fromhex(r["tx_hash"])) for b in sorted(state) for r in state[b]]
    want = raw(pserver, "SELECT block_num, tx_index, tx_hash FROM eth_rpc.transactions "
                        "ORDER BY block_num, tx_index").to_pylist()
    assert rows == want
    assert (tmp_path / "logs.csv").read_text().startswith("block_num,log_index,address\n")
    healthy(pserver)


# ---- reorgs (last: changes the module's chain) ------------------------------------------

def test_stream_reorg_events(sl, chain, client, pserver):
    """A reorg under blocks the stream sent: a Reorg event, then MicrobatchStart with
    is_reorg; applying the protocol gives the batch rows of the new chain. (Last in
    the module: it reorganizes the module's chain.)"""
    head = pserver.stored_head()
    with client.stream(TX_SQL) as stream:
        events = until(sl, stream, head)
        ancestor = rpc(chain.url, "eth_getBlockByNumber", [hex(head - 4), False])["hash"]
        anvil_reorg(chain.url, 4, moved_txs(chain.url, 4))
        chain.traffic(blocks=2, seed=31)
        final = wait_store_matches_node(pserver, chain)
        events += until(sl, stream, final)
    reorgs = [i for i, e in enumerate(events) if isinstance(e, sl.Reorg)]
    assert len(reorgs) == 1, events
    start = events[reorgs[0] + 1]
    assert isinstance(start, sl.MicrobatchStart) and start.is_reorg
    assert events[reorgs[0]].invalidate_from == start.range.start == head - 3
    assert start.prev_hash == ancestor  # the common ancestor's hash
    rows = check_order(sl, events, 0)
    want = raw(pserver, f"{TX_SQL} WHERE block_num <= {final}").to_pylist()
    assert sorted(rows, key=key) == sorted(want, key=key)
    assert len(rows) == len({r["tx_hash"] for r in rows})  # moved transactions: once each
