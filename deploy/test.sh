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
# Two workers by default, one per core (pytest-xdist): every browser test runs on one of
# them, one after another (tests/conftest.py), so the browser's tap and reload timings are
# not starved by a third process. VANBOX_TEST_WORKERS=3 is about 7 min on 2 cores (most
# tests wait on brokers, browsers and child processes); 0 runs one test after another
# (about 13 min).
exec .venv/bin/python -m pytest -n "${VANBOX_TEST_WORKERS:-2}" --dist loadgroup "$@"
