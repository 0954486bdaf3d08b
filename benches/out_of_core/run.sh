#!/usr/bin/env bash
# Out-of-core benchmark: h2o groupby q1-q10 and join j1-j5, spillframe and DuckDB, each
# question in its own process inside a cgroup-v1 memory cap. Needs root.
#
#   benches/out_of_core/run.sh [ROWS] [extra run.py options...]
#
# ROWS defaults to 1e8. Environment: DATA (dataset directory, default benches/data/<ROWS>),
# WORK (spill and result directory, default benches/data/work), LIMIT (engine memory limit,
# default 2GiB), CAP (cgroup cap, default 3GiB), RESULTS (CSV, default
# benches/results/out_of_core.csv).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rows="${1:-1e8}"
shift || true
data="${DATA:-$root/benches/data/$rows}"
work="${WORK:-$root/benches/data/work}"
results="${RESULTS:-$root/benches/results/out_of_core.csv}"

echo "== building spillframe (release)"
(cd "$root" && cargo build --release --quiet)
bin="${CARGO_TARGET_DIR:-$root/target}/release/spillframe"

echo "== data ($rows rows) in $data"
[ -f "$data/g/x.parquet" ] || "$bin" gen h2o-groupby --rows "$rows" --out "$data/g"
[ -f "$data/j/big.parquet" ] || "$bin" gen h2o-join --rows "$rows" --out "$data/j"

echo "== python venv with DuckDB"
venv="$root/benches/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet -r "$here/requirements.txt"

mkdir -p "$(dirname "$results")"
echo "== running; results appended to $results"
"$venv/bin/python" "$here/run.py" --data "$data" --spillframe "$bin" --python "$venv/bin/python" \
  --limit "${LIMIT:-2GiB}" --cap "${CAP:-3GiB}" --spill-dir "$work" --results "$results" "$@"
