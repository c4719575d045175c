#!/usr/bin/env bash
# Measures stagewire on this machine and prints one markdown table:
#   1. installs the Python tools into .venv (scripts/bootstrap.sh; skipped when up to date),
#   2. builds the release function binaries and lambda_runtime's hello world
#      (bench/lambda_hello, the cold init baseline; cargo build --release) and the bench (debug),
#   3. creates bench/.venv from bench/requirements.txt (awslambdaric, crhelper, boto3) for the
#      crhelper + boto3 comparison function; when that fails the bench skips the comparison row,
#   4. runs target/debug/bench against target/release and prints the README's "Performance"
#      tables (cold init, seed Create and its round trips, a stack event with 3 and with 10,000
#      bindings, two full reconciles, 30 parallel Creates behind API Gateway's account quotas,
#      peak RSS, sizes in MiB, the comparison).
# Extra arguments go to the bench, e.g. `scripts/bench.sh --bin-dir target/debug` to measure the
# debug binaries (the release build is then skipped), or `--spawns 3`.
# `scripts/bench.sh --fanout` measures the full reconcile fanned out over SQS instead and prints
# its one table (10,000 and 100,000 bindings over 1,000 stages, their sources in 10 accounts and
# 2 regions, 1, 4 and 16 workers; `--sizes`, `--stages` and `--workers` change them); it needs
# no comparison function.
#
# Usage: scripts/bench.sh [--bin-dir DIR] [--spawns N] [--bindings N] [--stages N]
#        scripts/bench.sh --fanout [--bin-dir DIR] [--sizes N,N] [--stages N] [--workers N,N]
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"
target_dir="${CARGO_TARGET_DIR:-${repo_root}/target}"
python="${PYTHON:-python3}"

log() { printf 'bench: %s\n' "$*" >&2; }

bash scripts/bootstrap.sh >&2

bin_dir=""
fanout=false
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [[ "${args[i]}" == "--bin-dir" && $((i + 1)) -lt ${#args[@]} ]]; then
    bin_dir="${args[i + 1]}"
  fi
  if [[ "${args[i]}" == "--fanout" ]]; then
    fanout=true
  fi
done

if [[ -z "${bin_dir}" ]]; then
  log "building stage-binding, stage-resync and the hello world baseline (release)"
  cargo build --release --bin stage-binding --bin stage-resync --bin lambda-hello >&2
  args+=(--bin-dir "${target_dir}/release")
else
  log "measuring the binaries in ${bin_dir}; building them is left to the caller"
fi
log "building the bench"
cargo build --bin bench >&2

if [[ "${fanout}" == true ]]; then
  exec "${target_dir}/debug/bench" "${args[@]}"
fi

# The comparison function's environment; recreated when bench/requirements.txt changes.
venv="${repo_root}/bench/.venv"
requirements="${repo_root}/bench/requirements.txt"
stamp="${venv}/.requirements.sha256"
want="$(sha256sum "${requirements}" | cut -d' ' -f1)"
if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
  log "bench/.venv is up to date with bench/requirements.txt"
else
  log "creating bench/.venv (awslambdaric, crhelper, boto3)"
  if "${python}" -m venv "${venv}" >&2 \
     && "${venv}/bin/python" -m pip install --quiet --upgrade pip >&2 \
     && "${venv}/bin/python" -m pip install --quiet -r "${requirements}" >&2; then
    printf '%s\n' "${want}" > "${stamp}"
  else
    log "bench/.venv could not be set up (awslambdaric builds a C extension: it needs a C++"
    log "compiler, make, cmake, autoconf and libtool); the comparison row will be skipped"
  fi
fi

exec "${target_dir}/debug/bench" --python "${venv}/bin/python" "${args[@]}"
