# Sourced by deploy/demo.sh and deploy/test.sh: makes .venv with vanbox installed.
# Works on a fresh Debian 12 / Raspberry Pi OS Bookworm; installs Debian packages it lacks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VANBOX_ROOT=$(pwd)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "vanbox: need root to run: $*  (install sudo or run as root)" >&2; return 1; fi
}

# apt_need PKG... : install the Debian packages that are not installed yet.
apt_need() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "vanbox: installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

python3 -c 'import sys; assert sys.version_info >= (3, 11), "vanbox needs Python 3.11 or newer"'
python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' 2>/dev/null || apt_need python3-venv

# venv_install EXTRAS : create .venv if needed and install vanbox (editable) with EXTRAS.
venv_install() {
  [ -x .venv/bin/python ] || python3 -m venv .venv
  local stamp=.venv/.vanbox-installed-$1
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "vanbox: installing the Python packages into .venv (log: .venv/pip.log)"
    if ! { .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip \
           && .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$1]"; } \
         > .venv/pip.log 2>&1; then
      tail -n 30 .venv/pip.log >&2
      echo "vanbox: installing the Python packages failed (above; all of it in .venv/pip.log)" >&2
      exit 1
    fi
    .venv/bin/python -c 'import firmware, telemetry, kiosk, paho.mqtt, gpiozero, serial, flask' \
      || { echo "vanbox: the installed packages do not import (see .venv/pip.log)" >&2; exit 1; }
    touch "$stamp"
  fi
}
