#!/usr/bin/env bash
# The benchmark suite (`make bench`): every workload of bench/run_all.py, side by
# side with its baselines, written to BENCHMARKS.md. BENCH_SIZE=tiny runs it at toy
# sizes (what tests/python/test_bench_smoke.py does). The generated chain data is
# cached in ~/.cache/sluice/bench (SLUICE_BENCH_CACHE); generating it the first
# time takes several minutes more.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The baselines' own packages (cryo, baseline (c) of extraction), pinned; once.
REQ=bench/requirements.txt
STAMP=.venv/.bench-requirements.sha256
if [ "$(cat "$STAMP" 2>/dev/null)" != "$(sha256sum "$REQ" | cut -d' ' -f1)" ]; then
  .venv/bin/python -m pip install -q -r "$REQ"
  sha256sum "$REQ" | cut -d' ' -f1 >"$STAMP"
fi
echo "== .venv/bin/python bench/run_all.py --size ${BENCH_SIZE:-full}"
.venv/bin/python bench/run_all.py --size "${BENCH_SIZE:-full}" "$@"
