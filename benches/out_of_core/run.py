"""Out-of-core benchmark: h2o groupby q1-q10 and join j1-j5 under an OS-enforced memory cap.

Each question runs as its own child process inside a cgroup-v1 memory group whose
`memory.limit_in_bytes` is the cap, pinned to the chosen CPUs. For every run it records:

- status: ok, failed (non-zero exit, stderr tail kept) or OOM-killed (the group's oom_kill
  counter moved, or the child died of SIGKILL);
- wall seconds of the whole process, and the engine's own query seconds;
- peak RSS of the child (wait4's ru_maxrss);
- the group's `memory.max_usage_in_bytes` (includes page cache the run touched);
- bytes written to disk other than the result (wait4's ru_oublock x 512 minus the result
  file's size): spill traffic for both engines, measured the same way;
- spillframe's own spilled-bytes figure from its summary line;
- result rows, which must agree between the engines.

Every input file is read once before the first run, outside the group, so that both engines
find it in the page cache. Run through run.sh, which builds spillframe, generates the data and
makes the venv.
Needs root (cgroup) and a writable /sys/fs/cgroup/memory.
"""

import argparse
import csv
import datetime
import json
import os
import platform
import re
import resource
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from h2o import GROUPBY, JOIN  # noqa: E402
from measure import Cgroup, human, parse_size, run_child  # noqa: E402

def spillframe_cmd(a, sql, tables, out):
    cmd = [a.spillframe, "sql", sql, "--memory-limit", a.limit, "--out", out]
    cmd += ["--spill-dir", a.spill_dir, "--target-partitions", str(len(a.cpus))]
    for name, path in tables.items():
        cmd += ["-t", f"{name}={path}"]
    return cmd


def duckdb_cmd(a, sql, tables, out):
    temp = os.path.join(a.spill_dir, "duckdb")
    cmd = [a.python, os.path.join(os.path.dirname(__file__), "duckdb_query.py")]
    cmd += ["--sql", sql, "--memory-limit", a.limit, "--threads", str(len(a.cpus))]
    cmd += ["--temp-dir", temp, "--out", out]
    for name, path in tables.items():
        cmd += ["--table", f"{name}={path}"]
    return cmd


SUMMARY = re.compile(
    r"(\d+) rows in ([0-9.]+)s · peak memory (.+?) of .+? limit · spilled (.+?) in (\d+) files"
)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True, help="directory with g/ and j/ from spillframe gen")
    p.add_argument("--spillframe", required=True)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--limit", default="2GiB", help="engine memory limit")
    p.add_argument("--cap", default="3GiB", help="cgroup memory cap")
    p.add_argument("--cpus", default="", help="CPU list to pin to, e.g. 1 or 0,1 (default all)")
    p.add_argument("--engines", default="spillframe,duckdb")
    p.add_argument("--questions", default=",".join(list(GROUPBY) + list(JOIN)))
    p.add_argument("--spill-dir", required=True)
    p.add_argument("--results", required=True, help="CSV file to append to")
    a = p.parse_args()
    a.cpus = [int(c) for c in a.cpus.split(",")] if a.cpus else sorted(os.sched_getaffinity(0))
    os.makedirs(a.spill_dir, exist_ok=True)
    cgroup = Cgroup("spillframe-bench", parse_size(a.cap))
    g = os.path.join(a.data, "g")
    j = os.path.join(a.data, "j")
    logs = os.path.join(a.spill_dir, "logs")
    os.makedirs(logs, exist_ok=True)

    # Read every input once, outside the group, so that the page cache is warm (and charged
    # to the parent group) for both engines: otherwise whichever engine runs a question first
    # pays for reading its columns from disk.
    for sub in (g, j):
        for name in sorted(os.listdir(sub)) if os.path.isdir(sub) else []:
            with open(os.path.join(sub, name), "rb") as fh:
                while fh.read(16 << 20):
                    pass

    fields = [
        "date", "machine", "engine", "question", "status", "wall_s", "query_s", "rows",
        "peak_rss", "cgroup_peak", "disk_writes", "engine_spilled", "limit", "cap", "cpus",
    ]
    new = not os.path.exists(a.results)
    machine = f"{platform.node()} {os.cpu_count()} cores {platform.machine()}"
    with open(a.results, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        if new:
            w.writeheader()
        for q in a.questions.split(","):
            if q in GROUPBY:
                sql, tables = GROUPBY[q], {"x": os.path.join(g, "x.parquet")}
            else:
                sql = JOIN[q]
                tables = {t: os.path.join(j, f"{t}.parquet") for t in ["x", "small", "medium", "big"]}
            for engine in a.engines.split(","):
                out = os.path.join(a.spill_dir, f"result-{engine}-{q}.parquet")
                make = spillframe_cmd if engine == "spillframe" else duckdb_cmd
                cmd = make(a, sql, tables, out)
                o = run_child(cmd, os.path.join(logs, f"{engine}-{q}"), cgroup, a.cpus)
                stdout, stderr = o.stdout, o.stderr
                result_size = os.path.getsize(out) if os.path.exists(out) else 0
                row = {
                    "date": datetime.date.today().isoformat(),
                    "machine": machine,
                    "engine": engine,
                    "question": q,
                    "status": o.state,
                    "wall_s": f"{o.wall:.1f}",
                    "peak_rss": o.peak_rss,
                    "cgroup_peak": o.cgroup_peak,
                    "disk_writes": max(0, o.writes - result_size),
                    "limit": a.limit,
                    "cap": a.cap,
                    "cpus": ",".join(map(str, a.cpus)),
                }
                if engine == "spillframe":
                    m = SUMMARY.search(stderr)
                    if m:
                        row["rows"] = int(m.group(1))
                        row["query_s"] = m.group(2)
                        row["engine_spilled"] = parse_size(m.group(4))
                elif o.status == 0 and stdout.strip():
                    info = json.loads(stdout.strip().splitlines()[-1])
                    row["rows"] = info["rows"]
                    row["query_s"] = f"{info['seconds']:.1f}"
                w.writerow(row)
                fh.flush()
                tail = "" if row["status"] == "ok" else " | " + stderr.strip()[-300:]
                print(
                    f"{engine:10} {q:4} {row['status']:10} wall {row['wall_s']:>7}s "
                    f"rows {row.get('rows', '-')} rss {human(row['peak_rss'])} "
                    f"cgroup {human(row['cgroup_peak'])} disk {human(row['disk_writes'])}{tail}",
                    flush=True,
                )
                if os.path.exists(out):
                    os.remove(out)
                shutil.rmtree(os.path.join(a.spill_dir, "duckdb"), ignore_errors=True)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
