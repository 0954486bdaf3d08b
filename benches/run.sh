#!/usr/bin/env bash
# Side-by-side benchmarks: spillframe against plain DataFusion, DuckDB, Polars and pandas, on
# the same files, on this machine, in one run. Writes the tables and plots of
# docs/benchmarks.md ("Side by side") and appends every measurement to
# benches/results/side_by_side.csv.
#
#   benches/run.sh --quick   # h2o groupby and join at 1e7 rows and TPC-H at SF1, in memory
#                            # (under 15 minutes)
#   benches/run.sh           # also h2o at 1e8 rows and TPC-H at SF10, in memory and inside a
#                            # 2 GiB cgroup cap (hours)
#   benches/run.sh --stages S[,S]       # only these stages of the full run (see below)
#   benches/run.sh --suites S[,S]       # only these suites (h2o-groupby, h2o-join, tpch) in
#                                       # the chosen stages
#   benches/run.sh --report RUN[,RUN]   # only rewrite the report from runs already in the CSV
#
# Stages: h2o-1e7, tpch-sf1 (the quick run); h2o-1e8, tpch-sf10 (in memory); h2o-1e8-capped,
# tpch-sf10-capped (inside the 2 GiB cap). The report covers the stages run by this call; to
# put stages from several calls in one report, pass all their run ids to --report.
#
# Environment: REPORT_NOTE (a line added to the report), QUESTIONS (only these, e.g. j2,j3),
# ENGINES (only these, e.g. duckdb,polars),
# RESUME_RUN (a run id to go on with, with one stage: engines killed there are not run again), DATA (datasets, default benches/data), WORK (scratch, default
# benches/data/work), RESULTS (CSV), THREADS (default: all cores), CARGO_TARGET_DIR.
# The cgroup cap needs root and a writable cgroup-v1 memory controller; without one, runs
# go uncapped and the report says so.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
quick=0
report_only=""
stages=""
only_suites=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --report) report_only="${2:?--report needs run ids}"; shift ;;
    --stages) stages="${2:?--stages needs stage names}"; shift ;;
    --suites) only_suites="${2:?--suites needs suite names}"; shift ;;
    *) echo "usage: benches/run.sh [--quick] [--stages S[,S]] [--suites S[,S]] [--report RUN[,RUN]]" >&2; exit 2 ;;
  esac
  shift
done
data="${DATA:-$root/benches/data}"
work="${WORK:-$data/work}"
results="${RESULTS:-$root/benches/results/side_by_side.csv}"
threads="${THREADS:-$(nproc)}"
target="${CARGO_TARGET_DIR:-$root/target}"

if [ -z "$report_only" ]; then
echo "== building spillframe and plain DataFusion (release; about 23 minutes the first time)"
(cd "$root" && cargo build --release --quiet --bin spillframe --example datafusion_sql)
sf="$target/release/spillframe"
df="$target/release/examples/datafusion_sql"

echo "== python venv with DuckDB, Polars, pandas and pyarrow"
venv="$root/benches/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/harness/requirements.txt"
fi
venv="$root/benches/.venv"
py="$venv/bin/python"

gen() { # suite size
  local dir="$data/$1-$2"
  if [ ! -f "$dir/.complete" ]; then
    echo "== generating $1 at $2 in $dir"
    case "$1" in
      tpch) "$sf" gen tpch --scale "${2#sf}" --out "$dir" ;;
      *) "$sf" gen "$1" --rows "$2" --out "$dir" ;;
    esac
    touch "$dir/.complete"
  fi
}

# A cgroup cap, where the machine allows one: in memory runs get a generous one (so that an
# engine that outgrows the machine is killed alone, and recorded as such), the out-of-core
# runs the 2 GiB of the goal.
can_cap=0
if [ "$(id -u)" = 0 ] && [ -w /sys/fs/cgroup/memory ]; then can_cap=1; fi
mem_total_kib=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
roomy="$(( mem_total_kib * 85 / 100 / 1024 ))MiB"

run_ids=()
bench() { # suites size cap limit timeout
  local id chosen=() s
  # --suites narrows the stage's suites; a stage left with none is skipped.
  for s in ${1//,/ }; do
    if [ -z "$only_suites" ] || [[ ",$only_suites," == *",$s,"* ]]; then chosen+=("$s"); fi
  done
  if [ ${#chosen[@]} = 0 ]; then return 0; fi
  set -- "$(IFS=,; echo "${chosen[*]}")" "${@:2}"
  id="${RESUME_RUN:-$(date +%Y%m%d-%H%M%S)-${1%%-*}-$2${4:+-limit$4}}"
  local capargs=()
  if [ -n "$3" ] && [ "$can_cap" = 1 ]; then capargs=(--cap "$3"); fi
  # In memory, every engine starts with its input in the page cache; out of core, not.
  if [ -z "$4" ]; then capargs+=(--warm); fi
  (cd "$here/harness" && "$py" run.py --data "$data" --size "$2" --suites "$1" \
    --threads "$threads" --timeout "$5" ${4:+--limit "$4"} "${capargs[@]}" \
    ${QUESTIONS:+--questions "$QUESTIONS"} ${ENGINES:+--engines "$ENGINES"} \
    --spillframe "$sf" --datafusion "$df" --python "$py" --work "$work" \
    --results "$results" --run "$id")
  run_ids+=("$id")
}

h2o=h2o-groupby,h2o-join
all_stages=h2o-1e7,tpch-sf1,h2o-1e8,tpch-sf10,h2o-1e8-capped,tpch-sf10-capped
if [ -z "$stages" ]; then
  if [ "$quick" = 1 ]; then stages=h2o-1e7,tpch-sf1; else stages="$all_stages"; fi
fi
for s in ${stages//,/ }; do
  case ",$all_stages," in *",$s,"*) ;; *) echo "unknown stage '$s' (stages: $all_stages)" >&2; exit 2 ;; esac
done
if [ -n "${RESUME_RUN:-}" ] && [[ "$stages" == *,* ]]; then
  echo "RESUME_RUN goes on with one run: give one stage" >&2; exit 2
fi
for s in ${only_suites//,/ }; do
  case ",h2o-groupby,h2o-join,tpch," in *",$s,"*) ;; *) echo "unknown suite '$s' (suites: h2o-groupby,h2o-join,tpch)" >&2; exit 2 ;; esac
done
# Seconds per run: generous in the full run, tight in the quick one.
if [ "$quick" = 1 ]; then small_timeout=120; else small_timeout=900; fi
stage() { case ",$stages," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
if [ -n "$report_only" ]; then
  IFS=, read -r -a run_ids <<< "$report_only"
else
  if stage h2o-1e7; then
    gen h2o-groupby 1e7; gen h2o-join 1e7
    bench "$h2o" 1e7 "$roomy" "" "$small_timeout"
  fi
  if stage tpch-sf1; then
    gen tpch sf1
    bench tpch sf1 "$roomy" "" "$small_timeout"
  fi
  if stage h2o-1e8 || stage h2o-1e8-capped; then gen h2o-groupby 1e8; gen h2o-join 1e8; fi
  if stage tpch-sf10 || stage tpch-sf10-capped; then gen tpch sf10; fi
  stage h2o-1e8 && bench "$h2o" 1e8 "$roomy" "" 1800
  stage tpch-sf10 && bench tpch sf10 "$roomy" "" 1800
  # Out of core: every engine inside the same 2 GiB cap; spillframe and DuckDB are told to
  # stay within 1.5 GiB of it (the rest is their processes' own memory and page cache).
  stage h2o-1e8-capped && bench "$h2o" 1e8 2GiB 1536MiB 1800
  stage tpch-sf10-capped && bench tpch sf10 2GiB 1536MiB 1800
fi

disk="$(df -h --output=source,size "$data" | tail -1 | tr -s ' ')"
model="$(lsblk -ndo MODEL "$(df --output=source "$data" | tail -1)" 2>/dev/null | head -1 || true)"
machine="$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(( mem_total_kib / 1024 / 1024 )) GiB RAM, data on ${disk}${model:+ ($model)}; cgroup caps: $([ "$can_cap" = 1 ] && echo enforced || echo 'not available, runs uncapped')"
dfver="$(grep -A1 '^name = "datafusion"$' "$root/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p' | head -1)"
pyver="$("$venv/bin/pip" freeze --disable-pip-version-check | grep -iE '^(duckdb|polars|pandas|pyarrow)==' | tr '\n' ' ')"
versions="DataFusion $dfver, ${pyver}Python $("$py" -c 'import platform; print(platform.python_version())')"
command="benches/run.sh$(if [ "$quick" = 1 ]; then echo ' --quick'; fi)$(if [ "$stages" != "$all_stages" ] && [ "$quick" = 0 ]; then echo " --stages $stages"; fi)${only_suites:+ --suites $only_suites}${QUESTIONS:+ (QUESTIONS=$QUESTIONS)}${ENGINES:+ (ENGINES=$ENGINES)}"
if [ -n "$report_only" ]; then
  command="${command} (runs ${report_only}; report rewritten with --report)"
fi
ids="$(IFS=,; echo "${run_ids[*]}")"
(cd "$here/harness" && "$py" report.py --results "$results" --runs "$ids" \
  --doc "$root/docs/benchmarks.md" --plots "$root/docs/benchmarks" \
  --machine "$machine" --versions "$versions" --command "$command" --note "${REPORT_NOTE:-}")
echo "== done: docs/benchmarks.md (runs $ids)"
