#!/usr/bin/env bash
# Builds the libFuzzer targets (build-fuzz, clang, -DSLUICE_FUZZ=ON) and runs each.
#
#   fuzz/run.sh [SECONDS]   run each target SECONDS (default $FUZZ_SECONDS or 180),
#                           starting from the checked-in corpus fuzz/corpus/<target>;
#                           new inputs go to build-fuzz/corpus/<target>, crashes to
#                           build-fuzz/crashes/<target>-*
#   fuzz/run.sh --smoke     20,000 runs (at most a few seconds) per target with a fixed
#                           seed (scripts/test.sh), nothing kept
#
# Exits non-zero when a target finds a crash, a leak or a sanitizer report.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Paths relative to the clone, so ccache hits across clones and worktrees.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}"
BUILD="${FUZZ_BUILD_DIR:-build-fuzz}"
CLANG="${FUZZ_CLANG:-clang-16}"
TARGETS=(settings_clause cursor ticket rpc_response abi_decode)

smoke=0
seconds="${FUZZ_SECONDS:-180}"
if [ "${1:-}" = "--smoke" ]; then smoke=1; seconds="${FUZZ_SMOKE_SECONDS:-4}"
elif [ -n "${1:-}" ]; then seconds="$1"; fi

if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER="${CLANG/clang/clang++}" \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DPython3_EXECUTABLE="$ROOT/.venv/bin/python" \
    -DSLUICE_FUZZ=ON -DSLUICE_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$BUILD" --target fuzzers -j "${JOBS:-2}" | { grep -v '^\[' || true; }

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
for t in "${TARGETS[@]}"; do
  bin="$BUILD/fuzz/${t}_fuzzer"
  seeds="fuzz/corpus/$t"
  if [ "$smoke" = 1 ]; then
    work="$(mktemp -d)"; artifacts="$work/"
  else
    work="$BUILD/corpus/$t"; mkdir -p "$work" "$BUILD/crashes"; artifacts="$BUILD/crashes/$t-"
  fi
  log="$BUILD/fuzz-$t.log"
  printf 'fuzz: %-16s %ss ... ' "$t" "$seconds"
  # The smoke run is deterministic (fixed seed and number of runs), so `make test`
  # cannot fail on an input the fuzzer happens to find that day; `make fuzz` explores.
  limits=(-max_total_time="$seconds")
  [ "$smoke" = 1 ] && limits+=(-seed=1 -runs="${FUZZ_SMOKE_RUNS:-20000}")
  if "$bin" "${limits[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$artifacts" "$work" "$seeds" >"$log" 2>&1; then
    runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')"
    echo "ok ($runs runs, $cov edges)"
  else
    echo "FAILED (see $log)"
    grep -m1 -E 'ERROR|SUMMARY|runtime error|deadly signal' "$log" || true
    [ "$smoke" = 1 ] && cp -r "$work" "$BUILD/smoke-failure-$t" 2>/dev/null || true
    failed+=("$t")
  fi
  [ "$smoke" = 1 ] && rm -rf "$work"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failures in: ${failed[*]}" >&2
  exit 1
fi
