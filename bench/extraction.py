"""Workload 5: extraction. Backfill speed of sluice against the raw speed of
fetching the same JSON-RPC answers.

Fills a real anvil with --blocks blocks, each holding --txs-per-block
transactions from distinct dev accounts: half ETH transfers, half calls to a tiny
contract that emits one log per call (LOG1 of its calldata). Then, alternating,
--runs times each:
  - raw: build/bench/sluice_bench_rawfetch fetches blocks 1..N with the same
    batching and concurrency as the extractor (rpc_batch_blocks,
    rpc_max_in_flight) and drops the answers;
  - sluice: `sluice serve` on an empty data directory backfills blocks 0..N
    (decode, Arrow, Parquet, fsync); timed from the process start until a query
    sees block N (so sluice's start-up counts against it).
Reports blocks/s of both and their ratio.

    .venv/bin/python bench/extraction.py --blocks 10000 --runs 3
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import common
from common import RAWFETCH
from sluice_harness import Anvil, Server, rpc_batch, rpc  # noqa: E402

# Runtime: CALLDATACOPY the calldata to memory, LOG1 it with a fixed topic, STOP.
TOPIC = "ab" * 32
RUNTIME = "366000600037" + "7f" + TOPIC + "36" + "6000" + "a1" + "00"
INIT = "602c600c600039602c6000f3" + RUNTIME


def fill_chain(url: str, blocks: int, txs_per_block: int) -> int:
    """Mine `blocks` blocks with transactions and logs; return the head."""
    accounts = rpc(url, "eth_accounts")
    if txs_per_block > len(accounts):
        raise ValueError(f"at most {len(accounts)} transactions per block (distinct senders)")
    rpc(url, "eth_sendTransaction", [{"from": accounts[0], "data": "0x" + INIT, "gas": hex(200000)}])
    rpc(url, "evm_mine")
    receipt = rpc(url, "eth_getBlockReceipts", ["latest"])[0]
    emitter = receipt["contractAddress"]
    for b in range(blocks - 1):
        calls = []
        for k in range(txs_per_block):
            if k % 2:
                tx = {"from": accounts[k], "to": emitter, "gas": hex(100000),
                      "data": "0x" + f"{b:064x}{k:064x}"}
            else:
                tx = {"from": accounts[k], "to": accounts[(k + 1) % len(accounts)],
                      "value": hex(10**12 + b), "gas": hex(21000)}
            calls.append(("eth_sendTransaction", [tx]))
        rpc_batch(url, calls)
        rpc(url, "evm_mine")
    return int(rpc(url, "eth_blockNumber"), 16)


def raw_fetch(url: str, head: int, batch: int, in_flight: int) -> dict:
    out = subprocess.run([str(RAWFETCH), "--rpc-url", url, "--from", "1", "--to", str(head),
                          "--batch-blocks", str(batch), "--in-flight", str(in_flight)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def sluice_backfill(url: str, head: int, tmp: Path, batch: int, in_flight: int) -> dict:
    data = tmp / f"data-{time.time_ns()}"
    t0 = time.perf_counter()
    srv = Server(data, url, "--rpc-batch-blocks", str(batch), "--rpc-max-in-flight",
                 str(in_flight))
    try:
        while srv.stored_head() < head:
            time.sleep(0.02)
        secs = time.perf_counter() - t0
    finally:
        srv.stop()
        shutil.rmtree(data, ignore_errors=True)
    return {"blocks": head, "seconds": secs, "blocks_per_sec": head / secs}


def run(blocks: int, runs: int, txs_per_block: int = 4, batch: int = 50,
        in_flight: int = 4) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        node = Anvil(tmp)
        try:
            t0 = time.monotonic()
            head = fill_chain(node.url, blocks, txs_per_block)
            fill_secs = time.monotonic() - t0
            counts = rpc_batch(node.url, [("eth_getBlockTransactionCountByNumber", [hex(head)])])
            raw, ours = [], []
            for _ in range(runs):
                raw.append(raw_fetch(node.url, head, batch, in_flight))
                ours.append(sluice_backfill(node.url, head, tmp, batch, in_flight))
        finally:
            node.stop()
    raw_bps = [r["blocks_per_sec"] for r in raw]
    our_bps = [r["blocks_per_sec"] for r in ours]
    return {"blocks": head, "txs_per_block": int(counts[0], 16), "fill_seconds": fill_secs,
            "rpc_batch_blocks": batch, "rpc_max_in_flight": in_flight,
            "raw_bytes": raw[0]["bytes"],
            "raw_blocks_per_sec": common.summary(raw_bps),
            "sluice_blocks_per_sec": common.summary(our_bps),
            "ratio": common.summary([o / r for o, r in zip(our_bps, raw_bps)])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=10000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--txs-per-block", type=int, default=4)
    args = p.parse_args()
    print(json.dumps(run(args.blocks, args.runs, args.txs_per_block), indent=1))


if __name__ == "__main__":
    main()
