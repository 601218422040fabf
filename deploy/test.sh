#!/usr/bin/env bash
# Quick start 2: install vanbox and what its tests need (mosquitto, Chromium), run every test.
# Extra arguments go to pytest (e.g. -x, -k gps).
source "$(dirname "$0")/dev-env.sh"
# debootstrap + systemd-container: the box's units under a real systemd (tests/deploy/
# test_systemd_boot.py); iproute2: the mobile-link test bed (network namespaces, tc netem);
# nginx: the hub's caching proxy (tests/deploy/test_nginx_cache.py); postgresql: the hub on
# PostgreSQL (tests/pg.py starts a throwaway cluster of its own with initdb and pg_ctl).
apt_need mosquitto mosquitto-clients chromium fonts-noto-core fonts-dejavu-core systemd \
  debootstrap systemd-container iproute2 nginx postgresql
venv_install test
export GPIOZERO_PIN_FACTORY=mock
.venv/bin/ruff check --quiet . || { echo "vanbox: ruff found problems (above)" >&2; exit 1; }
# One test after another by default (about 10 min on 2 cores). VANBOX_TEST_WORKERS=3 runs
# three workers (pytest-xdist, about 5 min): most tests wait on brokers, browsers and child
# processes rather than on the CPU, but a few browser tests that measure taps and reloads
# can then miss their time window on a loaded 2-core machine.
exec .venv/bin/python -m pytest -n "${VANBOX_TEST_WORKERS:-0}" --dist loadgroup "$@"
