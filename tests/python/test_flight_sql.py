"""Flight SQL through the ADBC Flight SQL driver (adbc-driver-flightsql, a Go driver
that speaks Flight SQL as SQL tools do): queries, metadata (GetCatalogs,
GetDbSchemas, GetTables with schemas, GetTableTypes, GetSqlInfo), prepared
statements with parameters bound by DoPut, and the errors a tool can meet.

Truths compared against: pyarrow's plain Flight client over the same server
(test_flight_protocol.py covers that path against the node's JSON-RPC answers),
and the node's own JSON-RPC answers."""
from __future__ import annotations

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from sluice_harness import flight_sql_any, query, rpc


@pytest.fixture
def conn(server):
    # autocommit: sluice is read-only and has no transactions to turn off.
    with flight_sql.connect(server.location, autocommit=True) as c:
        yield c


def test_query_matches_plain_flight_client(server, conn):
    sql = "SELECT block_num, hash, gas_used FROM eth_rpc.blocks ORDER BY block_num"
    with conn.cursor() as cur:
        cur.execute(sql)
        got = cur.fetch_arrow_table()
    want = query(server.client(), sql)
    assert got.num_rows == want.num_rows > 0
    assert got.equals(want)


def test_query_rows_match_node(chain, conn):
    n = chain.head()
    with conn.cursor() as cur:
        cur.execute(f"SELECT hash FROM eth_rpc.blocks WHERE block_num = {n}")
        row = cur.fetchone()
    node = rpc(chain.url, "eth_getBlockByNumber", [hex(n), False])
    assert "0x" + bytes(row[0]).hex() == node["hash"]


def test_get_objects_lists_chain_tables_with_columns(server, conn):
    objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
    assert len(objects) == 1
    catalog = objects[0]
    schemas = {s["db_schema_name"]: s for s in catalog["catalog_db_schemas"]}
    assert "eth_rpc" in schemas
    tables = {t["table_name"]: t for t in schemas["eth_rpc"]["db_schema_tables"]}
    assert {"blocks", "transactions", "logs"} <= set(tables)
    assert tables["blocks"]["table_type"] == "TABLE"
    # Columns as the engine answers SELECT * (an independent path: DoGet's schema).
    want = query(server.client(), "SELECT * FROM eth_rpc.logs LIMIT 0").schema.names
    got = [c["column_name"] for c in tables["logs"]["table_columns"]]
    assert got == want
    # The catalog name is usable in SQL (three-part names).
    with conn.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{catalog["catalog_name"]}".eth_rpc.blocks')
        assert cur.fetchone()[0] == query(
            server.client(), "SELECT count(*) AS n FROM eth_rpc.blocks").column(0)[0].as_py()


def test_get_objects_filters(conn):
    objects = conn.adbc_get_objects(depth="tables", db_schema_filter="eth_%",
                                    table_name_filter="log_").read_all().to_pylist()
    names = [(s["db_schema_name"], t["table_name"])
             for c in objects for s in c["catalog_db_schemas"] for t in s["db_schema_tables"]]
    assert names == [("eth_rpc", "logs")]
    objects = conn.adbc_get_objects(depth="tables", table_name_filter="no_such_%").read_all()
    assert all(not s["db_schema_tables"]
               for c in objects.to_pylist() for s in c["catalog_db_schemas"])


def test_table_schema_and_types(server, conn):
    schema = conn.adbc_get_table_schema("transactions", db_schema_filter="eth_rpc")
    want = query(server.client(), "SELECT * FROM eth_rpc.transactions LIMIT 0").schema
    assert schema.names == want.names
    assert [f.type for f in schema] == [f.type for f in want]
    assert set(conn.adbc_get_table_types()) == {"TABLE", "VIEW"}


def test_get_info(conn):
    info = conn.adbc_get_info()
    assert info["vendor_name"] == "sluice"
    assert info["vendor_arrow_version"] == pa.cpp_version or \
        info["vendor_arrow_version"].lstrip("v") == pa.cpp_version
    assert info["driver_name"] == "ADBC Flight SQL Driver - Go"


def test_prepared_statement_binds_typed_values(server, conn):
    head = query(server.client(), "SELECT max(block_num) AS m FROM eth_rpc.blocks").column(0)[0].as_py()
    with conn.cursor() as cur:
        cur.execute("SELECT block_num, hash FROM eth_rpc.blocks WHERE block_num BETWEEN ? AND ? "
                    "ORDER BY block_num", parameters=(head - 2, head))
        got = cur.fetch_arrow_table()
    want = query(server.client(), f"SELECT block_num, hash FROM eth_rpc.blocks WHERE block_num "
                                  f"BETWEEN {head - 2} AND {head} ORDER BY block_num")
    assert got.equals(want)
    assert got.num_rows == 3


def test_prepared_statement_dollar_placeholders_and_types(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT $1 + 1 AS i, $2 AS s, $3 AS b, $1 * 2 AS j, $4 AS f",
                    parameters=(41, "héllo", b"\x00\xff", 1.5))
        row = cur.fetchone()
    assert row == (42, "héllo", b"\x00\xff", 82, 1.5)


def test_parameter_holding_sql_is_a_value(server, conn):
    evil = "0'); SELECT * FROM eth_rpc.blocks; --"
    with conn.cursor() as cur:
        cur.execute("SELECT ? AS v, length(?) AS n", parameters=(evil, evil))
        assert cur.fetchone() == (evil, len(evil))
        cur.execute("SELECT count(*) FROM eth_rpc.blocks WHERE CAST(block_num AS VARCHAR) = ?",
                    parameters=("1 OR 1=1",))
        assert cur.fetchone() == (0,)


def test_prepared_statement_reused_with_new_parameters(conn):
    with conn.cursor() as cur:
        for n in (1, 2, 3):
            cur.execute("SELECT ? * 10 AS v", parameters=(n,))
            assert cur.fetchone() == (n * 10,)


def test_wrong_parameter_count_is_clear(conn):
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error, match="parameter"):
            cur.execute("SELECT ? AS a, ? AS b", parameters=(1,))


def test_sql_errors_reach_the_tool(conn):
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.ProgrammingError):
            cur.execute("SELEC 1")
        with pytest.raises(adbc_driver_manager.Error, match="SELECT"):
            cur.execute("CREATE TABLE t (x INT)")
        cur.execute("SELECT 1 AS ok")  # the connection still works
        assert cur.fetchone() == (1,)


def test_streaming_query_with_parameters_refused(conn):
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.ProgrammingError, match="streaming query"):
            cur.execute("SELECT block_num FROM eth_rpc.blocks WHERE block_num > ? "
                        "SETTINGS stream = true", parameters=(0,))


def test_streaming_query_through_adbc_yields_rows(server, conn):
    """A streaming query without parameters is an endless result: a tool reads it
    batch by batch (empty batches carry the protocol's markers)."""
    with conn.cursor() as cur:
        cur.execute("SELECT block_num, hash FROM eth_rpc.blocks SETTINGS stream = true")
        reader = cur.fetch_record_batch()
        rows = []
        while len(rows) < 3:
            rows += reader.read_next_batch().to_pylist()
    want = query(server.client(), "SELECT block_num, hash FROM eth_rpc.blocks ORDER BY block_num "
                                  "LIMIT 3").to_pylist()
    assert sorted(rows, key=lambda r: r["block_num"])[:3] == want


# ---- the wire, with pyarrow's plain Flight client ------------------------------------

def test_read_only_commands_refused(server):
    client = server.client()
    for name in ("CommandStatementUpdate", "CommandStatementIngest"):
        with pytest.raises(pa.ArrowException, match=name):
            client.get_flight_info(flight.FlightDescriptor.for_command(flight_sql_any(name)))
    with pytest.raises(pa.ArrowException, match="read-only"):
        writer, _ = client.do_put(flight.FlightDescriptor.for_command(b"SELECT 1"),
                                  pa.schema([("x", pa.int64())]))
        writer.write_table(pa.table({"x": [1]}))
        writer.close()
    with pytest.raises(pa.ArrowException, match="not supported"):
        list(client.do_action(flight.Action("DropEverything", b"")))
    names = {a.type for a in client.list_actions()}
    assert {"CreatePreparedStatement", "ClosePreparedStatement", "CancelFlightInfo",
            "CancelQuery"} <= names


def test_closed_or_forged_handle_refused(server):
    client = server.client()
    body = flight_sql_any("CommandPreparedStatementQuery", b"\x0a\x04nope")
    with pytest.raises(pa.ArrowException, match="unknown prepared statement"):
        client.get_flight_info(flight.FlightDescriptor.for_command(body))
    # Malformed Flight SQL bytes: a clear error, the server stays up.
    with pytest.raises(pa.ArrowException, match="malformed"):
        client.get_flight_info(flight.FlightDescriptor.for_command(
            flight_sql_any("CommandGetTables", b"\x0a\xff")))
    assert query(client, "SELECT 1 AS x").column(0)[0].as_py() == 1
