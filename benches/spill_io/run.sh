#!/usr/bin/env bash
# Spill I/O micro-benchmarks next to the disk's own sequential bandwidth, in one run:
#   1. dd: 1 GiB written with and without fdatasync, then read back cold (its pages dropped
#      from the page cache first, dd iflag=nocache) and cached;
#   2. criterion (spill/benches/spill_io.rs): spill files written (page cache, fsync) and read
#      back (mmap zero-copy against a buffered copying read; cached and cold);
#   3. the table in docs/benchmarks.md between <!-- spill-io:start --> and <!-- spill-io:end -->.
#
#   benches/spill_io/run.sh            # files in $SPILL_BENCH_DIR, else $TMPDIR or /tmp
#
# The release-profile build of the bench shares DataFusion with `cargo build --release`
# (same features); the first one takes about 23 minutes here.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${SPILL_BENCH_DIR:-${TMPDIR:-/tmp}}"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d "$dir/spill-io-dd-XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "== building the bench (release profile)"
(cd "$root" && cargo bench --workspace --bench spill_io --no-run --quiet)

# "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 1.2 s, 873 MB/s" -> MiB/s
rate() { awk '/copied/ { printf "%.0f", $1 / $(NF-3) / 1048576 }'; }
f="$work/dd.bin"
echo "== dd: sequential bandwidth of $(df --output=source "$dir" | tail -1) ($dir)"
w_sync=$(LC_ALL=C dd if=/dev/zero of="$f" bs=1M count=1024 conv=fdatasync 2>&1 | rate)
rm -f "$f"
w_cache=$(LC_ALL=C dd if=/dev/zero of="$f" bs=1M count=1024 2>&1 | rate)
sync "$f"
dd if="$f" iflag=nocache count=0 status=none
r_cold=$(LC_ALL=C dd if="$f" of=/dev/null bs=1M 2>&1 | rate)
LC_ALL=C dd if="$f" of=/dev/null bs=1M status=none
r_cached=$(LC_ALL=C dd if="$f" of=/dev/null bs=1M 2>&1 | rate)
rm -f "$f"
echo "write fdatasync ${w_sync} MiB/s, write page cache ${w_cache} MiB/s, read cold ${r_cold} MiB/s, read cached ${r_cached} MiB/s"

echo "== criterion: spill_write, spill_read"
rm -rf "$target/criterion/spill_write" "$target/criterion/spill_read"
(cd "$root" && SPILL_BENCH_DIR="$dir" cargo bench --workspace --bench spill_io --quiet)

disk="$(df -h --output=source,size "$dir" | tail -1 | tr -s ' ')"
machine="$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 1024 )) GiB RAM, files on ${disk}"
python3 "$here/report.py" --criterion "$target/criterion" --doc "$root/docs/benchmarks.md" \
  --machine "$machine" --commit "$(git -C "$root" rev-parse --short HEAD)" \
  --dd "write_sync=$w_sync,write_cache=$w_cache,read_cold=$r_cold,read_cached=$r_cached"
