#!/usr/bin/env bash
# The Lambda packages exactly as users deploy them, built and run on this machine:
#   1. installs the Python tools into .venv (scripts/bootstrap.sh; skipped when up to date) and,
#      for arm64 packages on another machine, qemu's user-mode emulator and the arm64 C library
#      (apt-get install qemu-user libc6-arm64-cross) when they are missing,
#   2. `sam build`: both functions for the template's default architecture, which runs
#      `cargo lambda build --release` (arm64: with zig) into .aws-sam/build/<Function>/bootstrap,
#   3. checks each bootstrap is an executable for that architecture,
#   4. runs the demo with the two packaged bootstraps (under qemu-aarch64 for arm64 on another
#      machine) as its functions, against moto: the seed Creates must answer SUCCESS with the
#      stage variable set, a stack status event must re-point it, the Delete must clean up.
# Exits non-zero when the packages do not build, do not start, or any check of the demo fails.
#
# Usage: scripts/package-test.sh [--no-build]   (--no-build runs the packages already in .aws-sam/build)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"
target_dir="${CARGO_TARGET_DIR:-${repo_root}/target}"
venv="${repo_root}/.venv"
build_dir="${repo_root}/.aws-sam/build"
sysroot=/usr/aarch64-linux-gnu
functions=(StageBindingFunction StageResyncFunction)

log() { printf 'package-test: %s\n' "$*"; }
die() { printf 'package-test: error: %s\n' "$*" >&2; exit 1; }

build=1
for arg in "$@"; do
  case "${arg}" in
    --no-build) build=0 ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument ${arg} (usage: scripts/package-test.sh [--no-build])" ;;
  esac
done

bash scripts/bootstrap.sh
export PATH="${venv}/bin:${PATH}"
export SAM_CLI_TELEMETRY=0

# The template's default architecture (the Architecture parameter): arm64 or x86_64.
arch="$("${venv}/bin/python" - <<'PY'
from samcli.yamlhelper import yaml_parse
with open("template.yaml") as f:
    print(yaml_parse(f.read())["Parameters"]["Architecture"]["Default"])
PY
)"
case "${arch}" in
  arm64) elf_machine=183 ;;   # EM_AARCH64
  x86_64) elf_machine=62 ;;   # EM_X86_64
  *) die "template.yaml: unexpected default Architecture ${arch}" ;;
esac
log "the template's default architecture: ${arch}"

# How a bootstrap of that architecture runs here.
launcher=""
if [[ "${arch}" == arm64 && "$(uname -m)" != aarch64 ]]; then
  if ! command -v qemu-aarch64 >/dev/null 2>&1 || [[ ! -e "${sysroot}/lib/ld-linux-aarch64.so.1" ]]; then
    log "installing qemu-user and libc6-arm64-cross (apt-get) to run arm64 packages"
    sudo=()
    [[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    packages=(qemu-user libc6-arm64-cross)
    "${sudo[@]}" apt-get install -y --no-install-recommends "${packages[@]}" \
      || { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y --no-install-recommends "${packages[@]}"; } \
      || die "cannot install ${packages[*]}"
  fi
  launcher="qemu-aarch64 -L ${sysroot}"
  log "arm64 packages run under $(qemu-aarch64 --version | head -n1)"
fi

if [[ ${build} -eq 1 ]]; then
  log "sam build (cargo lambda build --release, ${arch}); CARGO_TARGET_DIR=${target_dir}"
  started=${SECONDS}
  sam build
  log "sam build took $((SECONDS - started)) s"
else
  log "--no-build: running the packages already in ${build_dir#"${repo_root}/"}"
fi

for f in "${functions[@]}"; do
  bootstrap="${build_dir}/${f}/bootstrap"
  [[ -x "${bootstrap}" ]] || die "${bootstrap#"${repo_root}/"} is missing or not executable"
  magic="$(od -An -c -N4 "${bootstrap}" | tr -d ' ')"
  machine="$(od -An -tu2 -j18 -N2 "${bootstrap}" | tr -d ' ')"
  [[ "${magic}" == '177ELF' && "${machine}" == "${elf_machine}" ]] \
    || die "${bootstrap#"${repo_root}/"} is not a ${arch} executable (ELF machine ${machine:-none})"
  log "${f}/bootstrap: ${arch} executable, $(stat -c %s "${bootstrap}") bytes"
done

# The same build as scripts/demo.sh (same packages, so same features): nothing to do after it.
log "building the demo and the stagewire CLI (debug, as scripts/demo.sh)"
cargo build --bin stage-binding --bin stage-resync --bin stagewire --bin demo

log "running the demo with the packaged functions${launcher:+ under ${launcher}}"
started=${SECONDS}
status=0
"${target_dir}/debug/demo" \
  --stage-binding "${build_dir}/StageBindingFunction/bootstrap" \
  --stage-resync "${build_dir}/StageResyncFunction/bootstrap" \
  ${launcher:+--launcher "${launcher}"} || status=$?
log "the packaged functions' run took $((SECONDS - started)) s"
if [[ ${status} -ne 0 ]]; then
  die "the packaged functions failed the demo (exit status ${status})"
fi
log "both ${arch} packages built, started and passed the seed scenario"
