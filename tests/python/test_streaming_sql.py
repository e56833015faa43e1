"""Streaming SQL beyond one table read once (issue 13, docs/protocol.md "What streams"):
self-joins, a table read twice through UNION ALL, EXISTS / IN / SEMI JOIN over other
chain tables whose match lies in an earlier block or arrives in a later one, GROUP
BY / DISTINCT ON keyed by the rows' block over unions and joins, Amp's `_block_num`
and `block_num()`. Each accepted query streams while blocks are mined, and what
the stream sent must equal the batch query over the same chain; each refused one
names its operation after `NonIncrementalOp:`. A reorg under a self-join ends
exact too.

The client here keeps rows per block as docs/reorgs.md says; a row belongs to the
block whose `block_complete` follows it (for most queries that is the block in
its block column; for rows that qualify through EXISTS/IN when a later block adds
their match, it is that later block).
"""
from __future__ import annotations

import collections
import json
import threading
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from sluice_harness import Server, anvil_reorg, query, wait_for, wait_store_matches_node

NET = "anvil"

# name -> (SQL, rows qualify late). Every query's answer is a multiset of rows; the
# stream's rows over all microbatches must equal it.
ACCEPTED = {
    # The bug this file began with: the match is in an earlier block.
    "exists_earlier": ("SELECT b.block_num, b.hash FROM eth_rpc.blocks b WHERE EXISTS "
                       "(SELECT 1 FROM eth_rpc.logs l WHERE l.block_num + 1 = b.block_num)", True),
    # ... and in a later one: block b qualifies once block b + 1 (with a log) arrives.
    "exists_later": ("SELECT b.block_num, b.hash FROM eth_rpc.blocks b WHERE EXISTS "
                     "(SELECT 1 FROM eth_rpc.logs l WHERE l.block_num = b.block_num + 1)", True),
    "in_subquery": ("SELECT t.block_num, t.tx_hash FROM eth_rpc.transactions t "
                    "WHERE t.block_num + 2 IN (SELECT block_num FROM eth_rpc.logs) "
                    "AND t.status", True),
    "in_uncorrelated": ('SELECT t.block_num, t.tx_hash FROM eth_rpc.transactions t WHERE t."from" IN '
                        '(SELECT "to" FROM eth_rpc.transactions WHERE value <> \'0\')', True),
    "semi_join": ("SELECT b.block_num, b.miner FROM eth_rpc.blocks b SEMI JOIN eth_rpc.transactions t "
                  "ON t.block_num = b.block_num + 1", True),
    "exists_or": ("SELECT block_num, tx_hash FROM eth_rpc.transactions t WHERE t.gas_used > 50000 OR EXISTS "
                  "(SELECT 1 FROM eth_rpc.logs l WHERE l.tx_hash = t.tx_hash)", True),
    # A table read twice.
    "self_join_parent": ("SELECT child.block_num, parent.block_num AS parent_num FROM eth_rpc.blocks child "
                         "JOIN eth_rpc.blocks parent ON child.parent_hash = parent.hash", False),
    "self_join_sender": ('SELECT a.block_num AS a_block, b.block_num AS b_block, a.tx_hash AS a_tx, '
                         'b.tx_hash AS b_tx, block_num() AS block FROM eth_rpc.transactions a '
                         'JOIN eth_rpc.transactions b ON a."from" = b."from" AND a.tx_hash <> b.tx_hash',
                         False),
    # Typed EVM decoding (sql/evm_rewrite.h) inside a delta query.
    "decoded_self_join": ("SELECT a.block_num, a.log_index, evm_decode_log(a.topic1, a.topic2, a.topic3, "
                          "a.data, 'Transfer(address indexed from, address indexed to, uint256 value)')"
                          ".value AS v, block_num() AS b FROM eth_rpc.logs a JOIN eth_rpc.logs c "
                          "ON a.address = c.address AND a.block_num < c.block_num AND c.log_index = 0 "
                          "WHERE a.topic0 = evm_topic('Transfer(address,address,uint256)') "
                          "AND a.topic3 IS NULL", False),
    "union_self": ("SELECT block_num, hash FROM eth_rpc.blocks UNION ALL "
                   "SELECT block_num, hash FROM eth_rpc.blocks", False),
    "cte_twice": ("WITH l AS (SELECT block_num, log_index, address FROM eth_rpc.logs) "
                  "SELECT x.block_num, x.log_index, y.log_index AS other FROM l x JOIN l y "
                  "ON x.address = y.address AND x.block_num = y.block_num + 1", False),
    # Amp's own streaming DISTINCT ON / GROUP BY tests (dataset renamed eth_rpc).
    "amp_distinct_blocks": ("SELECT DISTINCT ON (_block_num) _block_num, block_num, gas_used FROM ("
                            "SELECT _block_num, block_num, gas_used FROM eth_rpc.blocks UNION ALL "
                            "SELECT _block_num, block_num, gas_used FROM eth_rpc.blocks)", False),
    "amp_distinct_join_blocks": (
        "SELECT DISTINCT ON (block_num()) block_num(), parent_num FROM ("
        "SELECT child.block_num, parent.block_num AS parent_num FROM eth_rpc.blocks child "
        "JOIN eth_rpc.blocks parent ON child.parent_hash = parent.hash UNION ALL "
        "SELECT child.block_num, parent.block_num AS parent_num FROM eth_rpc.blocks child "
        "JOIN eth_rpc.blocks parent ON child.parent_hash = parent.hash)", False),
    "amp_group_by_blocks": ("SELECT COUNT(*) AS cnt FROM (SELECT _block_num, block_num FROM eth_rpc.blocks "
                            "UNION ALL SELECT _block_num, block_num FROM eth_rpc.blocks) "
                            "GROUP BY _block_num, block_num", False),
    # Grouping keyed by the joined row's block over a join on something else.
    "group_by_joined_block": ('SELECT block_num() AS b, count(*) AS pairs, min(a.tx_hash) AS first_tx '
                              'FROM eth_rpc.transactions a JOIN eth_rpc.transactions b '
                              'ON a."from" = b."from" GROUP BY block_num()', False),
    "distinct_on_joined_block": ("SELECT DISTINCT ON (block_num()) block_num() AS b, parent.hash "
                                 "FROM eth_rpc.blocks child JOIN eth_rpc.blocks parent "
                                 "ON child.parent_hash = parent.hash", False),
}

REFUSED = {
    "SELECT b.block_num FROM eth_rpc.blocks b WHERE NOT EXISTS "
    "(SELECT 1 FROM eth_rpc.logs l WHERE l.block_num = b.block_num)":
        "NonIncrementalOp: NOT EXISTS requires knowing that no matching row arrives in a later block",
    "SELECT tx_hash FROM eth_rpc.transactions WHERE tx_hash NOT IN (SELECT tx_hash FROM eth_rpc.logs)":
        "NonIncrementalOp: NOT IN (subquery) requires knowing",
    "SELECT * FROM eth_rpc.blocks b ANTI JOIN eth_rpc.logs l ON l.block_num = b.block_num":
        "NonIncrementalOp: ANTI JOIN requires knowing that no matching row arrives in a later block",
    "SELECT block_num, EXISTS (SELECT 1 FROM eth_rpc.logs l WHERE l.tx_hash = t.tx_hash) AS has_logs "
    "FROM eth_rpc.transactions t":
        "NonIncrementalOp: a subquery over chain tables here (in the select list)",
    "SELECT block_num, (SELECT max(block_num) FROM eth_rpc.blocks) FROM eth_rpc.logs":
        "NonIncrementalOp: Aggregate function MAX",
    "SELECT t.block_num, count(*) FROM eth_rpc.transactions t JOIN eth_rpc.logs l "
    "ON t.tx_hash = l.tx_hash AND t.block_num < l.block_num GROUP BY t.block_num":
        "NonIncrementalOp: GROUP BY block_num over a join requires the join condition to equate",
    "SELECT block_num, count(*) FROM eth_rpc.blocks b WHERE EXISTS "
    "(SELECT 1 FROM eth_rpc.logs l WHERE l.block_num = b.block_num + 1) GROUP BY block_num":
        "NonIncrementalOp: GROUP BY block_num over EXISTS or IN (subquery)",
}


@pytest.fixture(scope="module")
def srv(chain, tmp_path_factory):
    """Microbatches of 3 blocks, so catching up crosses several and the tip is one."""
    tmp = tmp_path_factory.mktemp("sqlserver")
    s = Server(tmp / "data", chain.url, "--server-microbatch-max-interval", "3")
    s.wait_head(chain.head())
    yield s
    s.stop()


class Collector:
    """A streaming client that keeps rows per block (docs/reorgs.md): a row belongs
    to the block of the block_complete that follows it; a microbatch counts once its
    microbatch_end arrives; an is_reorg microbatch first drops blocks >= its start."""

    def __init__(self, location: str, sql: str):
        self.sql = sql
        self.blocks: dict = collections.defaultdict(list)
        self.end = None
        self.error = None
        self.reorgs = []
        self._cv = threading.Condition()
        self._client = flight.connect(location)
        opts = flight.FlightCallOptions(headers=[(b"amp-stream", b"true")])
        info = self._client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), opts)
        self.schema = info.schema
        self._reader = self._client.do_get(info.endpoints[0].ticket, opts)
        self._closing = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        pending = None
        try:
            for chunk in self._reader:
                meta = json.loads(chunk.app_metadata.to_pybytes())
                kind = meta.get("kind")
                if kind == "microbatch_start":
                    pending = {"range": meta["range"], "reorg": meta["is_reorg"], "blocks": {},
                               "rows": []}
                elif kind == "data":
                    assert chunk.data.schema.equals(self.schema), "a data batch's schema"
                    pending["rows"].extend(chunk.data.to_pylist())
                elif kind == "block_complete":
                    bc = meta["block_complete"]
                    pending["blocks"].setdefault(bc["end"], []).extend(pending["rows"])
                    pending["rows"] = []
                elif kind == "microbatch_end":
                    assert not pending["rows"], "rows after the last block_complete"
                    with self._cv:
                        if pending["reorg"]:
                            self.reorgs.append(pending["range"])
                            for b in [b for b in self.blocks if b >= pending["range"]["start"]]:
                                del self.blocks[b]
                        for b, rows in pending["blocks"].items():
                            assert pending["range"]["start"] <= b <= pending["range"]["end"]
                            self.blocks[b].extend(rows)
                        self.end = meta["range"]["end"]
                        self._cv.notify_all()
                    pending = None
        except BaseException as e:  # noqa: BLE001
            if not self._closing:
                self.error = e
        with self._cv:
            self._cv.notify_all()

    def wait_until(self, block: int, timeout: float = 90):
        deadline = time.monotonic() + timeout
        with self._cv:
            while self.end is None or self.end < block:
                if self.error is not None or not self._thread.is_alive():
                    raise RuntimeError(f"stream of {self.sql!r} ended: {self.error!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"stream of {self.sql!r} at {self.end}, waited for {block}")
                self._cv.wait(min(left, 0.2))

    def rows(self, upto=None):
        with self._cv:
            return [r for b, rows in self.blocks.items() if upto is None or b <= upto for r in rows]

    def close(self):
        self._closing = True
        try:
            self._reader.cancel()
        except Exception:  # noqa: BLE001
            pass
        self._thread.join(10)
        self._client.close()


def canon(rows):
    return collections.Counter(tuple(sorted((k, repr(v)) for k, v in r.items())) for r in rows)


def assert_same(got, want, what):
    g, w = canon(got), canon(want)
    if g != w:
        missing, extra = list((w - g).elements()), list((g - w).elements())
        pytest.fail(f"{what}: stream {len(got)} rows, batch {len(want)}; {len(missing)} missing "
                    f"e.g. {missing[:2]}, {len(extra)} extra e.g. {extra[:2]}")


def test_accepted_queries_stream_the_batch_answer(chain, srv):
    """Every accepted shape, caught up from block 0 in 3-block microbatches and then
    following new blocks one at a time, equals its batch query — including rows
    whose EXISTS/IN match lies in an earlier block or arrives in a later one."""
    streams = {name: Collector(srv.location, sql) for name, (sql, _) in ACCEPTED.items()}
    try:
        head = chain.head()
        for s in streams.values():
            s.wait_until(head)
        chain.traffic(blocks=4, seed=23)  # new blocks while every stream follows the tip
        head = chain.head()
        srv.wait_head(head)
        for name, s in streams.items():
            s.wait_until(head)
            want = query(srv.client(), ACCEPTED[name][0]).to_pylist()
            assert want, f"{name}: the batch query has rows (the test data must exercise it)"
            assert_same(s.rows(), want, name)
    finally:
        for s in streams.values():
            s.close()


def test_late_match_is_sent_in_the_block_that_adds_it(chain, srv):
    """exists_later: block b is sent in the microbatch of block b + 1, which holds its
    match — never before, never twice."""
    sql = ACCEPTED["exists_later"][0]
    s = Collector(srv.location, sql)
    try:
        head = chain.head()
        s.wait_until(head)
        with s._cv:
            placed = {r["block_num"]: b for b, rows in s.blocks.items() for r in rows}
        assert placed, "some block has a log in the next block"
        assert all(b == n + 1 for n, b in placed.items()), placed
    finally:
        s.close()


@pytest.mark.parametrize("sql,message", list(REFUSED.items()),
                         ids=[m.split(":")[1][:40] for m in REFUSED.values()])
def test_refused_with_the_operation_named(srv, sql, message):
    with pytest.raises(pa.ArrowInvalid) as e:
        query(srv.client(), sql + " SETTINGS stream = true")
    assert message in str(e.value)
    query(srv.client(), sql)  # the same query runs as a batch query


def test_block_names_in_batch_queries(chain, srv):
    """`_block_num` is block_num; block_num() of a joined row is the later block."""
    c = srv.client()
    rows = query(c, "SELECT _block_num, block_num, l._block_num AS lb FROM eth_rpc.logs l").to_pylist()
    assert rows and all(r["_block_num"] == r["block_num"] == r["lb"] for r in rows)
    t = query(c, "SELECT _block_num FROM eth_rpc.transactions LIMIT 1")
    assert t.schema.names == ["_block_num"]
    joined = query(c, "SELECT a.block_num AS a, b.block_num AS b, block_num() FROM eth_rpc.blocks a "
                      "JOIN eth_rpc.blocks b ON b.block_num = a.block_num + 3").to_pylist()
    assert joined and all(r["block_num()"] == max(r["a"], r["b"]) for r in joined)
    sub = query(c, "SELECT block_num() AS k, n FROM (SELECT block_num() AS n FROM eth_rpc.blocks "
                   "WHERE block_num % 2 = 0) s").to_pylist()
    assert sub and all(r["k"] == r["n"] for r in sub)
    with pytest.raises(pa.ArrowInvalid, match="_block_num is ambiguous"):
        query(c, "SELECT _block_num FROM eth_rpc.blocks a JOIN eth_rpc.blocks b ON a.hash = b.parent_hash")


def test_reorg_under_self_join_ends_exact(make_anvil, make_server, tmp_path):
    """A parent/child self-join and a sender self-join across blocks follow a reorg
    (anvil_reorg) and end with the batch query's rows on the new chain."""
    node = make_anvil()
    node.traffic(blocks=14, txs_per_block=4, seed=5)
    server = make_server(tmp_path / "data", node.url, "--server-microbatch-max-interval", "4")
    server.wait_head(node.head())
    names = ["self_join_parent", "self_join_sender", "exists_later", "group_by_joined_block"]
    streams = {n: Collector(server.location, ACCEPTED[n][0]) for n in names}
    try:
        head = node.head()
        for s in streams.values():
            s.wait_until(head)
        anvil_reorg(node.url, 5)
        node.traffic(blocks=3, txs_per_block=3, seed=77)
        wait_store_matches_node(server, node)
        head = node.head()
        for name, s in streams.items():
            s.wait_until(head)
            wait_for(lambda: s.reorgs, 30, f"{name}: an is_reorg microbatch")
            assert_same(s.rows(), query(server.client(), ACCEPTED[name][0]).to_pylist(), name)
    finally:
        for s in streams.values():
            s.close()
