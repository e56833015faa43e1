"""Direct scans (src/sql/scan.h): a plain scan of a chain table is read from the
segments (or the scan cache's Arrow copy of them) instead of by DuckDB. A client
must not be able to tell: every answer here is compared with DuckDB's answer to the
same query (kept off the direct path by a trivially true condition), schema and
rows, over a real anvil chain with demo traffic, through a real Flight client;
the metrics say which path answered, so a comparison of DuckDB with itself cannot
pass for one."""
from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from sluice_harness import anvil_reorg, moved_txs, query, rpc, wait_store_matches_node
from test_http import metric, metrics

PLAIN = [
    "SELECT * FROM eth_rpc.blocks",
    "SELECT * FROM eth_rpc.transactions",
    "SELECT * FROM eth_rpc.logs",
    'SELECT block_num, "from", "to" AS recipient, tx_hash, block_num FROM eth_rpc.transactions',
    "SELECT access_list, blob_versioned_hashes, authorization_list, value FROM eth_rpc.transactions",
    "SELECT t.hash, t.timestamp FROM memory.eth_rpc.blocks AS t",
    "select HASH, Block_Num from ETH_RPC.Blocks",
    "SELECT * FROM eth_rpc.logs WHERE block_num BETWEEN 5 AND 20",
    "SELECT * FROM eth_rpc.transactions WHERE block_num > 10 AND block_num <= 30",
    "SELECT * FROM eth_rpc.transactions WHERE 12 >= block_num",
    "SELECT * FROM eth_rpc.transactions WHERE block_num = 7",
    "SELECT * FROM eth_rpc.transactions WHERE block_num < 0",
]


def via_engine(sql: str) -> str:
    return sql + (" AND true" if " WHERE " in sql else " WHERE true")


def direct_scans(srv) -> float:
    return metric(metrics(srv), "sluice_direct_scans_total")


def segments(srv, source: str) -> float:
    return metric(metrics(srv), "sluice_scan_segments_total", source=source)


def assert_same_answer(srv, sql: str) -> pa.Table:
    before = direct_scans(srv)
    direct = query(srv.client(), sql)
    assert direct_scans(srv) == before + 1, f"{sql}: not answered by a direct scan"
    engine = query(srv.client(), via_engine(sql))
    assert direct_scans(srv) == before + 1, f"{via_engine(sql)}: answered by a direct scan"
    assert direct.schema.equals(engine.schema, check_metadata=True), (sql, direct.schema,
                                                                      engine.schema)
    assert direct.equals(engine), sql
    return direct


@pytest.mark.parametrize("sql", PLAIN)
def test_same_answer_as_the_engine(server, sql):
    t = assert_same_answer(server, sql)
    if "< 0" not in sql:
        assert t.num_rows > 0, sql


def test_cached_segments_give_the_same_answer(server):
    # The second full scan of a segment caches it; the next ones read the cache.
    for _ in range(2):
        for table in ("blocks", "transactions", "logs"):
            assert_same_answer(server, f"SELECT * FROM eth_rpc.{table}")
    cached = segments(server, "cache")
    for sql in PLAIN:
        assert_same_answer(server, sql)
    assert segments(server, "cache") > cached
    assert metric(metrics(server), "sluice_scan_cache_bytes") > 0


def test_demo_traffic_has_nested_values(server):
    # The nested columns are compared above only if they hold something.
    t = query(server.client(), "SELECT access_list FROM eth_rpc.transactions")
    assert any(v for v in t.column("access_list").to_pylist())


def test_fetch_size_is_exact(server):
    client = server.client()
    sql = b"SELECT * FROM eth_rpc.transactions"
    want = query(client, via_engine(sql.decode()))
    options = flight.FlightCallOptions(headers=[(b"sluice-fetch-size", b"7")])
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql), options)
    reader = client.do_get(info.endpoints[0].ticket, options)
    sizes = [chunk.data.num_rows for chunk in reader if chunk.data.num_rows]
    assert sum(sizes) == want.num_rows
    assert all(n == 7 for n in sizes[:-1]) and 0 < sizes[-1] <= 7


def test_off_by_configuration(make_server, chain, tmp_path):
    srv = make_server(tmp_path / "data", chain.url, "--direct-scan", "false")
    srv.wait_head(chain.head())
    before = direct_scans(srv)
    t = query(srv.client(), "SELECT * FROM eth_rpc.transactions")
    assert t.num_rows > 0 and direct_scans(srv) == before


def test_reorg_never_serves_replaced_rows(make_anvil, make_server, tmp_path):
    node = make_anvil()
    node.traffic(blocks=12)
    srv = make_server(tmp_path / "data", node.url)
    wait_store_matches_node(srv, node)
    for _ in range(3):  # the second caches the segments, the third reads them
        assert_same_answer(srv, "SELECT * FROM eth_rpc.transactions")
    assert segments(srv, "cache") > 0
    pairs = moved_txs(node.url, 3)
    anvil_reorg(node.url, 3, pairs)
    head = wait_store_matches_node(srv, node)
    t = assert_same_answer(srv, "SELECT block_num, tx_hash FROM eth_rpc.transactions")
    # Each transaction where the node has it now.
    for n in range(head - 2, head + 1):
        blk = rpc(node.url, "eth_getBlockByNumber", [hex(n), False])
        got = [r["tx_hash"] for r in t.to_pylist() if r["block_num"] == n]
        assert got == [bytes.fromhex(h[2:]) for h in blk["transactions"]], n
    assert_same_answer(srv, "SELECT * FROM eth_rpc.blocks")


def checks(srv, source: str) -> float:
    return metric(metrics(srv), "sluice_query_checks_total", source=source)


def test_remembered_queries_follow_new_blocks_and_reorgs(make_anvil, make_server, tmp_path):
    """The engine remembers a checked query and a plain scan's plan by SQL text
    (sql/query_cache.h), never its snapshot: the same query asked again after new
    blocks and after a reorg answers from the store as it is then, as DuckDB does,
    and a query the sandbox refuses stays refused."""
    node = make_anvil()
    node.traffic(blocks=6)
    srv = make_server(tmp_path / "data", node.url)
    wait_store_matches_node(srv, node)
    sqls = ["SELECT block_num, tx_hash, \"from\" FROM eth_rpc.transactions",
            "SELECT * FROM eth_rpc.blocks WHERE block_num > 2"] + needle_queries(srv)[:2]
    for sql in sqls:
        assert_same_answer(srv, sql)
    parsed, remembered = checks(srv, "parsed"), checks(srv, "remembered")
    node.traffic(blocks=4, seed=2)
    head = wait_store_matches_node(srv, node)
    for sql in sqls:
        t = assert_same_answer(srv, sql)
        if "from_hex" not in sql:  # not a needle: every block has rows
            assert max(t.column("block_num").to_pylist()) == head, sql
    # GetFlightInfo and DoGet of each plain query: remembered, none parsed again (the
    # DuckDB-answered comparisons are remembered too: each was asked before).
    assert checks(srv, "remembered") - remembered >= 2 * len(sqls)
    assert checks(srv, "parsed") == parsed
    pairs = moved_txs(node.url, 3)
    anvil_reorg(node.url, 3, pairs)
    head = wait_store_matches_node(srv, node)
    t = assert_same_answer(srv, sqls[0])
    for n in range(head - 2, head + 1):
        blk = rpc(node.url, "eth_getBlockByNumber", [hex(n), False])
        got = [r["tx_hash"] for r in t.to_pylist() if r["block_num"] == n]
        assert got == [bytes.fromhex(h[2:]) for h in blk["transactions"]], n
    for _ in range(2):
        with pytest.raises(pa.ArrowInvalid, match="read_csv is not allowed"):
            query(srv.client(), "SELECT * FROM read_csv('/etc/passwd')")


# ---- Expressions and integer ranges the scan evaluates (sql/scan_expression.h) -------

EXPRESSIONS = [
    "SELECT block_num, tx_hash, CAST(value AS DOUBLE) / 1e18 AS eth FROM eth_rpc.transactions "
    "WHERE gas_used > 21000",
    # x / 0 (zero-value transactions) is infinite in both; DECIMAL and integer constants;
    # unary minus; an integer cast; the same column answered and computed.
    "SELECT value, value::DOUBLE * 2, 1e18 / CAST(value AS DOUBLE), -CAST(gas_used AS DOUBLE) + 1.5, "
    "CAST(nonce AS DOUBLE) - 3 AS n, CAST(block_num AS DOUBLE) / 7, CAST(tx_index AS DOUBLE) "
    "FROM eth_rpc.transactions",
    "SELECT * FROM eth_rpc.transactions WHERE gas_used >= 21000 AND gas_used <= 60000",
    "SELECT tx_hash FROM eth_rpc.transactions WHERE tx_index BETWEEN 1 AND 3 AND block_num > 2",
    "SELECT * FROM eth_rpc.logs WHERE log_index = 0",
    "SELECT * FROM eth_rpc.transactions WHERE nonce > -5 AND 1 <= type",
    "SELECT * FROM eth_rpc.transactions WHERE gas_used < -1",
    "SELECT block_num, gas_used FROM eth_rpc.blocks WHERE gas_used > 0 AND gas_used < 100000000000",
    "SELECT block_num FROM eth_rpc.blocks WHERE blob_gas_used = 0",
    "SELECT * FROM eth_rpc.transactions WHERE chain_id >= 0",
]

# Shapes the scan leaves to DuckDB: integer arithmetic (overflow and DuckDB's
# promotions), a TRY_CAST, a non-integer comparison, an OR of ranges, a function.
NOT_DIRECT = [
    "SELECT gas_used * 2 FROM eth_rpc.transactions",
    "SELECT TRY_CAST(value AS DOUBLE) FROM eth_rpc.transactions",
    "SELECT block_num FROM eth_rpc.transactions WHERE gas_used > 1e5",
    "SELECT block_num FROM eth_rpc.transactions WHERE gas_used < 30000 OR gas_used > 60000",
    "SELECT block_num FROM eth_rpc.transactions WHERE gas_used <> 21000",
    "SELECT abs(CAST(value AS DOUBLE)) FROM eth_rpc.transactions",
]


def test_expressions_and_ranges_same_answer_as_the_engine(server):
    for sql in EXPRESSIONS:
        t = assert_same_answer(server, sql)
        assert (t.num_rows > 0) == ("< -1" not in sql), sql
    # The data exercises what the queries claim: some rows filtered out, some kept,
    # a zero value (x / 0) and a non-zero one.
    c = server.client()
    gas = query(c, "SELECT gas_used FROM eth_rpc.transactions WHERE true").column(0).to_pylist()
    assert min(gas) <= 21000 < max(gas)
    values = query(c, "SELECT value FROM eth_rpc.transactions WHERE true").column(0).to_pylist()
    assert "0" in values and any(v != "0" for v in values)


def test_decimal_strings_convert_alike():
    """The direct scan casts decimal strings (a transaction's `value`) to DOUBLE with
    Arrow's kernel where DuckDB would use its own (sql/scan_expression.h): both must
    round every uint256 the same way, well past the 19 digits a fast path covers.
    pyarrow and duckdb here are the same Arrow C++ and DuckDB releases the server
    links."""
    import random

    import duckdb
    import pyarrow.compute as pc

    rng = random.Random(16)
    values = ["0", "1", "9007199254740993", str(2**256 - 1), str(2**255 + 2**200 + 1)]
    for _ in range(50_000):
        digits = rng.randint(1, 78)
        s = str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(digits - 1))
        if rng.random() < 0.2:  # round amounts: trailing zeros
            s = s[:rng.randint(1, len(s))] + "0" * rng.randint(0, 30)
        values.append(s)
    arrow_doubles = pc.cast(pa.array(values), pa.float64()).to_pylist()
    con = duckdb.connect()
    con.register("t", pa.table({"v": values}))
    duckdb_doubles = [r[0] for r in con.execute("SELECT CAST(v AS DOUBLE) FROM t").fetchall()]
    differ = [(v, a, d) for v, a, d in zip(values, arrow_doubles, duckdb_doubles) if a != d]
    assert not differ, differ[:5]


def test_other_expressions_are_answered_by_duckdb(server):
    for sql in NOT_DIRECT:
        before = direct_scans(server)
        t = query(server.client(), sql)
        assert direct_scans(server) == before, f"{sql}: answered by a direct scan"
        assert t.num_rows > 0, sql


# ---- Needle queries: equality filters on hashes and addresses ----------------------

def needle_queries(srv) -> list[str]:
    """Equality filters built from values the chain holds (and one it does not)."""
    c = srv.client()
    log = query(c, "SELECT address, topic0, tx_hash FROM eth_rpc.logs WHERE topic0 IS NOT NULL "
                   "AND true ORDER BY block_num DESC LIMIT 1").to_pylist()[0]
    tx = query(c, 'SELECT "from", "to", tx_hash FROM eth_rpc.transactions WHERE "to" IS NOT NULL '
                  "AND true ORDER BY block_num LIMIT 1").to_pylist()[0]
    blk = query(c, "SELECT hash FROM eth_rpc.blocks WHERE block_num = 3 AND true").to_pylist()[0]
    h = lambda b: f"from_hex('{b.hex()}')"  # noqa: E731
    absent = "from_hex('" + "ee" * 20 + "')"
    return [
        f"SELECT * FROM eth_rpc.logs WHERE address = {h(log['address'])} AND topic0 = {h(log['topic0'])}",
        f"SELECT * FROM eth_rpc.logs WHERE address = {h(log['address'])}",
        f"SELECT * FROM eth_rpc.logs WHERE tx_hash = {h(log['tx_hash'])}",
        f'SELECT * FROM eth_rpc.transactions WHERE "from" = {h(tx["from"])} OR "to" = {h(tx["from"])}',
        f'SELECT * FROM eth_rpc.transactions WHERE "to" = {h(tx["to"])} OR "from" = {h(tx["to"])}',
        f"SELECT block_num, tx_hash FROM eth_rpc.transactions WHERE tx_hash = {h(tx['tx_hash'])}",
        f"SELECT * FROM eth_rpc.blocks WHERE hash = {h(blk['hash'])}",
        f"SELECT * FROM eth_rpc.logs WHERE address = {h(log['address'])} AND block_num BETWEEN 5 AND 30",
        f'SELECT * FROM eth_rpc.transactions WHERE "to" = {absent} OR "from" = {absent}',
        f"SELECT * FROM eth_rpc.logs WHERE address = {absent}",
    ]


def test_needle_queries_same_answer_as_the_engine(server):
    for sql in needle_queries(server):
        t = assert_same_answer(server, sql)
        assert (t.num_rows == 0) == ("eeee" in sql), sql


def row_groups(srv, outcome: str) -> float:
    return metric(metrics(srv), "sluice_scan_row_groups_total", outcome=outcome)


def test_needle_skips_row_groups_by_bloom_filter(server):
    # A value no row holds: every row group's bloom filter (or statistics) rules
    # it out, barring a false positive of the filter (1%).
    skipped, read = row_groups(server, "skipped"), row_groups(server, "read")
    absent = "from_hex('" + "ee" * 20 + "')"
    t = assert_same_answer(server, f'SELECT * FROM eth_rpc.transactions WHERE "to" = {absent}')
    assert t.num_rows == 0
    grew_skipped = row_groups(server, "skipped") - skipped
    grew_read = row_groups(server, "read") - read
    assert grew_skipped >= 1 and grew_skipped > grew_read, (grew_skipped, grew_read)


def test_old_segment_format_is_read(make_server, chain, tmp_path):
    """A data directory of segment format 1 (Snappy, dictionaries, no bloom filters
    or page index: what sluice wrote before) is served as is: the same answers."""
    import pyarrow.parquet as pq

    srv = make_server(tmp_path / "data", chain.url)
    srv.wait_head(chain.head())
    sqls = PLAIN[:3] + needle_queries(srv)
    before = {sql: query(srv.client(), sql) for sql in sqls}
    srv.stop()
    files = [p for p in (tmp_path / "data").rglob("*.parquet") if ".scan_cache" not in p.parts]
    assert files
    for p in files:
        pq.write_table(pq.read_table(p), p, compression="snappy", use_dictionary=True,
                       row_group_size=128 * 1024, write_page_index=False)
        meta = pq.read_metadata(p)
        assert meta.num_row_groups == 0 or meta.row_group(0).column(0).compression == "SNAPPY"
    shutil.rmtree(tmp_path / "data" / ".scan_cache", ignore_errors=True)
    srv = make_server(tmp_path / "data", chain.url)
    srv.wait_head(chain.head())
    for sql in sqls:
        assert_same_answer(srv, sql)
        assert query(srv.client(), sql).equals(before[sql]), sql


def test_streaming_plain_scans_are_direct_and_exact(make_server, chain, tmp_path):
    """A streaming plain scan (and needle query) is planned once and read directly
    in every microbatch: the stream's rows equal the batch answer, block by block,
    and every microbatch was a direct scan (none asked DuckDB)."""
    from sluice_harness import ProtocolClient

    srv = make_server(tmp_path / "data", chain.url, "--server-microbatch-max-interval", "4")
    head = chain.head()
    srv.wait_head(head)
    needle = needle_queries(srv)[3]  # "from" = A OR "to" = A
    computed = ("SELECT block_num, tx_hash, CAST(value AS DOUBLE) / 1e18 AS eth "
                "FROM eth_rpc.transactions WHERE gas_used > 21000")
    for sql in ("SELECT * FROM eth_rpc.transactions", "SELECT * FROM eth_rpc.logs", needle,
                computed):
        before = direct_scans(srv)
        stream = ProtocolClient(srv.location, sql)
        try:
            stream.wait_until(head)
            got = stream.rows_upto(head)
        finally:
            stream.disconnect()
        assert not stream.violations, stream.violations
        microbatches = len(stream.cursors)
        assert microbatches >= head // 4, (sql, microbatches)
        assert direct_scans(srv) - before >= microbatches, sql
        want = query(srv.client(), f"SELECT * FROM ({sql}) WHERE block_num <= {head}").to_pylist()
        assert got == want, sql
        assert (len(want) > 0), sql
