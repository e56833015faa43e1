"""Bound parameters (issue 5 part 4) through the Python package: `?` and `$1`
placeholders bound by the server as typed values via Flight SQL prepared
statements, never pasted into the SQL. Truth: the same query with the values
written as SQL literals, run through pyarrow's plain Flight client."""
from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import sys

import pyarrow as pa
import pytest

from sluice_harness import ROOT, query

sys.path.insert(0, str(ROOT / "python"))
import sluice  # noqa: E402


@pytest.fixture
def client(server):
    with sluice.Client(flight_url=server.location) as c:
        yield c


def head(server) -> int:
    return query(server.client(), "SELECT max(block_num) AS m FROM eth_rpc.blocks").column(0)[0].as_py()


def test_query_with_placeholders_equals_literal_query(server, client):
    n = head(server)
    got = client.query_table("SELECT block_num, tx_index, tx_hash FROM eth_rpc.transactions "
                             "WHERE block_num BETWEEN ? AND ? ORDER BY block_num, tx_index",
                             parameters=[n - 5, n])
    want = query(server.client(), "SELECT block_num, tx_index, tx_hash FROM eth_rpc.transactions "
                                  f"WHERE block_num BETWEEN {n - 5} AND {n} "
                                  "ORDER BY block_num, tx_index")
    assert want.num_rows > 0
    assert got.equals(want)


def test_typed_values_round_trip(client):
    ts = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone.utc)
    values = [42, -7, 1.25, "héllo", b"\x00\x01\xff", True, None,
              decimal.Decimal("123456789012345678901234567.123456789"), dt.date(2020, 2, 29), ts,
              pa.scalar(2**64 - 1, pa.uint64()), pa.scalar(3, pa.int8())]
    sql = "SELECT " + ", ".join(f"${i + 1} AS c{i + 1}" for i in range(len(values)))
    row = client.query_table(sql, parameters=values).to_pylist()[0]
    got = [row[f"c{i + 1}"] for i in range(len(values))]
    want = [v.as_py() if isinstance(v, pa.Scalar) else v for v in values]
    assert got == want


def test_parameter_holding_sql_is_a_value(server, client):
    evil = "x' OR 1=1; SELECT * FROM eth_rpc.blocks; --"
    t = client.query_table("SELECT ? AS v, count(*) AS n FROM eth_rpc.blocks "
                           "WHERE CAST(hash AS VARCHAR) = ?", parameters=[evil, evil])
    assert t.to_pylist() == [{"v": evil, "n": 0}]


def test_one_row_record_batch(client):
    batch = pa.record_batch({"a": pa.array([5], pa.int32()), "b": pa.array(["z"])})
    assert client.query_table("SELECT $1 * 2 AS a, $2 || $2 AS b", parameters=batch).to_pylist() \
        == [{"a": 10, "b": "zz"}]


def test_mismatched_parameters_are_clear(client):
    with pytest.raises(pa.ArrowInvalid, match="2 parameter"):
        client.query_table("SELECT ? AS a, ? AS b", parameters=[1])
    with pytest.raises(pa.ArrowInvalid, match="parameter"):
        client.query_table("SELECT 1 AS a", parameters=[1])
    with pytest.raises(ValueError, match="one row"):
        client.query_table("SELECT ? AS a", parameters=pa.record_batch({"a": [1, 2]}))
    with pytest.raises(pa.ArrowInvalid, match="streaming"):
        client.query_table("SELECT block_num FROM eth_rpc.blocks WHERE block_num > ? "
                           "SETTINGS stream = true", parameters=[1])
    # The client still works.
    assert client.query_table("SELECT ? AS a", parameters=["ok"]).to_pylist() == [{"a": "ok"}]


def test_execute_stream_with_parameters_pages(server, client):
    n = head(server)

    async def run():
        result = await client.execute_stream(
            "SELECT block_num, hash FROM eth_rpc.blocks WHERE block_num >= $1 ORDER BY block_num",
            parameters=[n - 9], stream_config=sluice.StreamConfig(fetch_size=4))
        rows = []
        async with result:
            async for page in result.pages():
                assert len(page) <= 4
                rows += page
        return rows

    rows = asyncio.run(run())
    want = query(server.client(), f"SELECT block_num, hash FROM eth_rpc.blocks WHERE block_num >= "
                                  f"{n - 9} ORDER BY block_num").to_pylist()
    assert rows == [(w["block_num"], w["hash"]) for w in want]  # rows are tuples
    assert len(rows) == 10


def test_concurrent_parameterized_streams(server, client):
    """Like seed 002's asyncio.gather: each stream gets exactly its own rows."""
    n = head(server)

    async def blocks(lo):
        result = await client.execute_stream(
            "SELECT block_num FROM eth_rpc.blocks WHERE block_num BETWEEN ? AND ? "
            "ORDER BY block_num", parameters=[lo, lo + 2])
        return [r[0] async for r in result]

    async def run():
        return await asyncio.gather(*(blocks(lo) for lo in range(1, n - 2, 3)))

    for lo, got in zip(range(1, n - 2, 3), asyncio.run(run())):
        assert got == [lo, lo + 1, lo + 2]
