#!/usr/bin/env bash
# Runs every check and test of stagewire on a fresh machine: installs the Python tools (moto,
# cfn-lint, cargo-lambda, SAM CLI) into .venv, lints the templates, checks formatting and
# clippy, then runs the unit and integration tests (which start their own moto server).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
bash scripts/lint-templates.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo build --workspace --bins (tests run the function binaries)"
cargo build --workspace --bins
echo "== cargo test"
cargo test --workspace
