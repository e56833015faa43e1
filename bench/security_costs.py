"""What authentication and the limits cost (docs/security.md).

On a real anvil node and real servers (one without keys, one with a key):
  - the latency of a small batch query (GetFlightInfo + DoGet of `SELECT 1`)
    without keys, with `authorization: Bearer <key>`, and with a token from the
    Basic handshake: p50 / p99 in ms over --calls calls each;
  - how soon the server stops a query whose client is killed: time from SIGKILL
    of a client running a long aggregate to `sluice_running_queries` back at 0
    (metrics polled every 5 ms), median / max over --kills runs;
  - what a client that does not read costs: the server's RSS growth while a 5 GB
    answer (1000-row batches of ~1 MB) is held unread for 5 s.

    .venv/bin/python bench/security_costs.py [--calls 300] [--kills 5]
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pyarrow.flight as flight

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from sluice_harness import PYTHON, Anvil, Server  # noqa: E402

KEY = "bench-key-0123456789abcdef"
SLOW_SQL = "SELECT sum(hash(i)) AS s FROM range(50000000000) t(i)"


def small_query(client: flight.FlightClient, headers) -> None:
    options = flight.FlightCallOptions(headers=headers)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(b"SELECT 1 AS x"), options)
    client.do_get(info.endpoints[0].ticket, options).read_all()


def latencies(client, headers, calls: int) -> str:
    for _ in range(20):  # warm up
        small_query(client, headers)
    ms = []
    for _ in range(calls):
        t0 = time.perf_counter()
        small_query(client, headers)
        ms.append((time.perf_counter() - t0) * 1000)
    ms.sort()
    return f"p50 {statistics.median(ms):.2f} ms, p99 {ms[int(len(ms) * 0.99) - 1]:.2f} ms"


def running(srv: Server, headers: dict) -> float:
    req = urllib.request.Request(srv.admin_url + "/metrics", headers=headers)
    text = urllib.request.urlopen(req, timeout=10).read().decode()
    return float(re.search(r"^sluice_running_queries (\S+)$", text, re.M).group(1))


def stop_latency(srv: Server, kills: int, headers: dict) -> str:
    code = ("import pyarrow.flight as f, sys\n"
            "c = f.connect(sys.argv[1])\n"
            "o = f.FlightCallOptions(headers=[(b'authorization', sys.argv[3].encode())])\n"
            "i = c.get_flight_info(f.FlightDescriptor.for_command(sys.argv[2].encode()), o)\n"
            "print('started', flush=True)\n"
            "c.do_get(i.endpoints[0].ticket, o).read_all()\n")
    out = []
    for _ in range(kills):
        proc = subprocess.Popen([str(PYTHON), "-c", code, srv.location, SLOW_SQL,
                                 headers["Authorization"]], stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()
        while running(srv, headers) < 1:
            time.sleep(0.005)
        time.sleep(0.5)  # the engine is busy
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGKILL)
        while running(srv, headers) > 0:
            time.sleep(0.005)
        out.append((time.perf_counter() - t0) * 1000)
        proc.wait()
    return f"median {statistics.median(out):.0f} ms, max {max(out):.0f} ms"


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--kills", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        node = Anvil(tmp)
        node.mine(3)
        env = os.environ.pop("SLUICE_API_KEYS", None)
        open_srv = Server(tmp / "open", node.url)
        os.environ["SLUICE_API_KEYS"] = KEY
        keyed = Server(tmp / "keyed", node.url, "--rows-per-batch", "1000")
        if env is None:
            del os.environ["SLUICE_API_KEYS"]
        else:
            os.environ["SLUICE_API_KEYS"] = env
        try:
            bearer = [(b"authorization", b"Bearer " + KEY.encode())]
            print("SELECT 1 round trip, no keys:      ",
                  latencies(flight.connect(open_srv.location), [], args.calls))
            client = flight.connect(keyed.location)
            print("SELECT 1 round trip, Bearer key:   ", latencies(client, bearer, args.calls))
            token = client.authenticate_basic_token(b"", KEY.encode())
            print("SELECT 1 round trip, Bearer token: ", latencies(client, [token], args.calls))
            headers = {"Authorization": f"Bearer {KEY}"}
            print("client killed -> query stopped:    ", stop_latency(keyed, args.kills, headers))
            base = rss_mb(keyed.proc.pid)
            options = flight.FlightCallOptions(headers=bearer)
            info = client.get_flight_info(flight.FlightDescriptor.for_command(
                b"SELECT i, repeat('x', 1000) AS pad FROM range(5000000) t(i)"), options)
            reader = client.do_get(info.endpoints[0].ticket, options)
            reader.read_chunk()
            time.sleep(5)
            grown = rss_mb(keyed.proc.pid) - base
            print(f"unread 5 GB answer, 5 s:            server RSS +{grown:.0f} MB")
            reader.cancel()
        finally:
            open_srv.stop()
            keyed.stop()
            node.stop()


if __name__ == "__main__":
    main()
