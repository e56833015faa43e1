#!/usr/bin/env bash
# Sanitizer runs (make test-asan, make test-tsan). Each builds in its own
# directory with GCC and -fsanitize (CMake option SLUICE_SANITIZE), so the normal
# build/ is untouched.
#
#   scripts/sanitize.sh asan   build-asan, -fsanitize=address,undefined: every C++
#                              test (ctest), then integration tests (pytest) against
#                              build-asan/sluice (SLUICE_BIN); fails on any report
#   scripts/sanitize.sh tsan   build-tsan, -fsanitize=thread: the C++ tests of the
#                              concurrent parts (block store, extractor, microbatch
#                              cache, stream registry, metrics, engine, JSON Lines)
#
# Reports of the sanitized processes go to <build>/sanitizer-logs/; the run fails
# when any appears. Suppressions (scripts/sanitizers/*.supp) cover only
# uninstrumented third-party code, each with its reason.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Paths relative to the clone, so ccache hits across clones and worktrees.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}"
kind="${1:?usage: scripts/sanitize.sh asan|tsan}"
JOBS="${JOBS:-2}"
SUPP="$ROOT/scripts/sanitizers"

case "$kind" in
  asan) BUILD=build-asan; SAN="address,undefined" ;;
  tsan) BUILD=build-tsan; SAN="thread" ;;
  *) echo "usage: scripts/sanitize.sh asan|tsan" >&2; exit 2 ;;
esac
LOGS="$ROOT/$BUILD/sanitizer-logs"
start=$(date +%s)

if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DPython3_EXECUTABLE="$ROOT/.venv/bin/python" \
    -DSLUICE_SANITIZE="$SAN" >/dev/null
fi
echo "== $kind: building $BUILD"
targets=(); [ "$kind" = tsan ] && targets=(--target sluice_tests)  # no server run under TSan
cmake --build "$BUILD" -j "$JOBS" "${targets[@]}" | { grep -v '^\[' || true; }
rm -rf "$LOGS"; mkdir -p "$LOGS"

# Arrow allocates from its bundled jemalloc unless told otherwise; with the system
# allocator the sanitizers see Arrow's buffers being allocated and freed (else TSan
# takes a buffer reused by jemalloc for one shared between threads, and ASan cannot
# see an overflow of one).
export ARROW_DEFAULT_MEMORY_POOL=system
export ASAN_OPTIONS="log_path=$LOGS/asan:detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0"
export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="log_path=$LOGS/ubsan:print_stacktrace=1:halt_on_error=1:suppressions=$SUPP/ubsan.supp"
# detect_deadlocks=0: the pyarrow wheel's jemalloc takes more than 64 locks at fork
# (anvil is started by fork), past the fixed capacity of TSan's deadlock detector.
export TSAN_OPTIONS="log_path=$LOGS/tsan:halt_on_error=0:detect_deadlocks=0:suppressions=$SUPP/tsan.supp"

status=0
if [ "$kind" = asan ]; then
  echo "== asan: C++ tests"
  (cd "$BUILD" && ctest --output-on-failure --timeout 900 -j "$JOBS") || status=1
  echo "== asan: integration tests against $BUILD/sluice"
  # Not the RSS bound of test_http (ASan keeps 256 MB of freed memory in quarantine)
  # nor the 20 kill -9 runs (slow, and they test the disk, not memory safety).
  SLUICE_BIN="$ROOT/$BUILD/sluice" .venv/bin/python -m pytest -q -p no:cacheprovider \
    --timeout 900 tests/python/test_flight_protocol.py tests/python/test_http.py \
    tests/python/test_direct_scan.py tests/python/test_faults.py -k "not kill9 and not memory_stays_flat" || status=1
else
  echo "== tsan: concurrency tests"
  # TSan maps memory at fixed places; a kernel with more ASLR bits needs it off.
  run=(); if setarch "$(uname -m)" -R true 2>/dev/null; then run=(setarch "$(uname -m)" -R); fi
  (cd "$BUILD" && "${run[@]}" ctest --output-on-failure --timeout 900 -j "$JOBS" \
     -R 'BlockStore|IngestExtractor|MicrobatchCache|StreamRegistry|Metrics|Engine|DirectScan|ScanCache|JsonLines|Http') \
    || status=1
fi

reports=$(find "$LOGS" -type f | wc -l)
if [ "$reports" -gt 0 ]; then
  echo "== $kind: $reports sanitizer report(s) in $LOGS:" >&2
  for f in "$LOGS"/*; do echo "--- $f" >&2; head -60 "$f" >&2; done
  status=1
fi
echo "== $kind: $([ $status = 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - start ))s"
exit $status
