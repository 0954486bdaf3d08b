"""Prints benches/rss/run.sh's CSV as the markdown table of docs/benchmarks.md.

    python3 benches/rss/report.py RESULTS.csv

One row per question, one column per limit: spillframe's peak RSS, and whether it met the
goal peak RSS <= limit + 10% + 48 MiB. The last run of each question and limit is shown.
"""

import csv
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from measure import parse_size  # noqa: E402

MIB = 1024**2


def human(n: int) -> str:
    v = n / MIB
    return f"{v / 1024:.2f} GiB" if v >= 1024 else f"{v:.0f} MiB"


def main() -> None:
    rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["engine"] == "spillframe"]
    last, questions, limits = {}, [], []
    for r in rows:
        if r["question"] not in questions:
            questions.append(r["question"])
        if r["limit"] not in limits:
            limits.append(r["limit"])
        last[(r["question"], r["limit"])] = r
    limits.sort(key=parse_size)
    print("| question | " + " | ".join(f"{l} (goal {human(goal(l))})" for l in limits) + " |")
    print("|---|" + "---|" * len(limits))
    met = total = 0
    for q in questions:
        cells = []
        for l in limits:
            r = last.get((q, l))
            if r is None:
                cells.append("-")
                continue
            if r["status"] != "ok":
                cells.append(r["status"])
                total += 1
                continue
            rss = int(r["peak_rss"])
            ok = rss <= goal(l)
            met += ok
            total += 1
            cells.append(f"{human(rss)} {'met' if ok else '**over**'}")
        print(f"| {q} | " + " | ".join(cells) + " |")
    print(f"\n{met} of {total} runs met the goal.")


def goal(limit: str) -> int:
    return int(parse_size(limit) * 1.1) + 48 * MIB


if __name__ == "__main__":
    main()
