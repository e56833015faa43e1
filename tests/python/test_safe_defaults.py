"""What a new user gets from `sluice serve` with the default settings (issue 17):
it starts in an empty directory (a relative data_dir, or a --config file elsewhere),
extracts and answers; a runaway query is stopped (query_timeout_secs has a finite
default); and no query can read the engine's settings or the server's paths."""
from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from sluice_harness import SLUICE, Server, query

RUNAWAY_SQL = "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM t) SELECT count(*) FROM t"


def check_serves(srv, node, data: "Path") -> None:
    srv.wait_head(node.head())
    n = query(srv.client(), "SELECT count(*) AS n FROM eth_rpc.blocks").column("n")[0].as_py()
    assert n == node.head() + 1
    assert (data / "eth_rpc" / "manifest.json").is_file()


def test_serve_in_an_empty_directory_with_the_defaults(make_anvil, tmp_path):
    node = make_anvil()
    node.mine(4)
    cwd = tmp_path / "empty"
    cwd.mkdir()
    srv = Server(cwd / "data", node.url, cwd=cwd, data_dir_flag=False)  # data_dir = "data"
    try:
        check_serves(srv, node, cwd / "data")
    finally:
        srv.stop()


def test_serve_with_a_config_file_elsewhere(make_anvil, tmp_path):
    """A relative data_dir in a --config file is relative to the working directory."""
    node = make_anvil()
    node.mine(3)
    etc = tmp_path / "etc"
    etc.mkdir()
    config = etc / "sluice.toml"
    config.write_text(f'rpc_url = "{node.url}"\ndata_dir = "chain-data"\n')
    cwd = tmp_path / "work"
    cwd.mkdir()
    srv = Server(cwd / "chain-data", node.url, "--config", str(config), cwd=cwd,
                 data_dir_flag=False)
    try:
        check_serves(srv, node, cwd / "chain-data")
        assert not (etc / "chain-data").exists()
    finally:
        srv.stop()


def test_default_query_timeout_is_finite():
    help_text = subprocess.run([str(SLUICE), "serve", "--help"], capture_output=True, text=True,
                               timeout=30).stdout
    m = re.search(r"--query-timeout-secs.*?default ([0-9.]+)\]", help_text, re.S)
    assert m and float(m.group(1)) == 300


def test_runaway_query_is_stopped(chain, tmp_path):
    """The query of the issue, which ran for 18 minutes, ends at the timeout."""
    srv = Server(tmp_path / "data", chain.url, "--query-timeout-secs", "2")
    try:
        t0 = time.monotonic()
        with pytest.raises(flight.FlightTimedOutError, match="query_timeout_secs"):
            query(srv.client(), RUNAWAY_SQL)
        assert time.monotonic() - t0 < 20
        assert query(srv.client(), "SELECT 41 + 1 AS x").column("x").to_pylist() == [42]
    finally:
        srv.stop()


@pytest.mark.parametrize("sql", [
    "SELECT current_setting('allowed_directories')",
    "SELECT current_setting('temp_directory') AS t",
    "SELECT main.CURRENT_SETTING('TimeZone')",
    "SELECT list_transform(['allowed_directories'], s -> current_setting(s))",
    "SELECT getvariable('sluice_files_eth_rpc_blocks')",
    "SELECT * FROM pg_settings",
    "SELECT * FROM pg_catalog.pg_settings WHERE name = 'temp_directory'",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM duckdb_variables()",
])
def test_engine_settings_are_not_readable(server, sql):
    data_dir = str(server.data_dir.resolve())
    with pytest.raises(pa.ArrowInvalid) as e:
        query(server.client(), sql)
    assert "is not allowed" in str(e.value) and data_dir not in str(e.value)
    req = urllib.request.Request(server.jsonl_url, sql.encode())
    with pytest.raises(urllib.error.HTTPError) as h:
        urllib.request.urlopen(req, timeout=30)
    body = h.value.read().decode()
    assert h.value.code == 400 and "is not allowed" in body and data_dir not in body


def test_catalog_views_name_no_path(server):
    data_dir = str(server.data_dir.resolve())
    for sql in ("SELECT * FROM duckdb_databases()", "SELECT * FROM duckdb_views()",
                "SELECT * FROM duckdb_tables()"):
        answer = query(server.client(), sql).to_pylist()
        assert data_dir not in json.dumps(answer, default=str), sql
