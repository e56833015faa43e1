"""Workload 8: verification. How fast sluice recomputes block hashes, roots and
blooms, against how fast it extracts.

Fills a real anvil as workload 5 does (bench/extraction.py: --blocks blocks,
--txs-per-block transactions each, half of them emitting a log). Then,
alternating, --runs times each:
  - extract: `sluice serve` backfills blocks 0..N into an empty data directory
    (verify = false), timed from the process start until a query sees block N;
  - extract + verify: the same with verify = true (each fetched range is verified
    before it is stored);
and after each verifying run `sluice verify` over the stored blocks (reading the
Parquet segments back), timed as a process. Reports blocks/s of each and the
ratios to plain extraction.

    .venv/bin/python bench/verification.py --blocks 10000 --runs 3
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import common
import extraction
from sluice_harness import SLUICE, Anvil, Server, rpc_batch  # noqa: E402


def backfill(url: str, head: int, data: Path, verify: bool) -> float:
    """Seconds `sluice serve` takes from its start until block `head` is stored."""
    t0 = time.perf_counter()
    srv = Server(data, url, "--verify", "true" if verify else "false")
    try:
        while srv.stored_head() < head:
            if srv.proc.poll() is not None or "extraction stopped" in srv.log_text():
                raise RuntimeError(f"extraction stopped:\n{srv.log_text()}")
            time.sleep(0.02)
        return time.perf_counter() - t0
    finally:
        srv.stop()


def verify_stored(data: Path, head: int) -> dict:
    """`sluice verify` over blocks 0..head of `data`, timed as a process."""
    t0 = time.perf_counter()
    out = subprocess.run([str(SLUICE), "verify", "--data-dir", str(data), "--dataset", "eth_rpc"],
                         capture_output=True, text=True, timeout=3600)
    secs = time.perf_counter() - t0
    if out.returncode != 0 or f"verified {head + 1} blocks" not in out.stdout:
        raise RuntimeError(f"sluice verify failed ({out.returncode}):\n{out.stdout}{out.stderr}")
    m = re.search(r"\((\d+) transactions, (\d+) logs\)", out.stdout)
    return {"seconds": secs, "transactions": int(m.group(1)), "logs": int(m.group(2))}


def run(blocks: int, runs: int, txs_per_block: int = 4) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        node = Anvil(tmp)
        try:
            t0 = time.monotonic()
            head, _ = extraction.fill_chain(node.url, blocks, txs_per_block)
            fill_secs = time.monotonic() - t0
            counts = rpc_batch(node.url, [("eth_getBlockTransactionCountByNumber", [hex(head)])])
            plain, verified, stored = [], [], []
            for i in range(runs):
                data = tmp / f"plain-{i}"
                plain.append((head + 1) / backfill(node.url, head, data, verify=False))
                shutil.rmtree(data, ignore_errors=True)
                data = tmp / f"verified-{i}"
                verified.append((head + 1) / backfill(node.url, head, data, verify=True))
                v = verify_stored(data, head)
                stored.append((head + 1) / v["seconds"])
                shutil.rmtree(data, ignore_errors=True)
        finally:
            node.stop()
    return {"blocks": head + 1, "txs_per_block": int(counts[0], 16), "fill_seconds": fill_secs,
            "transactions": v["transactions"], "logs": v["logs"],
            "extract_blocks_per_sec": common.summary(plain),
            "extract_verify_blocks_per_sec": common.summary(verified),
            "verify_command_blocks_per_sec": common.summary(stored),
            "extract_verify_ratio": common.summary([v / p for v, p in zip(verified, plain)]),
            "verify_command_ratio": common.summary([s / p for s, p in zip(stored, plain)])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=10000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--txs-per-block", type=int, default=4)
    args = p.parse_args()
    print(json.dumps(run(args.blocks, args.runs, args.txs_per_block), indent=1))


if __name__ == "__main__":
    main()
