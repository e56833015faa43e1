"""The distributed roles on this machine (docs/deploy.md): PostgreSQL metadata,
segments in MinIO, two extract workers (active + standby under the lease) and
three query servers sharing a ticket_secret, all real processes.

Every test compares final answers with the node's own JSON-RPC answers
(node_chain): no row lost, none twice. One cluster serves the whole module; each
test leaves it healthy (a killed server is replaced, a stopped service restarted).
"""
from __future__ import annotations

import concurrent.futures
import re
import secrets
import subprocess
import threading
import time
import urllib.error
import urllib.request

import adbc_driver_flightsql.dbapi as flight_sql

import pyarrow.flight as flight
import pytest

from cluster_harness import (BUCKET, MINIO_PASSWORD, MINIO_USER, MinIO, Postgres, QueryServer,
                             Worker, cluster_env)
from sluice_harness import (SLUICE, Anvil, ProtocolClient, anvil_reorg, assert_store_matches_node,
                            datasets_config, free_port, moved_txs, node_chain, query, wait_for,
                            wait_store_matches_node)

TX_SQL = "SELECT block_num, tx_index, tx_hash FROM eth_rpc.transactions"
ENDPOINT_BLOCKS = 8  # a batch answer over more blocks has several endpoints
LOG_SQL = "SELECT block_num, log_index, tx_hash FROM eth_rpc.logs"


class Cluster:
    def __init__(self, tmp):
        self.tmp = tmp
        self.secret = secrets.token_hex(32)
        self.pg = self.minio = self.node = None
        self.workers, self.servers = [], []
        try:
            self.pg = Postgres()
            self.minio = MinIO(tmp / "minio")
            self.s3 = self.minio.url("segments")
            self.node = Anvil(tmp)
            self.node.traffic(blocks=12)
            self.workers = [self.worker(f"w{i}") for i in (1, 2)]
            # Fixed Flight ports: every server names all three as endpoint locations.
            self.ports = [free_port() for _ in range(3)]
            self.locations = [f"grpc://127.0.0.1:{p}" for p in self.ports]
            for i in range(3):
                self.servers.append(self.server(i))
        except BaseException:
            self.close()
            raise

    def worker(self, name, *extra):
        return Worker(self.tmp / name / "data", self.node.url, self.pg.url, self.s3, *extra,
                      name=name)

    def server(self, i):
        return QueryServer(self.tmp / f"q{i}-{time.time_ns()}" / "data", self.pg.url, self.s3,
                           "--ticket-secret", self.secret,
                           "--endpoint-max-blocks", str(ENDPOINT_BLOCKS),
                           "--endpoint-locations", ",".join(self.locations),
                           flight_port=self.ports[i])

    def active(self):
        return [w for w in self.workers if w.proc.poll() is None and w.active()]

    def wait_all_match(self, timeout=60):
        for q in self.servers:
            wait_store_matches_node(q, self.node, timeout=timeout)
            assert_store_matches_node(q, self.node)

    def close(self):
        for q in self.servers:
            q.stop()
        for w in self.workers:
            w.stop()
        for service in (self.node, self.minio):
            if service is not None:
                service.stop()
        if self.pg is not None:
            self.pg.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    yield c
    c.close()


def chain_rows(node, sql_kind: str, upto: int) -> list:
    """The node's transactions (block, index, hash) or logs (block, log index, tx hash)."""
    out = []
    for n, b in sorted(node_chain(node.url, 0, upto).items()):
        if sql_kind == "tx":
            out += [(n, i, h) for i, h in enumerate(b["txs"])]
        else:
            out += [(n, idx, h) for idx, h in b["logs"]]
    return out


def client_rows(c: ProtocolClient, upto: int, kind: str) -> list:
    key = "tx_index" if kind == "tx" else "log_index"
    return sorted((r["block_num"], r[key], "0x" + r["tx_hash"].hex()) for r in c.rows_upto(upto))


def test_query_servers_serve_the_chain_from_the_shared_store(cluster):
    """Three query servers answer exactly the node's chain; one worker writes, one
    waits; PostgreSQL lists exactly the segment objects MinIO holds (after GC)."""
    cluster.node.traffic(blocks=4)
    cluster.wait_all_match()
    wait_for(lambda: len(cluster.active()) == 1, 10, "one active worker")
    standby = [w for w in cluster.workers if w not in cluster.active()]
    assert standby and any("standby" in l for l in standby[0].lines())
    listed = set(cluster.pg.psql("SELECT object FROM sluice_segment_files").split())
    assert listed and listed <= set(cluster.minio.objects("segments/eth_rpc"))


def test_split_answer_read_in_parallel_equals_the_one_endpoint_answer(cluster):
    """A batch scan over more than endpoint_max_blocks blocks answers with one
    endpoint per block range, each naming the three servers (rotated). Read in
    parallel, each from its first location, and concatenated in endpoint order, the
    rows are the one-endpoint answer's and the node's, in the same order; ADBC
    reads the same answer."""
    head = cluster.node.head()
    sql = f"SELECT block_num, tx_index, tx_hash FROM eth_rpc.transactions WHERE block_num <= {head}"
    info = cluster.servers[0].client().get_flight_info(
        flight.FlightDescriptor.for_command(sql.encode()))
    n = len(info.endpoints)
    assert n == -(-(head + 1) // ENDPOINT_BLOCKS) and n > 1
    for i, e in enumerate(info.endpoints):
        assert [loc.uri.decode() for loc in e.locations] == \
            [cluster.locations[(i + k) % 3] for k in range(3)]

    def read(e):
        return flight.connect(e.locations[0]).do_get(e.ticket).read_all()
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        parts = list(pool.map(read, info.endpoints))
    got = [(r["block_num"], r["tx_index"], "0x" + r["tx_hash"].hex())
           for p in parts for r in p.to_pylist()]
    ordered = query(cluster.servers[1].client(), sql + " ORDER BY block_num, tx_index")
    assert got == [(r["block_num"], r["tx_index"], "0x" + r["tx_hash"].hex())
                   for r in ordered.to_pylist()]
    assert got == chain_rows(cluster.node, "tx", head)
    with flight_sql.connect(cluster.locations[2], autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.execute(sql)
            adbc = cur.fetch_arrow_table()
    assert sorted((r["block_num"], r["tx_index"], "0x" + r["tx_hash"].hex())
                  for r in adbc.to_pylist()) == got


def test_ticket_from_one_server_is_redeemed_at_the_others(cluster):
    sql = b"SELECT block_num, hash FROM eth_rpc.blocks ORDER BY block_num"
    info = cluster.servers[0].client().get_flight_info(flight.FlightDescriptor.for_command(sql))
    assert len(info.endpoints) == 1  # ORDER BY: one endpoint
    head = cluster.node.head()
    want = [(n, b["hash"]) for n, b in sorted(node_chain(cluster.node.url, 0, head).items())]
    for q in cluster.servers:
        got = q.client().do_get(info.endpoints[0].ticket).read_all().to_pylist()
        assert [(r["block_num"], "0x" + r["hash"].hex()) for r in got if r["block_num"] <= head] \
            == want, f"ticket redeemed at {q.location}"


def test_streams_resume_on_another_server_after_kill9(cluster):
    """Streams on one server; it is killed; each client resumes from its cursor on
    another server. Rows equal the node's, each exactly once."""
    victim = cluster.servers[2]
    clients = [ProtocolClient(victim.location, TX_SQL), ProtocolClient(victim.location, LOG_SQL)]
    try:
        cluster.node.traffic(blocks=3)
        head = cluster.node.head()
        for c in clients:
            c.wait_until(head)
        victim.kill9()
        cluster.node.traffic(blocks=3)  # while the clients are away
        for i, c in enumerate(clients):
            c.disconnect()
            c.resume(location=cluster.servers[i].location)
        cluster.node.traffic(blocks=2)
        head = cluster.node.head()
        for c, kind in zip(clients, ("tx", "log")):
            c.wait_until(head)
            assert not c.violations, c.violations[:5]
            assert client_rows(c, head, kind) == chain_rows(cluster.node, kind, head)
    finally:
        for c in clients:
            c.disconnect()
        cluster.servers[2] = cluster.server(2)


def test_reorg_while_three_servers_stream_converges_everywhere(cluster):
    clients = [ProtocolClient(q.location, sql) for q in cluster.servers
               for sql in (TX_SQL, LOG_SQL)]
    try:
        cluster.node.traffic(blocks=3)
        head = cluster.node.head()
        for c in clients:
            c.wait_until(head)
        anvil_reorg(cluster.node.url, 3, moved_txs(cluster.node.url, 3))
        cluster.node.traffic(blocks=2)
        head = cluster.node.head()
        for i, c in enumerate(clients):
            c.wait_until(head)
            c.wait_reorgs(1)
            kind = ("tx", "log")[i % 2]
            assert not c.violations, c.violations[:5]
            assert client_rows(c, head, kind) == chain_rows(cluster.node, kind, head), \
                f"stream {i} on {c.location}"
        cluster.wait_all_match()
    finally:
        for c in clients:
            c.disconnect()


def test_active_extractor_killed_mid_commit_standby_takes_over(cluster):
    """kill -9 of the active worker inside its PostgreSQL commit transaction: nothing
    of that commit is published, the standby takes the lease within seconds and the
    store equals the chain; the killed worker's uploaded objects are collected."""
    # Only a worker that pauses inside each commit may be the standby.
    for w in cluster.workers:
        if not w.active():
            w.stop()
    slow = cluster.worker("w-slow", "--testing-commit-pause-ms", "8000")
    wait_for(lambda: "standby" in "".join(slow.lines()), 20, "the slow worker on standby")
    active = cluster.active()[0]
    active.kill9()
    wait_for(slow.active, 10, "the slow worker to take over")
    cluster.node.traffic(blocks=1)
    wait_for(lambda: "paused" in slow.log_text(), 20, "a commit paused inside its transaction")
    version = cluster.pg.psql("SELECT version FROM sluice_datasets")
    fresh = cluster.worker("w3")
    wait_for(lambda: "standby" in "".join(fresh.lines()), 5, "a new standby")
    slow.kill9()  # mid-commit: its transaction still open
    t0 = time.monotonic()
    assert cluster.pg.psql("SELECT version FROM sluice_datasets") == version
    wait_for(fresh.active, 15, "the standby to take over")
    took = time.monotonic() - t0
    cluster.workers = [fresh, cluster.worker("w4")]
    cluster.wait_all_match()
    assert took < 10
    # The object the killed commit uploaded is never listed, and goes after gc_grace.
    def collected():
        listed = set(cluster.pg.psql("SELECT object FROM sluice_segment_files").split())
        retired = set(cluster.pg.psql("SELECT object FROM sluice_retired_objects").split())
        return set(cluster.minio.objects("segments/eth_rpc")) <= listed | retired
    wait_for(collected, 30, "unpublished objects to be garbage-collected", interval=0.5)


def test_postgres_stopped_for_10s(cluster):
    """Streams and queries in flight go on; new queries fail clearly; everything
    recovers without a restart and ends equal to the chain."""
    q = cluster.servers[0]
    stream = ProtocolClient(q.location, TX_SQL)
    try:
        head = cluster.node.head()
        stream.wait_until(head)
        info = q.client().get_flight_info(flight.FlightDescriptor.for_command(TX_SQL.encode()))
        readers = [q.client().do_get(e.ticket) for e in info.endpoints]  # in flight
        cluster.pg.stop()
        stopped = time.monotonic()
        try:
            assert sum(r.read_all().num_rows for r in readers) == \
                len(chain_rows(cluster.node, "tx", head))

            def refused():
                try:
                    query(q.client(), "SELECT count(*) FROM eth_rpc.blocks")
                except flight.FlightUnavailableError as e:
                    return "metadata store unreachable" in str(e)
                return False
            wait_for(refused, 10, "new queries to be refused")
            jsonl = urllib.request.Request(q.jsonl_url, data=b"SELECT 1 FROM eth_rpc.blocks")
            with pytest.raises(urllib.error.HTTPError, match="503"):
                urllib.request.urlopen(jsonl, timeout=5)
            ready = urllib.request.Request(q.admin_url + "/ready")
            with pytest.raises(urllib.error.HTTPError, match="503"):
                urllib.request.urlopen(ready, timeout=5)
            cluster.node.traffic(blocks=2)  # extracted once PostgreSQL is back
            time.sleep(max(0.0, stopped + 10 - time.monotonic()))
        finally:
            cluster.pg.start()
        head = cluster.node.head()
        stream.wait_until(head, timeout=60)
        assert not stream.violations, stream.violations[:5]
        assert client_rows(stream, head, "tx") == chain_rows(cluster.node, "tx", head)
        cluster.wait_all_match()
        with urllib.request.urlopen(q.admin_url + "/ready", timeout=5) as r:
            assert r.status == 200
    finally:
        stream.disconnect()


def test_minio_stopped_for_10s(cluster):
    """Queries of cached segments go on; extraction retries and catches up."""
    q = cluster.servers[1]
    sql = "SELECT block_num, hash FROM eth_rpc.blocks ORDER BY block_num"
    before = query(q.client(), sql).to_pylist()
    head = cluster.node.head()
    cluster.minio.stop()
    stopped = time.monotonic()
    try:
        during = query(q.client(), sql).to_pylist()
        assert during == before and during[-1]["block_num"] == head
        cluster.node.traffic(blocks=2)
        time.sleep(max(0.0, stopped + 10 - time.monotonic()))
        assert q.stored_head() == head  # nothing new can be published meanwhile
    finally:
        cluster.minio.start()
    cluster.wait_all_match(timeout=60)


def test_compacted_segments_are_deleted_after_the_grace_period(cluster):
    """Compaction publishes the merged segment through PostgreSQL first; the files it
    replaced stay in the object store for gc_grace_secs (5 s here), then the active
    worker deletes them. The servers answer the chain throughout."""
    def retired():
        return set(cluster.pg.psql("SELECT object FROM sluice_retired_objects").split())
    before = retired()
    for _ in range(9):  # one block, one segment, at a time: enough for a compaction
        cluster.node.mine(1)
        cluster.servers[0].wait_head(cluster.node.head(), timeout=20)
    wait_for(lambda: retired() - before, 30, "a compaction to retire objects", interval=0.2)
    fresh = set(cluster.pg.psql("SELECT object FROM sluice_retired_objects "
                                "WHERE retired_at > now() - interval '2 seconds'").split())
    assert fresh <= set(cluster.minio.objects("segments/eth_rpc")), "deleted within the grace"
    doomed = retired() - before
    wait_for(lambda: not (doomed & (retired() | set(cluster.minio.objects("segments/eth_rpc")))),
             30, "retired objects to be deleted after the grace period", interval=0.5)
    cluster.wait_all_match()


def test_roles_stop_cleanly_on_sigterm(cluster):
    """SIGTERM/SIGINT end a worker and a query server with exit status 0 (S3 and
    PostgreSQL connections closed in order; no crash at exit)."""
    standby = next(w for w in cluster.workers if not w.active())
    assert standby.stop() == 0, standby.log_text()[-2000:]
    assert cluster.servers[1].stop() == 0, cluster.servers[1].log_text()[-2000:]
    cluster.workers = [w for w in cluster.workers if w is not standby] + [cluster.worker("w5")]
    cluster.servers[1] = cluster.server(1)
    cluster.wait_all_match()


def test_a_query_fetches_only_the_segments_it_reads(cluster):
    """On a server with an empty cache, planning (GetFlightInfo) and Flight SQL
    metadata download nothing; a query of eth_rpc.blocks downloads blocks segments
    only, and answers the node's chain."""
    q = QueryServer(cluster.tmp / f"fresh-{time.time_ns()}" / "data", cluster.pg.url, cluster.s3)
    try:
        cache = q.data_dir / ".segment_cache"

        def cached():
            return sorted(str(p.relative_to(cache)) for p in cache.rglob("*.parquet"))
        with flight_sql.connect(q.location, autocommit=True) as conn:
            conn.adbc_get_table_schema("transactions", db_schema_filter="eth_rpc")
        q.client().get_flight_info(flight.FlightDescriptor.for_command(LOG_SQL.encode()))
        assert cached() == []
        head = cluster.node.head()
        got = query(q.client(), "SELECT block_num, hash FROM eth_rpc.blocks ORDER BY block_num")
        want = node_chain(cluster.node.url, 0, head)
        assert {r["block_num"]: "0x" + r["hash"].hex() for r in got.to_pylist()} == \
            {n: b["hash"] for n, b in want.items()}
        files = cached()
        assert files and all(f.startswith("eth_rpc/blocks/") for f in files), files
    finally:
        q.stop()


SELF_JOIN = ("SELECT child.block_num, parent.block_num AS parent_num FROM eth_rpc.blocks child "
             "JOIN eth_rpc.blocks parent ON child.parent_hash = parent.hash")


def test_a_delta_stream_on_a_cold_server_fetches_the_history_it_reads(cluster):
    """A streaming self-join (a delta query over the per-state views sluice_stream.*)
    resumed in the middle of the chain on a query server with an empty cache: its
    first microbatch joins the new blocks (Δ) with the history before them (H), whose
    segments only the object store holds. The rows equal the batch join's, each
    once, and the segments of H were fetched into the cache."""
    head = cluster.node.head()
    mid = head // 2
    cursor = {"anvil": {"block_number": mid,
                        "hash": node_chain(cluster.node.url, mid, mid)[mid]["hash"]}}
    q = QueryServer(cluster.tmp / f"cold-{time.time_ns()}" / "data", cluster.pg.url, cluster.s3)
    stream = None
    try:
        stream = ProtocolClient(q.location, SELF_JOIN, cursor=cursor)
        cluster.node.traffic(blocks=2)
        head = cluster.node.head()
        stream.wait_until(head)
        assert not stream.violations, stream.violations[:5]
        got = sorted((r["block_num"], r["parent_num"]) for r in stream.rows_upto(head))
        batch = query(cluster.servers[0].client(), f"{SELF_JOIN} WHERE child.block_num > {mid} "
                      f"AND child.block_num <= {head}").to_pylist()
        want = sorted((r["block_num"], r["parent_num"]) for r in batch)
        assert got == want and got[0] == (mid + 1, mid)
        cached = [p.name for p in (q.data_dir / ".segment_cache").rglob("*.parquet")]
        assert any(int(name.split("-")[0]) <= mid for name in cached), cached
    finally:
        if stream is not None:
            stream.disconnect()
        q.stop()


def union_rows(chunks) -> list:
    return [(r["ds"], r["block_num"], "0x" + r["hash"].hex()) for c in chunks
            for r in c.to_pylist()]


def test_workers_and_query_servers_serve_every_dataset(cluster):
    """[[datasets]] in the distributed roles: two chains (two anvils) in one config
    file, their own PostgreSQL database and bucket prefix. Two workers hold one lease
    per dataset (exactly one active each, as PostgreSQL's advisory locks show); a
    query server serves both datasets, each equal to its node; each dataset has its
    own metadata rows and its own prefix of objects; a stream over both networks on
    the query server wakes for new blocks of either chain (NOTIFY → Refresh →
    the stores' subscribers) and its rows equal the batch answer."""
    tmp = cluster.tmp / f"multi-{time.time_ns()}"
    tmp.mkdir()
    cluster.pg.psql("CREATE DATABASE multi")
    pg_url = cluster.pg.url.rsplit("/", 1)[0] + "/multi"
    s3 = cluster.minio.url("multi")
    nodes = {"chain_a": Anvil(tmp), "chain_b": Anvil(tmp, chain_id=31338)}
    workers, q, reader = [], None, None
    try:
        for i, node in enumerate(nodes.values()):
            node.traffic(blocks=3, txs_per_block=2, seed=50 + i)
        cfg = datasets_config(tmp / "multi.toml", [
            {"name": "chain_a", "network": "net_a", "rpc_url": nodes["chain_a"].url},
            {"name": "chain_b", "network": "net_b", "rpc_url": nodes["chain_b"].url},
        ], extra="poll_interval_secs = 0.05")
        workers = [Worker(tmp / name / "data", None, pg_url, s3, "--config", str(cfg), name=name)
                   for name in ("mw1", "mw2")]
        q = QueryServer(tmp / "q" / "data", pg_url, s3, "--config", str(cfg))
        for ds, node in nodes.items():
            wait_store_matches_node(q, node, dataset=ds)
            assert_store_matches_node(q, node, dataset=ds)
        for ds in nodes:
            wait_for(lambda: sum(w.active(ds) for w in workers) == 1, 10, f"one worker of {ds}")
        locks = cluster.pg.psql("SELECT count(*) FROM pg_locks l JOIN pg_database d "
                                "ON l.database = d.oid WHERE l.locktype = 'advisory' "
                                "AND l.granted AND d.datname = 'multi'")
        assert locks == "2"

        def psql(sql):
            out = subprocess.run(["psql", pg_url, "-At", "-c", sql], check=True,
                                 capture_output=True, text=True, timeout=60)
            return out.stdout.split()
        assert psql("SELECT name || '|' || network FROM sluice_datasets ORDER BY name") == \
            ["chain_a|net_a", "chain_b|net_b"]
        for ds in nodes:
            listed = set(psql(f"SELECT object FROM sluice_segment_files WHERE dataset = '{ds}'"))
            assert listed and listed <= set(cluster.minio.objects(f"multi/{ds}")), ds
        assert {o.split("/")[0] for o in cluster.minio.objects("multi")} == set(nodes)

        sql = ("SELECT 'a' AS ds, block_num, hash FROM chain_a.blocks UNION ALL "
               "SELECT 'b' AS ds, block_num, hash FROM chain_b.blocks")
        client = q.client()
        options = flight.FlightCallOptions(headers=[(b"amp-stream", b"true")])
        info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), options)
        reader = client.do_get(info.endpoints[0].ticket, options)
        chunks = []

        def read_until(ds, block):
            timer = threading.Timer(60, reader.cancel)
            timer.start()
            try:
                while (ds, block) not in {(r[0], r[1]) for r in union_rows(chunks)}:
                    chunk = reader.read_chunk()
                    if chunk.data is not None and chunk.data.num_rows:
                        chunks.append(chunk.data)
            finally:
                timer.cancel()
        read_until("b", nodes["chain_b"].head())
        read_until("a", nodes["chain_a"].head())
        nodes["chain_b"].mine(1)  # one network moves: its NOTIFY wakes the stream
        read_until("b", nodes["chain_b"].head())
        nodes["chain_a"].mine(1)
        read_until("a", nodes["chain_a"].head())
        heads = {"a": nodes["chain_a"].head(), "b": nodes["chain_b"].head()}
        got = sorted(r for r in union_rows(chunks) if r[1] <= heads[r[0]])
        want = sorted(r for r in union_rows([query(q.client(), sql)]) if r[1] <= heads[r[0]])
        assert got == want
        assert len(got) == len(set(got)) == heads["a"] + heads["b"] + 2
        for w in workers:  # both datasets' workers end at SIGTERM
            assert w.stop() == 0, w.log_text()[-2000:]
    finally:
        if reader is not None:
            reader.cancel()
        if q is not None:
            q.stop()
        for w in workers:
            w.stop()
        for node in nodes.values():
            node.stop()


def test_sluice_verify_reads_the_shared_store(cluster):
    """`sluice verify` of the shared store (segment list from PostgreSQL, segments
    from MinIO through its own cache): every block of the node's chain matches its
    hash, roots and bloom; a log's data changed in one object in MinIO is found,
    naming the block (and, put back, verifies again)."""
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq
    head = assert_store_matches_node(cluster.servers[0], cluster.node)

    def verify(*extra):
        return subprocess.run([str(SLUICE), "verify", "--data-dir",
                               str(cluster.tmp / f"verify-{time.time_ns()}"), "--dataset",
                               "eth_rpc", "--postgres-url", cluster.pg.url, "--object-store-url",
                               cluster.s3, *extra], capture_output=True, text=True, timeout=300,
                              env=cluster_env())
    r = verify()
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"eth_rpc: verified {head + 1} blocks" in r.stdout, r.stdout
    assert "every block matches its hash, roots and bloom" in r.stdout

    s3 = pafs.S3FileSystem(access_key=MINIO_USER, secret_key=MINIO_PASSWORD,
                           endpoint_override=cluster.minio.endpoint, scheme="http")
    objects = cluster.pg.psql("SELECT object FROM sluice_segment_files WHERE dataset = 'eth_rpc' "
                              "AND table_name = 'logs' ORDER BY seq").split()
    for obj in objects:
        path = f"{BUCKET}/segments/eth_rpc/{obj}"
        with s3.open_input_file(path) as f:
            original = f.read()
        t = pq.read_table(pa.BufferReader(original))
        rows = [i for i, v in enumerate(t.column("data").to_pylist()) if v]
        if rows:
            break
    else:
        raise AssertionError("no log with data stored")
    block = t.column("block_num")[rows[0]].as_py()
    values = t.column("data").to_pylist()
    values[rows[0]] = bytes([values[rows[0]][0] ^ 1]) + values[rows[0]][1:]
    i = t.schema.get_field_index("data")
    changed = t.set_column(i, t.schema.field(i), pa.array(values, t.schema.field(i).type))
    sink = pa.BufferOutputStream()
    pq.write_table(changed, sink)
    try:
        with s3.open_output_stream(path) as f:
            f.write(sink.getvalue().to_pybytes())
        r = verify("--from", str(block), "--to", str(block))
        assert r.returncode == 1, r.stdout + r.stderr
        assert re.search(rf"^MISMATCH block {block} \(0x[0-9a-f]{{64}}\): .*receipts root: "
                         "recomputed", r.stdout, re.M), r.stdout
    finally:
        with s3.open_output_stream(path) as f:
            f.write(original)
    r = verify("--from", str(block), "--to", str(block))
    assert r.returncode == 0 and "verified 1 blocks" in r.stdout, r.stdout + r.stderr
