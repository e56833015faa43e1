"""Real services for the distributed roles (docs/deploy.md): a throwaway
PostgreSQL cluster (Debian's initdb + pg_ctl, in a temporary directory on a free
port), a MinIO server (the pinned build in .deps/minio), `sluice extract` workers
and query servers (`sluice serve --no-extract`).

Used by the cluster tests (tests/python/test_cluster*.py) and by
`make run-cluster` (scripts/run_cluster.py). Nothing is mocked.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Optional

from sluice_harness import ROOT, SLUICE, Server, free_port, wait_for

MINIO = ROOT / ".deps" / "minio"
MINIO_USER = "sluice-test"
MINIO_PASSWORD = "sluice-test-secret"
BUCKET = "sluice"


def pg_bindir() -> Path:
    """Debian's PostgreSQL server binaries (the newest installed version)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL server not installed (scripts/bootstrap.sh installs "
                           "Debian's postgresql)")
    return Path(found[-1]).parent


class Postgres:
    """A PostgreSQL cluster of its own: initdb into a temporary directory, pg_ctl
    start on a free loopback port. As root, the server runs as the `postgres`
    user (PostgreSQL refuses root)."""

    def __init__(self, port: Optional[int] = None):
        import stat
        if not stat.S_ISCHR(os.stat("/dev/null").st_mode):
            # Seen on a shared machine: a program run as root renamed a file onto
            # /dev/null. initdb and pg_ctl cannot work without it.
            raise RuntimeError("/dev/null is not the null device (something replaced it with "
                               "a file); restore it: rm /dev/null; mknod -m 666 /dev/null c 1 3")
        self.bindir = pg_bindir()
        self.port = port or free_port()
        # Not under pytest's tmp (mode 0700 as root): the postgres user must reach it.
        self.dir = Path(tempfile.mkdtemp(prefix="sluice-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", "sluice",
                   "--auth=trust", "-E", "UTF8", "--no-sync"])
        self.start()

    def _run(self, args, **kw):
        if self.as_root:
            args = ["runuser", "-u", "postgres", "--"] + args
        return subprocess.run(args, check=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=120, cwd=self.dir, **kw)

    @property
    def url(self) -> str:
        return f"postgresql://sluice@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                   "-o", opts, "-w", "-t", "60", "start"])

    def stop(self) -> None:
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                   "stop"])

    def psql(self, sql: str) -> str:
        """Run SQL with Debian's psql; the output's rows, unaligned."""
        out = subprocess.run(["psql", self.url, "-At", "-c", sql], check=True,
                             capture_output=True, text=True, timeout=60)
        return out.stdout.strip()

    def close(self) -> None:
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - already stopped
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class MinIO:
    """A MinIO server on a free loopback port, its data in `dir`, with a bucket."""

    def __init__(self, dir: Path, port: Optional[int] = None):
        if not MINIO.exists():
            raise RuntimeError(f"{MINIO} missing: run scripts/bootstrap.sh")
        self.dir = dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.console_port = free_port()
        self.log_path = dir.parent / f"minio-{self.port}.log"
        self.proc: Optional[subprocess.Popen] = None
        self.start()
        import pyarrow.fs as pafs
        s3 = pafs.S3FileSystem(access_key=MINIO_USER, secret_key=MINIO_PASSWORD,
                               endpoint_override=f"127.0.0.1:{self.port}", scheme="http",
                               allow_bucket_creation=True)
        s3.create_dir(BUCKET)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, prefix: str = "segments") -> str:
        return (f"s3://{BUCKET}/{prefix}?endpoint_override={self.endpoint}&scheme=http"
                "&region=us-east-1")

    def start(self) -> None:
        env = dict(os.environ, MINIO_ROOT_USER=MINIO_USER, MINIO_ROOT_PASSWORD=MINIO_PASSWORD,
                   MINIO_BROWSER="off")
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([str(MINIO), "server", str(self.dir), "--address",
                                      self.endpoint, "--console-address",
                                      f"127.0.0.1:{self.console_port}", "--quiet"],
                                     stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()

        def live():
            with urllib.request.urlopen(f"http://{self.endpoint}/minio/health/live",
                                        timeout=1) as r:
                return r.status == 200
        wait_for(live, 60, "MinIO to start", interval=0.1)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def objects(self, prefix: str) -> list[str]:
        """Every object under `BUCKET/prefix`, relative to it."""
        import pyarrow.fs as pafs
        s3 = pafs.S3FileSystem(access_key=MINIO_USER, secret_key=MINIO_PASSWORD,
                               endpoint_override=self.endpoint, scheme="http")
        base = f"{BUCKET}/{prefix}"
        infos = s3.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        return sorted(i.path[len(base) + 1:] for i in infos if i.type == pafs.FileType.File)


def cluster_env() -> dict:
    """The environment of sluice processes: the object store's credentials (as an
    operator would pass them: environment, not flags)."""
    return dict(os.environ, AMP_CONFIG_OBJECT_STORE_ACCESS_KEY=MINIO_USER,
                AMP_CONFIG_OBJECT_STORE_SECRET_KEY=MINIO_PASSWORD)


class Worker:
    """`sluice extract`: an extract worker, active or standby under each dataset's
    lease. `rpc_url` None: the datasets come from a config file in `extra`
    (`--config FILE`, see sluice_harness.datasets_config)."""

    def __init__(self, data_dir: Path, rpc_url: Optional[str], postgres_url: str,
                 object_store_url: str, *extra: str, name: str = "worker",
                 gc_grace_secs: int = 5, lease_poll_secs: float = 0.2):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        url_args = ["--rpc-url", rpc_url] if rpc_url is not None else []
        self.args = [str(SLUICE), "extract", *url_args, "--data-dir", str(data_dir),
                     "--postgres-url", postgres_url, "--object-store-url", object_store_url,
                     "--lease-poll-secs", str(lease_poll_secs), "--gc-grace-secs",
                     str(gc_grace_secs),
                     "--log-level", os.environ.get("SLUICE_TEST_LOG_LEVEL", "info"), *extra]
        self.stderr_path = data_dir.parent / f"{name}-{time.time_ns()}.log"
        self.stdout_path = data_dir.parent / f"{name}-{time.time_ns()}.out"
        self.start()

    def start(self) -> None:
        self.stderr = open(self.stderr_path, "a")
        self.stdout = open(self.stdout_path, "a")
        self.proc = subprocess.Popen(self.args, stdout=self.stdout, stderr=self.stderr,
                                     env=cluster_env())

    def lines(self) -> list[str]:
        self.stdout.flush()
        return self.stdout_path.read_text().splitlines()

    def active(self, dataset: Optional[str] = None) -> bool:
        """True when the last role line this worker printed (about `dataset`, when
        given) says active."""
        roles = [l for l in self.lines() if "extract worker" in l and
                 (dataset is None or f"for dataset {dataset} " in l + " ")]
        return bool(roles) and " active " in roles[-1]

    def log_text(self) -> str:
        if not self.stderr.closed:
            self.stderr.flush()
        return self.stderr_path.read_text()

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        self.stdout.close()
        return self.proc.returncode


class QueryServer(Server):
    """`sluice serve --no-extract` over the shared store; `flight_port` 0: any."""

    def __init__(self, data_dir: Path, postgres_url: str, object_store_url: str, *extra: str,
                 flight_port: int = 0):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        # Credentials as flags here (workers take them from the environment).
        self.args = [str(SLUICE), "serve", "--no-extract", "--data-dir", str(data_dir),
                     "--postgres-url", postgres_url, "--object-store-url", object_store_url,
                     "--object-store-access-key", MINIO_USER,
                     "--object-store-secret-key", MINIO_PASSWORD,
                     "--flight-addr", f"127.0.0.1:{flight_port}", "--jsonl-addr", "127.0.0.1:0",
                     "--admin-api-addr", "127.0.0.1:0",
                     "--log-level", os.environ.get("SLUICE_TEST_LOG_LEVEL", "warn"), *extra]
        self.stderr_path = data_dir.parent / f"sluice-{data_dir.parent.name}-{time.time_ns()}.log"
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.stderr,
                                     text=True)
        self.port = self.jsonl_port = self.admin_port = None
        self.wait_listening()
