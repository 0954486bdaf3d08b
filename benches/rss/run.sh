#!/usr/bin/env bash
# Peak RSS against the memory limit: every h2o groupby and join question, spillframe alone,
# each in its own process under each limit, inside a cgroup-v1 group whose cap is far above
# the limit (so the kernel never kills a run: the figure is what spillframe takes by itself).
# The goal, from the governor issue: peak RSS <= limit + 10% + 48 MiB. Needs root.
#
#   benches/rss/run.sh [ROWS] [extra out_of_core/run.py options...]
#
# ROWS defaults to 1e7. It runs benches/out_of_core/run.sh once per limit (which builds
# spillframe and generates the data; DATA and WORK are read there). Environment: LIMITS
# (default "64MiB 256MiB 1GiB 2GiB"), CAP (default 16GiB), RESULTS (CSV, default
# benches/results/rss.csv). Print the table with `python3 benches/rss/report.py RESULTS`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rows="${1:-1e7}"
shift || true
export RESULTS="${RESULTS:-$root/benches/results/rss.csv}"
export CAP="${CAP:-16GiB}"
for limit in ${LIMITS:-64MiB 256MiB 1GiB 2GiB}; do
  LIMIT="$limit" "$root/benches/out_of_core/run.sh" "$rows" --engines spillframe "$@"
done
