"""Several datasets in one server (docs/datasets.md): an anvil chain as eth_rpc and a
`geth --dev` chain (a block a second) as geth_rpc, configured as [[datasets]].

Truths: each node's own JSON-RPC answers (every column of docs/tables.md, block by
block), the server's batch answers per dataset, and a failing node that must not
hold up the other chain."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from chain_columns import assert_tables_equal_node
from sluice_harness import (Anvil, Geth, ProtocolClient, Server, datasets_config, query, rpc,
                            wait_for, wait_store_matches_node)


@pytest.fixture(scope="module")
def anvil(tmp_path_factory):
    node = Anvil(tmp_path_factory.mktemp("anvil"))
    node.traffic(blocks=12, txs_per_block=5)
    yield node
    node.stop()


@pytest.fixture(scope="module")
def geth(tmp_path_factory):
    node = Geth(tmp_path_factory.mktemp("geth"), period=1)
    node.traffic(rounds=6, txs_per_block=5)
    # One legacy transaction for certain (the traffic picks types at random).
    gas_price = hex(2 * int(rpc(node.url, "eth_gasPrice"), 16))
    h = rpc(node.url, "eth_sendTransaction", [{"from": node.account, "to": "0x" + "77" * 20,
                                               "value": "0x1", "gasPrice": gas_price}])
    wait_for(lambda: rpc(node.url, "eth_getTransactionReceipt", [h]), 30, "the legacy tx")
    yield node
    node.stop()


def two_datasets(tmp, anvil_url: str, geth_url: str, **extra) -> list:
    return [{"name": "eth_rpc", "network": "anvil", "rpc_url": anvil_url, **extra},
            {"name": "geth_rpc", "network": "geth", "rpc_url": geth_url, **extra}]


@pytest.fixture(scope="module")
def multi(anvil, geth, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multi")
    cfg = datasets_config(tmp / "sluice.toml", two_datasets(tmp, anvil.url, geth.url),
                          extra="poll_interval_secs = 0.05")
    srv = Server(tmp / "data", None, "--config", str(cfg))
    srv.wait_head(anvil.head(), dataset="eth_rpc")
    srv.wait_head(geth.head(), dataset="geth_rpc")
    yield srv
    srv.stop()


def admin(srv: Server, path: str) -> tuple:
    try:
        with urllib.request.urlopen(srv.admin_url + path, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def ranges_of(srv: Server, sql: str) -> list:
    """The app_metadata ranges of every message of a batch query's answer."""
    c = srv.client()
    info = c.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
    return [json.loads(chunk.app_metadata.to_pybytes())["ranges"]
            for chunk in c.do_get(info.endpoints[0].ticket)]


def test_each_dataset_equals_its_node_every_column(multi, anvil, geth):
    """Every column of docs/tables.md, block by block, against each node's answers."""
    a = assert_tables_equal_node(multi.client(), "eth_rpc", anvil.url, 0, anvil.head())
    g_head = multi.stored_head("geth_rpc")
    g = assert_tables_equal_node(multi.client(), "geth_rpc", geth.url, 0, g_head)
    assert a["transactions"] > 40 and a["logs"] > 20, a
    assert g["transactions"] >= 25 and g["logs"] > 10, g
    # geth's transactions of three types, and its blocks' post-merge fields.
    types = query(multi.client(), "SELECT DISTINCT type FROM geth_rpc.transactions")
    assert set(types.column("type").to_pylist()) >= {0, 1, 2}


def test_batch_query_joins_two_chains_with_a_range_per_network(multi, anvil, geth):
    # The same address receives ETH on both chains.
    to = "0x" + "5a" * 20
    rpc(anvil.url, "eth_sendTransaction", [{"from": rpc(anvil.url, "eth_accounts")[0],
                                            "to": to, "value": hex(7)}])
    anvil.mine()
    h = rpc(geth.url, "eth_sendTransaction", [{"from": geth.account, "to": to, "value": hex(9)}])
    receipt = wait_for(lambda: rpc(geth.url, "eth_getTransactionReceipt", [h]), 30, "geth tx")
    multi.wait_head(anvil.head(), dataset="eth_rpc")
    multi.wait_head(int(receipt["blockNumber"], 16), dataset="geth_rpc")

    sql = (f"SELECT 'anvil' AS chain, value, tx_hash FROM eth_rpc.transactions "
           f"WHERE \"to\" = from_hex('{to[2:]}') UNION ALL "
           f"SELECT 'geth', value, tx_hash FROM geth_rpc.transactions "
           f"WHERE \"to\" = from_hex('{to[2:]}') ORDER BY chain")
    rows = query(multi.client(), sql).to_pylist()
    assert [(r["chain"], r["value"]) for r in rows] == [("anvil", "7"), ("geth", "9")]
    assert "0x" + rows[1]["tx_hash"].hex() == h

    # app_metadata: one range per network the query reads, each the dataset's stored range.
    for ranges in ranges_of(multi, sql):
        assert sorted(r["network"] for r in ranges) == ["anvil", "geth"]
        for r in ranges:
            ds = "eth_rpc" if r["network"] == "anvil" else "geth_rpc"
            assert r["numbers"]["start"] == 0
            assert r["numbers"]["end"] >= multi.stored_head(ds) - 5  # geth keeps growing
            node = anvil if ds == "eth_rpc" else geth
            assert r["hash"] == rpc(node.url, "eth_getBlockByNumber",
                                    [hex(r["numbers"]["end"]), False])["hash"]
    # A join of a table of each chain: blocks of the same number on both.
    joined = query(multi.client(), "SELECT a.block_num, a.hash AS a, g.hash AS g "
                                   "FROM eth_rpc.blocks a JOIN geth_rpc.blocks g USING (block_num) "
                                   "ORDER BY block_num")
    assert joined.num_rows == min(multi.stored_head("eth_rpc"), multi.stored_head("geth_rpc")) + 1
    assert all(r["a"] != r["g"] for r in joined.to_pylist())
    # A query of one dataset lists that network only; one reading none, none.
    assert {r["network"] for rs in ranges_of(multi, "SELECT count(*) FROM geth_rpc.logs")
            for r in rs} == {"geth"}
    assert all(rs == [] for rs in ranges_of(multi, "SELECT 42 AS answer"))


def test_flight_sql_lists_every_dataset(multi):
    with flight_sql.connect(multi.location, autocommit=True) as conn:
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        schemas = {s["db_schema_name"]: {t["table_name"] for t in s["db_schema_tables"]}
                   for cat in objects for s in cat["catalog_db_schemas"]}
        assert schemas["eth_rpc"] == schemas["geth_rpc"] == {"blocks", "transactions", "logs"}
        schema = conn.adbc_get_table_schema("logs", db_schema_filter="geth_rpc")
        assert "topic0" in schema.names


def test_admin_api_per_dataset(multi, anvil, geth):
    status, body = admin(multi, "/datasets")
    assert status == 200
    by_name = {d["name"]: d for d in body["datasets"]}
    assert set(by_name) == {"eth_rpc", "geth_rpc"}
    assert by_name["geth_rpc"]["network"] == "geth"
    assert by_name["eth_rpc"]["head"]["hash"] == rpc(
        anvil.url, "eth_getBlockByNumber", [hex(by_name["eth_rpc"]["head"]["number"]), False])["hash"]
    assert by_name["geth_rpc"]["receipts"] == "eth_getBlockReceipts"
    assert by_name["geth_rpc"]["endpoints"][0]["url"] == geth.url
    status, one = admin(multi, "/datasets/geth_rpc")
    assert status == 200 and one["name"] == "geth_rpc" and one["ready"] is True
    assert admin(multi, "/datasets/nope")[0] == 404
    assert admin(multi, "/ready/eth_rpc") == (200, {"status": "ready",
                                                    "datasets": {"eth_rpc": "ready"}})
    status, ready = admin(multi, "/ready")
    assert status == 200 and ready["datasets"] == {"eth_rpc": "ready", "geth_rpc": "ready"}
    # Metrics with a dataset label for each.
    with urllib.request.urlopen(multi.admin_url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    for ds in ("eth_rpc", "geth_rpc"):
        line = next(l for l in text.splitlines()
                    if l.startswith(f'sluice_stored_head_block{{dataset="{ds}"}} '))
        assert int(line.split()[-1]) >= multi.stored_head(ds) - 5
        assert f'sluice_rpc_failovers_total{{dataset="{ds}"}} 0' in text


def test_single_dataset_streams_and_a_two_dataset_stream_is_refused(multi, geth):
    c = ProtocolClient(multi.location, "SELECT block_num, hash FROM geth_rpc.blocks",
                       network="geth")
    try:
        target = geth.head() + 2
        c.wait_until(target, timeout=60)
        assert not c.violations
        got = {b: rows[0]["hash"] for b, rows in c.rows.items() if b <= target}
        want = {r["block_num"]: r["hash"] for r in query(
            multi.client(), f"SELECT block_num, hash FROM geth_rpc.blocks "
                            f"WHERE block_num <= {target}").to_pylist()}
        assert got == want
        assert set(c.cursor) == {"geth"}
    finally:
        c.close()
    with pytest.raises(pa.ArrowInvalid, match="NonIncrementalOp: a join across datasets"):
        query(multi.client(), "SELECT a.block_num FROM eth_rpc.blocks a JOIN geth_rpc.blocks g "
                              "USING (block_num) SETTINGS stream = true")


TWO_NETWORKS = ("SELECT 'anvil' AS net, block_num, hash FROM eth_rpc.blocks UNION ALL "
                "SELECT 'geth' AS net, t.block_num, t.tx_hash FROM geth_rpc.transactions t "
                "JOIN geth_rpc.blocks b ON b.hash = t.block_hash")


class NetworkCollector:
    """A client of a stream over several networks (protocol.md, "Several networks"):
    rows kept per (network, block) — the row's `net` and `block_num`; a microbatch
    applies at its microbatch_end; a network whose range starts at or below the end
    it had before (and differs) was reorganized: its rows from that start are
    dropped first (the rule Amp's TypeScript client applies)."""

    def __init__(self, location, sql, cursor=None):
        self.rows, self.last, self.cursor, self.reorgs, self.messages = {}, {}, cursor, [], []
        self.advanced = []  # per microbatch: the networks whose range moved
        client = flight.connect(location)
        headers = [(b"amp-stream", b"true")]
        if cursor:
            headers.append((b"amp-resume", json.dumps(cursor).encode()))
        opts = flight.FlightCallOptions(headers=headers)
        info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), opts)
        self.reader = client.do_get(info.endpoints[0].ticket, opts)

    def read_until(self, heads: dict, timeout=90):
        deadline = time.monotonic() + timeout
        pending = None
        for chunk in self.reader:
            meta = json.loads(chunk.app_metadata.to_pybytes())
            self.messages.append(meta)
            ranges = {r["network"]: r for r in meta["ranges"]}
            if meta["kind"] == "microbatch_start":
                moved = [n for n, r in ranges.items() if self.last.get(n) != r]
                reorged = [n for n in moved if n in self.last and
                           r_start(ranges[n]) <= self.last[n]["numbers"]["end"]]
                assert bool(reorged) == meta["is_reorg"], (meta, self.last)
                pending = {"rows": [], "moved": moved, "reorged": {n: r_start(ranges[n]) for n in reorged}}
            elif meta["kind"] == "data":
                pending["rows"] += chunk.data.to_pylist()
            elif meta["kind"] == "microbatch_end":
                for n, start in pending["reorged"].items():
                    self.reorgs.append((n, start))
                    for key in [k for k in self.rows if k[0] == n and k[1] >= start]:
                        del self.rows[key]
                for r in pending["rows"]:
                    self.rows.setdefault((r["net"], r["block_num"]), []).append(r)
                self.advanced.append(pending["moved"])
                self.last.update(ranges)
                self.cursor = meta["cursor"]
                if all(n in self.last and self.last[n]["numbers"]["end"] >= h for n, h in heads.items()):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"stream at {self.last}, waited for {heads}")

    def all_rows(self):
        return [r for rows in self.rows.values() for r in rows]

    def close(self):
        self.reader.cancel()


def r_start(r):
    return r["numbers"]["start"]


def batch_two_networks(srv, heads):
    return query(srv.client(), f"SELECT * FROM ({TWO_NETWORKS}) WHERE (net = 'anvil' AND block_num "
                               f"<= {heads['anvil']}) OR (net = 'geth' AND block_num <= "
                               f"{heads['geth']})").to_pylist()


def same_rows(got, want):
    key = lambda r: (r["net"], r["block_num"], r["hash"])  # noqa: E731
    assert sorted(got, key=key) == sorted(want, key=key)


def test_a_stream_over_two_networks_advances_each_on_its_own(multi, anvil, geth):
    """UNION ALL of an anvil table and a geth join: every message carries a range per
    network, each microbatch advances one network, the cursor names both, a resume
    from it continues exactly, and the rows equal the batch query's."""
    c = NetworkCollector(multi.location, TWO_NETWORKS)
    try:
        anvil.traffic(blocks=2, txs_per_block=2, seed=41)
        heads = {"anvil": anvil.head(), "geth": geth.head()}
        c.read_until(heads)
        assert all(len(m) == 1 for m in c.advanced), c.advanced  # one network per microbatch
        assert {"anvil", "geth"} <= {n for m in c.advanced for n in m}
        data = [m for m in c.messages if m["kind"] in ("data", "microbatch_end", "block_complete")]
        assert data and all({r["network"] for r in m["ranges"]} == {"anvil", "geth"} for m in data[-3:])
        assert set(c.cursor) == {"anvil", "geth"}
        multi.wait_head(heads["geth"], dataset="geth_rpc")
        same_rows([r for r in c.all_rows() if r["block_num"] <= heads[r["net"]]],
                  batch_two_networks(multi, heads))
    finally:
        c.close()
    # Resume from the cursor: the rest, nothing twice.
    cursor = c.cursor
    r = NetworkCollector(multi.location, TWO_NETWORKS, cursor=cursor)
    try:
        anvil.traffic(blocks=2, txs_per_block=2, seed=42)
        heads2 = {"anvil": anvil.head(), "geth": geth.head()}
        r.read_until(heads2)
        multi.wait_head(heads2["geth"], dataset="geth_rpc")
        after = [x for x in r.all_rows() if x["block_num"] <= heads2[x["net"]]]
        assert all(x["block_num"] > cursor[x["net"]]["block_number"] for x in after)
        before = [x for x in c.all_rows() if x["block_num"] <= cursor[x["net"]]["block_number"]]
        same_rows(before + after, batch_two_networks(multi, heads2))
    finally:
        r.close()


def test_a_reorg_on_one_network_reprocesses_only_that_network(geth, make_anvil, tmp_path):
    node = make_anvil()
    node.traffic(blocks=10, txs_per_block=3, seed=9)
    cfg = datasets_config(tmp_path / "sluice.toml", two_datasets(tmp_path, node.url, geth.url))
    srv = Server(tmp_path / "data", None, "--config", str(cfg))
    c = None
    try:
        srv.wait_head(node.head(), dataset="eth_rpc")
        c = NetworkCollector(srv.location, TWO_NETWORKS)
        c.read_until({"anvil": node.head(), "geth": geth.head()})
        rpc(node.url, "anvil_reorg", [4, []])
        node.traffic(blocks=2, txs_per_block=2, seed=19)
        wait_store_matches_node(srv, node, dataset="eth_rpc")
        heads = {"anvil": node.head(), "geth": geth.head()}
        c.read_until(heads)
        assert [n for n, _ in c.reorgs] == ["anvil"], c.reorgs
        srv.wait_head(heads["geth"], dataset="geth_rpc")
        same_rows([r for r in c.all_rows() if r["block_num"] <= heads[r["net"]]],
                  batch_two_networks(srv, heads))
    finally:
        if c is not None:
            c.close()
        srv.stop()


def test_a_failing_node_never_stalls_the_other_dataset(geth, make_anvil, tmp_path):
    """Kill anvil: geth_rpc keeps extracting and serving, and says it is ready;
    eth_rpc is not ready and says why; queries of eth_rpc still answer what is stored."""
    node = make_anvil(block_time=1)
    node.mine(5)
    cfg = datasets_config(tmp_path / "sluice.toml", two_datasets(tmp_path, node.url, geth.url))
    srv = Server(tmp_path / "data", None, "--config", str(cfg))
    try:
        srv.wait_head(node.head(), dataset="eth_rpc")
        srv.wait_head(geth.head(), dataset="geth_rpc")
        node.stop()
        stored_anvil = srv.stored_head("eth_rpc")
        t0 = time.monotonic()
        wait_for(lambda: admin(srv, "/ready/eth_rpc")[0] == 503, 30, "eth_rpc not ready")
        # geth_rpc goes on: new blocks, equal to geth's.
        g0 = srv.stored_head("geth_rpc")
        wait_store_matches_node(srv, geth, timeout=30, dataset="geth_rpc")
        srv.wait_head(g0 + 3, timeout=30, dataset="geth_rpc")
        assert admin(srv, "/ready/geth_rpc")[0] == 200
        status, body = admin(srv, "/ready")
        assert status == 503 and body["datasets"] == {"eth_rpc": "not_ready", "geth_rpc": "ready"}
        assert "eth_rpc" in body["reason"]
        assert srv.stored_head("eth_rpc") == stored_anvil
        print(f"\nanvil down: geth_rpc went from {g0} to {srv.stored_head('geth_rpc')} "
              f"in {time.monotonic() - t0:.1f}s")
    finally:
        srv.stop()


def test_docs_list_every_dataset_setting():
    """docs/datasets.md's table has every setting `sluice serve --help` marks (dataset)."""
    import re
    import subprocess

    from sluice_harness import ROOT, SLUICE
    help_text = subprocess.run([str(SLUICE), "serve", "--help"], capture_output=True, text=True,
                               timeout=30).stdout
    flags = re.findall(r"^\s*--([a-z0-9-]+)\s+\S+\s+\(dataset\)", help_text, re.M)
    names = {f.replace("-", "_") for f in flags}
    assert {"rpc_url", "network", "finality_tag", "rpc_receipts"} <= names, names
    doc = (ROOT / "docs" / "datasets.md").read_text()
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \| `", doc, re.M))
    assert names <= documented, f"not in docs/datasets.md: {sorted(names - documented)}"
