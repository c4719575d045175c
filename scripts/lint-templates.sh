#!/usr/bin/env bash
# Lint the CloudFormation/SAM templates of the repository:
#   - cfn-lint on template.yaml, spoke.yaml and examples/*.yaml
#   - sam validate --lint on template.yaml and spoke.yaml
# Runs offline (no AWS credentials or network needed). Exits non-zero on any finding, warnings
# included; a check may only be silenced in the template itself (Metadata cfn-lint ignore_checks
# with a comment giving the reason).
#
# Usage: scripts/lint-templates.sh   (run `scripts/bootstrap.sh test` first to install the tools;
#        STAGEWIRE_VENV names another Python environment than <repo>/.venv)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"
venv="${STAGEWIRE_VENV:-${repo_root}/.venv}"

for tool in cfn-lint sam; do
  if [[ ! -x "${venv}/bin/${tool}" ]]; then
    echo "lint-templates: ${venv}/bin/${tool} is missing; run scripts/bootstrap.sh test first" >&2
    exit 2
  fi
done

# sam and the SAM translator need a region to resolve pseudo parameters; no AWS call is made.
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}"
export SAM_CLI_TELEMETRY=0

shopt -s nullglob
templates=(template.yaml spoke.yaml examples/*.yaml)
status=0

echo "lint-templates: cfn-lint $("${venv}/bin/cfn-lint" --version 2>&1 | tail -n1 | sed 's/^cfn-lint //') on ${templates[*]}"
# Informational rules (I*) are included too, and any finding of any level fails.
if "${venv}/bin/cfn-lint" --include-checks I --non-zero-exit-code informational -- "${templates[@]}"; then
  echo "lint-templates: cfn-lint: no findings"
else
  echo "lint-templates: cfn-lint reported findings" >&2
  status=1
fi

for template in template.yaml spoke.yaml; do
  echo "lint-templates: sam validate --lint --template ${template}"
  if "${venv}/bin/sam" validate --lint --template "${template}"; then
    :
  else
    echo "lint-templates: sam validate reported findings on ${template}" >&2
    status=1
  fi
done

if [[ ${status} -eq 0 ]]; then
  echo "lint-templates: all templates passed"
fi
exit "${status}"
