"""Prints the out-of-core benchmark's CSV as the markdown table of docs/benchmarks.md.

    python benches/out_of_core/report.py RESULTS.csv

For each question: status, wall time, peak RSS and disk writes of spillframe and DuckDB, and the
ratio of their wall times. When a question ran more than once for an engine, the last run is
shown.
"""

import csv
import sys


def mib(n: str) -> str:
    if not n:
        return "-"
    v = int(n) / 1024**2
    return f"{v / 1024:.2f} GiB" if v >= 1024 else f"{v:.0f} MiB"


def main() -> None:
    rows = list(csv.DictReader(open(sys.argv[1])))
    last = {}
    order = []
    for r in rows:
        key = (r["question"], r["engine"])
        if r["question"] not in order:
            order.append(r["question"])
        last[key] = r
    print(
        "| question | spillframe | wall | peak RSS | disk writes | DuckDB | wall | peak RSS "
        "| disk writes | wall ratio (spillframe / DuckDB) | rows |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for q in order:
        s = last.get((q, "spillframe"), {})
        d = last.get((q, "duckdb"), {})
        ratio = "-"
        if s.get("status") == "ok" and d.get("status") == "ok":
            ratio = f"{float(s['wall_s']) / float(d['wall_s']):.2f}"
        rows_note = s.get("rows") or d.get("rows") or "-"
        if s.get("rows") and d.get("rows") and s["rows"] != d["rows"]:
            rows_note = f"{s['rows']} vs {d['rows']} (differ)"
        print(
            f"| {q} | {s.get('status', '-')} | {s.get('wall_s', '-')} s | {mib(s.get('peak_rss'))} "
            f"| {mib(s.get('disk_writes'))} | {d.get('status', '-')} | {d.get('wall_s', '-')} s "
            f"| {mib(d.get('peak_rss'))} | {mib(d.get('disk_writes'))} | {ratio} | {rows_note} |"
        )


if __name__ == "__main__":
    main()
