#!/usr/bin/env bash
# Runs every check and test of stagewire on a fresh machine: installs the Python tools the
# tests need (moto, cfn-lint, SAM CLI for `sam validate --lint`: `scripts/bootstrap.sh test`)
# into .venv, lints the templates, checks formatting and clippy, then runs the unit and
# integration tests (which start their own moto server). No test needs cargo-lambda.
# STAGEWIRE_VENV puts the Python environment elsewhere (default: <repo>/.venv).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh test
if [[ -n "${STAGEWIRE_VENV:-}" ]]; then
  export STAGEWIRE_PYTHON="${STAGEWIRE_PYTHON:-${STAGEWIRE_VENV}/bin/python}"
fi
bash scripts/lint-templates.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo build --workspace --bins (tests run the function binaries)"
cargo build --workspace --bins
echo "== cargo test"
cargo test --workspace
