"""How soon a block mined on the node is queryable through sluice.

Mines one block at a time on a real anvil (with a few transactions each), and
measures the time from the node's answer to `evm_mine` until a Flight query sees
the block (`SELECT max(block_num)`, polled every 2 ms). Prints p50/p99/max in ms.

    .venv/bin/python bench/block_latency.py [--blocks 50]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from sluice_harness import Anvil, Server, query, rpc  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=50)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        node = Anvil(tmp)
        node.traffic(blocks=3)
        srv = Server(tmp / "data", node.url)
        srv.wait_head(node.head())
        client = srv.client()
        accounts = rpc(node.url, "eth_accounts")
        lat = []
        for i in range(args.blocks):
            for k in range(3):
                rpc(node.url, "eth_sendTransaction",
                    [{"from": accounts[k], "to": accounts[k + 1], "value": hex(10**15)}])
            target = node.head() + 1
            rpc(node.url, "evm_mine")
            t0 = time.perf_counter()
            while True:
                m = query(client, "SELECT max(block_num) AS m FROM eth_rpc.blocks").column("m")[0].as_py()
                if m is not None and m >= target:
                    break
                time.sleep(0.002)
            lat.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.05)
        srv.stop()
        node.stop()
    lat.sort()
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(f"block mined -> queryable over Flight: n={len(lat)} p50={p50:.1f} ms "
          f"p99={p99:.1f} ms max={lat[-1]:.1f} ms")


if __name__ == "__main__":
    main()
