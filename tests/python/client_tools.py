"""The third-party clients of the test_client_*.py modules (docs/clients.md), as
installed by scripts/install_clients.sh, and the one form their answers are
compared in.

Each client prints its answer as JSON rows whose values are text: integers and
decimals as their digits, binary as 0x hex, timestamps as Unix microseconds.
`expected_rows` puts pyarrow's answer (the truth) in that same form."""
from __future__ import annotations

import datetime
import decimal
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional

import pytest

from sluice_harness import ROOT, query

SHARED = ROOT.parent / "shared"
JS_DIR = ROOT / "tests" / "clients" / "js"
JAVA_SRC = ROOT / "tests" / "clients" / "java" / "JdbcClient.java"
JDBC_JAR = ROOT / ".deps" / "flight-sql-jdbc-driver.jar"
GO_CLIENT = ROOT / ".deps" / "sluice-go-client"

# A query over every kind of value the chain tables have (integers, uint64,
# decimal128(38, 0), binary, a timestamp with time zone, text).
ROWS_SQL = ("SELECT b.block_num, b.timestamp, b.hash, b.gas_used, b.base_fee_per_gas, b.miner, "
            "t.tx_index, t.value, t.gas_price FROM eth_rpc.blocks b "
            "JOIN eth_rpc.transactions t USING (block_num) ORDER BY b.block_num, t.tx_index")


def need(path: Path, what: str) -> None:
    """Skip, naming the file, when a client is not installed (scripts/install_clients.sh
    skips one whose toolchain or ../shared file is missing)."""
    if not path.exists():
        pytest.skip(f"{what} is not installed ({path} is missing; scripts/install_clients.sh "
                    "installs it when its toolchain is there)")


def need_node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    need(JS_DIR / "node_modules" / "@edgeandnode" / "amp", "the JavaScript clients (npm)")
    return node


def text_value(v):
    """One pyarrow value in the clients' text form."""
    if v is None:
        return None
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, decimal.Decimal)):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, bytes):
        return "0x" + v.hex()
    if isinstance(v, datetime.datetime):
        delta = v - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return v


def expected_rows(client, sql: str, headers=None) -> list:
    """pyarrow's answer to `sql` as a list of {column: text value}."""
    table = query(client, sql, headers)
    return [{k: text_value(v) for k, v in row.items()} for row in table.to_pylist()]


def run_json(args: list, timeout: float = 120, env: Optional[dict] = None) -> dict:
    """Run a client program that prints one JSON object; return it."""
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"{args[:3]} printed no JSON (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return json.loads(lines[-1])
