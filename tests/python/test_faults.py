"""Faults the server survives (issue 8.4), each against real parts:

- the node failing: stopped, slow, answering HTTP 5xx, JSON-RPC errors, malformed
  JSON or truncated bodies. A fault-injecting HTTP proxy stands between the
  server and a real anvil node; only the faults are made up. The extractor backs
  off, /ready says why it is not ready, sluice_rpc_errors_total counts the
  failures, batch queries keep being answered, and once the node is back the
  store equals the node's chain block by block (its own JSON-RPC answers);
- `kill -9` of the server at random moments, 20 times, while blocks arrive: after
  every restart the store is exactly the node's chain;
- clients that go away in the middle of a stream (cancelling, or killed without a
  word): the server's open streams, file descriptors and threads return to what
  they were.

Recovery times and counts are printed (pytest -s) for the record; nothing here
asserts a duration.
"""
from __future__ import annotations

import gc
import http.client
import http.server
import json
import os
import random
import signal
import socket
import socketserver
import subprocess
import threading
import time
import urllib.error
import urllib.request
from typing import Optional

import pytest

from fault_proxy import FAULTS, FaultProxy
from sluice_harness import (PYTHON, TRAFFIC, Anvil, Server, StreamReader,
                            assert_store_matches_node, free_port, query, rpc, wait_for,
                            wait_store_matches_node)


# ---------------------------------------------------------------------------
# Admin API helpers
# ---------------------------------------------------------------------------

def admin_get(srv: Server, path: str) -> tuple:
    """(HTTP status, body text) of GET path on the admin API."""
    try:
        with urllib.request.urlopen(srv.admin_url + path, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(srv: Server, name: str, labels: str = 'dataset="eth_rpc"') -> float:
    """The value of one sample of /metrics."""
    _, text = admin_get(srv, "/metrics")
    want = f"{name}{{{labels}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(want):
            return float(line[len(want):])
    raise AssertionError(f"no sample {want!r} in /metrics")


def ready(srv: Server) -> tuple:
    status, body = admin_get(srv, "/ready")
    return status, json.loads(body)


def stored_blocks(srv: Server) -> dict:
    """block number -> 0x hash of every stored block, by a batch query."""
    t = query(srv.client(), "SELECT block_num, hash FROM eth_rpc.blocks")
    return {r["block_num"]: "0x" + r["hash"].hex() for r in t.to_pylist()}


def assert_answers_from_store(srv: Server, node_url: str) -> int:
    """A batch query is answered, and what it answers is the node's chain (each
    stored block's hash is the node's): the server keeps serving what it has."""
    got = stored_blocks(srv)
    assert got, "no stored blocks"
    head = max(got)
    assert sorted(got) == list(range(head + 1))
    for n in (0, head // 2, head):
        assert got[n] == rpc(node_url, "eth_getBlockByNumber", [hex(n), False])["hash"]
    return head


# ---------------------------------------------------------------------------
# The node failing
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fault_chain(tmp_path_factory):
    """An anvil node with 20 blocks of demo traffic; tests add their own blocks."""
    node = Anvil(tmp_path_factory.mktemp("faults"))
    node.traffic(blocks=20, txs_per_block=4)
    yield node
    node.stop()


@pytest.mark.parametrize("fault", FAULTS)
def test_node_fault_backs_off_reports_and_recovers(fault_chain, tmp_path, fault):
    node = fault_chain
    proxy = FaultProxy(node.url)
    srv = Server(tmp_path / "data", proxy.url)
    try:
        srv.wait_head(node.head())
        assert ready(srv)[0] == 200
        errors_before = metric(srv, "sluice_rpc_errors_total")

        proxy.set_fault(fault)
        t_fault = time.monotonic()
        node.traffic(blocks=3, txs_per_block=3, seed=random.randrange(1 << 30))
        head = node.head()

        if fault == "slow":
            # Slow answers are answers: extraction goes on, at the node's pace.
            srv.wait_head(head, timeout=120)
            assert proxy.faulted > 0
            assert_answers_from_store(srv, node.url)
            print(f"\nslow: {proxy.faulted} answers {proxy.slow_secs}s late; blocks "
                  f"followed {time.monotonic() - t_fault:.1f}s after the fault started")
        else:
            # /ready turns 503 and says why; the errors are counted.
            def not_ready():
                status, body = ready(srv)
                return status == 503 and "fail" in body["reason"] and body
            body = wait_for(not_ready, 60, f"/ready to report the {fault} node")
            print(f"\n{fault}: /ready -> {body['reason'][:160]}")
            assert metric(srv, "sluice_rpc_errors_total") > errors_before
            assert metric(srv, "sluice_node_head_block") < head or fault == "down"

            # Backoff: the failing node is asked ever less often (the extractor polls
            # every 50 ms when healthy, 20 times a second).
            # Attempts are counted twice: by the proxy (requests that reached it)
            # and by the server (sluice_rpc_errors_total; a refused connection
            # never reaches the proxy).
            n0, e0, t0 = proxy.requests, metric(srv, "sluice_rpc_errors_total"), time.monotonic()
            time.sleep(3.0)
            asked = max(proxy.requests - n0, metric(srv, "sluice_rpc_errors_total") - e0)
            window = time.monotonic() - t0
            print(f"{fault}: {asked:.0f} attempts in {window:.1f}s of failures")
            assert asked <= 10, f"{asked} attempts in {window:.1f}s: no backoff"

            # The server keeps answering batch queries from what it stored.
            stored = assert_answers_from_store(srv, node.url)
            assert stored < head
            datasets = json.loads(admin_get(srv, "/datasets")[1])["datasets"][0]
            assert datasets["last_error"], datasets
            assert srv.proc.poll() is None

        # The node comes back: extraction resumes, the store equals the chain.
        proxy.set_fault(None)
        t_back = time.monotonic()
        wait_store_matches_node(srv, node, timeout=60)
        recovered = time.monotonic() - t_back
        wait_for(lambda: ready(srv)[0] == 200, 30, "/ready after recovery")
        assert_store_matches_node(srv, node)
        print(f"{fault}: fault lasted {t_back - t_fault:.1f}s; store equal to the node "
              f"{recovered:.2f}s after it came back; {proxy.faulted} requests faulted")
    finally:
        srv.stop()
        proxy.stop()


def test_malformed_block_is_refused_not_stored(fault_chain, tmp_path):
    """A node whose block answers are JSON but not blocks: nothing wrong is stored,
    and what is stored afterwards is the node's chain."""
    node = fault_chain
    proxy = FaultProxy(node.url)
    srv = Server(tmp_path / "data", proxy.url)
    try:
        srv.wait_head(node.head())
        before = stored_blocks(srv)

        # Answers that parse but are not blocks: a block object without its fields.
        orig_forward = proxy._forward

        def bad_blocks(body: bytes):
            status, answer = orig_forward(body)
            calls = json.loads(body)
            if isinstance(calls, list):
                out = json.loads(answer)
                for a in out:
                    if isinstance(a.get("result"), dict) and "hash" in a["result"]:
                        a["result"] = {"number": a["result"]["number"], "hash": "0x12"}
                answer = json.dumps(out).encode()
            return status, answer

        proxy._forward = bad_blocks
        node.traffic(blocks=2, txs_per_block=2, seed=11)
        wait_for(lambda: "block" in (json.loads(admin_get(srv, "/datasets")[1])
                                     ["datasets"][0]["last_error"] or ""), 30,
                 "the decoding error to be reported")
        assert stored_blocks(srv) == before  # nothing half-decoded was stored
        proxy._forward = orig_forward
        wait_store_matches_node(srv, node, timeout=60)
        assert_store_matches_node(srv, node)
    finally:
        srv.stop()
        proxy.stop()


# ---------------------------------------------------------------------------
# kill -9 at random moments
# ---------------------------------------------------------------------------

def test_kill9_at_random_moments_20_runs(make_anvil, tmp_path):
    """20 times: the server runs a random while (0-1.5 s) as blocks arrive, is killed
    with SIGKILL, and restarts on the same data directory; after each restart the
    store is exactly the node's chain."""
    node = make_anvil()
    node.traffic(blocks=10, txs_per_block=4)
    node.mine(300)  # a backlog, so early kills land inside backfill commits
    traffic = subprocess.Popen([str(PYTHON), str(TRAFFIC), "--rpc-url", node.url, "--mine",
                                "--interval", "0.05", "--txs-per-block", "3", "--seed", "5"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rng = random.Random(int(os.environ.get("SLUICE_TEST_SEED", "8")))
    data = tmp_path / "data"
    # Small batches and commits: many manifest swaps and compactions to land in.
    args = ("--rpc-batch-blocks", "7", "--rpc-max-in-flight", "2")
    kills = []
    try:
        for run in range(20):
            srv = Server(data, node.url, *args)
            if run:
                # After the restart, with the traffic paused: exactly the node's chain.
                traffic.send_signal(signal.SIGSTOP)
                try:
                    wait_store_matches_node(srv, node, timeout=60)
                    assert_store_matches_node(srv, node)
                finally:
                    traffic.send_signal(signal.SIGCONT)
            delay = rng.uniform(0.0, 1.5)
            time.sleep(delay)
            head = srv.stored_head() if rng.random() < 0.5 else None
            srv.kill9()
            kills.append((round(delay, 2), head))
        srv = Server(data, node.url, *args)
        traffic.send_signal(signal.SIGINT)
        traffic.wait(30)
        wait_store_matches_node(srv, node, timeout=60)
        final = assert_store_matches_node(srv, node)
        srv.stop()
        print(f"\nkill -9: 20 runs, (delay s, stored head seen) = {kills}; final head {final}")
    finally:
        if traffic.poll() is None:
            traffic.send_signal(signal.SIGCONT)
            traffic.kill()
            traffic.wait()


# ---------------------------------------------------------------------------
# Clients leaving mid-stream
# ---------------------------------------------------------------------------

STREAM_SQL = ("SELECT block_num, tx_hash, value FROM eth_rpc.transactions "
              "SETTINGS stream = true")

# A client in its own process: opens a stream, says "ready" after its first
# microbatch_end, then reads until killed (SIGKILL: no cancel is ever sent).
CHILD = r"""
import json, sys
import pyarrow.flight as flight
c = flight.connect(sys.argv[1])
info = c.get_flight_info(flight.FlightDescriptor.for_command(sys.argv[2].encode()))
reader = c.do_get(info.endpoints[0].ticket)
said = False
for chunk in reader:
    if not said and json.loads(chunk.app_metadata.to_pybytes())["kind"] == "microbatch_end":
        print("ready", flush=True)
        said = True
"""


def proc_counts(pid: int) -> tuple:
    """(open file descriptors, threads) of a process, from /proc.

    The test's own Flight clients must be gone first: a stream reader that ended
    in an exception sits in a reference cycle (its traceback), and its connection
    stays open, on both sides, until Python collects it."""
    gc.collect()
    return len(os.listdir(f"/proc/{pid}/fd")), len(os.listdir(f"/proc/{pid}/task"))


def streams_listed(srv: Server) -> list:
    return json.loads(admin_get(srv, "/streams")[1])["streams"]


def open_and_drop_streams(srv: Server, node, n_cancel: int, n_killed: int) -> None:
    """Open streams, let each receive a microbatch and new blocks, then drop them:
    n_cancel by cancelling the call, n_killed by SIGKILL of the client's process."""
    readers = [StreamReader(srv.location, STREAM_SQL) for _ in range(n_cancel)]
    children = [subprocess.Popen([str(PYTHON), "-c", CHILD, srv.location, STREAM_SQL],
                                 stdout=subprocess.PIPE, text=True) for _ in range(n_killed)]
    for c in children:
        assert c.stdout.readline().strip() == "ready"
    head = node.head()
    for r in readers:
        r.until_block(head)
    wait_for(lambda: len(streams_listed(srv)) == n_cancel + n_killed, 30, "streams listed")
    node.traffic(blocks=2, txs_per_block=2, seed=random.randrange(1 << 30))
    time.sleep(0.3)  # mid-stream: microbatches of the new blocks are on their way
    for r in readers:
        r.close()
    for c in children:
        c.kill()
        c.wait()


def test_clients_leaving_mid_stream_leak_nothing(fault_chain, tmp_path):
    node = fault_chain
    srv = Server(tmp_path / "data", node.url)
    try:
        srv.wait_head(node.head())
        pid = srv.proc.pid

        # Warm-up: the first streams create the pools that stay (gRPC, engine).
        open_and_drop_streams(srv, node, n_cancel=8, n_killed=4)
        wait_for(lambda: not streams_listed(srv), 30, "/streams to be empty after warm-up")
        srv.wait_head(node.head())
        time.sleep(2.0)
        base_fds, base_threads = proc_counts(pid)

        for _ in range(3):
            open_and_drop_streams(srv, node, n_cancel=8, n_killed=4)
            wait_for(lambda: not streams_listed(srv), 30, "/streams to be empty")
            assert metric(srv, "sluice_active_streams", labels="") == 0

        # Arrow's CPU thread pool (capacity: one thread per core) starts its threads
        # lazily, as the store's Parquet work needs them, and keeps them: up to that
        # many threads may appear as blocks arrive. A thread or a descriptor per
        # stream would show as dozens.
        spare = os.cpu_count() or 1

        def back_to_baseline():
            fds, threads = proc_counts(pid)
            return fds <= base_fds and threads <= base_threads + spare
        try:
            wait_for(back_to_baseline, 60, "fds and threads back to the baseline", interval=0.5)
        finally:
            print(f"\nbaseline fds {base_fds} threads {base_threads}; after 36 dropped "
                  f"streams: {proc_counts(pid)}")
        # Still serving, and the answers are right.
        srv.wait_head(node.head())
        assert_store_matches_node(srv, node)
    finally:
        srv.stop()


# ---------------------------------------------------------------------------
# Bytes that are not a query
# ---------------------------------------------------------------------------

def test_query_text_not_utf8_is_refused_clearly(fault_chain, tmp_path):
    """Raw bytes that are not UTF-8, on both endpoints: a clear error naming the
    problem, and the server keeps answering."""
    import pyarrow as pa
    import pyarrow.flight as flight
    node = fault_chain
    srv = Server(tmp_path / "data", node.url)
    try:
        srv.wait_head(node.head())
        for body in (b"SELECT '\x9d' AS s", b"SELECT 1 AS \"\xff\"", b"\xc3"):
            req = urllib.request.Request(srv.jsonl_url, body)
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=10)
            assert e.value.code == 400
            assert "UTF-8" in json.loads(e.value.read())["error_message"]
            with pytest.raises(pa.ArrowInvalid) as fe:  # INVALID_ARGUMENT
                srv.client().get_flight_info(flight.FlightDescriptor.for_command(body))
            assert "UTF-8" in str(fe.value)
        assert srv.proc.poll() is None
        assert assert_answers_from_store(srv, node.url) >= 0
    finally:
        srv.stop()
