#!/usr/bin/env bash
# Installs what Custodia needs on a fresh Debian machine: system packages (when root) and the venv.
#   scripts/setup.sh            the product (ffmpeg for media facts and the demo recorder; Noto CJK, the font the
#                               extraction lists and handover receipts embed)
#   scripts/setup.sh test       plus what the test suite and benchmarks use (Chromium, b3sum, umockdev, nginx, CJK fonts,
#                               wrk, and Go with golang.org/x/mod: a third party's checker of the audit log)
set -euo pipefail
cd "$(dirname "$0")/.."

want=(ffmpeg fonts-noto-cjk)
if [ "${1:-}" = "test" ]; then
  want+=(b3sum chromium chromium-driver umockdev gir1.2-umockdev-1.0 nginx-light wrk golang-go golang-golang-x-mod-dev)
fi

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "warning: missing system packages (install them as root): ${missing[*]}" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip wheel
fi
extra=""
[ "${1:-}" = "test" ] && extra="[test]"
stamp=".venv/.custodia-installed${extra}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q -e ".${extra}"
  touch "$stamp"
fi
