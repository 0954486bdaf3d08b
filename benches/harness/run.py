"""Side-by-side benchmark runs: every question of every suite on every engine, each run in its
own process, engines alternating, with the answers compared across engines.

For each run it records (one CSV row):
- status: ok, failed (stderr tail kept in the log), timeout, oom-killed (under --cap), or
  not-run (the suite has no version for that engine; the reason is in the note);
- query_s: the engine's own time from the start of the query to the answer written to
  Parquet; wall_s: the whole process (start-up and imports too); cpu_s: user + system time;
- peak_rss: the process's peak resident memory (wait4's ru_maxrss); cgroup_peak under --cap;
- rows and a checksum of the answer (per column: rows, nulls, and the sum of a numeric column
  or the count of distinct values of another), and whether it agrees with the reference
  engine's answer (DuckDB's, else the first engine that answered).

Engines: spillframe (its CLI), datafusion (plain DataFusion, same version, default settings:
examples/datafusion_sql), duckdb, polars (lazy over Parquet) and pandas. Memory limits: with
--limit, spillframe and DuckDB are given it (they are the engines that take one); the others
run unlimited. With --cap, every engine runs inside a cgroup-v1 memory group with that hard
cap (root only), so an engine that needs more is OOM-killed.

Run through benches/run.sh, which builds the binaries, generates the data and makes the venv.
"""

import argparse
import csv
import datetime
import json
import math
import os
import re
import shutil
import subprocess
import sys
import uuid

import suites
from measure import Cgroup, csv_appender, human, parse_size, run_child

HERE = os.path.dirname(os.path.abspath(__file__))
ENGINES = ["spillframe", "datafusion", "duckdb", "polars", "pandas"]
FIELDS = [
    "run", "date", "commit", "suite", "size", "engine", "question", "repeat", "status",
    "query_s", "wall_s", "cpu_s", "peak_rss", "cgroup_peak", "rows", "checksum", "agrees",
    "limit", "cap", "threads", "note", "warm",
]
SUMMARY = re.compile(r"(\d+) rows in ([0-9.]+)s")


def command(a, engine, suite_name, suite, q, data, out):
    tables = suite.tables(data, q)
    if engine == "spillframe":
        cmd = [a.spillframe, "sql", suite.sql(q, a.size), "--out", out]
        cmd += ["--target-partitions", str(a.threads), "--spill-dir", a.work]
        if a.limit:
            cmd += ["--memory-limit", a.limit]
        for name, path in tables.items():
            cmd += ["-t", f"{name}={path}"]
        return cmd
    if engine == "datafusion":
        cmd = [a.datafusion, "--sql", suite.sql(q, a.size), "--out", out]
        for name, path in tables.items():
            cmd += ["--table", f"{name}={path}"]
        return cmd
    cmd = [a.python, os.path.join(HERE, "engine.py"), engine, "--suite", suite_name]
    cmd += ["--question", q, "--data", data, "--size", a.size, "--out", out]
    cmd += ["--threads", str(a.threads)]
    if engine == "duckdb":
        if a.limit:
            cmd += ["--memory-limit", a.limit]
        cmd += ["--temp-dir", os.path.join(a.work, "duckdb")]
    return cmd


def warm(tables):
    """Reads every input file once, so that the run starts with its input in the page cache.

    On this kind of VM the kernel pages out memory not touched for about a minute (a DAMON
    `pageout` scheme), input files included: without this, whichever engine goes first after
    a pause reads from disk and the others from memory."""
    for path in tables.values():
        files = [path]
        if os.path.isdir(path):
            files = [os.path.join(path, f) for f in sorted(os.listdir(path))]
        for f in files:
            with open(f, "rb", buffering=0) as fh:
                while fh.read(16 << 20):
                    pass


def checksum(path):
    """Per column, in order: [rows, nulls, sum or distinct count], rounded to 9 significant
    digits (engines sum floats in different orders). Numbers: nulls count NaN too, and the
    sum is over the rest as doubles; other types: the distinct non-null values.

    Computed by DuckDB in one streaming pass with a memory limit, so that a 1e8-row answer
    costs the harness a few GiB at most (reading it whole into Arrow cost 24 GiB and got the
    harness itself killed)."""
    import duckdb
    import pyarrow.parquet as pq
    import pyarrow.types as pt

    schema = pq.read_schema(path)
    con = duckdb.connect()
    con.execute("SET memory_limit = '4GB'")
    con.execute("SET threads = 2")
    con.execute(f"SET temp_directory = '{os.path.dirname(os.path.abspath(path))}/checksum.tmp'")
    exprs, numeric = ["count(*)"], []
    for f in schema:
        c = '"' + f.name.replace('"', '""') + '"'
        num = pt.is_integer(f.type) or pt.is_floating(f.type) or pt.is_decimal(f.type)
        numeric.append(num)
        if num:
            d = f"CAST({c} AS DOUBLE)"
            exprs.append(f"count(*) - count({c}) + count(*) FILTER (WHERE isnan({d}))")
            exprs.append(f"sum({d}) FILTER (WHERE NOT isnan({d}))")
        else:
            exprs.append(f"count(*) - count({c})")
            exprs.append(f"count(DISTINCT {c})")
    row = con.execute(
        f"SELECT {', '.join(exprs)} FROM read_parquet(?)"
        if len(schema) else "SELECT count(*) FROM read_parquet(?)",
        [path],
    ).fetchone()
    rows = row[0]
    cols = []
    for i, num in enumerate(numeric):
        nulls, value = row[1 + 2 * i], row[2 + 2 * i]
        if num:
            value = float(f"{(value or 0.0):.9g}")
        cols.append([rows, int(nulls), value])
    return cols


def agree(a, b):
    if a is None or b is None or len(a) != len(b):
        return False
    for (ra, na, va), (rb, nb, vb) in zip(a, b):
        if ra != rb or na != nb:
            return False
        if isinstance(va, float) or isinstance(vb, float):
            # An engine may round each value to 6 decimals (DataFusion's avg over decimals
            # gives decimal(p, 6), DuckDB's a double): up to 5e-7 per row.
            if not math.isclose(va, vb, rel_tol=1e-6, abs_tol=1e-6 * max(1, ra)):
                return False
        elif va != vb:
            return False
    return True


def git_commit():
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return ""


def earlier_outcomes(results, run, suite, size):
    """What earlier calls of this run (resumed under the same id) recorded for this suite and
    size, as `give_up` keeps it: ({engine: "oom-killed on j1"} given up on, {engines that
    answered a question})."""
    given_up, answered = {}, set()
    if os.path.exists(results):
        with open(results) as fh:
            for r in csv.DictReader(fh):
                if (r["run"], r["suite"], r["size"]) == (run, suite, size):
                    give_up(given_up, answered, r["engine"], r["question"], r["status"])
    return given_up, answered


def failure_note(text):
    """The line of a failed engine's output that says why: the last one naming an error (a
    Python exception, a Rust error or panic), else the last line; then the lines after it,
    up to 300 characters in all, joined with " | "."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return ""
    at = len(lines) - 1
    for i in range(len(lines) - 1, -1, -1):
        if re.search(r"Error|Exception|error:|panicked", lines[i]):
            at = i
            break
    return " | ".join(lines[at:])[:300]


def give_up(given_up, answered, engine, question, status):
    """Records one run's outcome. An engine killed for memory or time before it answered any
    question of the suite (it cannot even hold the tables, as pandas at 1e8 rows) is not run
    on the suite's later questions: they read the same tables, and each such failure costs
    up to the timeout. One that failed later (a median that needs every value) runs on."""
    if status == "ok":
        answered.add(engine)
    elif status in ("oom-killed", "timeout") and engine not in answered:
        given_up.setdefault(engine, f"{status} on {question}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True, help="DIR with SUITE-SIZE subdirectories")
    p.add_argument("--suites", default="h2o-groupby,h2o-join")
    p.add_argument("--size", required=True, help="label of the data size, e.g. 1e7 or sf1")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--questions", default="", help="only these (comma-separated)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--limit", default="", help="memory limit for spillframe and DuckDB")
    p.add_argument("--cap", default="", help="cgroup memory cap for every engine (root)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per run")
    p.add_argument("--warm", action="store_true",
                   help="read the inputs into the page cache before every run")
    p.add_argument("--spillframe", required=True)
    p.add_argument("--datafusion", required=True)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--work", required=True, help="scratch directory (answers, spills, logs)")
    p.add_argument("--results", required=True, help="CSV file to append to")
    p.add_argument("--run", default="", help="run id (default: a new one)")
    a = p.parse_args()
    a.run = a.run or datetime.datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]
    engines = a.engines.split(",")
    only = set(filter(None, a.questions.split(",")))
    cgroup = Cgroup("spillframe-bench", parse_size(a.cap)) if a.cap else None
    logs = os.path.join(a.work, "logs")
    os.makedirs(logs, exist_ok=True)
    commit = git_commit()
    with csv_appender(a.results, FIELDS) as (fh, w):
        turn = 0
        for suite_name in a.suites.split(","):
            suite = suites.SUITES[suite_name]
            data = os.path.join(a.data, f"{suite.data_dir}-{a.size}")
            given_up, answered = earlier_outcomes(a.results, a.run, suite_name, a.size)

            def row_of(engine, q, rep, **fields):
                """A CSV row: what every row records, then `fields`."""
                return {
                    "run": a.run, "date": datetime.date.today().isoformat(),
                    "commit": commit, "suite": suite_name, "size": a.size,
                    "engine": engine, "question": q, "repeat": rep, "limit": a.limit,
                    "cap": a.cap, "threads": a.threads, "warm": int(a.warm), **fields,
                }

            for q in suite.questions:
                if only and q not in only:
                    continue
                answers = {}
                for engine in engines:
                    if engine in suite.not_run:
                        w.writerow(row_of(
                            engine, q, 0, status="not-run", note=suite.not_run[engine]
                        ))
                runnable = [e for e in engines if e not in suite.not_run]
                for rep in range(a.repeat):
                    # Engines take turns going first, to spread the machine's drift.
                    k = turn % len(runnable)
                    order = runnable[k:] + runnable[:k]
                    turn += 1
                    for engine in order:
                        if engine in given_up:
                            w.writerow(row_of(
                                engine, q, rep, status="skipped",
                                note=f"not run after {given_up[engine]}",
                            ))
                            print(f"{suite_name:12} {a.size:5} {q:4} {engine:10} skipped "
                                  f"(after {given_up[engine]})", flush=True)
                            continue
                        out = os.path.join(a.work, f"answer-{engine}.parquet")
                        if os.path.exists(out):
                            os.remove(out)
                        cmd = command(a, engine, suite_name, suite, q, data, out)
                        if a.warm:
                            warm(suite.tables(data, q))
                        env = dict(os.environ, POLARS_MAX_THREADS=str(a.threads))
                        o = run_child(
                            cmd,
                            os.path.join(logs, f"{a.run}-{suite_name}-{q}-{engine}-{rep}"),
                            cgroup=cgroup,
                            timeout=a.timeout,
                            env=env,
                        )
                        row = row_of(
                            engine, q, rep,
                            status=o.state,
                            wall_s=f"{o.wall:.3f}",
                            cpu_s=f"{o.cpu:.3f}",
                            peak_rss=o.peak_rss,
                            cgroup_peak=o.cgroup_peak or "",
                        )
                        if o.state == "ok":
                            if engine == "spillframe":
                                m = SUMMARY.search(o.stderr)
                                if m:
                                    row["query_s"] = m.group(2)
                            else:
                                info = json.loads(o.stdout.strip().splitlines()[-1])
                                row["query_s"] = f"{info['seconds']:.3f}"
                            try:
                                cs = checksum(out)
                                row["rows"] = cs[0][0] if cs else 0
                                row["checksum"] = json.dumps(cs)
                                answers.setdefault(engine, cs)
                            except Exception as e:  # an unreadable answer is a failure
                                row["status"] = "failed"
                                row["note"] = f"answer unreadable: {e}"
                        else:
                            row["note"] = failure_note(o.stderr.strip() or o.stdout.strip())
                        give_up(given_up, answered, engine, q, row["status"])
                        w.writerow({k: v for k, v in row.items() if k in FIELDS})
                        fh.flush()
                        print(
                            f"{suite_name:12} {a.size:5} {q:4} {engine:10} {row['status']:10} "
                            f"query {row.get('query_s', '-'):>8}s wall {o.wall:7.2f}s "
                            f"cpu {o.cpu:7.2f}s rss {human(o.peak_rss):>10} "
                            f"rows {row.get('rows', '-')}"
                            + ("" if row["status"] == "ok" else f" | {row.get('note', '')[:200]}"),
                            flush=True,
                        )
                        if os.path.exists(out):
                            os.remove(out)
                        shutil.rmtree(os.path.join(a.work, "duckdb"), ignore_errors=True)
                # Agreement: against DuckDB's answer, else the first engine's.
                ref_engine = "duckdb" if "duckdb" in answers else next(iter(answers), None)
                if ref_engine:
                    ref = answers[ref_engine]
                    for engine, cs in answers.items():
                        ok = agree(ref, cs)
                        note = {
                            "run": a.run, "suite": suite_name, "size": a.size,
                            "engine": engine, "question": q, "repeat": "check",
                            "status": "agrees" if ok else "differs",
                            "agrees": f"{ok} (vs {ref_engine})",
                        }
                        w.writerow(note)
                        if not ok:
                            print(
                                f"!! {suite_name} {q}: {engine}'s answer differs from "
                                f"{ref_engine}'s: {cs} vs {ref}",
                                flush=True,
                            )
                fh.flush()
    print(f"run {a.run}: results in {a.results}")


if __name__ == "__main__":
    main()
