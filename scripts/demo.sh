#!/usr/bin/env bash
# The seed scenario end to end on this machine, with no AWS account:
#   1. installs moto, the demo's one Python tool, into .venv (`scripts/bootstrap.sh demo`;
#      skipped when up to date),
#   2. builds the function binaries, the CLI and the demo in debug mode (the first build takes
#      minutes; it says how long before it starts),
#   3. runs target/debug/demo, which starts moto, deploys the example ECS stacks and the API
#      stack EcsDemoApi (its REST API tagged as examples/ecs-demo-api.yaml tags it), runs the real
#      stage-binding and stage-resync binaries under a local Lambda Runtime API with the
#      template's defaults (BindingAuthorization ApiTags), calls GET /prod/helloworld through a
#      local stand-in for the deployed API, replaces the prod load balancer with a stack update
#      while requests run (the binding in the ECS stack switching once the new load balancer
#      serves), prints requests sent and failed, and stops everything it started.
# Exits with the demo's status: 0 when every step's check held (including no failed request).
#
# --keep leaves moto, the functions and the API Gateway stand-in running after the story and
# prints the environment (AWS_ENDPOINT_URL, ..., STAGEWIRE_TABLE) to point the stagewire CLI
# at them, and the stage URL for curl; Ctrl-C stops everything.
# STAGEWIRE_VENV puts the Python environment elsewhere (default: <repo>/.venv).
#
# Usage: scripts/demo.sh [--keep]
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"

bash scripts/bootstrap.sh demo
if [[ -n "${STAGEWIRE_VENV:-}" ]]; then
  export STAGEWIRE_PYTHON="${STAGEWIRE_PYTHON:-${STAGEWIRE_VENV}/bin/python}"
fi

target_dir="${CARGO_TARGET_DIR:-${repo_root}/target}"
bins=(stage-binding stage-resync stagewire demo)
first=0
for bin in "${bins[@]}"; do
  [[ -x "${target_dir}/debug/${bin}" ]] || first=1
done
if [[ ${first} -eq 1 ]]; then
  # Measured on 2 cores: 242 s for the first debug build of a fresh clone (9m37s with another
  # build running beside it); it leaves about 1.8 GB in target/. Later runs rebuild in seconds.
  echo "demo: first build of stage-binding, stage-resync, stagewire and demo (debug): this usually"
  echo "demo: takes about 4 minutes on 2 cores (up to 10 beside other builds) and fills about 1.8 GB in ${target_dir}; later runs take seconds"
else
  echo "demo: building stage-binding, stage-resync, stagewire and demo (debug)"
fi
started=${SECONDS}
cargo build --bin stage-binding --bin stage-resync --bin stagewire --bin demo
echo "demo: build took $((SECONDS - started)) s"

echo
exec "${target_dir}/debug/demo" "$@"
