#!/usr/bin/env bash
# The seed scenario end to end on this machine, with no AWS account:
#   1. installs the Python tools into .venv (scripts/bootstrap.sh; skipped when up to date),
#   2. builds the function binaries, the CLI and the demo in debug mode,
#   3. runs target/debug/demo, which starts moto, deploys the example stacks and EcsDemoAPI,
#      runs the real stage-binding and stage-resync binaries under a local Lambda Runtime API,
#      calls GET /prod/helloworld through a local stand-in for the deployed API, replaces the
#      prod load balancer with a stack update while requests run (the binding in the ECS stack
#      switching once the new load balancer serves), prints requests sent and failed, and stops
#      everything it started.
# Exits with the demo's status: 0 when every step's check held (including no failed request).
#
# Usage: scripts/demo.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"

bash scripts/bootstrap.sh

echo "demo: building stage-binding, stage-resync, stagewire and demo (debug)"
cargo build --bin stage-binding --bin stage-resync --bin stagewire --bin demo

target_dir="${CARGO_TARGET_DIR:-${repo_root}/target}"
echo
exec "${target_dir}/debug/demo" "$@"
