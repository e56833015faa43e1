"""The Flight protocol of protocol.md §2 and §4, through the real pyarrow client."""
from __future__ import annotations

import json
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from sluice_harness import encode_command_statement_query, query, rpc


def test_seed_000_read_chunk_and_read_pandas(server, chain):
    """The spicepy reader pattern of seed 000: read_chunk() until StopIteration, read_pandas()."""
    client = server.client()
    sql = "SELECT block_num, hash, gas_used FROM eth_rpc.blocks ORDER BY block_num"
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
    reader = client.do_get(info.endpoints[0].ticket)
    rows = 0
    has_more = True
    while has_more:
        try:
            flight_batch = reader.read_chunk()
            record_batch = flight_batch.data
            rows += len(record_batch.to_pandas())
        except StopIteration:
            has_more = False
    assert rows == chain.head() + 1
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
    df = client.do_get(info.endpoints[0].ticket).read_pandas()
    assert list(df["block_num"]) == list(range(chain.head() + 1))
    assert df["hash"].iloc[-1] == bytes.fromhex(
        rpc(chain.url, "eth_getBlockByNumber", [hex(chain.head()), False])["hash"][2:])


def test_seed_001_first_query(server):
    """The seed's first example, batch mode: SELECT block_num, hash, timestamp FROM eth_rpc.blocks."""
    t = query(server.client(), "SELECT block_num, hash, timestamp FROM eth_rpc.blocks")
    assert t.column_names == ["block_num", "hash", "timestamp"]
    assert t.num_rows == server.stored_head() + 1


def test_flight_sql_command_statement_query(server):
    client = server.client()
    sql = "SELECT count(*) AS n FROM eth_rpc.transactions"
    raw = query(client, sql)
    desc = flight.FlightDescriptor.for_command(encode_command_statement_query(sql))
    info = client.get_flight_info(desc)
    assert info.schema.names == ["n"]
    t = client.do_get(info.endpoints[0].ticket).read_all()
    assert t.equals(raw)
    assert raw.column("n")[0].as_py() > 0


def test_app_metadata_on_every_message(server, chain):
    client = server.client()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(
        b"SELECT * FROM eth_rpc.logs"))
    reader = client.do_get(info.endpoints[0].ticket)
    chunks = []
    while True:
        try:
            chunks.append(reader.read_chunk())
        except StopIteration:
            break
    assert chunks, "no messages"
    metas = [json.loads(c.app_metadata.to_pybytes()) for c in chunks]  # every one has metadata
    head = server.stored_head()
    block = rpc(chain.url, "eth_getBlockByNumber", [hex(head), False])
    genesis = rpc(chain.url, "eth_getBlockByNumber", ["0x0", False])
    for m in metas:
        (r,) = m["ranges"]
        assert r["numbers"] == {"start": 0, "end": head}
        assert r["hash"] == block["hash"]
        assert r["prev_hash"] == genesis["parentHash"]
        assert r["timestamp"] == int(block["timestamp"], 16)
        assert m["range"] == {"start": 0, "end": head}
        assert m["is_reorg"] is False
    assert all(m["ranges_complete"] is False for m in metas[:-1])
    assert metas[-1]["ranges_complete"] is True
    assert chunks[-1].data.num_rows == 0  # the closing message is an empty batch
    assert sum(c.data.num_rows for c in chunks) == query(
        client, "SELECT count(*) AS n FROM eth_rpc.logs").column("n")[0].as_py()


def test_large_record_batches(server):
    """Results are coalesced into large batches, not the engine's 2048-row chunks."""
    client = server.client()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(
        b"SELECT * FROM range(200000) t(x)"))
    sizes = [c.data.num_rows for c in client.do_get(info.endpoints[0].ticket)]
    assert sum(sizes) == 200000
    assert max(sizes) >= 60000
    assert len([s for s in sizes if s > 0]) <= 4


def test_forged_and_altered_tickets_rejected(server):
    client = server.client()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(b"SELECT 1 AS x"))
    good = info.endpoints[0].ticket.ticket
    assert client.do_get(flight.Ticket(good)).read_all().column("x")[0].as_py() == 1
    forged = [b"SELECT * FROM eth_rpc.blocks", b"", good[:-1], good[:10] + bytes([good[10] ^ 1]) + good[11:],
              good.replace(b"SELECT 1", b"SELECT 2")]
    for t in forged:
        with pytest.raises(pa.ArrowInvalid) as e:  # gRPC INVALID_ARGUMENT
            client.do_get(flight.Ticket(t)).read_all()
        assert "ticket is not valid" in str(e.value)
    # The server is still fine.
    assert query(client, "SELECT 2 AS y").column("y")[0].as_py() == 2


def test_expired_ticket_rejected(chain, make_server, tmp_path):
    srv = make_server(tmp_path / "data", chain.url, "--ticket-ttl-secs", "1")
    client = srv.client()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(b"SELECT 1 AS x"))
    time.sleep(1.5)
    with pytest.raises(pa.ArrowInvalid) as e:
        client.do_get(info.endpoints[0].ticket).read_all()
    assert "expired" in str(e.value)


def test_sql_errors_are_invalid_argument(server):
    client = server.client()
    with pytest.raises(pa.ArrowInvalid) as e:
        client.get_flight_info(flight.FlightDescriptor.for_command(b"SELEC 1"))
    assert "syntax error" in str(e.value).lower()
    with pytest.raises(pa.ArrowInvalid) as e:
        client.get_flight_info(flight.FlightDescriptor.for_command(b"SELECT * FROM eth_rpc.nope"))
    assert "nope" in str(e.value)
    with pytest.raises(pa.ArrowInvalid):
        client.get_flight_info(flight.FlightDescriptor.for_path("eth_rpc", "blocks"))
