#!/usr/bin/env bash
# Create the project's Python virtual environment at <repo>/.venv and install the
# pinned development tools listed in scripts/requirements-dev.txt:
#   moto_server (local AWS emulator), cfn-lint, cargo-lambda, sam (AWS SAM CLI).
#
# Idempotent: the sha256 of requirements-dev.txt is recorded in
# .venv/.requirements-dev.sha256 after a successful install, and the install is
# skipped while it matches (and the tools are present). Set STAGEWIRE_FORCE_BOOTSTRAP=1
# to reinstall anyway. Set PYTHON to choose the interpreter (default: python3).
#
# Usage: scripts/bootstrap.sh
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"
venv="${repo_root}/.venv"
requirements="${script_dir}/requirements-dev.txt"
stamp="${venv}/.requirements-dev.sha256"
python="${PYTHON:-python3}"
tools=(moto_server cfn-lint cargo-lambda sam)

log() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

command -v "${python}" >/dev/null 2>&1 || die "${python} not found; install Python 3.9 or newer"
[[ -f "${requirements}" ]] || die "missing ${requirements}"

"${python}" - <<'PY' || die "Python 3.9 or newer is required"
import sys
sys.exit(0 if sys.version_info >= (3, 9) else 1)
PY

sha256_of() {
  "${python}" - "$1" <<'PY'
import hashlib, sys
with open(sys.argv[1], "rb") as f:
    print(hashlib.sha256(f.read()).hexdigest())
PY
}

want_hash="$(sha256_of "${requirements}")"

tools_present() {
  local t
  for t in "${tools[@]}"; do
    [[ -x "${venv}/bin/${t}" ]] || return 1
  done
}

if [[ -z "${STAGEWIRE_FORCE_BOOTSTRAP:-}" && -f "${stamp}" ]] \
   && [[ "$(cat "${stamp}")" == "${want_hash}" ]] && tools_present; then
  log "${venv} is up to date with scripts/requirements-dev.txt (sha256 ${want_hash:0:12}); nothing to do"
  exit 0
fi

# 1. The virtual environment.
if [[ -x "${venv}/bin/python" ]] && "${venv}/bin/python" -m pip --version >/dev/null 2>&1; then
  log "reusing virtual environment ${venv}"
else
  log "creating virtual environment ${venv} with $(${python} --version 2>&1)"
  rm -rf "${venv}"
  if ! "${python}" -m venv "${venv}" 2>/dev/null; then
    # Debian/Ubuntu system Pythons ship venv without ensurepip (package python3-venv).
    # Fall back to virtualenv from PyPI, installed for the current user.
    log "'${python} -m venv' is unavailable; falling back to virtualenv from PyPI"
    rm -rf "${venv}"
    "${python}" -m pip install --user --quiet virtualenv \
      || "${python}" -m pip install --user --quiet --break-system-packages virtualenv \
      || die "cannot create a virtual environment: install python3-venv or virtualenv"
    "${python}" -m virtualenv --quiet "${venv}"
  fi
fi

# 2. The tools. The stamp is removed first so that an interrupted install is redone.
rm -f "${stamp}"
log "upgrading pip in ${venv}"
"${venv}/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
log "installing pinned tools from scripts/requirements-dev.txt (this takes a few minutes the first time)"
"${venv}/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
  --requirement "${requirements}"

# 3. Check that every tool runs before recording success.
log "checking the installed tools"
"${venv}/bin/moto_server" --help >/dev/null || die "moto_server does not run"
log "  moto_server  $("${venv}/bin/python" -c 'import moto; print(moto.__version__)')"
log "  cfn-lint     $("${venv}/bin/cfn-lint" --version 2>&1 | tail -n1)"
log "  cargo-lambda $("${venv}/bin/cargo-lambda" lambda --version 2>&1 | tail -n1)"
log "  sam          $(SAM_CLI_TELEMETRY=0 "${venv}/bin/sam" --version 2>&1 | tail -n1)"

printf '%s\n' "${want_hash}" > "${stamp}"
log "done; tools are in ${venv}/bin (recorded sha256 ${want_hash:0:12} in ${stamp#"${repo_root}/"})"
