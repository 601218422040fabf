#!/usr/bin/env bash
# Quick start 2: install vanbox and what its tests need (mosquitto, Chromium), run every test.
# Extra arguments go to pytest (e.g. -x, -k gps).
source "$(dirname "$0")/dev-env.sh"
apt_need mosquitto mosquitto-clients chromium fonts-noto-core fonts-dejavu-core systemd
venv_install test
export GPIOZERO_PIN_FACTORY=mock
.venv/bin/ruff check --quiet . || { echo "vanbox: ruff found problems (above)" >&2; exit 1; }
# Three workers: most tests wait on brokers, browsers and child processes rather than on
# the CPU (2 cores: about 4.5 min instead of 10). VANBOX_TEST_WORKERS=0 runs them one by one.
exec .venv/bin/python -m pytest -n "${VANBOX_TEST_WORKERS:-3}" --dist loadfile "$@"
