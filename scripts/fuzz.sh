#!/usr/bin/env bash
# Runs the cargo-fuzz target `decode_and_respond` for SECONDS seconds (default 60).
#
#   scripts/fuzz.sh [SECONDS]
#
# cargo-fuzz is installed from crates.io when missing. libFuzzer needs a nightly compiler: the
# nightly toolchain is used when rustup has one, otherwise the stable one with
# RUSTC_BOOTSTRAP=1. The corpus is seeded from events/*.json; a crash is written to
# fuzz/artifacts/decode_and_respond/ and makes the script exit non-zero.
#
# The code under test is safe Rust, so the build skips AddressSanitizer (`--sanitizer none`),
# which mostly saves build time. FUZZ_BUILD_FLAGS adds cargo-fuzz build flags, e.g. `--dev`
# for an unoptimised build that compiles much faster and runs slower.
set -euo pipefail

seconds="${1:-60}"
target=decode_and_respond
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

corpus="fuzz/corpus/$target"
mkdir -p "$corpus"
cp events/*.json "$corpus/" 2>/dev/null || true

# shellcheck disable=SC2086
cargo "${toolchain[@]}" fuzz run --sanitizer none ${FUZZ_BUILD_FLAGS:-} "$target" "$corpus" -- \
    -max_total_time="$seconds" -max_len=16384 -print_final_stats=1
