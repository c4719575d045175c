#!/usr/bin/env bash
# The Lambda packages exactly as users deploy them, built and run on this machine:
#   1. installs the Python tools into .venv (`scripts/bootstrap.sh dev`: SAM CLI, cargo-lambda with
#      zig, moto; skipped when up to date) and,
#      for arm64 packages on another machine, qemu's user-mode emulator and the arm64 C library
#      (apt-get install qemu-user libc6-arm64-cross) when they are missing,
#   2. `sam build`: both functions for the template's default architecture, which runs
#      `cargo lambda build --release` (arm64: with zig) into .aws-sam/build/<Function>/bootstrap,
#   3. checks each bootstrap is an executable for that architecture,
#   4. runs the demo with the two packaged bootstraps (under qemu-aarch64 for arm64 on another
#      machine) as its functions, against moto: the seed Creates must answer SUCCESS with the
#      stage variable set, a stack status event must re-point it, the Delete must clean up,
#   5. runs `sam package` as the README's publishing steps do, against moto's S3: the packaged
#      template must point at uploaded code, LICENSE and README and carry the application
#      metadata `sam publish` requires.
# Exits non-zero when the packages do not build, do not start, any check of the demo fails, or
# the packaging does not hold.
#
# Usage: scripts/package-test.sh [--no-build]   (--no-build runs the packages already in .aws-sam/build)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"
target_dir="${CARGO_TARGET_DIR:-${repo_root}/target}"
venv="${STAGEWIRE_VENV:-${repo_root}/.venv}"
build_dir="${repo_root}/.aws-sam/build"
sysroot=/usr/aarch64-linux-gnu
functions=(StageBindingFunction StageResyncFunction)

log() { printf 'package-test: %s\n' "$*"; }
die() { printf 'package-test: error: %s\n' "$*" >&2; exit 1; }

build=1
for arg in "$@"; do
  case "${arg}" in
    --no-build) build=0 ;;
    -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument ${arg} (usage: scripts/package-test.sh [--no-build])" ;;
  esac
done

bash scripts/bootstrap.sh dev
export PATH="${venv}/bin:${PATH}"
export STAGEWIRE_PYTHON="${STAGEWIRE_PYTHON:-${venv}/bin/python}"
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

log "sam package against moto's S3 (the upload of the publishing steps)"
port="$("${venv}/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"${venv}/bin/moto_server" -H 127.0.0.1 -p "${port}" >/dev/null 2>&1 &
moto_pid=$!
packaged="$(mktemp --suffix=.yaml)"
trap 'kill "${moto_pid}" 2>/dev/null || true; rm -f "${packaged}"' EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:${port}" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=AKIDSTAGEWIREPACKAGE AWS_SECRET_ACCESS_KEY=stagewire-package-dummy-secret
"${venv}/bin/python" - <<'PY'
import time, boto3
s3 = boto3.client("s3")
for _ in range(100):
    try:
        s3.create_bucket(Bucket="stagewire-package-test")
        break
    except Exception:
        time.sleep(0.2)
else:
    raise SystemExit("moto did not start")
PY
sam package --s3-bucket stagewire-package-test --output-template-file "${packaged}"
"${venv}/bin/python" - "${packaged}" <<'PY'
import sys
from samcli.yamlhelper import yaml_parse
from samcli.vendor.serverlessrepo.parser import get_app_metadata
template = yaml_parse(open(sys.argv[1]).read())
app = get_app_metadata(template)
app.validate(["name", "description", "author", "semantic_version"])  # sam publish's own check
uploaded = {"LicenseUrl": app.license_url, "ReadmeUrl": app.readme_url}
for name in ("StageBindingFunction", "StageResyncFunction"):
    uploaded[name + " CodeUri"] = template["Resources"][name]["Properties"]["CodeUri"]
bad = {k: v for k, v in uploaded.items() if not str(v).startswith("s3://stagewire-package-test/")}
if bad:
    raise SystemExit(f"not uploaded to S3: {bad}")
print(f"package-test: packaged {app.name} {app.semantic_version}: " + ", ".join(uploaded))
PY
log "the packaged template is ready for sam publish"
