"""Every block sluice serves equals the node's own JSON-RPC answers
(eth_getBlockByNumber and eth_getBlockReceipts), field by field."""
from __future__ import annotations

from collections import defaultdict

import pytest

from sluice_harness import query, rpc


def b(hexstr):
    return None if hexstr is None else bytes.fromhex(hexstr[2:])


def q(hexstr):
    return None if hexstr is None else int(hexstr, 16)


def parity(tx):
    """A signature's y parity: yParity, else from v (27/28, or EIP-155 35 + 2 chain id + parity)."""
    if tx.get("yParity") is not None:
        return q(tx["yParity"]) == 1
    v = q(tx["v"])
    return v == 28 if v in (27, 28) else (v - 35) % 2 == 1


@pytest.fixture(scope="module")
def truth(chain, server):
    """The node's answers for every block the server stored."""
    head = server.stored_head()
    blocks, receipts = {}, {}
    for n in range(head + 1):
        blocks[n] = rpc(chain.url, "eth_getBlockByNumber", [hex(n), True])
        receipts[n] = rpc(chain.url, "eth_getBlockReceipts", [hex(n)])
    return head, blocks, receipts


def rows_by(table, key):
    out = defaultdict(list)
    for row in table.to_pylist():
        out[row[key]].append(row)
    return out


def test_every_block_stored_once(server, truth):
    head, _, _ = truth
    t = query(server.client(), "SELECT block_num FROM eth_rpc.blocks ORDER BY block_num")
    assert t.column("block_num").to_pylist() == list(range(head + 1))


def test_blocks_equal_node(server, truth):
    head, blocks, _ = truth
    t = query(server.client(), "SELECT * FROM eth_rpc.blocks ORDER BY block_num")
    rows = t.to_pylist()
    assert len(rows) == head + 1
    for row in rows:
        blk = blocks[row["block_num"]]
        assert row["hash"] == b(blk["hash"])
        assert row["parent_hash"] == b(blk["parentHash"])
        assert row["miner"] == b(blk["miner"])
        assert row["state_root"] == b(blk["stateRoot"])
        assert row["transactions_root"] == b(blk["transactionsRoot"])
        assert row["receipt_root"] == b(blk["receiptsRoot"])
        assert row["logs_bloom"] == b(blk["logsBloom"])
        assert row["extra_data"] == b(blk["extraData"])
        assert row["gas_used"] == q(blk["gasUsed"])
        assert row["gas_limit"] == q(blk["gasLimit"])
        assert int(row["timestamp"].timestamp()) == q(blk["timestamp"])
        assert row["nonce"] == q(blk["nonce"])
        assert row["ommers_hash"] == b(blk["sha3Uncles"])
        assert row["mix_hash"] == b(blk["mixHash"])
        assert int(row["difficulty"]) == q(blk["difficulty"])
        # The later forks' header fields: null where the node leaves them out.
        dec = row["base_fee_per_gas"]
        assert (None if dec is None else int(dec)) == q(blk.get("baseFeePerGas"))
        assert row["withdrawals_root"] == b(blk.get("withdrawalsRoot"))
        assert row["blob_gas_used"] == q(blk.get("blobGasUsed"))
        assert row["excess_blob_gas"] == q(blk.get("excessBlobGas"))
        assert row["parent_beacon_root"] == b(blk.get("parentBeaconBlockRoot"))
        assert row["requests_hash"] == b(blk.get("requestsHash"))


def test_transactions_equal_node(server, truth):
    head, blocks, receipts = truth
    t = query(server.client(), "SELECT * FROM eth_rpc.transactions ORDER BY block_num, tx_index")
    by_block = rows_by(t, "block_num")
    total = 0
    kinds = set()
    for n in range(head + 1):
        txs = blocks[n]["transactions"]
        rows = by_block.get(n, [])
        assert len(rows) == len(txs), f"block {n}"
        for row, tx, rcpt in zip(rows, txs, receipts[n]):
            assert row["tx_hash"] == b(tx["hash"])
            assert row["block_hash"] == b(blocks[n]["hash"])
            assert row["tx_index"] == q(tx["transactionIndex"])
            assert row["from"] == b(tx["from"])
            assert row["to"] == b(tx.get("to"))
            assert row["value"] == str(q(tx["value"]))
            assert row["nonce"] == q(tx["nonce"])
            assert row["gas_limit"] == q(tx["gas"])
            assert row["input"] == b(tx["input"])
            assert row["type"] == q(tx.get("type"))  # null when a node omits it
            assert row["gas_used"] == q(rcpt["gasUsed"])
            assert row["cumulative_gas_used"] == q(rcpt["cumulativeGasUsed"])
            assert row["status"] == (q(rcpt["status"]) == 1)
            assert row["post_state_root"] == b(rcpt.get("root"))
            # The signature: r and s as 32-byte words, v as the node gives it.
            assert row["r"] == q(tx["r"]).to_bytes(32, "big")
            assert row["s"] == q(tx["s"]).to_bytes(32, "big")
            assert int(row["v"]) == q(tx["v"])
            assert row["v_parity"] == parity(tx)
            assert row["chain_id"] == q(tx.get("chainId"))
            access = tx.get("accessList")
            assert row["access_list"] == (None if access is None else [
                {"address": b(e["address"]), "storage_keys": [b(k) for k in e["storageKeys"]]}
                for e in access])
            blobs = tx.get("blobVersionedHashes")
            assert row["blob_versioned_hashes"] == (None if blobs is None else [b(h) for h in blobs])
            assert (row["authorization_list"] is None) == (tx.get("authorizationList") is None)
            if access:
                kinds.add(("access list", len(access[0]["storageKeys"])))
            kinds.add((row["to"] is None, row["status"], len(row["input"]) > 0))
        total += len(txs)
    assert total > 100
    # The demo traffic has creations, failures, calls and plain transfers.
    assert ("access list", 2) in kinds
    kinds = {k for k in kinds if len(k) == 3}
    assert any(creation for creation, _, _ in kinds)
    assert any(not ok for _, ok, _ in kinds)
    assert any(not has_input for _, _, has_input in kinds)


def test_logs_equal_node(server, truth):
    head, blocks, receipts = truth
    t = query(server.client(), "SELECT * FROM eth_rpc.logs ORDER BY block_num, log_index")
    by_block = rows_by(t, "block_num")
    total = 0
    for n in range(head + 1):
        logs = [log for r in receipts[n] for log in r["logs"]]
        rows = by_block.get(n, [])
        assert len(rows) == len(logs), f"block {n}"
        for row, log in zip(rows, logs):
            assert row["log_index"] == q(log["logIndex"])
            assert row["tx_hash"] == b(log["transactionHash"])
            assert row["tx_index"] == q(log["transactionIndex"])
            assert row["address"] == b(log["address"])
            topics = log["topics"] + [None] * (4 - len(log["topics"]))
            assert [row["topic0"], row["topic1"], row["topic2"], row["topic3"]] == [b(x) for x in topics]
            assert row["data"] == b(log["data"])
        total += len(logs)
    assert total > 50


def test_joins_and_aggregates_work(server, truth):
    head, _, receipts = truth
    t = query(server.client(), """
        SELECT t.block_num, count(*) AS n
        FROM eth_rpc.transactions t JOIN eth_rpc.logs l
          ON t.block_num = l.block_num AND t.tx_hash = l.tx_hash
        GROUP BY t.block_num ORDER BY t.block_num""")
    got = dict(zip(t.column("block_num").to_pylist(), t.column("n").to_pylist()))
    want = {n: sum(len(r["logs"]) for r in receipts[n]) for n in range(head + 1)}
    assert got == {n: c for n, c in want.items() if c}


def test_docs_tables_match_the_schema(server):
    """docs/tables.md lists every column of every chain table, in order, with the
    type a client receives."""
    import re
    from sluice_harness import ROOT

    text = (ROOT / "docs" / "tables.md").read_text()
    for table in ("blocks", "transactions", "logs"):
        section = text.split(f"## `eth_rpc.{table}`", 1)[1].split("\n## ", 1)[0]
        documented = re.findall(r"^\| `([a-z0-9_]+)` \| ([^|]+) \|", section, re.M)
        schema = query(server.client(), f"SELECT * FROM eth_rpc.{table} LIMIT 0").schema
        # Arrow names list items "l" or "item"; the doc writes list<type>.
        actual = [(f.name, re.sub(r"\b(?:l|item): ", "", str(f.type))) for f in schema]
        assert [(n, t.strip()) for n, t in documented] == actual, table
