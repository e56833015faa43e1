"""Streaming queries (seed 001, protocol.md §3-4) against a real anvil node whose
blocks are mined while the streams run, read by the real pyarrow client. The
truth is the node's JSON-RPC answers and batch queries over the same data."""
from __future__ import annotations

import collections
import random
import subprocess
import textwrap
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from sluice_harness import PYTHON, ROOT, Server, StreamReader, query, rpc, wait_for

SEED_001 = next((ROOT.parent / "shared" / "seeds").glob("001_*.txt"), None)


@pytest.fixture(scope="module")
def sserver(chain, tmp_path_factory):
    """A server with small microbatches (3 blocks) and a fast test-only keep-alive."""
    tmp = tmp_path_factory.mktemp("sserver")
    srv = Server(tmp / "data", chain.url, "--server-microbatch-max-interval", "3",
                 "--testing-keep-alive-interval-ms", "400")
    srv.wait_head(chain.head())
    yield srv
    srv.stop()


def mine_and_wait(chain, srv, blocks=2, seed=11):
    chain.traffic(blocks=blocks, seed=seed)
    srv.wait_head(chain.head(), timeout=60)
    return chain.head()


def data_rows(messages):
    rows = []
    for kind, _, batch in messages:
        if kind == "data":
            rows.extend(batch.to_pylist())
    return rows


def test_settings_clause_streams_new_blocks(chain, sserver):
    s = StreamReader(sserver.location,
                     "SELECT block_num, hash, timestamp FROM eth_rpc.blocks SETTINGS stream = true")
    try:
        head = mine_and_wait(chain, sserver)
        rows = data_rows(s.until_block(head))
    finally:
        s.close()
    assert [r["block_num"] for r in rows] == list(range(head + 1))
    for r in rows[-3:]:
        blk = rpc(chain.url, "eth_getBlockByNumber", [hex(r["block_num"]), False])
        assert r["hash"].hex() == blk["hash"][2:]
        assert int(r["timestamp"].timestamp()) == int(blk["timestamp"], 16)


def test_amp_stream_header_seed_example(chain, sserver):
    """The seed's header example: amp-stream true on a plain SELECT * FROM eth_rpc.blocks."""
    client = flight.connect(sserver.location)
    headers = [(b"amp-stream", b"true")]
    info = client.get_flight_info(
        flight.FlightDescriptor.for_command(b"SELECT * FROM eth_rpc.blocks"),
        options=flight.FlightCallOptions(headers=headers))
    reader = client.do_get(info.endpoints[0].ticket)
    seen = 0
    for batch in reader:
        seen += batch.data.num_rows
        if seen >= chain.head() + 1:
            break
    reader.cancel()
    assert seen >= chain.head() + 1


@pytest.mark.parametrize("header,streams", [(b"false", False), (b"0", False), (b"1", True)])
def test_header_wins_over_settings(sserver, header, streams):
    sql = "SELECT block_num FROM eth_rpc.blocks SETTINGS stream = true"
    if not streams:
        t = query(sserver.client(), sql, headers=[(b"amp-stream", header)])
        assert t.num_rows == sserver.stored_head() + 1  # a batch query: it ended
    else:
        s = StreamReader(sserver.location, "SELECT block_num FROM eth_rpc.blocks",
                         headers=[(b"amp-stream", header)])
        assert s.next()[0] == "microbatch_start"
        s.close()


def test_bad_stream_header_rejected(sserver):
    with pytest.raises(pa.ArrowInvalid, match="amp-stream"):
        query(sserver.client(), "SELECT 1", headers=[(b"amp-stream", b"maybe")])


def test_message_kinds_in_order(chain, sserver):
    """MicrobatchStart, Data, BlockComplete, MicrobatchEnd (protocol.md §4) in order,
    rows in block order, every block announced complete exactly once."""
    s = StreamReader(sserver.location,
                     "SELECT block_num, log_index FROM eth_rpc.logs SETTINGS stream = true")
    try:
        head = mine_and_wait(chain, sserver, seed=12)
        messages = s.until_block(head)
    finally:
        s.close()
    kinds = collections.Counter(k for k, _, _ in messages)
    assert {"microbatch_start", "data", "block_complete", "microbatch_end"} <= set(kinds)
    expected_next = 0
    current = None
    last_row = (-1, -1)
    for kind, meta, batch in messages:
        assert isinstance(batch, pa.RecordBatch)
        if kind == "keep_alive":
            assert current is None and batch.num_rows == 0
            continue
        if kind == "microbatch_start":
            assert current is None
            current = meta["range"]
            assert current["start"] == expected_next
            assert current["end"] - current["start"] + 1 <= 3  # server_microbatch_max_interval
            assert batch.num_rows == 0 and meta["ranges_complete"] is False
            complete_next = current["start"]
            continue
        assert current is not None and meta["range"] == current
        if kind == "data":
            assert batch.num_rows > 0
            for r in batch.to_pylist():
                key = (r["block_num"], r["log_index"])
                assert key > last_row  # block order
                assert complete_next <= r["block_num"] <= current["end"]
                last_row = key
        elif kind == "block_complete":
            bc = meta["block_complete"]
            assert bc["start"] == complete_next and bc["end"] >= bc["start"]
            complete_next = bc["end"] + 1
        elif kind == "microbatch_end":
            assert complete_next == current["end"] + 1
            assert meta["ranges_complete"] is True and batch.num_rows == 0
            cur = meta["cursor"]["anvil"]
            assert cur["block_number"] == current["end"]
            blk = rpc(chain.url, "eth_getBlockByNumber", [hex(current["end"]), False])
            assert cur["hash"] == blk["hash"] == meta["ranges"][0]["hash"]
            expected_next = current["end"] + 1
            current = None
        else:
            pytest.fail(f"unknown kind {kind}")
    total = query(sserver.client(),
                  f"SELECT count(*) AS n FROM eth_rpc.logs WHERE block_num <= {expected_next - 1}")
    assert len(data_rows(messages)) == total.column("n")[0].as_py()


def run_with_resume(location, sql, stop_at_block, rng, key):
    """Follow a stream, disconnecting at random points and resuming from the last
    cursor; keep only rows of completed microbatches (the protocol's contract)."""
    committed, cursor, reconnects = [], None, 0
    while True:
        s = StreamReader(location, sql, cursor=cursor)
        budget = rng.randint(1, 12)
        pending = []
        try:
            while budget > 0:
                kind, meta, batch = s.next()
                budget -= 1
                if kind == "data":
                    pending.extend(batch.to_pylist())
                elif kind == "microbatch_end":
                    committed.extend(pending)
                    pending = []
                    cursor = meta["cursor"]
                    if meta["range"]["end"] >= stop_at_block:
                        return sorted(committed, key=key), reconnects
        finally:
            s.close()
        reconnects += 1


def test_random_disconnects_resume_exactly_once(chain, sserver):
    head = sserver.stored_head()
    rng = random.Random(7)
    sql = "SELECT block_num, tx_index, tx_hash, value FROM eth_rpc.transactions"
    key = lambda r: (r["block_num"], r["tx_index"])  # noqa: E731
    rows, reconnects = run_with_resume(sserver.location, sql + " SETTINGS stream = true", head,
                                       rng, key)
    assert reconnects >= 3
    batch = query(sserver.client(), f"{sql} WHERE block_num <= {head}").to_pylist()
    assert rows == sorted(batch, key=key)
    assert len({r["tx_hash"] for r in rows}) == len(rows)


def test_streaming_join_equals_batch_join(chain, sserver):
    sql = ("SELECT t.block_num, t.tx_hash, l.log_index, l.address FROM eth_rpc.transactions t "
           "JOIN eth_rpc.logs l ON t.block_num = l.block_num AND t.tx_hash = l.tx_hash")
    s = StreamReader(sserver.location, sql + " SETTINGS stream = true")
    try:
        head = mine_and_wait(chain, sserver, seed=13)
        messages = s.until_block(head, timeout=120)
    finally:
        s.close()
    key = lambda r: (r["block_num"], r["log_index"])  # noqa: E731
    got = data_rows(messages)
    assert [r["block_num"] for r in got] == sorted(r["block_num"] for r in got)  # block order
    want = query(sserver.client(), f"{sql} WHERE t.block_num <= {head}").to_pylist()
    assert sorted(got, key=key) == sorted(want, key=key)
    assert len(got) > 50


def test_streaming_cross_block_join_uses_delta_rule(chain, sserver):
    """A join whose sides come from different blocks: each joined row once, in the
    microbatch of the later side's block."""
    sql = ("SELECT b.block_num AS b_block, t.block_num AS t_block, t.tx_hash "
           "FROM eth_rpc.blocks b JOIN eth_rpc.transactions t ON t.block_num = b.block_num + 2")
    s = StreamReader(sserver.location, sql + " SETTINGS stream = true")
    try:
        head = sserver.stored_head()
        messages = s.until_block(head, timeout=120)
    finally:
        s.close()
    got = []
    for kind, meta, batch in messages:
        if kind == "data":
            for r in batch.to_pylist():
                assert meta["range"]["start"] <= max(r["b_block"], r["t_block"]) <= meta["range"]["end"]
                got.append(r)
    want = query(sserver.client(), f"{sql} WHERE t.block_num <= {head}").to_pylist()
    key = lambda r: (r["t_block"], r["tx_hash"])  # noqa: E731
    assert sorted(got, key=key) == sorted(want, key=key)


def test_group_by_block_num_streams(chain, sserver):
    sql = "SELECT block_num, count(*) AS logs FROM eth_rpc.logs GROUP BY block_num"
    s = StreamReader(sserver.location, sql + " SETTINGS stream = true")
    try:
        head = sserver.stored_head()
        got = data_rows(s.until_block(head, timeout=120))
    finally:
        s.close()
    want = query(sserver.client(), f"{sql} HAVING block_num <= {head} ORDER BY block_num")
    assert got == want.to_pylist()


def test_evm_functions_stream(chain, sserver):
    sql = ("SELECT block_num, log_index, evm_decode_log(topic1, topic2, topic3, data, "
           "'Transfer(address indexed from, address indexed to, uint256 value)') AS t "
           "FROM eth_rpc.logs WHERE topic0 = evm_topic('Transfer(address,address,uint256)') "
           "AND topic3 IS NULL")
    s = StreamReader(sserver.location, sql + " SETTINGS stream = true")
    try:
        head = sserver.stored_head()
        got = data_rows(s.until_block(head, timeout=120))
    finally:
        s.close()
    assert len(got) > 5
    # Independent truth: the node's logs, decoded by hand per the ABI.
    r = got[-1]
    logs = [log for rc in rpc(chain.url, "eth_getBlockReceipts", [hex(r["block_num"])])
            for log in rc["logs"]]
    log = next(l for l in logs if int(l["logIndex"], 16) == r["log_index"])
    decoded = r["t"]  # a STRUCT named by the signature
    assert decoded["from"] == bytes.fromhex(log["topics"][1][-40:])
    assert decoded["to"] == bytes.fromhex(log["topics"][2][-40:])
    assert int(decoded["value"]) == int(log["data"], 16)


NON_INCREMENTAL = [
    ("SELECT COUNT(*) as total_blocks FROM eth_rpc.blocks",
     "NonIncrementalOp: Aggregate function COUNT requires maintaining state across batches"),
    ("SELECT sum(gas_used) FROM eth_rpc.blocks", "NonIncrementalOp: Aggregate function SUM"),
    ("SELECT DISTINCT miner FROM eth_rpc.blocks", "NonIncrementalOp: DISTINCT"),
    ("SELECT block_num FROM eth_rpc.blocks LIMIT 5", "NonIncrementalOp: LIMIT"),
    ("SELECT block_num FROM eth_rpc.blocks ORDER BY gas_used", "NonIncrementalOp: ORDER BY"),
    ("SELECT block_num, row_number() OVER (ORDER BY block_num) FROM eth_rpc.blocks",
     "NonIncrementalOp: Window function ROW_NUMBER"),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
     "SELECT * FROM r, eth_rpc.blocks", "NonIncrementalOp: Recursive query"),
    ("SELECT * FROM (SELECT count(*) AS n FROM eth_rpc.logs) s",
     "NonIncrementalOp: Aggregate function COUNT"),
    ("WITH c AS (SELECT DISTINCT address FROM eth_rpc.logs) SELECT * FROM c",
     "NonIncrementalOp: DISTINCT"),
    ("SELECT * FROM eth_rpc.blocks WHERE gas_used > (SELECT avg(gas_used) FROM eth_rpc.blocks)",
     "NonIncrementalOp: Aggregate function AVG"),
    ("SELECT b.block_num FROM eth_rpc.blocks b LEFT JOIN eth_rpc.logs l USING (block_num)",
     "NonIncrementalOp: LEFT JOIN"),
    ("SELECT block_num FROM eth_rpc.blocks UNION SELECT block_num FROM eth_rpc.logs",
     "NonIncrementalOp: UNION"),
]


@pytest.mark.parametrize("sql,message", NON_INCREMENTAL, ids=[m.split(":")[1][:30] for _, m in NON_INCREMENTAL])
def test_non_incremental_rejected(sserver, sql, message):
    with pytest.raises(pa.ArrowInvalid) as e:
        query(sserver.client(), sql + " SETTINGS stream = true")
    assert message in str(e.value)
    # The same query runs fine as a batch query.
    query(sserver.client(), sql)


def test_unknown_setting_named(sserver):
    with pytest.raises(pa.ArrowInvalid, match="strem"):
        query(sserver.client(), "SELECT 1 SETTINGS strem = true")


def test_keep_alive_on_idle_stream(sserver):
    s = StreamReader(sserver.location,
                     "SELECT block_num FROM eth_rpc.blocks SETTINGS stream = true")
    try:
        last_end = s.until_block(sserver.stored_head())[-1][1]
        t0 = time.monotonic()
        kind, meta, batch = s.next(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        s.close()
    assert kind == "keep_alive"
    assert batch.num_rows == 0 and batch.schema.names == ["block_num"]
    assert "cursor" not in meta and meta["is_reorg"] is False
    # The ranges of the last finished microbatch (protocol.md §3): Amp's client keeps
    # the last ranges it saw as its baseline for detecting a reorg.
    assert meta["ranges"] == last_end["ranges"] and meta["ranges_complete"] is False
    assert elapsed >= 0.2  # not before the interval (400 ms)


def test_resume_continues_after_cursor(chain, sserver):
    head = sserver.stored_head()
    blk = rpc(chain.url, "eth_getBlockByNumber", [hex(head - 3), False])
    for key in ("block_number", "number"):  # the seed's and the reference's spelling
        cursor = {"anvil": {key: head - 3, "hash": blk["hash"]}}
        s = StreamReader(sserver.location, "SELECT block_num FROM eth_rpc.blocks SETTINGS stream = true",
                         cursor=cursor)
        try:
            kind, meta, _ = s.next()
            assert kind == "microbatch_start" and meta["range"]["start"] == head - 2
            assert meta["ranges"][0]["prev_hash"] == blk["hash"]
        finally:
            s.close()


@pytest.mark.parametrize("cursor,message", [
    ("not json", "not JSON"),
    ('{"anvil": 5}', "not an object"),
    ('{"anvil": {"hash": "0x00"}}', "block_number"),
    ('{"anvil": {"block_number": 1, "hash": "0x1234"}}', "malformed hash"),
    ('{"eth": {"block_number": 1, "hash": "0x' + "11" * 32 + '"}}', "unknown network 'eth'"),
    ('{"anvil": {"block_number": 99999999, "hash": "0x' + "11" * 32 + '"}}', "not extracted yet"),
    ('{"anvil": {"block_number": 1, "hash": "0x' + "11" * 32 + '"}}', "not on the canonical chain"),
])
def test_bad_cursor_rejected(sserver, cursor, message):
    headers = [(b"amp-stream", b"true"), (b"amp-resume", cursor.encode())]
    with pytest.raises(pa.ArrowInvalid) as e:
        query(sserver.client(), "SELECT block_num FROM eth_rpc.blocks", headers=headers)
    assert message in str(e.value)


def test_seed_streaming_query_client_runs_as_written(chain, sserver, tmp_path):
    """The seed's "Complete Python Example", verbatim but for the port, the gas_used
    threshold and one pyarrow fact: FlightStreamChunk.app_metadata is a
    pyarrow.Buffer, which has no .decode(), so the seed's
    `batch.app_metadata.decode('utf-8')` reads `.to_pybytes().decode('utf-8')`.
    It prints rows of blocks mined while it runs."""
    if SEED_001 is None:
        pytest.skip("seed documents not present")
    text = SEED_001.read_text()
    code = text[text.index("import pyarrow.flight as flight\nimport json"):text.index("Batch vs Streaming")]
    code = code.replace('port: int = 1602', f'port: int = {sserver.port}')
    code = code.replace("WHERE gas_used > 10000000", "WHERE gas_used > 100000")
    assert code.count("batch.app_metadata.decode('utf-8')") == 1
    code = code.replace("batch.app_metadata.decode('utf-8')",
                        "batch.app_metadata.to_pybytes().decode('utf-8')")
    script = tmp_path / "seed_client.py"
    script.write_text(code)
    proc = subprocess.Popen([str(PYTHON), "-u", str(script)], stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        target = mine_and_wait(chain, sserver, blocks=3, seed=21)
        want = {n for n in range(target + 1)
                if int(rpc(chain.url, "eth_getBlockByNumber", [hex(n), False])["gasUsed"], 16) > 100000}
        deadline = time.monotonic() + 60
        seen = set()
        while not want <= seen and time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("Block "):
                seen.add(int(line.split()[1].rstrip(":")))
        assert want <= seen, lines[-10:]
        assert target in seen
    finally:
        proc.kill()
        proc.wait()


def test_concurrent_identical_streams_share_and_stay_exact(chain, sserver):
    """Streams of one query share each microbatch's computation; each still gets
    exactly the rows of the batch query, and a different query is not mixed in."""
    sql = "SELECT block_num, tx_index, tx_hash FROM eth_rpc.transactions"
    other = "SELECT block_num, log_index FROM eth_rpc.logs"
    streams = [StreamReader(sserver.location, sql + " SETTINGS stream = true") for _ in range(6)]
    streams.append(StreamReader(sserver.location, other + " SETTINGS stream = true"))
    try:
        head = mine_and_wait(chain, sserver, blocks=3, seed=31)
        results = [data_rows(s.until_block(head, timeout=120)) for s in streams]
    finally:
        for s in streams:
            s.close()
    want = query(sserver.client(), f"{sql} WHERE block_num <= {head} ORDER BY block_num, tx_index")
    for got in results[:-1]:
        assert got == want.to_pylist()
    want_other = query(sserver.client(),
                       f"{other} WHERE block_num <= {head} ORDER BY block_num, log_index")
    assert results[-1] == want_other.to_pylist()
