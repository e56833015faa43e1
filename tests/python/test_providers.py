"""What hosted providers do (docs/datasets.md), each produced for real where a node
can do it, otherwise by the fault proxy of the fault tests (fault_proxy.py) in
front of a real node:

- failover over several rpc_url, and back once the first answers again (proxy);
- HTTP 429 with Retry-After, honoured, the server staying up (proxy);
- batches refused for their size: geth's own --rpc.batch-request-limit ("batch too
  large") and --rpc.batch-response-max-size (a partial answer, "response too
  large"), for real; HTTP 413 (proxy); split, and the split remembered;
- a node without eth_getBlockReceipts (proxy): receipts per transaction, found out
  once at start;
- `finalized` and `safe` tags driving extraction (anvil, for real), and a node
  that does not know them refused at start (proxy);
- fields a node leaves out stored as NULL: pre-London and pre-Shanghai blocks
  (anvil --hardfork berlin, for real), legacy transactions without type or chain
  id (proxy, as older nodes answer).

The truth is always the node: every column of docs/tables.md against its own
JSON-RPC answers (chain_columns.py), or the proxy's when the proxy is what the
server talks to."""
from __future__ import annotations

import json
import subprocess
import time
import urllib.request

import pytest

from chain_columns import assert_tables_equal_node
from fault_proxy import FaultProxy
from sluice_harness import (SLUICE, Anvil, Geth, Server, datasets_config, query, rpc, wait_for,
                            wait_store_matches_node)


def dataset_status(srv: Server, name: str = "eth_rpc") -> dict:
    with urllib.request.urlopen(f"{srv.admin_url}/datasets/{name}", timeout=10) as resp:
        return json.loads(resp.read())


def metric(srv: Server, name: str, dataset: str = "eth_rpc") -> float:
    with urllib.request.urlopen(srv.admin_url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    want = f'{name}{{dataset="{dataset}"}} '
    return float(next(l for l in text.splitlines() if l.startswith(want))[len(want):])


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = Anvil(tmp_path_factory.mktemp("providers"))
    n.traffic(blocks=15, txs_per_block=5)
    yield n
    n.stop()


def test_failover_to_the_next_url_and_back(node, tmp_path):
    first, second = FaultProxy(node.url), FaultProxy(node.url)
    cfg = datasets_config(tmp_path / "sluice.toml", [{
        "name": "eth_rpc", "network": "anvil", "rpc_url": [first.url, second.url],
        "rpc_failback_secs": 1.5}])
    srv = Server(tmp_path / "data", None, "--config", str(cfg))
    try:
        srv.wait_head(node.head())
        assert second.requests == 0, "the second URL was used while the first answered"
        first.set_fault("down")
        node.traffic(blocks=3, txs_per_block=3, seed=7)
        wait_store_matches_node(srv, node, timeout=60)  # extracted through the second
        assert second.requests > 0
        status = dataset_status(srv)
        assert status["failovers"] >= 1 and metric(srv, "sluice_rpc_failovers_total") >= 1
        assert [e["url"] for e in status["endpoints"]] == [first.url, second.url]
        # The first comes back: after rpc_failback_secs it is preferred again.
        first.set_fault(None)
        n0 = first.requests
        wait_for(lambda: first.requests > n0 + 5, 30, "requests to reach the first URL again")
        s0 = second.requests
        node.traffic(blocks=2, txs_per_block=3, seed=8)
        wait_store_matches_node(srv, node, timeout=60)
        assert second.requests - s0 <= 2, "the second URL still used once the first is back"
        assert dataset_status(srv)["endpoints"][0]["state"] == "up"
        assert_tables_equal_node(srv.client(), "eth_rpc", node.url, 0, node.head())
    finally:
        srv.stop()
        first.stop()
        second.stop()


def test_rate_limited_node_is_asked_after_retry_after(node, tmp_path):
    proxy = FaultProxy(node.url)
    srv = Server(tmp_path / "data", proxy.url)
    try:
        srv.wait_head(node.head())
        proxy.retry_after = "2"
        proxy.set_fault("rate_limit")
        time.sleep(0.5)
        n0, t0 = proxy.requests, time.monotonic()
        time.sleep(5)
        asked, window = proxy.requests - n0, time.monotonic() - t0
        print(f"\nrate limited with Retry-After: 2: {asked} requests in {window:.1f}s")
        assert asked <= window / 2 + 2, f"{asked} requests in {window:.1f}s: Retry-After ignored"
        # The server stays up and keeps answering.
        with urllib.request.urlopen(srv.admin_url + "/health", timeout=10) as resp:
            assert resp.status == 200
        assert srv.stored_head() >= 0
        assert dataset_status(srv)["rate_limited"] >= 1
        assert metric(srv, "sluice_rpc_rate_limited_total") >= 1
        assert srv.proc.poll() is None
        proxy.set_fault(None)
        node.traffic(blocks=2, txs_per_block=3, seed=9)
        wait_store_matches_node(srv, node, timeout=60)
    finally:
        srv.stop()
        proxy.stop()


def test_batches_too_large_for_real_geth_are_split_and_remembered(tmp_path):
    """geth with small batch limits: a batch of more calls is refused ("batch too
    large"), a batch whose answer passes the byte limit comes back partial
    ("response too large" for the rest): both are split, the size remembered."""
    geth = Geth(tmp_path, period=1, extra=("--rpc.batch-request-limit", "8",
                                            "--rpc.batch-response-max-size", "20000"))
    try:
        geth.traffic(rounds=8, txs_per_block=6)
        srv = Server(tmp_path / "data", geth.url, "--rpc-batch-blocks", "40", "--dataset",
                     "geth_rpc", "--network", "geth")
        try:
            srv.wait_head(geth.head(), dataset="geth_rpc")
            status = dataset_status(srv, "geth_rpc")
            limit = status["endpoints"][0]["batch_limit"]
            splits = status["batch_splits"]
            print(f"\ngeth batch limits: learnt {limit} calls per batch after {splits} splits")
            # Below the request limit: the partial answers ("response too large") lowered it.
            assert limit is not None and 1 <= limit < 8
            assert splits >= 1
            # Remembered: more blocks (and a backfill after a restart of the chain's
            # following) need no more splits.
            geth.wait_head(geth.head() + 3)
            srv.wait_head(geth.head(), dataset="geth_rpc")
            assert dataset_status(srv, "geth_rpc")["batch_splits"] == splits
            head = srv.stored_head("geth_rpc")
            counts = assert_tables_equal_node(srv.client(), "geth_rpc", geth.url, 0, head,
                                              batches=False)
            assert counts["transactions"] >= 40
        finally:
            srv.stop()
    finally:
        geth.stop()


def test_http_413_batches_are_split(node, tmp_path):
    proxy = FaultProxy(node.url)
    proxy.max_batch = 6
    srv = Server(tmp_path / "data", proxy.url, "--rpc-batch-blocks", "20")
    try:
        srv.wait_head(node.head())
        assert 1 <= dataset_status(srv)["endpoints"][0]["batch_limit"] <= 6
        assert_tables_equal_node(srv.client(), "eth_rpc", node.url, 0, node.head())
    finally:
        srv.stop()
        proxy.stop()


def test_node_without_block_receipts_is_asked_per_transaction(node, tmp_path):
    proxy = FaultProxy(node.url)
    proxy.refuse = {"eth_getBlockReceipts": {
        "code": -32601, "message": "the method eth_getBlockReceipts does not exist/is not available"}}
    srv = Server(tmp_path / "data", proxy.url)
    try:
        srv.wait_head(node.head())
        counts = assert_tables_equal_node(srv.client(), "eth_rpc", node.url, 0, node.head())
        assert proxy.calls.get("eth_getBlockReceipts") == 1, "found out once, at start"
        assert proxy.calls.get("eth_getTransactionReceipt", 0) >= counts["transactions"]
        assert dataset_status(srv)["receipts"] == "eth_getTransactionReceipt"
    finally:
        srv.stop()
        proxy.stop()


def test_finalized_and_safe_tags_drive_extraction(make_anvil, tmp_path):
    """anvil's `safe` is 32 blocks below its head, `finalized` 64: each dataset stops
    exactly at its node's block of its tag, and follows it."""
    node = make_anvil()
    node.mine(100)
    cfg = datasets_config(tmp_path / "sluice.toml", [
        {"name": "fin", "network": "anvil_finalized", "rpc_url": node.url, "finalized_only": True},
        {"name": "safe", "network": "anvil_safe", "rpc_url": node.url, "finality_tag": "safe"}])
    srv = Server(tmp_path / "data", None, "--config", str(cfg))
    try:
        for rounds in range(2):
            tags = {t: int(rpc(node.url, "eth_getBlockByNumber", [t, False])["number"], 16)
                    for t in ("finalized", "safe")}
            srv.wait_head(tags["finalized"], dataset="fin")
            srv.wait_head(tags["safe"], dataset="safe")
            time.sleep(0.5)  # nothing beyond the tag arrives meanwhile
            assert srv.stored_head("fin") == tags["finalized"] < tags["safe"]
            assert srv.stored_head("safe") == tags["safe"] < node.head()
            node.mine(10)
    finally:
        srv.stop()


def test_node_without_finality_tags_is_refused_at_start(node, tmp_path):
    proxy = FaultProxy(node.url)

    def no_tags(calls, answers):
        return [{"jsonrpc": "2.0", "id": c.get("id"), "error": {
                    "code": -32602, "message": "invalid argument 0: hex string without 0x prefix"}}
                if c.get("method") == "eth_getBlockByNumber" and c["params"][0] in ("safe", "finalized")
                else a for c, a in zip(calls, answers)]
    proxy.rewrite = no_tags
    try:
        proc = subprocess.run([str(SLUICE), "serve", "--rpc-url", proxy.url, "--data-dir",
                               str(tmp_path / "data"), "--finalized-only", "true",
                               "--flight-addr", "127.0.0.1:0", "--jsonl-addr", "127.0.0.1:0",
                               "--admin-api-addr", "127.0.0.1:0"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0
        assert "finalized" in proc.stderr and "finality_depth" in proc.stderr, proc.stderr
    finally:
        proxy.stop()


def test_missing_fields_are_stored_as_null(make_anvil, tmp_path):
    """A pre-London, pre-Shanghai chain (anvil --hardfork berlin: no baseFeePerGas,
    no withdrawalsRoot), and legacy transactions without type or chainId (as older
    nodes answer; the proxy removes them): NULL, never a made-up value. Extracted
    again with `verify`, from block 1: a null type is legacy, and every block's hash
    and roots are recomputed from those rows. (anvil's berlin genesis reports
    Cancun's blob gas fields without London's base fee, a header no chain has, and
    a hash that is none of its field lists': verification refuses it, so block 0
    is left out there.)"""
    node = make_anvil(extra=("--hardfork", "berlin"))
    accounts = rpc(node.url, "eth_accounts")
    for i in range(4):
        rpc(node.url, "eth_sendTransaction", [{"from": accounts[i], "to": accounts[i + 1],
                                               "value": hex(10**15), "gasPrice": hex(10**9)}])
        node.mine()
    proxy = FaultProxy(node.url)

    def old_node(calls, answers):
        for a in answers:
            result = a.get("result") if isinstance(a, dict) else None
            if isinstance(result, dict) and isinstance(result.get("transactions"), list):
                for tx in result["transactions"]:
                    if isinstance(tx, dict) and tx.get("type") == "0x0":
                        tx.pop("type")
                        tx.pop("chainId", None)
        return answers
    proxy.rewrite = old_node
    srv = Server(tmp_path / "data", proxy.url)
    try:
        srv.wait_head(node.head())
        blocks = query(srv.client(), "SELECT base_fee_per_gas, withdrawals_root "
                                     "FROM eth_rpc.blocks").to_pylist()
        assert blocks and all(b["base_fee_per_gas"] is None and b["withdrawals_root"] is None
                              for b in blocks)
        txs = query(srv.client(), 'SELECT type, chain_id, v_parity, r FROM eth_rpc.transactions'
                    ).to_pylist()
        assert len(txs) == 4
        assert all(t["type"] is None and t["chain_id"] is None for t in txs), txs
        assert all(t["v_parity"] is not None and t["r"] is not None for t in txs)
        # Everything else equals what the server was told (the proxy's answers).
        assert_tables_equal_node(srv.client(), "eth_rpc", proxy.url, 0, node.head())
    finally:
        srv.stop()
    verified = Server(tmp_path / "verified", proxy.url, "--verify", "true", "--start-block", "1")
    try:
        verified.wait_head(node.head())
        assert metric(verified, "sluice_verified_blocks_total") == node.head()
        assert metric(verified, "sluice_verification_failures_total") == 0
        types = query(verified.client(), "SELECT type FROM eth_rpc.transactions").to_pylist()
        assert types == [{"type": None}] * 4
    finally:
        verified.stop()
        proxy.stop()
