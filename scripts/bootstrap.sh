#!/usr/bin/env bash
# Create the project's Python virtual environment (<repo>/.venv) and install the pinned tools
# of one requirement set, each a file in scripts/ that includes the smaller one with `-r`:
#   demo  requirements-demo.txt  moto_server (local AWS emulator)             scripts/demo.sh
#   test  requirements-test.txt  + cfn-lint and sam (template linting)        scripts/test.sh
#   dev   requirements-dev.txt   + cargo-lambda with zig (Lambda packages)    scripts/package-test.sh,
#                                                                             the README's deploy
# Without an argument: dev, everything.
#
# Idempotent per set: after a successful install the sha256 of the set's requirement files is
# recorded in .venv/.requirements-<set>.sha256 (and the stamps of the sets it includes), and the
# install is skipped while it matches and the set's tools are present. Set
# STAGEWIRE_FORCE_BOOTSTRAP=1 to reinstall anyway, PYTHON to choose the interpreter (default:
# python3), STAGEWIRE_VENV to put the environment elsewhere (default: <repo>/.venv).
#
# Usage: scripts/bootstrap.sh [demo|test|dev]
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"
venv="${STAGEWIRE_VENV:-${repo_root}/.venv}"
python="${PYTHON:-python3}"

log() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

set_name="${1:-dev}"
case "${set_name}" in
  demo) tools=(moto_server); included=() ;;
  test) tools=(moto_server cfn-lint sam); included=(demo) ;;
  dev) tools=(moto_server cfn-lint sam cargo-lambda); included=(test demo) ;;
  -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown requirement set ${set_name} (usage: scripts/bootstrap.sh [demo|test|dev])" ;;
esac
requirements="${script_dir}/requirements-${set_name}.txt"

command -v "${python}" >/dev/null 2>&1 || die "${python} not found; install Python 3.9 or newer"
[[ -f "${requirements}" ]] || die "missing ${requirements}"

"${python}" - <<'PY' || die "Python 3.9 or newer is required"
import sys
sys.exit(0 if sys.version_info >= (3, 9) else 1)
PY

# The sha256 of a requirement file and of every file it includes with -r, recursively.
set_hash() {
  "${python}" - "$1" <<'PY'
import hashlib, os, sys
digest = hashlib.sha256()
def add(path, seen):
    if path in seen:
        return
    seen.add(path)
    with open(path, "rb") as f:
        data = f.read()
    digest.update(data)
    for line in data.decode().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("-r", "--requirement"):
            add(os.path.join(os.path.dirname(path), parts[1]), seen)
add(sys.argv[1], set())
print(digest.hexdigest())
PY
}

stamp_of() { printf '%s/.requirements-%s.sha256' "${venv}" "$1"; }
want_hash="$(set_hash "${requirements}")"
stamp="$(stamp_of "${set_name}")"

tools_present() {
  local t
  for t in "${tools[@]}"; do
    [[ -x "${venv}/bin/${t}" ]] || return 1
  done
}

if [[ -z "${STAGEWIRE_FORCE_BOOTSTRAP:-}" && -f "${stamp}" ]] \
   && [[ "$(cat "${stamp}")" == "${want_hash}" ]] && tools_present; then
  log "${venv} is up to date with scripts/requirements-${set_name}.txt (sha256 ${want_hash:0:12}); nothing to do"
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
log "installing the ${set_name} tools from scripts/requirements-${set_name}.txt (${tools[*]})"
"${venv}/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
  --requirement "${requirements}"

# 3. Check that every tool runs before recording success.
log "checking the installed tools"
"${venv}/bin/moto_server" --help >/dev/null || die "moto_server does not run"
log "  moto_server  $("${venv}/bin/python" -c 'import moto; print(moto.__version__)')"
for t in "${tools[@]}"; do
  case "${t}" in
    cfn-lint) log "  cfn-lint     $("${venv}/bin/cfn-lint" --version 2>&1 | tail -n1)" ;;
    sam) log "  sam          $(SAM_CLI_TELEMETRY=0 "${venv}/bin/sam" --version 2>&1 | tail -n1)" ;;
    cargo-lambda) log "  cargo-lambda $("${venv}/bin/cargo-lambda" lambda --version 2>&1 | tail -n1)" ;;
  esac
done

printf '%s\n' "${want_hash}" > "${stamp}"
for inner in ${included[@]+"${included[@]}"}; do
  set_hash "${script_dir}/requirements-${inner}.txt" > "$(stamp_of "${inner}")"
done
log "done; tools are in ${venv}/bin (recorded sha256 ${want_hash:0:12} in ${stamp#"${repo_root}/"})"
