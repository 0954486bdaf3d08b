"""Writes the spill I/O section of docs/benchmarks.md from criterion's estimates and the dd
figures measured in the same run (benches/spill_io/run.sh). Standard library only.

    python3 report.py --criterion target/criterion --doc docs/benchmarks.md \
        --machine "..." --commit abc1234 --dd write_sync=N,write_cache=N,read_cold=N,read_cached=N
"""

import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from docsection import replace_section  # noqa: E402

START = "<!-- spill-io:start -->"
END = "<!-- spill-io:end -->"

# criterion id -> (what it measures, the dd figure it is read against)
ROWS = [
    ("spill_write/page_cache", "spill write, page cache (SpillWriter, checksum trailer)",
     "write_cache"),
    ("spill_write/fsync", "spill write, then fsync", "write_sync"),
    ("spill_read/mmap_zero_copy/cold", "spill read, mmap zero-copy (SpillFile::read), cold",
     "read_cold"),
    ("spill_read/buffered_copy/cold", "plain IPC read, BufReader + FileReader (copies), cold",
     "read_cold"),
    ("spill_read/mmap_zero_copy/cached", "spill read, mmap zero-copy, cached", "read_cached"),
    ("spill_read/buffered_copy/cached", "plain IPC read, buffered copy, cached", "read_cached"),
]
DD = {
    "write_sync": "dd write 1 GiB, conv=fdatasync",
    "write_cache": "dd write 1 GiB, page cache",
    "read_cold": "dd read 1 GiB, cold (pages dropped first)",
    "read_cached": "dd read 1 GiB, cached",
}


def load(criterion):
    out = {}
    for path in glob.glob(os.path.join(criterion, "spill_*", "**", "new", "benchmark.json"),
                          recursive=True):
        bench = json.load(open(path))
        est = json.load(open(os.path.join(os.path.dirname(path), "estimates.json")))
        nbytes = bench["throughput"]["Bytes"]
        mean = est["mean"]
        out[bench["full_id"]] = {
            "bytes": nbytes,
            "mean_s": mean["point_estimate"] / 1e9,
            "lo_s": mean["confidence_interval"]["lower_bound"] / 1e9,
            "hi_s": mean["confidence_interval"]["upper_bound"] / 1e9,
        }
    return out


def mibs(nbytes, seconds):
    return nbytes / seconds / 2**20


def section(res, dd, machine, commit):
    out = [START, "", "## Spill I/O against the disk (criterion and dd, one run)", ""]
    out += [
        "Produced by `benches/spill_io/run.sh` (the criterion bench is "
        "`spill/benches/spill_io.rs`): dd measures the disk's sequential bandwidth, then "
        "criterion writes and reads a spill file of 7 batches × 1,048,576 rows (two Int64, a "
        "Float64 and a short Utf8 column) in the same directory. \"cold\" reads drop the "
        "file's pages from the page cache before every iteration.",
        "",
        f"- Machine: {machine}; spillframe at commit {commit}.",
        "",
        "| measurement | MiB/s | seconds per file (mean, 95% CI) | ÷ dd |",
        "|---|---:|---|---:|",
    ]
    for key, label in DD.items():
        out.append(f"| {label} | {dd[key]:,} | — | — |")
    for cid, label, ref in ROWS:
        r = res.get(cid)
        if r is None:
            out.append(f"| {label} | not measured | — | — |")
            continue
        rate = mibs(r["bytes"], r["mean_s"])
        out.append(
            f"| {label} | {rate:,.0f} | {r['mean_s']:.3f} ({r['lo_s']:.3f}–{r['hi_s']:.3f}) "
            f"for {r['bytes'] / 2**20:,.0f} MiB | {rate / dd[ref]:.2f}× |"
        )
    out.append("")
    above = [
        label
        for cid, label, ref in ROWS
        if cid in res and mibs(res[cid]["bytes"], res[cid]["mean_s"]) > dd[ref]
    ]
    if above:
        out.append(
            f"- Above dd's rate: {'; '.join(above)}. That is not spilling beating the disk: dd "
            "moves 1 GiB where the spill file is smaller, and on a virtual disk the host may "
            "cache what the guest dropped (\"cold\" drops only the guest's page cache). Read "
            "these rows as \"spill I/O is not the bottleneck here\", not as disk speed."
        )
    for state in ("cold", "cached"):
        m = res.get(f"spill_read/mmap_zero_copy/{state}")
        b = res.get(f"spill_read/buffered_copy/{state}")
        if m and b:
            out.append(
                f"- {state.capitalize()}: the mmap read took {m['mean_s'] / b['mean_s']:.2f}× "
                "the buffered read's time (it also verifies the xxh3 checksum of every byte, "
                "which the buffered read does not)."
            )
    out += ["", END]
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--criterion", required=True)
    p.add_argument("--doc", required=True)
    p.add_argument("--machine", required=True)
    p.add_argument("--commit", required=True)
    p.add_argument("--dd", required=True)
    a = p.parse_args()
    dd = {k: int(v) for k, v in (kv.split("=") for kv in a.dd.split(","))}
    res = load(a.criterion)
    if not res:
        raise SystemExit(f"no criterion results under {a.criterion}/spill_*")
    text = section(res, dd, a.machine, a.commit)
    replace_section(a.doc, START, END, text)
    print(text)


if __name__ == "__main__":
    main()
