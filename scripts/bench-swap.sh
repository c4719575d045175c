#!/usr/bin/env bash
# Failed requests while a stack update replaces the load balancer behind a stage variable, for
# each placement of the binding: 50 requests/s through the local stand-in for API Gateway's
# HTTP_PROXY integration, CloudFormation's order of events played against moto, the custom
# resource and the re-sync in process. Prints one markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --test integration zero_downtime::bench_swap -- --ignored --nocapture --test-threads=1 2>/dev/null \
  | sed -n '/^| binding |/,/^$/p'
