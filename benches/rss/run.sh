#!/usr/bin/env bash
# Peak RSS against the memory limit: every h2o groupby and join question, spillframe alone,
# each in its own process under each limit, inside a cgroup-v1 group whose cap is far above
# the limit (so the kernel never kills a run: the figure is what spillframe takes by itself).
# The goal, from the governor issue: peak RSS <= limit + 10% + 48 MiB. Needs root.
#
#   benches/rss/run.sh [ROWS] [extra out_of_core/run.py options...]
#
# ROWS defaults to 1e7. Environment: DATA (dataset directory with g/ and j/, default
# benches/data/<ROWS>), WORK (spill directory, default benches/data/work), LIMITS (default
# "64MiB 256MiB 1GiB 2GiB"), CAP (default 16GiB), RESULTS (CSV, default
# benches/results/rss.csv). Print the table with `python3 benches/rss/report.py RESULTS`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rows="${1:-1e7}"
shift || true
data="${DATA:-$root/benches/data/$rows}"
work="${WORK:-$root/benches/data/work}"
results="${RESULTS:-$root/benches/results/rss.csv}"

echo "== building spillframe (release)"
(cd "$root" && cargo build --release --quiet)
bin="${CARGO_TARGET_DIR:-$root/target}/release/spillframe"

echo "== data ($rows rows) in $data"
[ -f "$data/g/x.parquet" ] || "$bin" gen h2o-groupby --rows "$rows" --out "$data/g"
[ -f "$data/j/big.parquet" ] || "$bin" gen h2o-join --rows "$rows" --out "$data/j"

mkdir -p "$(dirname "$results")"
for limit in ${LIMITS:-64MiB 256MiB 1GiB 2GiB}; do
  echo "== limit $limit; results appended to $results"
  python3 "$root/benches/out_of_core/run.py" --data "$data" --spillframe "$bin" \
    --engines spillframe --limit "$limit" --cap "${CAP:-16GiB}" --spill-dir "$work" \
    --results "$results" "$@"
done
