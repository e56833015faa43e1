#!/usr/bin/env bash
# The benchmark suite (`make bench`). Prints each measurement with the command
# that produced it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
echo "== .venv/bin/python bench/block_latency.py --blocks ${BENCH_BLOCKS:-50}"
.venv/bin/python bench/block_latency.py --blocks "${BENCH_BLOCKS:-50}"
echo "== .venv/bin/python bench/stream_latency.py --clients 1 10 100 --blocks ${BENCH_BLOCKS:-30}"
.venv/bin/python bench/stream_latency.py --clients 1 10 100 --blocks "${BENCH_BLOCKS:-30}"
echo "== .venv/bin/python bench/reorg_latency.py"
.venv/bin/python bench/reorg_latency.py
