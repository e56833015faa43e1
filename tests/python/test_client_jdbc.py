"""The Arrow Flight SQL JDBC driver 18.3.0 (Maven Central, what DBeaver, DataGrip and
Java applications use; tests/clients/java/JdbcClient.java) against a real server and
anvil (docs/clients.md): a query equal to pyarrow's answer, every no-argument
DatabaseMetaData method answering without an exception, the catalog methods,
prepared statements, a streaming query, errors, auth on and off."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from client_tools import JAVA_SRC, JDBC_JAR, ROWS_SQL, expected_rows, need, run_json
from sluice_harness import Server, query
from test_security import KEY, REFUSAL, WRONG, bearer, wait_stored

# The JVM flags the driver needs on Java 17 (docs/clients.md); UTC: the driver shifts
# timestamps by the JVM's time zone otherwise (a driver bug).
JVM = ["--add-opens=java.base/java.nio=ALL-UNNAMED", "-Duser.timezone=UTC"]


CLASSES = None  # JdbcClient compiled once per module (javac), for a faster start


@pytest.fixture(scope="module", autouse=True)
def jdbc_driver(tmp_path_factory):
    global CLASSES
    need(JDBC_JAR, "the Flight SQL JDBC driver (Maven)")
    if shutil.which("javac") is None:
        pytest.skip("java (a JDK with javac) is not installed")
    CLASSES = tmp_path_factory.mktemp("jdbc-classes")
    subprocess.run(["javac", "-d", str(CLASSES), "-cp", str(JDBC_JAR), str(JAVA_SRC)], check=True,
                   capture_output=True, timeout=120)


def jdbc(srv, *args, params: str = "") -> dict:
    """JdbcClient (as docs/clients.md runs it, `java ... JdbcClient.java`, but compiled)."""
    url = f"jdbc:arrow-flight-sql://127.0.0.1:{srv.port}/?useEncryption=false{params}"
    return run_json(["java", *JVM, "-cp", f"{JDBC_JAR}:{CLASSES}", "JdbcClient", url, *args])


def as_dicts(answer: dict) -> list:
    names = [c["name"] for c in answer["columns"]]
    return [dict(zip(names, row)) for row in answer["rows"]]


@pytest.fixture(scope="module")
def keyed(chain, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLUICE_API_KEYS", KEY)
        srv = Server(tmp_path_factory.mktemp("jdbc-keyed") / "data", chain.url)
    wait_stored(srv, chain.head(), bearer(KEY))
    yield srv
    srv.stop()


def test_query_equals_pyarrow(server):
    got = jdbc(server, "query", ROWS_SQL)
    assert "error" not in got, got
    truth = expected_rows(server.client(), ROWS_SQL)
    assert len(truth) > 100
    assert as_dicts(got) == truth
    types = {c["name"]: c["type"] for c in got["columns"]}
    assert types["timestamp"] == "TIMESTAMP_WITH_TIMEZONE" and types["hash"] == "VARBINARY"


def test_every_database_metadata_method_answers(server):
    got = jdbc(server, "metadata")
    assert "error" not in got and got.get("close_error") is None, got
    methods = got["methods"]
    assert len(methods) >= 140  # 142 in JDBC 4.3 (Java 17)
    failed = {name: v for name, v in methods.items() if isinstance(v, dict)}
    assert failed == {}
    # A few of those that threw NullPointerException when GetSqlInfo left ids out.
    assert methods["getDatabaseProductName"] == "sluice"
    assert methods["supportsTransactions"] == "false"
    assert methods["supportsGroupBy"] == "true"
    assert methods["getMaxColumnNameLength"] == "0"
    assert methods["getIdentifierQuoteString"] == '"'
    assert methods["isReadOnly"] == "true"
    assert "SELECT" in [w.strip() for w in methods["getSQLKeywords"].split(",")]
    assert "abs" in [w.strip() for w in methods["getNumericFunctions"].split(",")]

    calls = got["calls"]
    tables = sorted(r[2] for r in calls["tables"]["rows"])
    truth = sorted(r["table_name"] for r in query(
        server.client(), "SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM "
                         "duckdb_views() WHERE schema_name = 'eth_rpc'").to_pylist())
    assert tables == truth == ["blocks", "logs", "transactions"]
    columns = [r[3] for r in calls["columns"]["rows"]]
    schema = query(server.client(), "SELECT * FROM eth_rpc.blocks LIMIT 0").schema
    assert columns == schema.names
    for name in ("primary_keys", "imported_keys", "exported_keys", "cross_reference"):
        assert calls[name]["rows"] == [], name
    # supportsConvert follows SQL_SUPPORTS_CONVERT: BIGINT -> VARCHAR yes, DATE -> BIGINT no.
    assert calls["supports_convert"]["-5->12"] is True
    assert calls["supports_convert"]["91->-5"] is False


def test_prepared_statements(server):
    sql = "SELECT block_num, hash FROM eth_rpc.blocks WHERE block_num = ?"
    got = jdbc(server, "prepared", sql, "3")
    assert got["parameter_count"] == 1 and got["parameter_types"] == ["Int(64, false)"], got
    assert as_dicts(got["answer"]) == expected_rows(server.client(), sql.replace("?", "3"))
    # A placeholder DuckDB cannot type before binding still counts (type Null) …
    got = jdbc(server, "prepared", "SELECT ? AS x")
    assert got["parameter_count"] == 1 and got["parameter_types"] == ["Null"], got
    assert got["answer"]["rows"] == [[None]]
    # … and the driver binds only NULL to it (its bug); with a CAST it has a type.
    got = jdbc(server, "prepared", "SELECT CAST(? AS BIGINT) AS x", "5")
    assert got["parameter_types"] == ["Int(64, true)"] and got["answer"]["rows"] == [["5"]], got


def test_errors_carry_sluices_message(server):
    got = jdbc(server, "query", "SELEC 1")
    assert 'syntax error at or near "SELEC"' in got["error"], got
    got = jdbc(server, "query", "SELECT current_setting('allowed_directories')")
    assert "current_setting is not allowed" in got["error"], got


def test_streaming_query(server):
    """A streaming query through JDBC: rows of the stored blocks in order, then
    Statement.cancel() (the stream never ends by itself)."""
    head = server.stored_head()
    got = jdbc(server, "stream", "SELECT block_num FROM eth_rpc.blocks SETTINGS stream = true",
               str(head))
    assert got["blocks"] == list(range(head + 1)), got


def test_auth(server, keyed):
    sql = "SELECT block_num, hash FROM eth_rpc.blocks ORDER BY block_num"
    truth = expected_rows(keyed.client(), sql, bearer(KEY))
    # Off: user and password make the driver handshake; it is answered.
    assert jdbc(server, "query", "SELECT 1 AS x", params="&user=u&password=p")["rows"] == [["1"]]
    # On: the key as the password (a Basic handshake, then its bearer token), or as a token.
    assert as_dicts(jdbc(keyed, "query", sql, params=f"&user=u&password={KEY}")) == truth
    assert as_dicts(jdbc(keyed, "query", sql, params=f"&token={KEY}")) == truth
    for params in (f"&user=u&password={WRONG}", f"&token={WRONG}", ""):
        got = jdbc(keyed, "query", sql, params=params)
        assert REFUSAL in got["error"] or any(REFUSAL in c for c in got["causes"]), (params, got)
