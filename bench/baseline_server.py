"""The baselines of the batch-throughput benchmark: minimal Arrow Flight servers
serving `SELECT * FROM eth_rpc.transactions` over the same Parquet segments that
sluice reads.

  --mode memory   the transport limit: the whole table read into memory once
                  (pyarrow.parquet), each DoGet streams it (pyarrow.flight).
  --mode duckdb   what a user would write instead: pyarrow.flight + the duckdb
                  Python package, each DoGet runs the query over the Parquet files
                  and streams DuckDB's record batch reader.

Any command (SQL) is answered with the same table (with --sql, duckdb mode runs
that query instead, `{table}` standing for the files). Prints
`baseline: flight listening on grpc://127.0.0.1:PORT` when ready.

    .venv/bin/python bench/baseline_server.py --mode duckdb --files 'DIR/transactions/*.parquet'
"""
from __future__ import annotations

import argparse
import glob
import sys

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq


class MemoryServer(flight.FlightServerBase):
    def __init__(self, location: str, files: list[str]):
        super().__init__(location)
        self.table = pa.concat_tables(pq.read_table(f) for f in files)

    def get_flight_info(self, context, descriptor):
        return flight.FlightInfo(self.table.schema, descriptor,
                                 [flight.FlightEndpoint(b"table", [])], -1, -1)

    def do_get(self, context, ticket):
        return flight.RecordBatchStream(self.table)


class DuckDBServer(flight.FlightServerBase):
    def __init__(self, location: str, pattern: str, rows_per_batch: int,
                 sql: str = "SELECT * FROM {table}"):
        import duckdb

        super().__init__(location)
        self.db = duckdb.connect()
        self.sql = sql.format(table=f"read_parquet('{pattern}')")
        self.rows_per_batch = rows_per_batch
        self.schema = self.db.execute(self.sql + " LIMIT 0").fetch_record_batch().schema

    def get_flight_info(self, context, descriptor):
        return flight.FlightInfo(self.schema, descriptor,
                                 [flight.FlightEndpoint(b"query", [])], -1, -1)

    def do_get(self, context, ticket):
        cursor = self.db.cursor()  # one connection per call
        reader = cursor.execute(self.sql).fetch_record_batch(self.rows_per_batch)
        return flight.RecordBatchStream(reader)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["memory", "duckdb"], required=True)
    p.add_argument("--files", required=True, help="glob of the table's Parquet files")
    p.add_argument("--rows-per-batch", type=int, default=65536)
    p.add_argument("--sql", default="SELECT * FROM {table}",
                   help="duckdb mode: the query, {table} standing for the files")
    args = p.parse_args()
    files = sorted(f for f in glob.glob(args.files) if not f.endswith("empty.parquet"))
    location = "grpc://127.0.0.1:0"
    if args.mode == "memory":
        server = MemoryServer(location, files)
    else:
        server = DuckDBServer(location, args.files, args.rows_per_batch, args.sql)
    print(f"baseline: flight listening on grpc://127.0.0.1:{server.port}", flush=True)
    server.serve()


if __name__ == "__main__":
    sys.exit(main())
