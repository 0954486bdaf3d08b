#!/usr/bin/env bash
# h2o groupby at 1e8 rows on 3 loopback peers with 1 GiB each, against one process with
# 1 GiB and one with the same 3 GiB total (benches/cluster/run.py). Writes the section of
# docs/benchmarks.md between <!-- cluster-h2o:start --> and <!-- cluster-h2o:end -->.
#
#   benches/cluster/run.sh [ROWS]     # default 1e8; e.g. 1e7 for a quick look
#
# Environment: QUESTIONS (e.g. q1,q2,q3; default all ten), DATA, WORK, CARGO_TARGET_DIR.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rows="${1:-1e8}"
data="${DATA:-$root/benches/data}"
work="${WORK:-$data/work-cluster}"
target="${CARGO_TARGET_DIR:-$root/target}"
echo "== building spillframe (release; about 23 minutes the first time)"
(cd "$root" && cargo build --release --quiet --bin spillframe)
sf="$target/release/spillframe"
venv="$root/benches/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/benches/harness/requirements.txt"
dir="$data/h2o-groupby-$rows"
if [ ! -f "$dir/.complete" ]; then
  "$sf" gen h2o-groupby --rows "$rows" --out "$dir"
  touch "$dir/.complete"
fi
mem_total_kib=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
machine="$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(( mem_total_kib / 1024 / 1024 )) GiB RAM; spillframe at commit $(cd "$root" && git rev-parse --short HEAD)"
command="benches/cluster/run.sh $rows${QUESTIONS:+ (QUESTIONS=$QUESTIONS)}"
"$venv/bin/python" "$here/run.py" --spillframe "$sf" --data "$dir" --work "$work" \
  --results "$root/benches/results/cluster.csv" --doc "$root/docs/benchmarks.md" \
  --machine "$machine" --command "$command" ${QUESTIONS:+--questions "$QUESTIONS"}
