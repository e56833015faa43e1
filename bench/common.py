"""Shared helpers of the benchmark suite: processes, RSS, statistics, data cache."""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))
sys.path.insert(0, str(ROOT / "python"))

PYTHON = ROOT / ".venv" / "bin" / "python"
GEN = ROOT / "build" / "bench" / "sluice_bench_gen"
RAWFETCH = ROOT / "build" / "bench" / "sluice_bench_rawfetch"
CPP_CLIENT = ROOT / "build" / "client" / "sluice_client_read_all"
# Bump when the generator's rows change: cached data of another version is not reused.
GEN_VERSION = 6  # 2: transactions' list columns; 3: v, cumulative_gas_used, post_state_root; 4: logs with needles, segment format 2; 5: row groups end where blocks end; 6: incompressible columns stored uncompressed
CACHE = Path(os.environ.get("SLUICE_BENCH_CACHE", Path.home() / ".cache" / "sluice" / "bench"))


def proc_status(pid: int, key: str) -> int:
    """A /proc/PID/status memory line (VmRSS, VmHWM) in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def reset_peak(pid: int) -> None:
    """Reset the process's VmHWM (peak RSS) to its current RSS."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def summary(values: list[float]) -> dict:
    """median, min, max and the number of runs."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values)}


def fmt(s: dict, digits: int = 1) -> str:
    """A summary() as `median (min–max)`."""
    return f"{s['median']:,.{digits}f} ({s['min']:,.{digits}f}–{s['max']:,.{digits}f})"


def verdict(ok: bool) -> str:
    """A target's verdict in BENCHMARKS.md."""
    return "met" if ok else "**missed**"


def dataset(rows: int, txs_per_block: int = 200) -> Path:
    """The data directory of a generated chain whose transactions table has `rows`
    rows, generated once into the cache (keyed by size and generator version)."""
    d = CACHE / f"gen-v{GEN_VERSION}-{rows}-{txs_per_block}"
    if (d / "eth_rpc" / "manifest.json").exists() and (d / "complete").exists():
        return d
    shutil.rmtree(d, ignore_errors=True)
    tmp = d.with_name(d.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    t0 = time.monotonic()
    out = subprocess.run([str(GEN), "--data-dir", str(tmp), "--transactions", str(rows),
                          "--txs-per-block", str(txs_per_block)], check=True,
                         capture_output=True, text=True).stdout
    (tmp / "complete").write_text(out)
    tmp.rename(d)
    print(f"bench: generated {rows} rows in {time.monotonic() - t0:.0f} s into {d}",
          file=sys.stderr, flush=True)
    return d


def dir_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in d.rglob("*.parquet"))


def start_line_server(args: list[str], prefix: str, env=None) -> tuple[subprocess.Popen, str]:
    """Start a server printing `<prefix>grpc://H:P` on stdout; return it and its location."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    line = proc.stdout.readline()
    if not line.startswith(prefix):
        proc.kill()
        raise RuntimeError(f"{args[:3]} did not start: {line!r}")
    return proc, line.strip()[len(prefix):]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(2)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def proc_meminfo_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0
