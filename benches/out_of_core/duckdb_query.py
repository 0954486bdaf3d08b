"""Runs one query in DuckDB and writes its result to Parquet: the reference engine of the
out-of-core benchmark. Started by run.py as a child process inside the memory cgroup.

Prints one JSON line: {"rows": ..., "seconds": ...}.
"""

import argparse
import json
import time

import duckdb


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sql", required=True)
    p.add_argument("--table", action="append", default=[], help="NAME=PATH.parquet")
    p.add_argument("--memory-limit", required=True, help="e.g. 2GiB")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--temp-dir", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{a.memory_limit}'")
    con.execute(f"SET threads = {a.threads}")
    con.execute(f"SET temp_directory = '{a.temp_dir}'")
    # The db-benchmark's own DuckDB setting for large data: row order of results is not needed.
    con.execute("SET preserve_insertion_order = false")
    for t in a.table:
        name, path = t.split("=", 1)
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
    started = time.monotonic()
    con.execute(f"COPY ({a.sql}) TO '{a.out}' (FORMAT parquet)")
    seconds = time.monotonic() - started
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{a.out}')").fetchone()[0]
    print(json.dumps({"rows": rows, "seconds": seconds}))


if __name__ == "__main__":
    main()
