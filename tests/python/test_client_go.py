"""arrow-go v18.9.0's Flight SQL client (arrow/flight/flightsql, through
tests/clients/go, built by scripts/install_clients.sh) against a real server and
anvil (docs/clients.md): batch and prepared queries equal to pyarrow's answer,
GetSqlInfo with every id FlightSql.proto specifies in the type it specifies,
GetXdbcTypeInfo, the key commands, GetSchema, PollFlightInfo, CancelFlightInfo,
errors, and auth on and off."""
from __future__ import annotations

import os
import re
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from client_tools import GO_CLIENT, ROWS_SQL, need, run_json
from sluice_harness import Server, flight_sql_any, pb_field, query
from test_security import KEY, REFUSAL, WRONG, bearer

RUNAWAY_SQL = "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t"

# FlightSql.proto, enum SqlInfo: every id and the type its comment gives it, as the
# union member (0 string, 1 bool, 2 int64, 3 int32 (ordinal or bitmask), 4 string
# list, 5 map<int32, list<int32>>). 562, SQL_DEFAULT_TRANSACTION_ISOLATION, is an
# "int32 ordinal" in the proto but int64 in arrow-java's SqlInfoBuilder and JDBC
# driver, which sluice follows (docs/clients.md).
SQL_INFO_TYPES = {
    **{i: 0 for i in (0, 1, 2, 6, 7, 504, 513, 514, 529, 530, 531)},
    **{i: 1 for i in (3, 4, 5, 9, 10, 11, 500, 501, 502, 506, 515, 516, 518, 519, 520, 521,
                      523, 524, 527, 532, 536, 537, 539, 556, 563, 565, 566, 572, 573, 574,
                      575, 576)},
    **{i: 2 for i in [*range(541, 556), *range(557, 562), 562]},
    **{i: 3 for i in (8, 100, 101, 503, 505, 507, 522, 525, 526, 528, 533, 534, 535, 538, 540,
                      564, 567, 568, 569, 570, 571)},
    **{i: 4 for i in (508, 509, 510, 511, 512)},
    517: 5,
}

KEYS_SCHEMA = [  # GetExportedKeys, GetImportedKeys, GetCrossReference (FlightSql.proto)
    ("pk_catalog_name", "utf8", True), ("pk_db_schema_name", "utf8", True),
    ("pk_table_name", "utf8", False), ("pk_column_name", "utf8", False),
    ("fk_catalog_name", "utf8", True), ("fk_db_schema_name", "utf8", True),
    ("fk_table_name", "utf8", False), ("fk_column_name", "utf8", False),
    ("key_sequence", "int32", False), ("fk_key_name", "utf8", True),
    ("pk_key_name", "utf8", True), ("update_rule", "uint8", False),
    ("delete_rule", "uint8", False)]
PRIMARY_KEYS_SCHEMA = [
    ("catalog_name", "utf8", True), ("db_schema_name", "utf8", True),
    ("table_name", "utf8", False), ("column_name", "utf8", False), ("key_name", "utf8", True),
    ("key_sequence", "int32", False)]

# The XDBC type of each Arrow type sluice's answers have.
XDBC_NAME = {pa.uint64(): "UBIGINT", pa.int64(): "BIGINT", pa.int32(): "INTEGER",
             pa.uint32(): "UINTEGER", pa.int16(): "SMALLINT", pa.bool_(): "BOOLEAN",
             pa.binary(): "BLOB", pa.string(): "VARCHAR", pa.float64(): "DOUBLE",
             pa.timestamp("us", "UTC"): "TIMESTAMP WITH TIME ZONE", pa.date32(): "DATE"}


@pytest.fixture(scope="module", autouse=True)
def go_client():
    need(GO_CLIENT, "the Go Flight SQL client (arrow-go)")


def go(srv, *args, key=None):
    cmd = [str(GO_CLIENT), "-addr", f"127.0.0.1:{srv.port}"]
    if key is not None:
        cmd += ["-key", key]
    return run_json(cmd + list(args))


def fields(schema_text: str) -> list:
    """(name, type, nullable) of arrow-go's Schema.String()."""
    return [(m.group(1), m.group(2), bool(m.group(3)))
            for m in re.finditer(r"- (\w+): type=([^,\n]+?)(, nullable)?\n", schema_text + "\n")]


@pytest.fixture(scope="module")
def keyed(chain, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLUICE_API_KEYS", KEY)
        srv = Server(tmp_path_factory.mktemp("go-keyed") / "data", chain.url)
    yield srv
    srv.stop()


def test_query_equals_pyarrow(server, tmp_path):
    out = tmp_path / "answer.arrow"
    got = go(server, "query", ROWS_SQL, str(out))
    assert "error" not in got, got
    table = pa.ipc.open_file(str(out)).read_all()
    truth = query(server.client(), ROWS_SQL)
    assert truth.num_rows > 100 and got["rows"] == truth.num_rows
    assert table.equals(truth, check_metadata=False)


def test_prepared_statements(server, tmp_path):
    out = tmp_path / "p.arrow"
    sql = "SELECT block_num, hash FROM eth_rpc.blocks WHERE block_num = ?"
    got = go(server, "prepared", sql, str(out), "3")
    assert got["parameter_fields"] == 1 and "get_schema" in got, got
    truth = query(server.client(), sql.replace("?", "3"))
    assert pa.ipc.open_file(str(out)).read_all().equals(truth, check_metadata=False)
    # DuckDB cannot type this placeholder before it is bound: still one field.
    got = go(server, "prepared", "SELECT ? AS x", str(out), "5")
    assert got["parameter_fields"] == 1, got
    assert pa.ipc.open_file(str(out)).read_all().column("x").to_pylist() == [5]


def test_errors_carry_sluices_message(server):
    got = go(server, "error", "SELEC 1")
    assert got["code"] == "InvalidArgument" and 'syntax error at or near "SELEC"' in got["message"]
    got = go(server, "error", "SELECT * FROM read_csv('/etc/passwd')")
    assert "read_csv is not allowed" in got["message"]


def test_metadata_commands(server):
    m = go(server, "metadata")
    # GetSqlInfo: every id of the enum, each in the union member the proto gives it.
    info = m["sql_info_all"]
    assert "error" not in info, info
    got = {r["info_name"]: (code, r["value"]) for r, code in zip(info["rows"], info["type_codes"])}
    assert {i: c for i, (c, _) in got.items()} == SQL_INFO_TYPES
    assert got[0][1] == "sluice" and got[3][1] is True and got[504][1] == '"'
    some = m["sql_info_some"]
    assert [r["info_name"] for r in some["rows"]] == [0, 522, 517, 508]
    # The keywords are the engine's reserved words; the function lists name functions
    # the engine has (duckdb_functions()); SQL_SUPPORTS_CONVERT says only what CAST does.
    reserved = query(server.client(), "SELECT upper(keyword_name) AS k FROM duckdb_keywords() "
                                      "WHERE keyword_category = 'reserved'").column("k").to_pylist()
    assert sorted(got[508][1]) == sorted(reserved) and "SELECT" in reserved
    functions = set(query(server.client(), "SELECT DISTINCT function_name AS f FROM "
                                           "duckdb_functions()").column("f").to_pylist())
    for list_id in (509, 510, 511, 512):
        assert got[list_id][1] and set(got[list_id][1]) <= functions
    check_conversions(server, got[517][1])

    # GetXdbcTypeInfo: a row for every type of the chain tables, ordered as asked.
    types = m["xdbc_type_info"]
    names = [r["type_name"] for r in types["rows"]]
    order = [(r["data_type"], r["type_name"]) for r in types["rows"]]
    assert order == sorted(order)
    for table in ("blocks", "transactions", "logs"):
        schema = query(server.client(), f"SELECT * FROM eth_rpc.{table} LIMIT 0").schema
        for f in schema:
            if pa.types.is_nested(f.type):
                continue  # lists and structs (access_list) have no XDBC type
            t = pa.decimal128(38, 0) if pa.types.is_decimal(f.type) else f.type
            want = "DECIMAL" if pa.types.is_decimal(t) else XDBC_NAME[t]
            assert want in names, (table, f)
    assert [r["type_name"] for r in m["xdbc_type_info_bigint"]["rows"]] == ["BIGINT", "UBIGINT"]

    # The key commands: empty, with the spec's schemas (in GetSchema too).
    assert fields(m["primary_keys"]["schema"]) == PRIMARY_KEYS_SCHEMA
    assert m["primary_keys"]["rows"] == []
    for name in ("imported_keys", "exported_keys", "cross_reference"):
        assert fields(m[name]["schema"]) == KEYS_SCHEMA and m[name]["rows"] == [], name
        assert fields(m["schemas"][name]) == KEYS_SCHEMA
    assert fields(m["schemas"]["primary_keys"]) == PRIMARY_KEYS_SCHEMA

    # GetSchema of a statement: the schema GetFlightInfo gives; of a bad one, the error.
    info = server.client().get_flight_info(flight.FlightDescriptor.for_command(
        b"SELECT block_num, hash FROM eth_rpc.blocks"))
    assert fields(m["schemas"]["execute"]) == [
        (f.name, "uint64" if f.type == pa.uint64() else str(f.type), f.nullable)
        for f in info.schema]
    assert "Referenced column \"nope\" not found" in m["schemas"]["execute_error"]["message"]
    for name in ("catalogs", "db_schemas", "tables", "table_types", "sql_info", "xdbc_type_info"):
        assert isinstance(m["schemas"][name], str) and "fields" in m["schemas"][name], name

    # PollFlightInfo: finished at once, with the answer.
    n = query(server.client(), "SELECT count(*) AS n FROM eth_rpc.blocks").column("n")[0].as_py()
    assert m["poll"]["finished"] and m["poll"]["progress"] == 1
    assert m["poll"]["answer"]["rows"] == [{"n": n}]


def check_conversions(server, convert: dict) -> None:
    """Every conversion SQL_SUPPORTS_CONVERT claims is a CAST DuckDB does (SqlSupportsConvert
    enum values -> a value of that type and the type to CAST to)."""
    sample = {0: ("42::BIGINT", "BIGINT"), 1: ("'\\xAB'::BLOB", "BLOB"), 2: ("true", "BOOLEAN"),
              3: ("'7'::VARCHAR", "VARCHAR"), 4: ("DATE '2024-01-02'", "DATE"),
              5: ("1.5::DECIMAL(10,2)", "DECIMAL(10,2)"), 6: ("1.5::DOUBLE", "DOUBLE"),
              7: ("7::INTEGER", "INTEGER"), 8: ("INTERVAL 1 DAY", "INTERVAL"),
              9: ("INTERVAL 1 MONTH", "INTERVAL"), 10: ("'\\xAB'::BLOB", "BLOB"),
              11: ("'7'::VARCHAR", "VARCHAR"), 12: ("1.5::DECIMAL(10,2)", "DECIMAL(10,2)"),
              13: ("1.5::FLOAT", "FLOAT"), 14: ("7::SMALLINT", "SMALLINT"),
              15: ("TIME '01:02:03'", "TIME"), 16: ("TIMESTAMP '2024-01-02 03:04:05'", "TIMESTAMP"),
              17: ("7::TINYINT", "TINYINT"), 18: ("'\\xAB'::BLOB", "BLOB"),
              19: ("'7'::VARCHAR", "VARCHAR")}
    # From a string, CAST parses: use a text each target type can read.
    text_of = {0: "7", 1: "ab", 2: "true", 3: "x", 4: "2024-01-02", 5: "1.5", 6: "1.5", 7: "7",
               8: "1 day", 9: "1 month", 10: "ab", 11: "x", 12: "1.5", 13: "1.5", 14: "7",
               15: "01:02:03", 16: "2024-01-02 03:04:05", 17: "7", 18: "ab", 19: "x"}
    assert set(convert) == set(map(str, range(20)))
    for source, targets in convert.items():
        source = int(source)
        assert targets, source
        casts = []
        for t in targets:
            value = sample[source][0]
            if source in (3, 11, 19):
                value = f"'{text_of[t]}'::VARCHAR"
            casts.append(f"CAST({value} AS {sample[t][1]}) AS c{t}")
        query(server.client(), "SELECT " + ", ".join(casts))  # raises if DuckDB cannot


def test_cancel_flight_info_stops_a_running_query(server):
    t0 = time.monotonic()
    got = go(server, "cancel", RUNAWAY_SQL)
    assert got["cancel_status"] == "CANCEL_STATUS_CANCELLED", got
    assert got["doget"]["code"] == "Canceled", got
    assert "cancelled by a CancelFlightInfo request" in got["doget"]["message"]
    assert got["seconds"] < 10 and time.monotonic() - t0 < 30
    assert query(server.client(), "SELECT 41 + 1 AS x").column("x").to_pylist() == [42]


def test_cancel_query_action(server):
    """Flight SQL's older CancelQuery action (Any of ActionCancelQueryRequest{info}) also
    stops a DoGet; a later DoGet of the cancelled ticket is refused."""
    client = server.client()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(RUNAWAY_SQL.encode()))
    body = flight_sql_any("ActionCancelQueryRequest", pb_field(1, info.serialize()))
    results = list(client.do_action(flight.Action("CancelQuery", body)))
    # Any{ActionCancelQueryResult{result = 1 (CANCELLED)}}: the value's last bytes 08 01.
    assert len(results) == 1 and results[0].body.to_pybytes().endswith(b"\x08\x01")
    with pytest.raises(flight.FlightCancelledError, match="CancelFlightInfo"):
        client.do_get(info.endpoints[0].ticket).read_all()


def test_empty_handshake(server, keyed):
    """A Handshake without any credential: answered with a bearer token when keys are
    off (later calls may send it), refused when they are on."""
    got = go(server, "handshake", "SELECT 1 AS x")
    assert got["authorization"] == ["Bearer sluice-auth-off"] and got["query"]["rows"] == 1, got
    got = go(keyed, "handshake", "SELECT 1 AS x")
    assert got["code"] == "Unauthenticated" and REFUSAL in got["message"], got


def test_auth(server, keyed):
    # Off: a client that handshakes anyway is answered (a bearer token) and served.
    assert go(server, "error", "SELECT 1 AS x", key="anything-at-all")["rows"] == 1
    # On: the Basic handshake's token serves; no key or a wrong key is refused.
    assert go(keyed, "error", "SELECT 1 AS x", key=KEY)["rows"] == 1
    refused = go(keyed, "error", "SELECT 1 AS x")
    assert refused["code"] == "Unauthenticated" and REFUSAL in refused["message"]
    refused = go(keyed, "error", "SELECT 1 AS x", key=WRONG)
    assert refused["code"] == "Unauthenticated" and REFUSAL in refused["message"]
    # The metadata commands need the key too.
    assert "error" not in go(keyed, "metadata", key=KEY)["sql_info_some"]
    assert query(flight.connect(keyed.location), "SELECT 1 AS x", bearer(KEY)).num_rows == 1


def test_adbc_auth(server, keyed):
    """ADBC's Flight SQL driver (docs/clients.md): a Basic handshake with the key as the
    password, or the authorization header; with keys off the handshake is answered."""
    import adbc_driver_flightsql.dbapi as flight_sql

    def one(srv, **db_kwargs):
        with flight_sql.connect(srv.location, autocommit=True, db_kwargs=db_kwargs) as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT 41 + 1 AS x")
                return cur.fetchall()

    assert one(keyed, username="", password=KEY) == [(42,)]
    assert one(keyed, **{"adbc.flight.sql.authorization_header": f"Bearer {KEY}"}) == [(42,)]
    assert one(server, username="me", password="anything") == [(42,)]
    with pytest.raises(Exception, match="authentication required"):
        one(keyed, username="", password=WRONG)
