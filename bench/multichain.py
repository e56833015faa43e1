"""Workload 7: extraction of two chains at once. Two real anvil nodes (chain ids 31337
and 31338) are filled alike (extraction.fill_chain: --blocks blocks of
--txs-per-block transactions, half emitting a log). Then, alternating, --runs
times each:
  - alone: `sluice serve` with one dataset backfills one chain into an empty data
    directory (each chain in turn);
  - together: one `sluice serve` with two [[datasets]] backfills both chains at once.
Each backfill is timed from the process start until a query sees the chain's last
block. Reports blocks/s of each chain alone and together, and the two chains'
total blocks/s together against one chain alone.

    .venv/bin/python bench/multichain.py --blocks 3000 --runs 2
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import common
from extraction import fill_chain
from sluice_harness import Anvil, Server, datasets_config


def backfill(urls: dict, heads: dict, tmp: Path, batch: int, in_flight: int) -> dict:
    """One server following every dataset of `urls` ({name: url}); seconds from its
    start until each dataset's stored head reaches its head."""
    data = tmp / f"data-{time.time_ns()}"
    data.mkdir()
    cfg = datasets_config(data / "sluice.toml", [
        {"name": name, "network": name, "rpc_url": url, "rpc_batch_blocks": batch,
         "rpc_max_in_flight": in_flight} for name, url in urls.items()])
    t0 = time.perf_counter()
    srv = Server(data / "store", None, "--config", str(cfg))
    done: dict = {}
    try:
        while len(done) < len(urls):
            for name in urls:
                if name not in done and srv.stored_head(name) >= heads[name]:
                    done[name] = time.perf_counter() - t0
            time.sleep(0.02)
    finally:
        srv.stop()
        shutil.rmtree(data, ignore_errors=True)
    return done


def run(blocks: int, runs: int, txs_per_block: int = 4, batch: int = 50,
        in_flight: int = 4) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        nodes = {"chain_a": Anvil(tmp, chain_id=31337), "chain_b": Anvil(tmp, chain_id=31338)}
        try:
            t0 = time.monotonic()
            heads = {name: fill_chain(n.url, blocks, txs_per_block)[0] for name, n in nodes.items()}
            fill_secs = time.monotonic() - t0
            urls = {name: n.url for name, n in nodes.items()}
            alone = {name: [] for name in nodes}
            together = {name: [] for name in nodes}
            total_together = []
            for _ in range(runs):
                for name in nodes:
                    secs = backfill({name: urls[name]}, heads, tmp, batch, in_flight)[name]
                    alone[name].append(heads[name] / secs)
                both = backfill(urls, heads, tmp, batch, in_flight)
                for name in nodes:
                    together[name].append(heads[name] / both[name])
                total_together.append(sum(heads.values()) / max(both.values()))
        finally:
            for n in nodes.values():
                n.stop()
    one_alone = [sum(alone[n][i] for n in nodes) / len(nodes) for i in range(runs)]
    return {"blocks": heads["chain_a"], "txs_per_block": txs_per_block,
            "fill_seconds": fill_secs, "rpc_batch_blocks": batch, "rpc_max_in_flight": in_flight,
            "alone_blocks_per_sec": {n: common.summary(v) for n, v in alone.items()},
            "together_blocks_per_sec": {n: common.summary(v) for n, v in together.items()},
            "together_total_blocks_per_sec": common.summary(total_together),
            "total_vs_one_alone": common.summary(
                [t / a for t, a in zip(total_together, one_alone)])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=3000)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--txs-per-block", type=int, default=4)
    args = p.parse_args()
    print(json.dumps(run(args.blocks, args.runs, args.txs_per_block), indent=1))


if __name__ == "__main__":
    main()
