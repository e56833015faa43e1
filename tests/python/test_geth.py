"""geth, the most-used production node: a reorg made on `geth --dev` reaches every
stream as on anvil (test_reorgs.py).

geth --dev has no anvil_reorg. What it has is debug_setHead: the chain is rewound
to a block, and its simulated beacon seals the next blocks on that one (it resets
to the current block when the chain was rewound), with a new random prevRandao and
later timestamps, so the new blocks have other hashes: a real reorg, from the
node's own fork choice. The truth: the node's blocks (eth_getBlockByNumber) and
batch queries over the store once it equals the node."""
from __future__ import annotations

import pytest

from sluice_harness import (Geth, ProtocolClient, assert_store_matches_node, node_chain,
                            query, rpc, wait_for, wait_store_matches_node)
from test_reorgs import QUERIES, assert_one_reorg_at, assert_same_rows


def geth_queries() -> dict:
    return {name: sql.replace("eth_rpc.", "geth_rpc.") for name, sql in QUERIES.items()}


def test_geth_reorg_by_set_head_reaches_every_stream(tmp_path, make_server):
    node = Geth(tmp_path, period=1)
    try:
        node.traffic(rounds=6, txs_per_block=4)
        srv = make_server(tmp_path / "data", node.url, "--dataset", "geth_rpc", "--network",
                          "geth", "--server-microbatch-max-interval", "3")
        head = node.head()
        srv.wait_head(head, dataset="geth_rpc")
        queries = geth_queries()
        clients = {name: ProtocolClient(srv.location, sql, network="geth")
                   for name, sql in queries.items()}
        # Transactions in the blocks about to be replaced.
        hashes = [rpc(node.url, "eth_sendTransaction",
                      [{"from": node.account, "to": "0x" + "24" * 20, "value": hex(1 + i)}])
                  for i in range(3)]
        mined = [wait_for(lambda h=h: rpc(node.url, "eth_getTransactionReceipt", [h]), 30, "tx")
                 for h in hashes]
        head = max(int(r["blockNumber"], 16) for r in mined)
        for c in clients.values():
            c.wait_until(head)
        ancestor = head - 4
        before = node_chain(node.url, 0, head)
        old_txs = [h for n in range(ancestor + 1, head + 1) for h in before[n]["txs"]]
        assert set(hashes) <= set(old_txs)
        node.set_head(ancestor)
        # The new fork: fresh transfers, in blocks sealed on the rewound head.
        for i in range(3):
            rpc(node.url, "eth_sendTransaction", [{"from": node.account, "to": "0x" + "42" * 20,
                                                   "value": hex(1000 + i)}])
        node.wait_head(head + 2, timeout=60)
        after = node_chain(node.url, 0, head)
        assert all(before[n]["hash"] == after[n]["hash"] for n in range(ancestor + 1))
        assert all(before[n]["hash"] != after[n]["hash"] for n in range(ancestor + 1, head + 1))

        for c in clients.values():
            c.wait_reorgs(1, timeout=60)
        final = wait_store_matches_node(srv, node, timeout=60, dataset="geth_rpc")
        chain = node_chain(node.url, 0, final)
        for name, c in clients.items():
            c.wait_until(final)
            assert_one_reorg_at(c, ancestor, chain, name)
            want = query(srv.client(), f"SELECT * FROM ({queries[name]}) q "
                                       f"WHERE block_num <= {final}").to_pylist()
            assert_same_rows(c.rows_upto(final), want, name)
        stored_txs = {"0x" + r["tx_hash"].hex() for r in query(
            srv.client(), "SELECT tx_hash FROM geth_rpc.transactions").to_pylist()}
        kept = [h for h in old_txs if any(h in chain[n]["txs"] for n in chain)]
        assert {h for h in old_txs if h not in kept}.isdisjoint(stored_txs), \
            "transactions of the abandoned fork are still stored"
        print(f"\ngeth reorg: blocks {ancestor + 1}-{head} replaced ({len(old_txs)} txs), "
              f"streams ended exact at {final}")
    finally:
        for c in locals().get("clients", {}).values():
            c.close()
        node.stop()
