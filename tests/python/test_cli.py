"""`sluice query` (the CLI client): every output format read back by pyarrow gives
the same table as a pyarrow Flight query; -o; errors; --stream with --cursor-file
resumes after the saved cursor."""
from __future__ import annotations

import datetime
import decimal
import json
import signal
import subprocess
import time

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from sluice_harness import SLUICE, Server, query, wait_for

SQL = "SELECT * FROM eth_rpc.transactions ORDER BY block_num, tx_index"


def is_binary(t: pa.DataType) -> bool:
    return (pa.types.is_binary(t) or pa.types.is_large_binary(t)
            or pa.types.is_fixed_size_binary(t) or getattr(pa.types, "is_binary_view",
                                                           lambda _: False)(t))


def is_nested(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_struct(t)


def canon(v, t: pa.DataType):
    """One comparable Python value: binary as 0x hex, decimals and times normalized."""
    if v is None:
        return None
    if is_nested(t):  # CSV holds lists and structs as JSON text
        if isinstance(v, str):
            v = json.loads(v, parse_float=decimal.Decimal)
        if pa.types.is_struct(t):
            return {t.field(i).name: canon(v[t.field(i).name], t.field(i).type)
                    for i in range(t.num_fields)}
        return [canon(x, t.value_type) for x in v]
    if is_binary(t):
        return v if isinstance(v, str) else "0x" + bytes(v).hex()
    if pa.types.is_timestamp(t):
        if isinstance(v, str):
            v = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        return v.timestamp()
    if pa.types.is_decimal(t):
        return decimal.Decimal(str(v)).normalize()
    return v


def canon_rows(rows, schema: pa.Schema):
    return [{f.name: canon(r[f.name], f.type) for f in schema} for r in rows]


def hex_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, pa.string()) if is_binary(f.type) or is_nested(f.type)
                      else f for f in schema])


def run_cli(*args, timeout=60):
    return subprocess.run([str(SLUICE), "query", *args], capture_output=True, timeout=timeout)


@pytest.fixture(scope="module")
def truth(server):
    t = query(server.client(), SQL)
    assert t.num_rows > 0
    return t


def test_csv_round_trip_on_stdout(server, truth):
    p = run_cli("-s", server.location, "--format", "csv", SQL)
    assert p.returncode == 0, p.stderr
    got = pacsv.read_csv(pa.BufferReader(p.stdout), convert_options=pacsv.ConvertOptions(
        column_types=hex_schema(truth.schema), strings_can_be_null=True))
    assert got.column_names == truth.column_names
    assert canon_rows(got.to_pylist(), truth.schema) == canon_rows(truth.to_pylist(),
                                                                   truth.schema)


def test_csv_is_the_default_off_a_terminal(server):
    p = run_cli("-s", server.location, "SELECT block_num, hash FROM eth_rpc.blocks "
                "ORDER BY block_num LIMIT 2")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    assert lines[0] == '"block_num","hash"'
    assert lines[1].startswith('0,"0x') and len(lines) == 3


def test_jsonl_round_trip(server, truth, tmp_path):
    out = tmp_path / "tx.jsonl"
    p = run_cli("-s", server.location, "--format", "jsonl", "-o", str(out), SQL)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b""
    rows = [json.loads(line, parse_float=decimal.Decimal)
            for line in out.read_text().splitlines()]
    assert list(rows[0].keys()) == truth.column_names
    assert canon_rows(rows, truth.schema) == canon_rows(truth.to_pylist(), truth.schema)
    # exact integers
    assert all(isinstance(r["block_num"], int) for r in rows)


@pytest.mark.parametrize("fmt", ["arrow", "arrows", "parquet"])
def test_binary_formats_round_trip(server, truth, tmp_path, fmt):
    out = tmp_path / f"tx.{fmt}"
    p = run_cli("-s", server.location, "--format", fmt, "-o", str(out), SQL)
    assert p.returncode == 0, p.stderr
    if fmt == "arrow":
        got = ipc.open_file(str(out)).read_all()
    elif fmt == "arrows":
        got = ipc.open_stream(out.read_bytes()).read_all()
    else:
        got = pq.read_table(str(out))
    assert got.schema.names == truth.schema.names
    assert got.num_rows == truth.num_rows
    assert canon_rows(got.to_pylist(), truth.schema) == canon_rows(truth.to_pylist(),
                                                                   truth.schema)


def test_arrow_stream_on_stdout(server, truth):
    p = run_cli("-s", server.location, "--format", "arrows", SQL)
    assert p.returncode == 0, p.stderr
    assert ipc.open_stream(p.stdout).read_all().equals(truth)


def test_format_from_output_extension(server, truth, tmp_path):
    out = tmp_path / "tx.parquet"
    p = run_cli("-s", server.location, "-o", str(out), SQL)
    assert p.returncode == 0, p.stderr
    assert pq.read_table(str(out)).num_rows == truth.num_rows


def test_table_format(server):
    p = run_cli("-s", server.location, "--format", "table",
                "SELECT block_num, hash FROM eth_rpc.blocks ORDER BY block_num LIMIT 3")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    assert lines[0].split("|")[0].strip() == "block_num"
    assert "0x" in lines[2]
    assert lines[-1] == "(3 rows)"


def test_server_error_is_one_line_and_exit_1(server, tmp_path):
    out = tmp_path / "never.csv"
    p = run_cli("-s", server.location, "-o", str(out), "SELECT * FROM eth_rpc.no_such_table")
    assert p.returncode == 1
    err = p.stderr.decode()
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "no_such_table" in err
    assert not out.exists()


def test_bad_format_is_refused(server):
    p = run_cli("-s", server.location, "--format", "xml", "SELECT 1")
    assert p.returncode != 0
    assert "xml" in p.stderr.decode() or "format" in p.stderr.decode()


def test_unreachable_server_is_exit_1(tmp_path):
    p = run_cli("-s", "grpc://127.0.0.1:1", "SELECT 1", timeout=60)
    assert p.returncode == 1
    assert p.stderr.decode().count("\n") == 1


def microbatches(path):
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("# microbatch "):
            a, b = line.split()[2].split("..")
            out.append((int(a), int(b), line.endswith(" reorg")))
    return out


def start_stream(srv, tmp_path, name, cursor_file):
    out = tmp_path / f"{name}.jsonl"
    err = tmp_path / f"{name}.err"
    errf = open(err, "w")
    proc = subprocess.Popen([str(SLUICE), "query", "-s", srv.location, "--stream",
                             "--format", "jsonl", "-o", str(out), "--cursor-file",
                             str(cursor_file), "SELECT block_num, hash FROM eth_rpc.blocks"],
                            stdout=subprocess.DEVNULL, stderr=errf)
    return proc, out, err, errf


def stop(proc, errf):
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(20)
    errf.close()
    return rc


def test_stream_resumes_from_cursor_file(make_anvil, make_server, tmp_path):
    node = make_anvil()
    node.mine(10)
    srv = make_server(tmp_path / "data", node.url, "--server-microbatch-max-interval", "4")
    srv.wait_head(node.head())
    head = node.head()
    cursor_file = tmp_path / "cursor.json"

    proc, out, err, errf = start_stream(srv, tmp_path, "first", cursor_file)
    try:
        wait_for(lambda: cursor_file.exists() and
                 json.loads(cursor_file.read_text())["anvil"]["block_number"] == head,
                 60, "the cursor of the chain head")
    finally:
        rc = stop(proc, errf)
    assert rc == 0, err.read_text()
    first = microbatches(err)
    assert first[0][0] == 0 and first[-1][1] == head
    assert all(b[0] == a[1] + 1 for a, b in zip(first, first[1:]))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["block_num"] for r in rows] == list(range(head + 1))
    assert all(r["hash"].startswith("0x") for r in rows)
    saved = json.loads(cursor_file.read_text())["anvil"]["block_number"]
    assert not (tmp_path / "cursor.json.tmp").exists()

    node.mine(5)
    srv.wait_head(node.head())
    new_head = node.head()
    proc, out, err, errf = start_stream(srv, tmp_path, "second", cursor_file)
    try:
        wait_for(lambda: json.loads(cursor_file.read_text())["anvil"]["block_number"]
                 == new_head, 60, "the cursor of the new head")
    finally:
        rc = stop(proc, errf)
    assert rc == 0, err.read_text()
    second = microbatches(err)
    assert second[0][0] == saved + 1 and second[-1][1] == new_head
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["block_num"] for r in rows] == list(range(saved + 1, new_head + 1))
