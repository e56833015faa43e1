"""The benchmark suite (`make bench`): runs every workload and writes BENCHMARKS.md.

    .venv/bin/python bench/run_all.py [--size full|tiny] [--out BENCHMARKS.md]

--size full is the measurement (about 20 minutes once the data is cached); --size
tiny runs every workload at toy sizes in about a minute so the harness itself is
tested (tests/python/test_bench_smoke.py): its numbers mean nothing.
Ratios decide, not absolute times: the machine is shared. Every number is the
median of --runs runs with min and max.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import common
from common import fmt, verdict
from common import ROOT

import batch
import client_memory
import extraction
import many_cursors
import multichain
import needle
import stream_latency
import verification

SIZES = {
    "full": dict(rows=20_000_000, runs=3, ttfb_runs=7, ttfb_small=1_000_000, client_rows=10_000_000,
                 clients=[1, 10, 100], tip_blocks=30, ext_blocks=10_000, ext_runs=3,
                 multi_blocks=3000, multi_runs=2, ver_blocks=10_000, ver_runs=3,
                 needle_runs=3, cursor_clients=100, cursor_history=3000, cursor_blocks=30),
    "tiny": dict(rows=20_000, runs=2, ttfb_runs=2, ttfb_small=2_000, client_rows=10_000,
                 clients=[1, 3], tip_blocks=3, ext_blocks=60, ext_runs=1,
                 multi_blocks=30, multi_runs=1, ver_blocks=60, ver_runs=1,
                 needle_runs=1, cursor_clients=3, cursor_history=40, cursor_blocks=3),
}
FIXES = ROOT / "bench" / "FIXES.md"
ANALYSIS = ROOT / "bench" / "ANALYSIS.md"
MEASURED = ROOT / "bench" / "MEASURED.md"
CLUSTER = ROOT / "bench" / "CLUSTER.md"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = common.proc_meminfo_total()
    except OSError:
        mem = 0
    return (f"{cpu}, {os.cpu_count()} cores, {mem / 2**30:.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}; shared with other jobs")


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                                "src", "bench"], capture_output=True, text=True).stdout.strip()
        return sha + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def step(name: str):
    print(f"bench: {name} ({time.strftime('%H:%M:%S')})", file=sys.stderr, flush=True)


def run(size: str, out: Path) -> dict:
    cfg = SIZES[size]
    results: dict = {"size": size, "config": cfg}
    t_start = time.monotonic()

    step("data")
    t0 = time.monotonic()
    d1 = common.dataset(cfg["rows"])
    d2 = common.dataset(2 * cfg["rows"])
    ds = common.dataset(cfg["ttfb_small"])
    gen = {str(rows): json.loads((d / "complete").read_text())["seconds"]
           for rows, d in ((cfg["rows"], d1), (2 * cfg["rows"], d2), (cfg["ttfb_small"], ds))}
    results["date"] = f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}"
    results["commit"] = git_commit()
    results["machine"] = machine()
    results["data"] = {"seconds_this_run": time.monotonic() - t0, "generation_seconds": gen,
                       "rows": cfg["rows"], "parquet_bytes": common.dir_bytes(d1),
                       "double_parquet_bytes": common.dir_bytes(d2), "dir": str(d1)}

    step("batch throughput (sluice, memory, duckdb)")
    results["throughput"] = batch.throughput(d1, cfg["runs"])

    step("time to first batch at three sizes, memory at 2x")
    results["scaling"] = {}
    for rows, d in ((cfg["ttfb_small"], ds), (cfg["rows"], d1), (2 * cfg["rows"], d2)):
        results["scaling"][rows] = {"ttfb_ms": batch.first_batch(d, cfg["ttfb_runs"])}
    results["scaling"][cfg["rows"]]["peak_rss_mb"] = results["throughput"]["sluice"]["peak_rss_mb"]
    r = batch.throughput(d2, 1, baselines=False)
    results["scaling"][2 * cfg["rows"]]["peak_rss_mb"] = r["sluice"]["peak_rss_mb"]

    step("client memory")
    results["client_memory"] = client_memory_workload(d1, cfg["client_rows"])

    step("tip latency")
    tips = {}
    for c in cfg["clients"]:
        lat = sorted(stream_latency.run(c, cfg["tip_blocks"]))
        tips[c] = stream_latency.percentiles(lat)
    results["tip_latency"] = tips

    step("extraction")
    results["extraction"] = extraction.run(cfg["ext_blocks"], cfg["ext_runs"])

    step("extraction of two chains at once")
    results["multichain"] = multichain.run(cfg["multi_blocks"], cfg["multi_runs"])

    step("verification")
    results["verification"] = verification_workload(cfg)

    step("needle queries")
    results["needle"] = needle.run(d1, cfg["needle_runs"])

    step("expressions and filters")
    results["expression"] = batch.expression(d1, cfg["runs"])

    step("many cursors")
    results["many_cursors"] = many_cursors_workload(cfg)

    results["total_seconds"] = time.monotonic() - t_start
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    out.write_text(report(results))
    step(f"wrote {out}")
    return results


def verification_workload(cfg: dict) -> dict:
    """Workload 8, with when, where and at which commit it ran (it may run alone)."""
    started = {"date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
               "commit": git_commit(), "machine": machine()}
    r = verification.run(cfg["ver_blocks"], cfg["ver_runs"])
    r.update(started, load_average=os.getloadavg())
    return r


def run_only(name: str, size: str, out: Path) -> None:
    """Run one workload and merge it into the results beside `out`; rewrite the report."""
    results = json.loads(out.with_suffix(".json").read_text())
    # Results of runs before the machine was recorded: the report's header said it.
    if "machine" not in results:
        m = re.search(r"^- Machine: (.*)$", out.read_text(), re.M) if out.exists() else None
        if m:
            results["machine"] = m.group(1)
    cfg = SIZES[size]
    results["config"].update({k: v for k, v in cfg.items() if k not in results["config"]})
    step(name)
    if name == "verification":
        results["verification"] = verification_workload(cfg)
    elif name == "multichain":
        results["multichain"] = multichain.run(cfg["multi_blocks"], cfg["multi_runs"])
    elif name == "extraction":
        results["extraction"] = extraction.run(cfg["ext_blocks"], cfg["ext_runs"])
    elif name == "needle":
        results["needle"] = needle.run(common.dataset(cfg["rows"]), cfg["needle_runs"])
    elif name == "many_cursors":
        results["many_cursors"] = many_cursors_workload(cfg)
    elif name == "expression":
        results["expression"] = batch.expression(common.dataset(cfg["rows"]), cfg["runs"])
    else:
        raise SystemExit(f"--only {name}: one of extraction, multichain, verification, needle,"
                         " many_cursors, expression")
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    out.write_text(report(results))
    step(f"wrote {out}")


def many_cursors_workload(cfg: dict) -> dict:
    return many_cursors.run(cfg["cursor_clients"], cfg["cursor_history"], cfg["cursor_blocks"])


def client_memory_workload(data_dir: Path, rows: int) -> dict:
    proc, loc = batch.start_sluice(data_dir)
    try:
        sql = client_memory.SQL.format(rows=rows)
        py = subprocess.run([str(common.PYTHON), str(ROOT / "bench" / "client_memory.py"),
                             "--flight-url", loc, "--rows", str(rows)], check=True,
                            capture_output=True, text=True, timeout=3600).stdout
        cpp = client_memory.cpp_read(loc, sql, 10000)
    finally:
        common.stop(proc)
    return {"sql": sql, "python": json.loads(py), "cpp": cpp}


def summary_table(r: dict) -> list[str]:
    """One line per target: what was measured and whether it was met."""
    t, sc, e, cm = r["throughput"], r["scaling"], r["extraction"], r["client_memory"]
    s = t["sluice"]
    rows = []

    def ratio(name: str) -> float:
        return s["rows_per_sec"]["median"] / t[name]["rows_per_sec"]["median"]

    rows.append(("1. Batch throughput vs (a) transport limit", f"{ratio('memory'):.2f}×", "≥ 0.8×",
                 ratio("memory") >= 0.8))
    rows.append(("1. Batch throughput vs (b) pyarrow.flight + duckdb", f"{ratio('duckdb'):.2f}×",
                 "≥ 2×", ratio("duckdb") >= 2))
    ttfb = [sc[k]["ttfb_ms"]["median"] for k in sorted(sc, key=int)]
    rows.append(("2. Time to first batch (largest median)", f"{max(ttfb):.0f} ms", "≤ 50 ms",
                 max(ttfb) <= 50))
    rows.append(("2. Time to first batch, growth with table size",
                 f"{round(ttfb[-1] - ttfb[0]):+d} ms", "not growing (within 25 ms)",
                 ttfb[-1] - ttfb[0] <= 25))
    rss = max(x.get("peak_rss_mb", 0) for x in sc.values())
    rows.append(("3. Server peak RSS (1× and 2× table)", f"{rss:.0f} MB", "≤ 512 MB", rss <= 512))
    tl = r["tip_latency"]
    top = tl[max(tl, key=int)]
    rows.append((f"4. Tip latency p50 / p99 at {max(map(int, tl))} clients",
                 f"{top['p50_ms']:.0f} / {top['p99_ms']:.0f} ms", "≤ 50 / ≤ 200 ms",
                 top["p50_ms"] <= 50 and top["p99_ms"] <= 200))
    rows.append(("5. Extraction vs raw fetch", f"{e['ratio']['median']:.2f}×", "≥ 0.7×",
                 e["ratio"]["median"] >= 0.7))
    py = cm["python"]["rss_growth_bytes"] / 2**20
    rows.append(("6. Python execute_stream RSS growth", f"{py:.1f} MB", "≤ 64 MB", py <= 64))
    cpp = cm["cpp"]
    rows.append(("6. C++ client RSS growth",
                 "not built" if cpp is None else f"{cpp['rss_growth_bytes'] / 2**20:.1f} MB",
                 "≤ 64 MB", None if cpp is None else cpp["rss_growth_bytes"] <= 64 * 2**20))
    if "extraction" in r and "vs_cryo" in e:
        rows.append(("5. Extraction vs (c) cryo", f"{e['vs_cryo']['median']:.2f}×", "≥ 1.0×",
                     e["vs_cryo"]["median"] >= 1.0))
    if "needle" in r:
        rows += needle.targets(r["needle"])
    if "needles" in e:
        for kind, x in e["needles"].items():
            rows.append((f"9. Needle vs the node's eth_getLogs, {kind} contract",
                         f"{x['faster']['median']:.1f}×", "≥ 10×", x["faster"]["median"] >= 10))
    if "many_cursors" in r:
        rows += many_cursors.targets(r["many_cursors"])
    if "expression" in r:
        x = r["expression"]
        rows.append(("11. Expressions and filters vs (b) pyarrow.flight + duckdb",
                     f"{x['ratio']['median']:.2f}×", "≥ 1.5×", x["ratio"]["median"] >= 1.5))
    out = ["## Targets", "", "| workload | measured (median) | target | |", "|---|---|---|---|"]
    for name, got, target, ok in rows:
        out.append(f"| {name} | {got} | {target} | {'—' if ok is None else verdict(ok)} |")
    return out


def multichain_section(m: dict, cfg: dict) -> list[str]:
    """Section 7: two chains extracted at once by one server, against each alone."""
    a, t = m["alone_blocks_per_sec"], m["together_blocks_per_sec"]
    return [
        "## 7. Extraction of two chains at once",
        "",
        f"Two real anvil nodes filled alike ({m['blocks']:,} blocks of {m['txs_per_block']}"
        " transactions, half emitting a log), backfilled into empty data directories: each"
        " chain alone by a server with one dataset, then both at once by one server with two"
        " `[[datasets]]` (docs/datasets.md), each with its own extractor"
        f" ({m['rpc_batch_blocks']} blocks a batch request, {m['rpc_max_in_flight']} in flight)."
        " Timed from the process start until a query sees each chain's last block. Runs"
        " alternate. Nothing is a target here: the question is whether two chains share the"
        " machine or get in each other's way.",
        "",
        f"Command: `.venv/bin/python bench/multichain.py --blocks {cfg.get('multi_blocks', m['blocks'])}"
        f" --runs {cfg.get('multi_runs', 1)}`",
        "",
        "| | chain a, blocks/s | chain b, blocks/s | both chains, blocks/s |",
        "|---|---|---|---|",
        f"| each alone | {fmt(a['chain_a'])} | {fmt(a['chain_b'])} | |",
        f"| both at once | {fmt(t['chain_a'])} | {fmt(t['chain_b'])} |"
        f" {fmt(m['together_total_blocks_per_sec'])} |",
        "",
        f"Both chains together: {fmt(m['total_vs_one_alone'], 2)}× the blocks/s of one chain"
        f" alone. (Filling the two nodes took {m['fill_seconds']:.0f} s.)"
        + (f" {m['note']}" if m.get("note") else ""),
        "",
    ]


def expression_section(x: dict, cfg: dict) -> list[str]:
    """Section 11: a query with an expression and a filter, against bare DuckDB."""
    s, d = x["sluice"], x["duckdb"]
    return [
        "## 11. Expressions and filters",
        "",
        f"`{x['sql']}` ({s['rows']:,} of {cfg['rows']:,} rows) read to the end by a pyarrow"
        " Flight client from sluice and from baseline (b), bare DuckDB over the same segment"
        " files behind pyarrow Flight; runs interleaved. sluice evaluates this shape itself"
        " (a direct scan with integer ranges and DOUBLE arithmetic, src/sql/scan_expression.h);"
        " other expressions go through DuckDB.",
        "",
        f"Command: `.venv/bin/python bench/batch.py --expression --rows {cfg['rows']}"
        f" --runs {cfg['runs']}` (in the suite: `bench/run_all.py --only expression`)",
        "",
        "| server | rows/s | MB/s | seconds |",
        "|---|---|---|---|",
        f"| sluice | {s['rows_per_sec']['median']:,.0f} | {s['mb_per_sec']['median']:,.0f} |"
        f" {s['seconds']['median']:.3f} |",
        f"| (b) pyarrow + duckdb | {d['rows_per_sec']['median']:,.0f} |"
        f" {d['mb_per_sec']['median']:,.0f} | {d['seconds']['median']:.3f} |",
        "",
        f"sluice ÷ (b): {x['ratio']['median']:.2f}× ({x['ratio']['min']:.2f}–"
        f"{x['ratio']['max']:.2f}×; target ≥ 1.5×).",
        "",
    ]


def verification_section(v: dict, cfg: dict) -> list[str]:
    """Section 8: extraction with and without verify, and sluice verify."""
    return [
        "## 8. Verification",
        "",
        f"The chain of workload 5 ({v['blocks']:,} blocks, {v['txs_per_block']} transactions"
        f" a block, half of them emitting a log: {v['transactions']:,} transactions,"
        f" {v['logs']:,} logs) backfilled into an empty data directory with `verify` off and"
        " on (each fetched range's block hashes, transactions and receipts roots and logs"
        " blooms recomputed before it is stored; docs/datasets.md#verification), runs"
        " alternating; and `sluice verify` over the stored blocks after each verifying run"
        " (reading the Parquet segments back), timed as a process. Measured, not a target."
        f" Run on {v['date']} at commit {v['commit']} on {v['machine']}, load average"
        f" {v['load_average'][0]:.1f} (other builds and tests ran meanwhile: absolute"
        " numbers are low and noisy, the ratios are what to read).",
        "",
        f"Command: `.venv/bin/python bench/verification.py --blocks {cfg['ver_blocks']}"
        f" --runs {cfg['ver_runs']}` (in the suite: `bench/run_all.py --only verification`)",
        "",
        "| | blocks/s | ÷ extraction |",
        "|---|---|---|",
        f"| extraction (`verify = false`) | {fmt(v['extract_blocks_per_sec'])} | 1 |",
        f"| extraction with `verify = true` | {fmt(v['extract_verify_blocks_per_sec'])} |"
        f" {fmt(v['extract_verify_ratio'], 2)}× |",
        f"| `sluice verify` over stored blocks | {fmt(v['verify_command_blocks_per_sec'])} |"
        f" {fmt(v['verify_command_ratio'], 2)}× |",
        "",
    ]


def report(r: dict) -> str:
    cfg = r["config"]
    size = r["size"]
    cmd = "make bench" if size == "full" else f".venv/bin/python bench/run_all.py --size {size}"
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (scripts/bench.sh → bench/run_all.py); do not edit by hand"
        " (the fixes section comes from bench/FIXES.md).",
        "",
        f"- Date: {r.get('date') or datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {r.get('machine') or machine()}",
        f"- Commit: {r.get('commit') or git_commit()}",
        f"- Command: `{cmd}` (size `{size}`; whole suite {r['total_seconds'] / 60:.1f} min once the"
        " data is cached; generating it the first time took "
        + ", ".join(f"{int(k):,} rows {v:.0f} s" for k, v in
                    sorted(r["data"].get("generation_seconds", {}).items(), key=lambda kv: int(kv[0])))
        + ")",
        "- Numbers: median (min–max) of the runs shown. Ratios decide, not absolute times:"
        " the machine is shared by several builds and noisy.",
        "",
    ]
    if size != "full":
        lines += ["**Smoke run at toy sizes: these numbers mean nothing.**", ""]
    lines += summary_table(r) + [""]
    if ANALYSIS.exists() and size == "full":
        lines += [ANALYSIS.read_text().rstrip(), ""]

    t = r["throughput"]
    s = t["sluice"]
    data = r["data"]
    lines += [
        "## 1. Batch throughput",
        "",
        f"`SELECT * FROM eth_rpc.transactions`: {s['rows']:,} rows, {s['bytes'] / 1e9:.2f} GB as"
        f" Arrow (as received by the client), {data['parquet_bytes'] / 1e9:.2f} GB of Parquet;"
        " read to the end by a pyarrow Flight client on loopback. The data is a synthetic chain"
        " written by build/bench/sluice_bench_gen in sluice's own storage format (cached in"
        f" {Path(data['dir']).parent}). Runs interleaved: {s['rows_per_sec']['runs']} per server.",
        "",
        f"Command: `.venv/bin/python bench/batch.py --rows {cfg['rows']} --runs {cfg['runs']}`",
        "",
        "| server | rows/s | MB/s | seconds | sluice ÷ this (rows/s) | target | |",
        "|---|---|---|---|---|---|---|",
    ]
    targets = {"memory": 0.8, "duckdb": 2.0}
    names = {"sluice": "sluice (later scans, from the scan cache)",
             "sluice_first_scan": "sluice, first scan (decodes the Parquet)",
             "sluice_second_scan": "sluice, second scan (decodes, fills the scan cache)",
             "memory": "(a) pyarrow.flight from memory (transport limit)",
             "duckdb": "(b) pyarrow.flight + duckdb Python over the same Parquet"}
    for name, x in t.items():
        rows_s = {k: v / 1e6 for k, v in x["rows_per_sec"].items() if k != "runs"}
        if name.startswith("sluice"):
            ratio, target, ok = "—", "—", ""
        else:
            q = s["rows_per_sec"]["median"] / x["rows_per_sec"]["median"]
            qmb = s["mb_per_sec"]["median"] / x["mb_per_sec"]["median"]
            ratio = f"{q:.2f}× (MB/s: {qmb:.2f}×)"
            target = f"≥ {targets[name]}×"
            ok = verdict(q >= targets[name] and qmb >= targets[name])
        lines.append(f"| {names[name]} | {fmt(rows_s, 2)} M | {fmt(x['mb_per_sec'], 0)} |"
                     f" {fmt(x['seconds'], 1)} | {ratio} | {target} | {ok} |")
    if "sluice_first_scan" in t and "memory" in t and "duckdb" in t:
        def vs(name: str) -> str:
            f = t[name]["rows_per_sec"]["median"]
            return (f"{f / t['memory']['rows_per_sec']['median']:.2f}× (a), "
                    f"{f / t['duckdb']['rows_per_sec']['median']:.2f}× (b)")
        lines += ["", "sluice answers this plain scan without DuckDB's execution (a direct scan,"
                  " ARCHITECTURE.md). Its first scan decodes the Parquet segments with Arrow's"
                  " reader; a segment read whole a second time is also written to the scan"
                  " cache (Arrow IPC of the answer's types, bounded by `scan_cache_max_mb`),"
                  " which later scans read. The first two scans, for comparison: first "
                  f"{vs('sluice_first_scan')}; second {vs('sluice_second_scan')}."]
    lines += ["", "MB/s counts the Arrow buffers the client received (`RecordBatch.nbytes`):"
              " DuckDB turns FixedSizeBinary columns into Binary (4 more bytes a value), so"
              " rows/s is the fairer ratio; both are shown.", ""]

    sc = r["scaling"]
    lines += [
        "## 2. Time to first batch",
        "",
        "From the GetFlightInfo call to the first record batch of the same query, on a client"
        f" already connected, at three table sizes: {cfg.get('ttfb_runs', '')} calls each, each"
        " cancelled after its first batch (bench/batch.py `first_batch`).",
        "",
        "| transactions rows | time to first batch, ms | target | |",
        "|---|---|---|---|",
    ]
    for rows in sorted(sc, key=int):
        x = sc[rows]["ttfb_ms"]
        lines.append(f"| {int(rows):,} | {fmt(x)} | ≤ 50 ms | {verdict(x['median'] <= 50)} |")
    meds = [sc[k]["ttfb_ms"]["median"] for k in sorted(sc, key=int)]
    lines += ["", f"Growth from the smallest to the largest table: {meds[-1] - meds[0]:+.1f} ms."
              " The baselines' first batch in the same runs of workload 1, for scale ((a) sends"
              " the table's chunks as read, 131,072-row row groups; (b) 65,536-row batches):", ""]
    for name in ("memory", "duckdb"):
        if name in t:
            lines.append(f"- {names[name]}: {fmt(t[name]['ttfb_ms'])} ms")
    lines.append("")

    lines += [
        "## 3. Server memory",
        "",
        "Peak RSS (VmHWM) of the server process over all its runs of workload 1 (the 2× table:"
        " one full read), reset after a warm-up query.",
        "",
        "| server | table rows | peak RSS, MB | target | |",
        "|---|---|---|---|---|",
    ]
    for rows in sorted(sc, key=int):
        if int(rows) < cfg["rows"] or "peak_rss_mb" not in sc[rows]:
            continue
        mb = sc[rows]["peak_rss_mb"]
        lines.append(f"| sluice | {int(rows):,} | {mb:,.0f} | ≤ 512 MB | {verdict(mb <= 512)} |")
    for name in ("memory", "duckdb"):
        if name in t:
            lines.append(f"| {names[name]} | {cfg['rows']:,} | {t[name]['peak_rss_mb']:,.0f} | — | |")
    lines.append("")

    tl = r["tip_latency"]
    lines += [
        "## 4. Tip latency",
        "",
        "A real anvil mines one block at a time (3 transactions each) while N clients follow"
        " `SELECT block_num, hash FROM eth_rpc.blocks SETTINGS stream = true`; latency is from"
        " the node's answer to `evm_mine` to the block's rows reaching each client (all"
        " (block, client) pairs). It includes the extractor's poll (every poll_interval_secs ="
        " 0.05 s, ten times as often around the next block's expected time: PollPacer in"
        " src/ingest/extractor.h), fetching, storing with fsync and the microbatch query.",
        "",
        f"Command: `.venv/bin/python bench/stream_latency.py --clients {' '.join(map(str, cfg['clients']))}"
        f" --blocks {cfg['tip_blocks']}`",
        "",
        "| clients | samples | p50 ms | p99 ms | max ms | target (100 clients) | |",
        "|---|---|---|---|---|---|---|",
    ]
    for c, x in tl.items():
        ok = verdict(x["p50_ms"] <= 50 and x["p99_ms"] <= 200)
        lines.append(f"| {c} | {x['samples']} | {x['p50_ms']:.1f} | {x['p99_ms']:.1f} |"
                     f" {x['max_ms']:.1f} | p50 ≤ 50, p99 ≤ 200 | {ok} |")
    lines += ["", "For reference, a design that polls the node every second (the reference"
              " implementation's default) averages about 500 ms.", ""]

    e = r["extraction"]
    lines += [
        "## 5. Extraction",
        "",
        f"Backfill of {e['blocks']:,} blocks from a real anvil ({e['txs_per_block']} transactions"
        " a block, half of them emitting a log) into an empty data directory, against the raw"
        " speed of fetching the same JSON-RPC answers (eth_getBlockByNumber with transactions"
        f" and eth_getBlockReceipts, {e['rpc_batch_blocks']} blocks a batch request,"
        f" {e['rpc_max_in_flight']} in flight) and throwing them away"
        " (build/bench/sluice_bench_rawfetch, the extractor's own RpcClient). sluice is timed"
        " from its process start until a query sees the last block. Runs alternate.",
        "",
        f"Command: `.venv/bin/python bench/extraction.py --blocks {cfg['ext_blocks']}"
        f" --runs {cfg['ext_runs']}`",
        "",
        "| | blocks/s | sluice ÷ raw | target | |",
        "|---|---|---|---|---|",
        f"| raw fetch | {fmt(e['raw_blocks_per_sec'])} | | | |",
        f"| sluice backfill | {fmt(e['sluice_blocks_per_sec'])} | {fmt(e['ratio'], 2)}× |"
        f" ≥ 0.7× | {verdict(e['ratio']['median'] >= 0.7)} |",
        "",
        f"(Filling the node took {e['fill_seconds']:.0f} s; the raw answers are"
        f" {e['raw_bytes'] / 1e6:.0f} MB of JSON.)",
        "",
    ]
    if "vs_cryo" in e:
        lines[-1:-1] = [
            f"(c) cryo 0.3.2 (`cryo.freeze` of blocks, transactions and logs, {e['cryo_args']}):"
            f" {fmt(e['cryo_blocks_per_sec'])} blocks/s; sluice ÷ cryo {fmt(e['vs_cryo'], 2)}×"
            f" (target ≥ 1.0×: {verdict(e['vs_cryo']['median'] >= 1.0)}).", ""]
    if e.get("needles"):
        settled = next(iter(e["needles"].values())).get("segment_files")
        lines[-1:-1] = ["", "Needle queries against the node's own `eth_getLogs`, over the chain of"
                        " the last sluice backfill (same address, topic and blocks; same rows),"
                        + (f" once the server's compaction settled ({settled} logs segment files),"
                           if settled else "")
                        + " median of 3 each:", ""]
        for kind, x in e["needles"].items():
            lines[-1:-1] = [
                f"- {kind} contract, all {x['blocks']:,} blocks, {x['rows']:,} logs: the node's"
                f" `eth_getLogs` {fmt(x['eth_getLogs_ms'])} ms, sluice's `SELECT * FROM eth_rpc.logs"
                f" WHERE address = … AND topic0 = …` {fmt(x['sluice_ms'])} ms:"
                f" {fmt(x['faster'])}× faster (target ≥ 10×: {verdict(x['faster']['median'] >= 10)})."]
        lines.insert(len(lines) - 1, "")

    cm = r["client_memory"]
    py = cm["python"]
    lines += [
        "## 6. Client memory",
        "",
        f"`{cm['sql']}` read to the end; RSS growth is the client process's peak RSS while"
        " reading minus its RSS before the query.",
        "",
        "| client | rows | RSS growth, MB | target | |",
        "|---|---|---|---|---|",
        f"| Python `execute_stream` (pages of 10,000 rows) | {py['rows']:,} |"
        f" {py['rss_growth_bytes'] / 2**20:.1f} | ≤ 64 MB | {verdict(py['rss_growth_bytes'] <= 64 * 2**20)} |",
    ]
    cpp = cm["cpp"]
    if cpp is None:
        lines.append("| C++ client (build/client/sluice_client_read_all) | not built | | ≤ 64 MB | |")
    else:
        lines.append(f"| C++ client (build/client/sluice_client_read_all) | {cpp['rows']:,} |"
                     f" {cpp['rss_growth_bytes'] / 2**20:.1f} | ≤ 64 MB |"
                     f" {verdict(cpp['rss_growth_bytes'] <= 64 * 2**20)} |")
    lines.append("")

    if "multichain" in r:
        lines += multichain_section(r["multichain"], cfg)
    if "verification" in r:
        lines += verification_section(r["verification"], cfg)
    if "needle" in r:
        lines += needle.section(r["needle"], cfg)
    if "many_cursors" in r:
        lines += many_cursors.section(r["many_cursors"], cfg)
    if "expression" in r:
        lines += expression_section(r["expression"], cfg)

    if FIXES.exists():
        lines += [FIXES.read_text().rstrip(), ""]
    if MEASURED.exists():
        lines += [MEASURED.read_text().rstrip(), ""]
    # The distributed roles, measured separately (bench/cluster.py --report).
    if CLUSTER.exists():
        lines += [CLUSTER.read_text().rstrip(), ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=sorted(SIZES), default="full")
    p.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md",
                   help="the report; the raw results go beside it (.json)")
    p.add_argument("--report-only", type=Path, help="rewrite the report from a results JSON")
    p.add_argument("--only", metavar="WORKLOAD",
                   help="run this workload alone (extraction, multichain, verification, needle, many_cursors,"
                        " expression), merge it into"
                        " the results beside --out and rewrite the report")
    args = p.parse_args()
    if args.report_only:
        args.out.write_text(report(json.loads(args.report_only.read_text())))
        return
    if args.only:
        run_only(args.only, args.size, args.out)
        return
    run(args.size, args.out)


if __name__ == "__main__":
    main()
