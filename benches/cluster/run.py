"""The h2o groupby on a loopback peer cluster against one process (issue: scale out).

Three ways to run each question q1-q10 over the same Parquet file, taking turns to go first:
- `local-1GiB`: one `spillframe sql` process with a 1 GiB memory limit: the driver alone,
  spilling to its local disk;
- `local-3GiB`: one process with the peers' total, 3 GiB;
- `cluster`: the same 1 GiB driver with SPILLFRAME_CLUSTER pointing at 3 `spillframe peer`
  processes on 127.0.0.1, each offering 1 GiB (`placement` as `cluster init` writes it:
  peers before disk).

For each run: the query time from spillframe's summary line, wall and CPU time and peak RSS of
the driver process, its spill figures, and the peers' counters (partitions received, bytes
held, fragments and functions run) from `spillframe cluster status` after the run. Answers
are checked to agree (rows and per-column checksums, as in the side-by-side harness).

    python run.py --spillframe BIN --data DIR/h2o-groupby-1e8 --work DIR --results CSV \
        [--questions q1,q2] [--timeout 1800] [--doc docs/benchmarks.md]
"""

import argparse
import csv
import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))

import h2o  # noqa: E402
from docsection import replace_section  # noqa: E402
from measure import csv_appender, human, run_child  # noqa: E402
from run import agree, checksum  # noqa: E402

CONFIGS = ["local-1GiB", "local-3GiB", "cluster"]
SUMMARY = re.compile(
    r"(\d+) rows in ([0-9.]+)s(?:.*?spilled ([0-9.]+ [KMGT]?i?B) in (\d+) files)?"
    r"(?:.*?(\d+) partitions evicted)?"
)
FIELDS = ["run", "question", "config", "status", "query_s", "wall_s", "cpu_s", "peak_rss",
          "rows", "spilled", "evicted", "agrees", "peers", "note"]
START = "<!-- cluster-h2o:start -->"
END = "<!-- cluster-h2o:end -->"


def start_peers(a, cluster_dir):
    if os.path.exists(cluster_dir):
        shutil.rmtree(cluster_dir)
    subprocess.run(
        [a.spillframe, "cluster", "init", "--dir", cluster_dir, "--peers", str(a.peers),
         "--memory", a.peer_memory, "--base-port", str(a.base_port)],
        check=True, capture_output=True,
    )
    config = os.path.join(cluster_dir, "cluster.toml")
    procs = []
    for i in range(a.peers):
        name = chr(ord("a") + i)
        log = open(os.path.join(cluster_dir, f"{name}.log"), "w")
        procs.append(subprocess.Popen(
            [a.spillframe, "peer", "--config", config, "--name", name],
            stdout=log, stderr=log,
        ))
    deadline = time.monotonic() + 30
    while True:
        r = subprocess.run([a.spillframe, "cluster", "status", "--config", config],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return config, procs
        if time.monotonic() > deadline:
            stop_peers(procs)
            raise SystemExit(f"the peers did not come up within 30 s:\n{r.stdout}{r.stderr}")
        time.sleep(0.5)


def stop_peers(procs):
    for p in procs:
        p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def summary(stderr):
    """Query time, local spill and evictions from spillframe's summary line. The driver's
    partition store evicts to peers first on a cluster (placement: peers before disk), so
    evictions without spilled bytes went to peers."""
    m = SUMMARY.search(stderr)
    if not m:
        return {}
    return {"query_s": m.group(2), "spilled": m.group(3) or "0 B", "evicted": m.group(5) or "0"}


def reparse(a, run_id):
    """Rewrites `run_id`'s figures in the CSV from its logs (after a fix to `summary`)."""
    rows = list(csv.DictReader(open(a.results)))
    logs = os.path.join(a.work, "logs")
    for r in rows:
        if r["run"] == run_id and r["status"] == "ok":
            err = os.path.join(logs, f"{run_id}-{r['question']}-{r['config']}.err")
            r.update(summary(open(err).read()))
    with open(a.results, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in FIELDS})


def peer_status(a, config):
    r = subprocess.run([a.spillframe, "cluster", "status", "--config", config],
                       capture_output=True, text=True)
    return " | ".join(line.strip() for line in r.stdout.splitlines()[1:])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--spillframe", required=True)
    p.add_argument("--data", required=True, help="a `spillframe gen h2o-groupby` directory")
    p.add_argument("--work", required=True)
    p.add_argument("--results", required=True)
    p.add_argument("--questions", default=",".join(h2o.GROUPBY))
    p.add_argument("--peers", type=int, default=3)
    p.add_argument("--peer-memory", default="1GiB")
    p.add_argument("--driver-memory", default="1GiB")
    p.add_argument("--total-memory", default="3GiB")
    p.add_argument("--base-port", type=int, default=7391)
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--doc", default="", help="write the report section into this file")
    p.add_argument("--report", default="", help="only write the report of this run id")
    p.add_argument("--machine", default="", help="the machine, for the report")
    p.add_argument("--command", default="benches/cluster/run.sh", help="for the report")
    p.add_argument("--reparse", default="",
                   help="re-read this run's summaries from its logs into the CSV, then report")
    a = p.parse_args()
    if a.report:
        report(a, a.report)
        return
    if a.reparse:
        reparse(a, a.reparse)
        report(a, a.reparse)
        return
    os.makedirs(a.work, exist_ok=True)
    logs = os.path.join(a.work, "logs")
    os.makedirs(logs, exist_ok=True)
    config, procs = start_peers(a, os.path.join(a.work, "cluster"))
    run_id = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-cluster")
    try:
        with csv_appender(a.results, FIELDS) as (fh, w):
            turn = 0
            for q in a.questions.split(","):
                answers = {}
                order = CONFIGS[turn % 3:] + CONFIGS[: turn % 3]
                turn += 1
                for c in order:
                    out = os.path.join(a.work, f"answer-{c}.parquet")
                    if os.path.exists(out):
                        os.remove(out)
                    limit = a.total_memory if c == "local-3GiB" else a.driver_memory
                    cmd = [a.spillframe, "sql", h2o.GROUPBY[q], "-t",
                           f"x={os.path.join(a.data, 'x.parquet')}", "--out", out,
                           "--memory-limit", limit, "--target-partitions", str(a.threads),
                           "--spill-dir", os.path.join(a.work, "spill")]
                    env = dict(os.environ)
                    env.pop("SPILLFRAME_CLUSTER", None)
                    if c == "cluster":
                        env["SPILLFRAME_CLUSTER"] = config
                    o = run_child(cmd, os.path.join(logs, f"{run_id}-{q}-{c}"),
                                  timeout=a.timeout, env=env)
                    row = {"run": run_id, "question": q, "config": c, "status": o.state,
                           "wall_s": f"{o.wall:.2f}", "cpu_s": f"{o.cpu:.2f}",
                           "peak_rss": o.peak_rss}
                    if o.state == "ok":
                        row.update(summary(o.stderr))
                        cs = checksum(out)
                        row["rows"] = cs[0][0] if cs else 0
                        answers[c] = cs
                    else:
                        row["note"] = (o.stderr.strip()[-300:]).replace("\n", " | ")
                    if c == "cluster":
                        row["peers"] = peer_status(a, config)
                    w.writerow(row)
                    fh.flush()
                    print(f"{q:4} {c:11} {row['status']:8} query {row.get('query_s', '-'):>8}s "
                          f"wall {o.wall:7.2f}s rss {human(o.peak_rss):>10} "
                          f"spilled {row.get('spilled', '-')}", flush=True)
                ref = answers.get("local-3GiB") or next(iter(answers.values()), None)
                for c, cs in answers.items():
                    ok = agree(ref, cs)
                    w.writerow({"run": run_id, "question": q, "config": c,
                                "status": "agrees" if ok else "differs", "agrees": ok})
                    if not ok:
                        print(f"!! {q}: {c}'s answer differs", flush=True)
    finally:
        stop_peers(procs)
    print(f"run {run_id}: results in {a.results}")
    report(a, run_id)


def report(a, run_id):
    """The table of one run, printed, and written between the markers of --doc."""
    rows = [r for r in csv.DictReader(open(a.results)) if r["run"] == run_id]
    runs = [r for r in rows if r["status"] not in ("agrees", "differs")]
    differs = [r for r in rows if r["status"] == "differs"]
    questions = list(dict.fromkeys(r["question"] for r in runs))
    cell = {}
    for r in runs:
        if r["status"] == "ok":
            cell[(r["question"], r["config"])] = (
                f"{float(r['query_s']):.1f} s, {human(int(r['peak_rss']))} RSS, "
                f"spilled {r['spilled']}, {r.get('evicted') or '?'} evicted"
            )
        else:
            cell[(r["question"], r["config"])] = f"{r['status']}: {r['note'][:80]}"
    out = [START, "", f"## h2o groupby on a loopback cluster ({run_id})", ""]
    out += [
        f"Produced by `{a.command}`. Each question ran three ways, taking turns to go "
        f"first: one process with a {a.driver_memory} limit; one with {a.total_memory}; and "
        f"the {a.driver_memory} driver with {a.peers} `spillframe peer` processes on 127.0.0.1 "
        f"offering {a.peer_memory} each (placement: peers before disk). All on the same "
        "machine, sharing its cores. Cells: spillframe's query time, the driver's peak RSS, "
        "what it spilled to its local disk (its partition store's evictions and DataFusion's "
        "own sort and aggregate spills), and how many partitions its store evicted (on the "
        "cluster, to the peers first)."
        + (f" Machine: {a.machine}." if a.machine else ""),
        "",
        "| question | " + " | ".join(CONFIGS) + " |",
        "|---|" + "---|" * len(CONFIGS),
    ]
    for q in questions:
        out.append(f"| {q} | " + " | ".join(cell.get((q, c), "—") for c in CONFIGS) + " |")
    totals = {}
    for c in CONFIGS:
        ok = [float(r["query_s"]) for r in runs if r["config"] == c and r["status"] == "ok"]
        if len(ok) == len(questions):
            totals[c] = sum(ok)
    out.append("| **total** | " + " | ".join(
        f"**{totals[c]:.1f} s**" if c in totals else "—" for c in CONFIGS) + " |")
    out.append("")
    out.append("**Answers that differ:** " + ", ".join(
        f"{r['question']} {r['config']}" for r in differs) if differs else
        "Every answer agrees with the 3 GiB process's (rows and per-column checksums).")
    out += ["", END]
    text = "\n".join(out) + "\n"
    print(text)
    if a.doc:
        replace_section(a.doc, START, END, text)


if __name__ == "__main__":
    main()
