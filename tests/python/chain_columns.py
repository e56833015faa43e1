"""Every column of docs/tables.md, compared with the node's own JSON-RPC answers.

The mapping comes from the docs themselves: each documented column's "from the
node" cell names the field it holds (`hash`, receipt `gasUsed`, the block's
`timestamp`, `topics[2]`, ...), and the value is converted by the column's Arrow
type (hex quantity -> integer, hex data -> bytes, seconds -> timestamp). A
column the docs add is thus compared as soon as it is documented; one the docs
list but the server lacks fails."""
from __future__ import annotations

import re
from collections import defaultdict

import pyarrow as pa

from sluice_harness import ROOT, query, rpc, rpc_batch

TABLES = ("blocks", "transactions", "logs")


def documented_columns(table: str) -> list:
    """[(column, source cell)] of `eth_rpc.<table>` in docs/tables.md, in order."""
    text = (ROOT / "docs" / "tables.md").read_text()
    section = text.split(f"## `eth_rpc.{table}`", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9_]+)` \|[^|]+\|[^|]*\| (.+?) \|$", section, re.M)
    assert rows, f"no columns documented for {table}"
    return rows


def _source(table: str, cell: str) -> tuple:
    """(object, field) a documented column reads: object is "block", "tx",
    "receipt", "log"; field the JSON-RPC name (`topics[2]` kept as is)."""
    m = re.search(r"`([A-Za-z0-9_\[\]]+)`", cell)
    assert m, f"no node field in {cell!r}"
    field = m.group(1)
    if cell.startswith("the block's"):
        return "block", field
    if cell.startswith("receipt"):
        return "receipt", field
    return {"blocks": "block", "transactions": "tx", "logs": "log"}[table], field


def _b(x):
    return None if x is None else bytes.fromhex(x[2:])


def _q(x):
    return None if x is None else int(x, 16)


def _word(x):
    return None if x is None else int(x, 16).to_bytes(32, "big")


def _parity(tx):
    if tx.get("yParity") is not None:
        return int(tx["yParity"], 16) == 1
    if tx.get("v") is None:
        return None
    v = int(tx["v"], 16)
    return v == 1 if v <= 1 else v == 28 if v in (27, 28) else (v - 35) % 2 == 1


def _expected(column: str, field: str, value, typ: pa.DataType):
    """The value the server must hold for a node field of this column."""
    if column in ("r", "s"):
        return _word(value)
    if column == "access_list":
        return None if value is None else [
            {"address": _b(e["address"]), "storage_keys": [_b(k) for k in e["storageKeys"]]}
            for e in value]
    if column == "blob_versioned_hashes":
        return None if value is None else [_b(h) for h in value]
    if column == "authorization_list":
        return None if value is None else [
            {"chain_id": _q(a["chainId"]), "address": _b(a["address"]), "nonce": _q(a["nonce"]),
             "y_parity": _q(a["yParity"]) == 1, "r": _word(a["r"]), "s": _word(a["s"])}
            for a in value]
    if value is None:
        return None
    if pa.types.is_binary(typ) or pa.types.is_fixed_size_binary(typ):
        return _b(value)
    if pa.types.is_integer(typ) or pa.types.is_decimal(typ):
        return _q(value)
    if pa.types.is_timestamp(typ):
        return _q(value)
    if pa.types.is_string(typ):
        return str(_q(value))
    if pa.types.is_boolean(typ):
        return _q(value) == 1
    raise AssertionError(f"column {column}: no conversion for {typ}")


def _actual(value, typ: pa.DataType, column: str):
    if value is None:
        return None
    if pa.types.is_timestamp(typ):
        return int(value.timestamp())
    if pa.types.is_decimal(typ):
        return int(value)
    if column == "authorization_list":
        return [{**a, "chain_id": int(a["chain_id"])} for a in value]
    return value


def node_answers(url: str, lo: int, hi: int, batches: bool = True) -> tuple:
    """{n: block with full transactions}, {n: receipts} for blocks lo..hi (in
    batches, or one call at a time for a node that limits them)."""
    blocks, receipts = {}, {}
    if not batches:
        for n in range(lo, hi + 1):
            blocks[n] = rpc(url, "eth_getBlockByNumber", [hex(n), True])
            receipts[n] = rpc(url, "eth_getBlockReceipts", [hex(n)])
        return blocks, receipts
    for start in range(lo, hi + 1, 50):
        nums = list(range(start, min(hi, start + 49) + 1))
        answers = rpc_batch(url, [c for n in nums for c in (
            ("eth_getBlockByNumber", [hex(n), True]), ("eth_getBlockReceipts", [hex(n)]))])
        for i, n in enumerate(nums):
            blocks[n], receipts[n] = answers[2 * i], answers[2 * i + 1]
    return blocks, receipts


def assert_tables_equal_node(client, dataset: str, url: str, lo: int, hi: int,
                             batches: bool = True) -> dict:
    """Blocks lo..hi of `dataset`, every documented column of every table, equal the
    node's answers. Returns {table: rows compared}."""
    blocks, receipts = node_answers(url, lo, hi, batches)
    counts = {}
    for table in TABLES:
        columns = documented_columns(table)
        t = query(client, f"SELECT * FROM {dataset}.{table} WHERE block_num BETWEEN {lo} AND {hi}"
                          f" ORDER BY block_num" +
                  (", tx_index" if table == "transactions" else
                   ", log_index" if table == "logs" else ""))
        assert [c for c, _ in columns] == t.schema.names, f"{table}: docs and server differ"
        by_block = defaultdict(list)
        for row in t.to_pylist():
            by_block[row["block_num"]].append(row)
        n_rows = 0
        for n in range(lo, hi + 1):
            blk, rcpts = blocks[n], receipts[n]
            if table == "blocks":
                objs = [{"block": blk}]
            elif table == "transactions":
                objs = [{"block": blk, "tx": tx, "receipt": r}
                        for tx, r in zip(blk["transactions"], rcpts)]
            else:
                objs = [{"block": blk, "log": log} for r in rcpts for log in r["logs"]]
            rows = by_block.get(n, [])
            assert len(rows) == len(objs), f"{dataset}.{table} block {n}: {len(rows)} rows, " \
                                           f"node has {len(objs)}"
            for row, obj in zip(rows, objs):
                for column, cell in columns:
                    kind, field = _source(table, cell)
                    typ = t.schema.field(column).type
                    if column == "v_parity":
                        want = _parity(obj["tx"])
                    else:
                        m = re.fullmatch(r"topics\[(\d)\]", field)
                        if m:
                            topics = obj["log"]["topics"]
                            k = int(m.group(1))
                            value = topics[k] if k < len(topics) else None
                        else:
                            value = obj[kind].get(field)
                        want = _expected(column, field, value, typ)
                    got = _actual(row[column], typ, column)
                    assert got == want, (f"{dataset}.{table} block {n} column {column}: "
                                         f"stored {got!r}, node {want!r}")
                n_rows += 1
        counts[table] = n_rows
    return counts
