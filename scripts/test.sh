#!/usr/bin/env bash
# Every test: the C++ unit tests (ctest) and the integration tests (pytest) that
# run the real server against a real anvil node with the real pyarrow client.
# Called by `make test` after bootstrap and build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

echo "== C++ tests (ctest)"
(cd build && ctest --output-on-failure --timeout 600 -j 2)

echo "== Fuzz targets, a few seconds each on the checked-in corpus (fuzz/run.sh --smoke)"
bash fuzz/run.sh --smoke

echo "== Python integration tests (pytest)"
.venv/bin/python -m pytest -q -p no:cacheprovider --timeout 900 tests/python "$@"
