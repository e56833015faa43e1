# sluice: SQL over live blockchain data, streamed as Arrow over Flight.
#
#   make run     install what is missing, build, start a demo chain and the server
#   make run-cluster  the same over PostgreSQL + MinIO: 2 extract workers, 3 query servers
#   make test    install what is missing, build, run every test (C++ and Python)
#   make build   build build/sluice (Release with debug info)
#   make bench   run the benchmark suite, write BENCHMARKS.md
#
# Dependencies are fetched once by scripts/bootstrap.sh into ~/.cache/sluice.

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
GENERATOR ?= Ninja
JOBS ?= $(shell nproc)
PY := .venv/bin/python
# ccache hits across clones in other directories (CI builds a fresh clone): paths
# below the clone are hashed relative to it, and the working directory is not hashed.
export CCACHE_BASEDIR ?= $(CURDIR)
export CCACHE_NOHASHDIR ?= 1

.PHONY: all bootstrap configure build run run-cluster test test-cpp test-python bench clean

all: build

bootstrap:
	@bash scripts/bootstrap.sh

$(BUILD_DIR)/build.ninja: CMakeLists.txt | bootstrap
	cmake -S . -B $(BUILD_DIR) -G $(GENERATOR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DPython3_EXECUTABLE=$(CURDIR)/$(PY)

configure: bootstrap $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	@bash scripts/demo.sh

# The distributed roles (docs/deploy.md): anvil, PostgreSQL, MinIO, two extract
# workers and three query servers (Flight on ports 1620-1622). Ctrl-C stops all.
run-cluster: build
	@$(PY) scripts/run_cluster.py

test: build
	@bash scripts/test.sh

test-cpp: build
	cd $(BUILD_DIR) && ctest --output-on-failure

test-python: build
	$(PY) -m pytest -q tests/python

bench: build
	@bash scripts/bench.sh

# Robustness, not part of `make test` (too slow for it):
#   make fuzz       each libFuzzer target FUZZ_SECONDS seconds (fuzz/run.sh; build-fuzz, clang)
#   make test-asan  C++ and some integration tests on an address+UB-sanitized build (build-asan)
#   make test-tsan  the concurrency tests on a thread-sanitized build (build-tsan)
.PHONY: fuzz test-asan test-tsan
FUZZ_SECONDS ?= 180
fuzz: bootstrap
	FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) bash fuzz/run.sh

test-asan: bootstrap
	JOBS=$(JOBS) bash scripts/sanitize.sh asan

test-tsan: bootstrap
	JOBS=$(JOBS) bash scripts/sanitize.sh tsan

clean:
	rm -rf $(BUILD_DIR)
