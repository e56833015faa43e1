"""`make bench` at toy size (issue 7): the benchmark harness runs every workload
end to end against the real server, the baseline servers and a real anvil, and
writes a complete report. Nothing is timed or compared with a target here; the
checks are that each workload ran and read what it should (the row counts the
generator wrote, every client seeing the mined blocks)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_tiny_writes_complete_report(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    env = dict(os.environ, SLUICE_BENCH_CACHE=str(tmp_path / "cache"))
    subprocess.run([sys.executable, str(ROOT / "bench" / "run_all.py"), "--size", "tiny", "--out",
                    str(out)], check=True, env=env, timeout=600)
    results = json.loads(out.with_suffix(".json").read_text())
    text = out.read_text()

    rows = results["config"]["rows"]
    # Generated data: exactly `rows` transactions, read in full by all three servers.
    for name in ("sluice", "memory", "duckdb"):
        assert results["throughput"][name]["rows"] == rows, name
    assert (results["throughput"]["sluice"]["bytes"] > 0
            and results["throughput"]["memory"]["bytes"] > 0)
    assert set(map(int, results["scaling"])) == {rows, 2 * rows, results["config"]["ttfb_small"]}
    # Client memory: the Python client read every row it asked for.
    assert results["client_memory"]["python"]["rows"] == results["config"]["client_rows"]
    # Tip latency: every (block, client) pair arrived.
    for c, x in results["tip_latency"].items():
        assert x["samples"] == int(c) * results["config"]["tip_blocks"], c
    # Extraction: the chain was filled, fetched raw and backfilled.
    assert results["extraction"]["blocks"] == results["config"]["ext_blocks"]
    assert results["extraction"]["txs_per_block"] > 0
    # Verification: the same chain extracted with and without verify, then sluice verify.
    assert results["verification"]["blocks"] == results["config"]["ver_blocks"] + 1  # and genesis
    assert results["verification"]["transactions"] > 0

    # Two chains: both backfilled, alone and together.
    m = results["multichain"]
    assert m["blocks"] == results["config"]["multi_blocks"]
    assert set(m["together_blocks_per_sec"]) == {"chain_a", "chain_b"}

    # Needle queries: every needle found (sluice's rows equal bare DuckDB's, checked
    # by the workload) and the streams caught up with the same rows.
    nd = results["needle"]
    assert all(q["rows"] > 0 for q in nd["queries"].values()), nd["queries"]
    assert nd["full_scan_rows"] == {"logs": rows, "transactions": rows}
    assert all(s["rows"] == nd["queries"][name]["rows"] for name, s in nd["stream"].items())
    # Many cursors: every resumed stream equals the batch query over its blocks.
    mc = results["many_cursors"]
    assert mc["exact_clients"] == mc["clients"] == results["config"]["cursor_clients"]
    assert mc["tip"]["samples"] == mc["clients"] * results["config"]["cursor_blocks"]
    # Expressions: sluice and bare DuckDB returned the same number of rows (checked by
    # the workload), some of the table's.
    ex = results["expression"]
    assert 0 < ex["sluice"]["rows"] == ex["duckdb"]["rows"] < rows

    for heading in ("## 1. Batch throughput", "## 2. Time to first batch", "## 3. Server memory",
                    "## 4. Tip latency", "## 5. Extraction", "## 6. Client memory",
                    "## 7. Extraction of two chains at once", "## 8. Verification",
                    "## 9. Needle queries", "## 10. Many cursors at once",
                    "## 11. Expressions and filters"):
        assert heading in text, heading
    for must in ("- Machine: ", "- Date: ", "- Command: ", "(a) pyarrow.flight from memory",
                 "(b) pyarrow.flight + duckdb", "sluice_client_read_all"):
        assert must in text, must
    assert "nan" not in text.lower().replace("nanosecond", "")
