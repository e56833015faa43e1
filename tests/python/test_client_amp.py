"""Amp's TypeScript SDK (npm @edgeandnode/amp 0.0.51 with its peer dependencies;
tests/clients/js/amp_client.mjs) against a real server and anvil (docs/clients.md):
a batch query equal to pyarrow's answer, errors with sluice's message, auth on and
off, and its own streaming path: stream, keep-alives carrying the last microbatch's
ranges, a reorg after an idle period detected by the SDK, and resuming from the
SDK's own watermark."""
from __future__ import annotations

import json
import queue
import subprocess
import threading
import time

import pytest

from client_tools import JS_DIR, ROWS_SQL, expected_rows, need_node, run_json
from sluice_harness import Anvil, Server, anvil_reorg, rpc, wait_for
from test_security import KEY, REFUSAL, WRONG, bearer, wait_stored

SCRIPT = JS_DIR / "amp_client.mjs"
KEEP_ALIVE_MS = 400
STREAM_SQL = "SELECT block_num, hash FROM eth_rpc.blocks"


@pytest.fixture(scope="module")
def node_bin():
    return need_node()


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A chain of its own: the tests mine and reorganize it."""
    n = Anvil(tmp_path_factory.mktemp("amp-chain"))
    n.traffic(blocks=8, txs_per_block=3)
    yield n
    n.stop()


@pytest.fixture(scope="module")
def srv(node, tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("amp") / "data", node.url,
               "--testing-keep-alive-interval-ms", str(KEEP_ALIVE_MS),
               "--server-microbatch-max-interval", "4")
    s.wait_head(node.head())
    yield s
    s.stop()


def url(s) -> str:
    return f"http://127.0.0.1:{s.port}"


def amp_query(node_bin, s, sql, token=None) -> dict:
    return run_json([node_bin, str(SCRIPT), "query", url(s), sql] + ([token] if token else []))


class AmpStream:
    """`amp_client.mjs stream`: the SDK's protocol messages, one JSON line each."""

    def __init__(self, node_bin, s, sql, resume=None):
        args = [node_bin, str(SCRIPT), "stream", url(s), sql]
        if resume is not None:
            args.append(json.dumps(resume))
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.messages: "queue.Queue" = queue.Queue()
        self.seen: list = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.messages.put(json.loads(line))
        self.messages.put(None)

    def until(self, predicate, timeout=60) -> list:
        """Messages until one satisfies `predicate` (included)."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                m = self.messages.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no matching message; last ones: {out[-3:]}") from None
            if m is None:
                raise RuntimeError(f"stream ended: {self.proc.stderr.read()[-2000:]}")
            out.append(m)
            self.seen.append(m)
            assert m["type"] != "error", m
            if predicate(m):
                return out

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def rows_of(messages) -> list:
    return sorted((r for m in messages if m["type"] == "data" for r in m["rows"]),
                  key=lambda r: int(r["block_num"]))


def watermark_at(block):
    return lambda m: m["type"] == "watermark" and m["ranges"][0]["numbers"]["end"] >= block


def test_batch_query_equals_pyarrow(node_bin, srv):
    got = amp_query(node_bin, srv, ROWS_SQL)
    truth = expected_rows(srv.client(), ROWS_SQL)
    assert len(truth) > 10 and "rows" in got, got
    assert len(got["rows"]) == len(truth)
    for g, t in zip(got["rows"], truth):
        assert g == t


def test_errors_carry_sluices_message(node_bin, srv):
    got = amp_query(node_bin, srv, "SELEC 1")
    assert got["code"] == 3 and 'syntax error at or near "SELEC"' in got["message"], got
    got = amp_query(node_bin, srv, "SELECT count(*) FROM eth_rpc.blocks SETTINGS stream = true")
    assert got["code"] == 3 and got["message"].startswith("NonIncrementalOp:"), got


def test_auth(node_bin, node, tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLUICE_API_KEYS", KEY)
        keyed = Server(tmp_path / "data", node.url)
    try:
        wait_stored(keyed, node.head(), bearer(KEY))
        sql = "SELECT block_num, hash FROM eth_rpc.blocks ORDER BY block_num"
        truth = expected_rows(keyed.client(), sql, bearer(KEY))
        assert amp_query(node_bin, keyed, sql, KEY) == {"rows": truth}
        for token in (None, WRONG):
            got = amp_query(node_bin, keyed, sql, token)
            assert got["code"] == 16 and REFUSAL in got["message"], got  # UNAUTHENTICATED
    finally:
        keyed.stop()


def test_stream_keep_alives_reorg_and_resume(node_bin, node, srv):
    head1 = node.head()
    s = AmpStream(node_bin, srv, STREAM_SQL)
    try:
        first = s.until(watermark_at(head1))
        w1 = first[-1]["ranges"]
        assert w1[0]["numbers"]["end"] == head1
        truth = expected_rows(srv.client(), STREAM_SQL + " ORDER BY block_num")
        assert rows_of(first) == truth

        node.traffic(blocks=3, txs_per_block=2, seed=7)
        head2 = node.head()
        w2 = s.until(watermark_at(head2))[-1]["ranges"]
        assert rows_of(s.seen) == expected_rows(srv.client(), STREAM_SQL + " ORDER BY block_num")

        # Idle: keep-alives carry the ranges of the last microbatch (the SDK's baseline
        # for detecting a reorg), not [] — Data messages without rows and those ranges.
        idle = s.until(lambda m: len([x for x in s.seen[-6:] if x["type"] == "data"
                                      and not x["rows"] and x["ranges"] == w2]) >= 3, 30)
        assert all(m["type"] == "data" and m["ranges"] == w2 and not m["rows"] for m in idle[-3:])

        # A reorg of the top two blocks after the quiet period: the SDK detects it.
        anvil_reorg(node.url, 2)
        reorg = s.until(lambda m: m["type"] == "reorg", 30)[-1]
        new_hash = rpc(node.url, "eth_getBlockByNumber", [hex(reorg["incoming"][0]["numbers"]["end"]),
                                                          False])["hash"]
        assert reorg["invalidation"][0]["numbers"]["start"] == head2 - 1
        assert reorg["previous"] == w2 and reorg["incoming"][0]["hash"] == new_hash
    finally:
        s.stop()

    # The SDK's baseline stays the replaced range after a reorg (its bug): the rows of
    # the new blocks come as further Reorg messages, not Data. What docs/clients.md
    # says to do: resume from the last watermark below the invalidated range.
    wait_for(lambda: srv.stored_head() >= head2, 30, "the new fork to be stored")
    s = AmpStream(node_bin, srv, STREAM_SQL, resume=w1)
    try:
        resumed = s.until(watermark_at(head2))
    finally:
        s.stop()
    assert all(m["type"] != "reorg" for m in resumed)
    truth = expected_rows(srv.client(), STREAM_SQL + f" WHERE block_num > {head1} ORDER BY block_num")
    assert rows_of(resumed) == truth and len(truth) == head2 - head1


def test_amp_query_cli(node_bin, srv, tmp_path):
    """`amp query --flight-url …` (the SDK's CLI), as docs/clients.md shows it."""
    cli = JS_DIR / "node_modules" / "@edgeandnode" / "amp" / "dist" / "cli" / "main.js"
    sql = "SELECT block_num, gas_used FROM eth_rpc.blocks ORDER BY block_num"
    proc = subprocess.run([node_bin, str(cli), "query", "--flight-url", url(srv), "--format",
                           "jsonl", sql], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    truth = expected_rows(srv.client(), sql)
    assert [(str(r["block_num"]), str(r["gas_used"])) for r in rows] == \
        [(t["block_num"], t["gas_used"]) for t in truth]
