"""Runs one benchmark question in one Python engine (DuckDB, Polars or pandas) and writes the
answer to Parquet. Started by run.py as a child process, one per question, so that each run's
peak memory and CPU time are its own.

    python engine.py ENGINE --suite SUITE --question Q --data DIR --size S --out FILE --threads N
                     [--memory-limit 2GiB] [--temp-dir DIR]

Prints one JSON line: {"rows": ..., "seconds": ...}, where seconds run from the start of the
query to the last byte of the answer written (imports and start-up are not counted; run.py
records the process's wall time as well).
"""

import argparse
import json
import os
import time

import suites


def run_duckdb(a, sql, tables):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {a.threads}")
    if a.memory_limit:
        con.execute(f"SET memory_limit = '{a.memory_limit}'")
    if a.temp_dir:
        con.execute(f"SET temp_directory = '{a.temp_dir}'")
    # The db-benchmark's own DuckDB setting: row order of results is not needed.
    con.execute("SET preserve_insertion_order = false")
    for name, path in tables.items():
        files = os.path.join(path, "*.parquet") if os.path.isdir(path) else path
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{files}')")
    started = time.monotonic()
    con.execute(f"COPY ({sql}) TO '{a.out}' (FORMAT parquet)")
    seconds = time.monotonic() - started
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{a.out}')").fetchone()[0]
    return rows, seconds


def run_polars(a, suite, tables):
    import polars  # noqa: F401  (imported before the clock starts)

    started = time.monotonic()
    frame = suite.polars_query(a.question, a.size, tables)
    if frame is None:
        raise NotImplementedError(f"{a.suite} {a.question} has no Polars version")
    out = frame.collect()
    out.write_parquet(a.out)
    return out.height, time.monotonic() - started


def run_pandas(a, suite, tables):
    import pandas  # noqa: F401  (imported before the clock starts)

    started = time.monotonic()
    out = suite.pandas_query(a.question, a.size, tables)
    if out is None:
        raise NotImplementedError(f"{a.suite} {a.question} has no pandas version")
    out.to_parquet(a.out, index=False)
    return len(out), time.monotonic() - started


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("engine", choices=["duckdb", "polars", "pandas"])
    p.add_argument("--suite", required=True)
    p.add_argument("--question", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--size", required=True, help="the data's size label (1e7, sf1, ...)")
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--memory-limit", default="")
    p.add_argument("--temp-dir", default="")
    a = p.parse_args()
    suite = suites.SUITES[a.suite]
    tables = suite.tables(a.data, a.question)
    if a.engine == "duckdb":
        rows, seconds = run_duckdb(a, suite.sql(a.question, a.size), tables)
    elif a.engine == "polars":
        rows, seconds = run_polars(a, suite, tables)
    else:
        rows, seconds = run_pandas(a, suite, tables)
    print(json.dumps({"rows": rows, "seconds": round(seconds, 4)}))


if __name__ == "__main__":
    # Before polars is imported: its thread pool is sized once.
    import sys

    if "--threads" in sys.argv:
        os.environ.setdefault("POLARS_MAX_THREADS", sys.argv[sys.argv.index("--threads") + 1])
    main()
