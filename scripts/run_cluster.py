"""`make run-cluster`: the distributed roles on this machine (docs/deploy.md).

  anvil          a block every second, with demo/traffic.py's transactions
  PostgreSQL     a throwaway cluster (initdb + pg_ctl) on a free port: the metadata
  MinIO          .cluster/minio on a free port: the segments (bucket `sluice`)
  2 workers      sluice extract, one active and one standby under the lease
  3 servers      sluice serve --no-extract, Flight on consecutive ports from
                 SLUICE_CLUSTER_FLIGHT_PORT (1620), sharing a ticket_secret

Everything starts fresh (.cluster/ is deleted first). Ctrl-C stops everything.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))
from cluster_harness import MinIO, Postgres, QueryServer, Worker  # noqa: E402
from sluice_harness import Anvil, PYTHON  # noqa: E402

BASE = int(os.environ.get("SLUICE_CLUSTER_FLIGHT_PORT", "1620"))
CONFIG = ROOT / "demo" / "config.toml"


def log(msg: str) -> None:
    print(f"run-cluster: {msg}", file=sys.stderr, flush=True)


def main() -> int:
    work = ROOT / ".cluster"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    started = []  # stopped in reverse order
    try:
        pg = Postgres()
        started.append(("PostgreSQL", pg.close))
        log(f"PostgreSQL on {pg.url} (data {pg.dir})")
        minio = MinIO(work / "minio")
        started.append(("MinIO", minio.stop))
        s3 = minio.url("segments")
        log(f"MinIO on http://{minio.endpoint} (data .cluster/minio)")
        node = Anvil(work, block_time=1)
        started.append(("anvil", node.stop))
        log(f"anvil on {node.url} (a block every second)")
        traffic = subprocess.Popen([str(PYTHON), str(ROOT / "demo" / "traffic.py"), "--rpc-url",
                                    node.url], stdout=open(work / "traffic.log", "w"),
                                   stderr=subprocess.STDOUT)
        started.append(("traffic", lambda: (traffic.terminate(), traffic.wait(10))))
        workers = []
        for name in ("worker-1", "worker-2"):
            w = Worker(work / name / "data", node.url, pg.url, s3, "--config", str(CONFIG),
                       name=name, gc_grace_secs=60, lease_poll_secs=0.5)
            workers.append(w)
            started.append((name, w.stop))
        secret = secrets.token_hex(32)
        locations = [f"grpc://127.0.0.1:{BASE + i}" for i in range(3)]
        servers = []
        for i in range(3):
            q = QueryServer(work / f"server-{i + 1}" / "data", pg.url, s3, "--config", str(CONFIG),
                            "--ticket-secret", secret, "--endpoint-locations",
                            ",".join(locations), flight_port=BASE + i)
            servers.append(q)
            started.append((f"server-{i + 1}", q.stop))
        lines = "\n".join(
            f"  server-{i + 1}: Flight {q.location}   JSON Lines {q.jsonl_url}   admin {q.admin_url}\n"
            f"    build/sluice query --server {q.location} \"SELECT block_num, hash FROM "
            f"eth_rpc.blocks ORDER BY block_num DESC LIMIT 5\""
            for i, q in enumerate(servers))
        print(f"""
run-cluster: sluice's distributed roles are up (docs/deploy.md)
  metadata: {pg.url}   segments: {s3}
  workers: {", ".join(f"{w.name} (pid {w.proc.pid})" for w in workers)}: one active, one
    standby (their role lines: .cluster/worker-*.out; logs .cluster/worker-*.log)
{lines}
  Any server redeems another's tickets (shared ticket_secret). `kill -9` the active
  worker's pid to watch the standby take over. Ctrl-C stops everything.
""", flush=True)
        while True:
            time.sleep(1)
            for w in workers:
                if w.proc.poll() is not None and w not in stopping:
                    stopping.append(w)
                    log(f"{w.name} exited ({w.proc.returncode}); see {w.stderr_path}")
    except KeyboardInterrupt:
        log("stopping")
    finally:
        for name, stop in reversed(started):
            try:
                stop()
            except Exception as e:  # noqa: BLE001 - stop the rest regardless
                log(f"stopping {name}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
