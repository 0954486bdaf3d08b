#!/usr/bin/env bash
# Fuzz the peer protocol's decoding with cargo-fuzz (libFuzzer) for a while.
#
#   net/fuzz/run.sh [SECONDS]        # default 60
#
# Needs the nightly toolchain (`rustup toolchain install nightly`) and cargo-fuzz
# (`cargo install cargo-fuzz`); this script installs cargo-fuzz if it is missing. Crashes
# are written to net/fuzz/artifacts/frames/; reproduce one with
#   cargo +nightly fuzz run frames net/fuzz/artifacts/frames/<file>
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cd "$here/.."
mkdir -p fuzz/corpus/frames
cargo +nightly fuzz run frames fuzz/corpus/frames -- -max_total_time="$seconds" -max_len=4096
