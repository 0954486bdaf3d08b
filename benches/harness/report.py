"""Writes the side-by-side section of docs/benchmarks.md, and its plots, from run.py's CSV.

    python report.py --results benches/results/side_by_side.csv --runs RUN[,RUN...] \
        --doc docs/benchmarks.md --plots docs/benchmarks --machine "..." --versions "..." \
        --command "benches/run.sh --quick"

The section sits between the markers `<!-- side-by-side:start -->` and
`<!-- side-by-side:end -->` (added at the end of the file if missing). For every suite and
size (and cap) of the given runs: a table of query seconds per question and engine (median
over repeats), totals over the questions every answering engine answered, spillframe's ratio to each
engine, peak memory, CPU time, and whether the answers agreed; then a PNG plot.
"""

import argparse
import csv
import os
import statistics
from collections import defaultdict

from docsection import replace_section

ENGINES = ["spillframe", "datafusion", "duckdb", "polars", "pandas"]
START = "<!-- side-by-side:start -->"
END = "<!-- side-by-side:end -->"


def mib(n):
    return f"{n / 2**20:,.0f} MiB"


def load(path, runs):
    rows = []
    with open(path) as fh:
        for r in csv.DictReader(fh):
            if r["run"] in runs:
                rows.append(r)
    return rows


def group_key(r, limit_of):
    """One table per suite, size and memory limit, over however many runs it took (a stage
    can be finished by a second call). Agreement rows carry no limit: they take their run's."""
    return (r["suite"], r["size"], limit_of.get(r["run"], ""))


def plot(path, title, questions, engines, times):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, len(questions) * 0.9), 3.6))
    width = 0.8 / max(1, len(engines))
    for i, e in enumerate(engines):
        xs, ys = [], []
        for j, q in enumerate(questions):
            t = times.get((q, e))
            if t is not None:
                xs.append(j + i * width)
                ys.append(t)
        ax.bar(xs, ys, width, label=e)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(questions))], questions)
    ax.set_yscale("log")
    ax.set_ylabel("seconds (log)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=len(engines))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def section(rows, plots_dir, doc_dir, machine, versions, command, run_note=""):
    out = [START, "", "## Side by side: spillframe, DataFusion, DuckDB, Polars and pandas", ""]
    out += [
        f"Produced by `{command}` and `benches/harness/report.py`; every figure below was "
        "measured in the run(s) named there.",
        "",
        f"- Machine: {machine}",
        f"- Versions: spillframe at commit "
        f"{', '.join(sorted({r['commit'] for r in rows if r['commit']})) or 'unknown'}, "
        f"{versions}",
        "- Each question ran in its own process per engine, engines taking turns to go first. "
        "**Times are the engine's own query time**: from the start of the query to the answer "
        "written to Parquet, reading the input files included; process start-up and Python "
        "imports are not. `—` marks a run that did not finish (the table under it says why).",
        "- Totals are over the questions answered by every engine that answered any (an "
        "engine killed on all of them shows —); the ratio row is spillframe's "
        "total divided by each engine's over the questions both answered (their number in "
        "brackets; below 1.00× means spillframe was faster).",
    ]
    if run_note:
        out.append(f"- {run_note}")
    out.append("")
    # A run's limit: rows that recorded none (an engine not run, before run.py wrote the
    # limit on every row) take the run's.
    limit_of = {}
    for r in rows:
        if r["repeat"] != "check" and r["limit"]:
            limit_of.setdefault(r["run"], r["limit"])
    # Tables in the order their runs were made.
    groups = defaultdict(list)
    for r in rows:
        groups[group_key(r, limit_of)].append(r)
    for (suite, _, _), rs in groups.items():
        runs = [r for r in rs if r["repeat"] != "check"]
        checks = [r for r in rs if r["repeat"] == "check"]
        if not runs:
            continue
        size = runs[0]["size"]
        cap = next((r["cap"] for r in runs if r["cap"]), "")
        # Engines the suite has no version for: one line, not a column of dashes.
        not_run = {}
        for r in runs:
            if r["status"] == "not-run":
                not_run.setdefault(r["engine"], r["note"])
        runs = [r for r in runs if r["status"] != "not-run"]
        engines = [e for e in ENGINES if any(r["engine"] == e for r in runs)]
        questions = []
        for r in runs:
            if r["question"] not in questions:
                questions.append(r["question"])
        times, status, rss, cpu = {}, {}, defaultdict(int), defaultdict(float)
        for q in questions:
            for e in engines:
                mine = [r for r in runs if r["question"] == q and r["engine"] == e]
                # A question skipped in one call and run in a later one counts as run.
                if any(r["status"] != "skipped" for r in mine):
                    mine = [r for r in mine if r["status"] != "skipped"]
                ok = [float(r["query_s"]) for r in mine if r["status"] == "ok" and r["query_s"]]
                if ok and len(ok) == len(mine):
                    times[(q, e)] = statistics.median(ok)
                else:
                    bad = [r for r in mine if r["status"] != "ok"]
                    status[(q, e)] = bad[-1]["status"] if bad else "missing"
                    if bad and bad[-1]["status"] in ("skipped", "failed") and bad[-1]["note"]:
                        status[(q, e)] += f" ({bad[-1]['note'][:160]})"
                for r in mine:
                    rss[e] = max(rss[e], int(r["peak_rss"] or 0))
                    if r["status"] == "ok":
                        cpu[e] += float(r["cpu_s"] or 0) / max(1, len(mine))
        limit = next((r["limit"] for r in runs if r["limit"]), "")
        if limit:
            title = f"{suite}, {size}, out of core: {cap} cgroup cap"
            note = (
                f"Every engine ran inside a {cap} cgroup memory cap; spillframe and DuckDB "
                f"were given a {limit} memory limit."
            )
        else:
            title = f"{suite}, {size}, in memory"
            note = (
                "No engine was given a memory limit (spillframe keeps its default, half of the "
                "machine's RAM, and may partition or spill within it)"
            ) + (
                f" (each process ran inside a {cap} cgroup cap, so that one outgrowing the "
                "machine is killed alone)." if cap else "."
            )
        if runs and all(r.get("warm") == "1" for r in runs):
            note += (
                " Every input file was read into the page cache just before every run (the VM "
                "pages out memory idle for about a minute, files included)."
            )
        elif limit:
            note += " Inputs were not pre-read: what the cap leaves for page cache is part of the test."
        out += [f"### {title}", "", note, ""]
        out.append("| question | " + " | ".join(engines) + " |")
        out.append("|---|" + "---:|" * len(engines))
        for q in questions:
            cells = []
            for e in engines:
                t = times.get((q, e))
                cells.append(f"{t:.2f}" if t is not None else "—")
            out.append(f"| {q} | " + " | ".join(cells) + " |")
        # An engine that answered nothing (killed on every question) would empty the total.
        answering = [e for e in engines if any((q, e) in times for q in questions)]
        common = [q for q in questions if all((q, e) in times for e in answering)]
        totals = {e: sum(times[(q, e)] for q in common) for e in answering}
        if common:
            out.append(
                f"| **total** ({len(common)} of {len(questions)}) | "
                + " | ".join(f"**{totals[e]:.2f}**" if e in totals else "—" for e in engines)
                + " |"
            )
        # spillframe against each engine over the questions both answered (so that one
        # engine's failure does not hide the others' comparison).
        pair = {}
        for e in engines:
            both = [q for q in questions if (q, "spillframe") in times and (q, e) in times]
            theirs = sum(times[(q, e)] for q in both)
            if "spillframe" in engines and both and theirs:
                pair[e] = (sum(times[(q, "spillframe")] for q in both) / theirs, len(both))
        if "spillframe" in engines:
            out.append(
                "| spillframe ÷ engine (questions both answered) | "
                + " | ".join(
                    f"{pair[e][0]:.2f}× ({pair[e][1]})" if e in pair else "—" for e in engines
                )
                + " |"
            )
        out.append("| peak RSS (max) | " + " | ".join(mib(rss[e]) for e in engines) + " |")
        out.append(
            "| CPU seconds (finished runs) | " + " | ".join(f"{cpu[e]:.1f}" for e in engines) + " |"
        )
        out.append("")
        for e, why in sorted(not_run.items()):
            out.append(f"{e}: not run ({why}).")
            out.append("")
        if status:
            # One line per engine, its questions grouped by what happened to them.
            out.append("Not finished:")
            out.append("")
            for e in engines:
                why = defaultdict(list)
                for q in questions:
                    if (q, e) in status:
                        why[status[(q, e)]].append(q)
                if why:
                    out.append(
                        f"- {e}: "
                        + "; ".join(f"{', '.join(qs)} {s}" for s, qs in why.items())
                        + "."
                    )
            out.append("")
        differs = [r for r in checks if r["status"] == "differs"]
        if checks:
            if differs:
                out.append(
                    "**Answers that differ** (rows, nulls and per-column sums or distinct counts, "
                    "against the reference engine): "
                    + "; ".join(f"{r['engine']} {r['question']} {r['agrees']}" for r in differs)
                    + "."
                )
            else:
                out.append(
                    f"All {len(checks)} answers agree (rows, nulls, per-column sums or distinct "
                    "counts, against DuckDB's)."
                )
            out.append("")
        if pair:
            # The fastest other engine is the one spillframe compares worst against.
            peers = [e for e in pair if e != "spillframe"]
            if peers:
                fastest = max(peers, key=lambda e: pair[e][0])
                ratio, n = pair[fastest]
                line = (
                    f"Against the goals: spillframe's total is {ratio:.2f}× the fastest other "
                    f"engine's ({fastest}, over the {n} questions both answered)"
                )
                if "datafusion" in pair:
                    line += (
                        f", and {100 * (pair['datafusion'][0] - 1):+.0f}% against plain "
                        "DataFusion"
                    )
                out.append(line + ".")
                out.append("")
        name = f"{suite}-{size}" + ("-capped" if limit else "") + ".png"
        plot(os.path.join(plots_dir, name), title, questions, engines, times)
        rel = os.path.relpath(os.path.join(plots_dir, name), doc_dir)
        out += [f"![{title}]({rel})", ""]
    out.append(END)
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--results", required=True)
    p.add_argument("--runs", required=True, help="run ids, comma-separated")
    p.add_argument("--doc", required=True)
    p.add_argument("--plots", required=True)
    p.add_argument("--machine", required=True)
    p.add_argument("--versions", required=True)
    p.add_argument("--command", required=True)
    p.add_argument("--note", default="", help="a line about the runs, added to the list")
    a = p.parse_args()
    rows = load(a.results, set(a.runs.split(",")))
    if not rows:
        raise SystemExit(f"no rows of runs {a.runs} in {a.results}")
    os.makedirs(a.plots, exist_ok=True)
    text = section(
        rows, a.plots, os.path.dirname(os.path.abspath(a.doc)), a.machine, a.versions, a.command,
        a.note,
    )
    replace_section(a.doc, START, END, text)
    print(f"wrote {a.doc} and plots in {a.plots}")


if __name__ == "__main__":
    main()
