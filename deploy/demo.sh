#!/usr/bin/env bash
# Quick start 1: install vanbox into .venv and run the simulated van.
# Extra arguments go to `vanbox demo` (e.g. --speed 20, --port 8081, --mqtt host:1883).
source "$(dirname "$0")/dev-env.sh"
venv_install demo
export GPIOZERO_PIN_FACTORY=mock
exec .venv/bin/vanbox demo "$@"
