"""Workload 8: needle queries over all history, and catching up on them.

`SELECT * FROM eth_rpc.logs WHERE address = X AND topic0 = Y` and `SELECT * FROM
eth_rpc.transactions WHERE "from" = A OR "to" = A` over a generated chain
(bench/gen_data.cc: one log per transaction, a busy contract with 0.1% of the
logs spread over the history and a rare one with 300 logs in 3 short block
ranges; a busy and a rare account likewise), read to the end by a pyarrow Flight
client, side by side (interleaved runs) with:
  - bare DuckDB (Python, its default threads) over the same Parquet files,
    `fetch_arrow_table()` of the same query;
  - sluice's own full scan of the table (`SELECT * FROM eth_rpc.<table>`).
Each needle's rows are checked against DuckDB's (count and sum of block_num).

Streaming: the busy logs query with `SETTINGS stream = true`-style headers
(amp-stream), resumed from block 0, read until its microbatches reach the head;
rows/s against the batch query's.

    .venv/bin/python bench/needle.py --rows 20000000 --runs 3
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pyarrow.flight as flight

import batch
import common
from common import fmt, verdict


def queries(n: dict) -> dict:
    """name -> (table, WHERE clause) of the needle queries."""
    logs = "address = from_hex('{a}') AND topic0 = from_hex('" + n["transfer_topic"] + "')"
    txs = "\"from\" = from_hex('{a}') OR \"to\" = from_hex('{a}')"
    return {
        "logs, busy contract": ("logs", logs.format(a=n["busy_contract"])),
        "logs, rare contract": ("logs", logs.format(a=n["rare_contract"])),
        "transactions, busy account": ("transactions", txs.format(a=n["busy_account"])),
        "transactions, rare account": ("transactions", txs.format(a=n["rare_account"])),
    }


def duckdb_read(con, data_dir: Path, table: str, where: str | None) -> dict:
    src = f"read_parquet('{data_dir}/eth_rpc/{table}/*.parquet')"
    sql = f"SELECT * FROM {src}" + (f" WHERE {where}" if where else "")
    t0 = time.perf_counter()
    t = con.execute(sql).fetch_arrow_table()
    secs = time.perf_counter() - t0
    return {"rows": t.num_rows, "seconds": secs, "check": _check(t)}


def _check(t) -> int:
    return int(pc.sum(t.column("block_num")).as_py() or 0) if t.num_rows else 0


def sluice_read(client, table: str, where: str | None) -> dict:
    sql = f"SELECT * FROM eth_rpc.{table}" + (f" WHERE {where}" if where else "")
    t0 = time.perf_counter()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
    t = client.do_get(info.endpoints[0].ticket).read_all()
    secs = time.perf_counter() - t0
    return {"rows": t.num_rows, "seconds": secs, "check": _check(t)}


def stream_catch_up(location: str, table: str, where: str, head: int, genesis: str) -> dict:
    """A stream of the query resumed from block 0, read until a microbatch ends at
    `head`: rows, seconds, rows/s."""
    client = flight.connect(location)
    cursor = {"anvil": {"block_number": 0, "hash": genesis}}
    opts = flight.FlightCallOptions(headers=[(b"amp-stream", b"true"),
                                             (b"amp-resume", json.dumps(cursor).encode())])
    sql = f"/* catch-up {time.time_ns()} */ SELECT * FROM eth_rpc.{table} WHERE {where}"
    t0 = time.perf_counter()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), opts)
    reader = client.do_get(info.endpoints[0].ticket, opts)
    rows = 0
    for chunk in reader:
        if chunk.data is not None:
            rows += chunk.data.num_rows
        meta = json.loads(chunk.app_metadata.to_pybytes()) if chunk.app_metadata else {}
        if meta.get("kind") == "microbatch_end" and _end(meta) >= head:
            break
    secs = time.perf_counter() - t0
    reader.cancel()
    client.close()
    return {"rows": rows, "seconds": secs, "rows_per_sec": rows / secs}


def _end(meta: dict) -> int:
    """The last block of a microbatch_end's ranges (app_metadata, protocol.md §4)."""
    return max((r["numbers"]["end"] for r in meta.get("ranges", [])), default=-1)


def run(data_dir: Path, runs: int, binary: str | None = None) -> dict:
    """`binary`: another sluice build to measure (a build from before a change)."""
    needles = json.loads((data_dir / "complete").read_text())["needles"]
    qs = queries(needles)
    proc, loc = batch.start_sluice(data_dir, *([f"bin={binary}"] if binary else []))
    client = flight.connect(loc)
    con = duckdb.connect()
    out: dict = {"queries": {}, "stream": {}}
    try:
        batch.read_all(client, "SELECT * FROM eth_rpc.logs LIMIT 10")
        samples = {name: {"sluice": [], "duckdb": []} for name in qs}
        full = {"logs": [], "transactions": []}
        for _ in range(runs):
            for name, (table, where) in qs.items():
                s = sluice_read(client, table, where)
                d = duckdb_read(con, data_dir, table, where)
                if (s["rows"], s["check"]) != (d["rows"], d["check"]):
                    raise RuntimeError(f"{name}: sluice {s} != duckdb {d}")
                samples[name]["sluice"].append(s)
                samples[name]["duckdb"].append(d)
            for table in full:
                full[table].append(sluice_read(client, table, None))
        for name, (table, where) in qs.items():
            s = [x["seconds"] for x in samples[name]["sluice"]]
            d = [x["seconds"] for x in samples[name]["duckdb"]]
            f = [x["seconds"] for x in full[table]]
            out["queries"][name] = {
                "table": table, "where": where, "rows": samples[name]["sluice"][0]["rows"],
                "sluice_ms": common.summary([x * 1000 for x in s]),
                "duckdb_ms": common.summary([x * 1000 for x in d]),
                "full_scan_ms": common.summary([x * 1000 for x in f]),
                "vs_duckdb": common.summary([a / b for a, b in zip(s, d)]),
                "faster_than_full_scan": common.summary([b / a for a, b in zip(s, f)]),
            }
        out["full_scan_rows"] = {t: v[0]["rows"] for t, v in full.items()}
        # Streaming catch-up of the busy logs query from block 0.
        head = json.loads((data_dir / "complete").read_text())["blocks"] - 1
        genesis = "0x" + batch_query_scalar(client, "SELECT hash FROM eth_rpc.blocks WHERE block_num = 0").hex()
        for name in ("logs, busy contract", "transactions, busy account"):
            table, where = qs[name]
            st = [stream_catch_up(loc, table, where, head, genesis) for _ in range(max(1, runs - 1))]
            b = out["queries"][name]
            batch_rps = b["rows"] / (b["sluice_ms"]["median"] / 1000)
            out["stream"][name] = {
                "rows": st[0]["rows"],
                "rows_per_sec": common.summary([x["rows_per_sec"] for x in st]),
                "batch_rows_per_sec": batch_rps,
                "ratio": statistics_ratio([x["rows_per_sec"] for x in st], batch_rps),
            }
            if st[0]["rows"] != b["rows"]:
                raise RuntimeError(f"stream {name}: {st[0]['rows']} rows, batch {b['rows']}")
    finally:
        client.close()
        common.stop(proc)
    return out


def statistics_ratio(values: list[float], base: float) -> dict:
    return common.summary([v / base for v in values])


def batch_query_scalar(client, sql: str):
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
    return client.do_get(info.endpoints[0].ticket).read_all().column(0)[0].as_py()


def targets(r: dict) -> list[tuple]:
    """Summary rows of BENCHMARKS.md: (workload, measured, target, met)."""
    q = r["queries"]
    worst = max(x["vs_duckdb"]["median"] for x in q.values())
    rows = [("9. Needle queries vs bare DuckDB on the same files (slowest of 4)",
             f"{worst:.2f}×", "≤ 1.2×", worst <= 1.2)]
    for name, x in q.items():
        need = 20 if "rare" in name else 3
        got = x["faster_than_full_scan"]["median"]
        rows.append((f"9. Needle vs full scan: {name}", f"{got:.1f}×", f"≥ {need}×", got >= need))
    for name, x in r["stream"].items():
        got = x["ratio"]["median"]
        rows.append((f"9. Streaming catch-up vs batch: {name}", f"{got:.2f}×", "≥ 0.8×",
                     got >= 0.8))
    return rows


def section(r: dict, cfg: dict) -> list[str]:
    """Section 9 of BENCHMARKS.md."""
    lines = [
        "## 9. Needle queries",
        "",
        f"The generated chain of workload 1 ({r['full_scan_rows']['transactions']:,} transactions,"
        f" {r['full_scan_rows']['logs']:,} logs; bench/gen_data.cc: a busy contract with 0.1%"
        " of the logs over the whole history, a rare one with 300 logs in 3 short block"
        " ranges, and a busy and a rare account likewise), each needle query read to the end"
        " by a pyarrow Flight client, interleaved with bare DuckDB (Python,"
        " `read_parquet` of the same segment files, `fetch_arrow_table()`) and with sluice's"
        " own full scan of the table. Rows are checked equal (count and sum of block_num).",
        "",
        f"Command: `.venv/bin/python bench/needle.py --rows {cfg['rows']} --runs"
        f" {cfg['needle_runs']}` (in the suite: `bench/run_all.py --only needle`)",
        "",
        "| query | rows | sluice, ms | bare DuckDB, ms | sluice ÷ DuckDB (≤ 1.2×) |"
        " full scan, ms | faster than full scan |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, x in r["queries"].items():
        need = 20 if "rare" in name else 3
        lines.append(
            f"| {name} | {x['rows']:,} | {fmt(x['sluice_ms'])} | {fmt(x['duckdb_ms'])} |"
            f" {fmt(x['vs_duckdb'], 2)} {verdict(x['vs_duckdb']['median'] <= 1.2)} |"
            f" {fmt(x['full_scan_ms'])} | {fmt(x['faster_than_full_scan'])}× (≥ {need}×:"
            f" {verdict(x['faster_than_full_scan']['median'] >= need)}) |")
    lines += ["", "Streaming: the same query as a stream resumed from block 0, read until"
              " its microbatches reach the head, against the batch query's rows/s:", "",
              "| query | rows | stream rows/s | batch rows/s | ratio (≥ 0.8×) |",
              "|---|---|---|---|---|"]
    for name, x in r["stream"].items():
        lines.append(f"| {name} | {x['rows']:,} | {fmt(x['rows_per_sec'], 0)} |"
                     f" {x['batch_rows_per_sec']:,.0f} | {fmt(x['ratio'], 2)}"
                     f" {verdict(x['ratio']['median'] >= 0.8)} |")
    return lines + [""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=20_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--data-dir", type=Path, help="serve this generated store instead")
    p.add_argument("--bin", help="run this sluice binary (a build from before a change)")
    args = p.parse_args()
    d = args.data_dir or common.dataset(args.rows)
    print(json.dumps(run(d, args.runs, args.bin), indent=1))


if __name__ == "__main__":
    main()
