#!/bin/bash
# vanbox kiosk browser: Chromium full screen on the van's touchscreen, kept alive.
#
# Started by vanbox-kiosk-browser.service (installed as /opt/vanbox/bin/kiosk-browser.sh).
# Without a desktop (no $DISPLAY / $WAYLAND_DISPLAY) it starts itself again inside the
# `cage` Wayland kiosk compositor, so Raspberry Pi OS Lite is enough.
#
# What it does:
#  - waits until the box answers on $KIOSK_HEALTH_URL, then starts Chromium in kiosk mode:
#    no error dialogs, no pinch zoom, no swipe navigation, no "restore pages?" bubble
#    after a power cut, touch events on, no translate bar, no update checks, incognito
#    (nothing a visitor typed stays on the SD card);
#  - checks $KIOSK_HEALTH_URL every $KIOSK_CHECK_EVERY seconds; after $KIOSK_FAILURES
#    failures in a row it closes the browser, waits for the box to answer again and
#    starts a fresh browser (a reloaded page instead of a stale error page);
#  - restarts the browser whenever it exits or crashes;
#  - watches the tab through Chromium's DevTools list on 127.0.0.1:$KIOSK_DEVTOOLS_PORT:
#    when no tab shows the kiosk (a blank tab, a crashed tab's page gone, a browser
#    error page, anything off the box) for $KIOSK_FAILURES checks, it restarts the
#    browser (the kiosk's service worker already keeps error pages off the screen while
#    the box restarts; this is the net under it);
#  - sets up screen blanking as configured ($KIOSK_BLANK_AFTER seconds, 0 = never).
#
# Settings come from the environment (/etc/vanbox/kiosk-browser.env via the unit):
#   KIOSK_URL          page to show            (default http://127.0.0.1:8080/)
#   KIOSK_HEALTH_URL   heartbeat to check      (default: /healthz on KIOSK_URL's host)
#   KIOSK_CHECK_EVERY  seconds between checks  (default 10)
#   KIOSK_FAILURES     failed checks before a restart (default 3)
#   KIOSK_BLANK_AFTER  seconds idle before the screen blanks; 0 = never (default 0)
#   KIOSK_PROFILE      Chromium profile folder (default $HOME/chromium)
#   KIOSK_DEVTOOLS_PORT  local DevTools port for the tab check; 0 = no tab check (default 9222)
#   KIOSK_EXTRA_FLAGS  more Chromium flags, space-separated
#   CHROMIUM           the browser binary (default: chromium or chromium-browser)
set -u

KIOSK_URL=${KIOSK_URL:-http://127.0.0.1:8080/}
if [ -z "${KIOSK_HEALTH_URL:-}" ]; then
  # scheme://host:port of KIOSK_URL + /healthz
  KIOSK_HEALTH_URL=$(printf '%s' "$KIOSK_URL" | sed -E 's#^([a-z]+://[^/]+).*#\1#')/healthz
fi
KIOSK_CHECK_EVERY=${KIOSK_CHECK_EVERY:-10}
KIOSK_FAILURES=${KIOSK_FAILURES:-3}
KIOSK_BLANK_AFTER=${KIOSK_BLANK_AFTER:-0}
KIOSK_PROFILE=${KIOSK_PROFILE:-${HOME:-/tmp}/chromium}
KIOSK_EXTRA_FLAGS=${KIOSK_EXTRA_FLAGS:-}
KIOSK_DEVTOOLS_PORT=${KIOSK_DEVTOOLS_PORT:-9222}
KIOSK_ORIGIN=$(printf '%s' "$KIOSK_URL" | sed -E 's#^([a-z]+://[^/]+).*#\1#')

log() { echo "kiosk-browser: $*" >&2; }
# sleep that the TERM trap can interrupt at once
nap() {
  sleep "$1" &
  wait $!
}

if [ -z "${CHROMIUM:-}" ]; then
  for c in chromium chromium-browser; do
    if command -v "$c" >/dev/null 2>&1; then CHROMIUM=$(command -v "$c"); break; fi
  done
fi
if [ -z "${CHROMIUM:-}" ] || [ ! -x "$CHROMIUM" ]; then
  log "Chromium not found; install it: sudo apt-get install chromium"
  exit 1
fi

# No display: run inside cage (a Wayland compositor that shows one program full screen).
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] && [ -z "${KIOSK_INSIDE:-}" ]; then
  if command -v cage >/dev/null 2>&1; then
    export KIOSK_INSIDE=1
    exec cage -d -- "$0" "$@"
  fi
  log "no display and no cage compositor; install it: sudo apt-get install cage"
  exit 1
fi

# shellcheck disable=SC2054 # the commas inside --disable-features=... are meant
FLAGS=(
  --kiosk
  --noerrdialogs
  --disable-infobars
  --no-first-run
  --disable-session-crashed-bubble
  --hide-crash-restore-bubble
  --disable-pinch
  --overscroll-history-navigation=0
  --touch-events=enabled
  --disable-features=Translate,TranslateUI,TouchpadOverscrollHistoryNavigation
  --disable-component-update
  --check-for-update-interval=31536000
  --password-store=basic
  --incognito
  --ozone-platform-hint=auto
  "--user-data-dir=$KIOSK_PROFILE"
)
if [ "$KIOSK_DEVTOOLS_PORT" != "0" ]; then
  # local only: the launcher reads the list of tabs, nothing else
  FLAGS+=(--remote-debugging-address=127.0.0.1 "--remote-debugging-port=$KIOSK_DEVTOOLS_PORT")
fi
# shellcheck disable=SC2206 # word splitting of the extra flags is intended
EXTRA=($KIOSK_EXTRA_FLAGS)

# The box's web server answers at all. A 503 from /healthz means "the box cannot store":
# the page then shows its own "please ask the team" screen, so the browser stays.
healthy() {
  local code
  if command -v curl >/dev/null 2>&1; then
    code=$(curl -sS -m 3 -o /dev/null -w '%{http_code}' "$KIOSK_HEALTH_URL" 2>/dev/null) || true
  else
    code=$(python3 -c 'import sys, urllib.request as u, urllib.error as e
try:
    print(u.urlopen(sys.argv[1], timeout=3).status)
except e.HTTPError as x:
    print(x.code)
except Exception:
    print("000")' "$KIOSK_HEALTH_URL" 2>/dev/null) || true
  fi
  [ -n "$code" ] && [ "$code" != "000" ] && [ "$code" -lt 500 -o "$code" = "503" ]
}

# The tab shows the kiosk: Chromium's DevTools list has a page on the kiosk's origin.
# Returns 0 (fine), 1 (no such page: blank, crashed away, error page, elsewhere) or
# 2 (no answer from DevTools yet: the browser is starting; not counted as a failure).
tab_state() {
  [ "$KIOSK_DEVTOOLS_PORT" != "0" ] || return 0
  python3 -c 'import json, sys, urllib.request as u
try:
    tabs = json.load(u.urlopen("http://127.0.0.1:%s/json/list" % sys.argv[1], timeout=3))
except Exception:
    sys.exit(2)
origin = sys.argv[2].rstrip("/") + "/"
pages = [t for t in tabs if t.get("type") == "page"]
sys.exit(0 if any(str(t.get("url", "")).startswith(origin) for t in pages) else 1)' \
    "$KIOSK_DEVTOOLS_PORT" "$KIOSK_ORIGIN" 2>/dev/null
}

wait_healthy() {
  local said=0
  until healthy; do
    if [ $said -eq 0 ]; then log "waiting for the box at $KIOSK_HEALTH_URL"; said=1; fi
    nap "$KIOSK_CHECK_EVERY"
  done
}

# A power cut leaves the profile marked "crashed"; mark it clean so no bubble appears.
mark_clean_exit() {
  local prefs="$KIOSK_PROFILE/Default/Preferences"
  if [ -f "$prefs" ]; then
    sed -i -E -e 's/"exited_cleanly": *false/"exited_cleanly":true/' \
      -e 's/"exit_type": *"[A-Za-z]*"/"exit_type":"Normal"/' "$prefs" 2>/dev/null || true
  fi
}

setup_blanking() {
  local n=$KIOSK_BLANK_AFTER
  if [ -n "${DISPLAY:-}" ] && command -v xset >/dev/null 2>&1; then
    if [ "$n" -eq 0 ]; then xset s off s noblank -dpms; else xset s "$n" s blank +dpms dpms "$n" "$n" "$n"; fi
    log "screen blanking (X11): ${n} s (0 = never)"
  elif [ "$n" -gt 0 ] && command -v swayidle >/dev/null 2>&1 && command -v wlopm >/dev/null 2>&1; then
    swayidle -w timeout "$n" "wlopm --off '*'" resume "wlopm --on '*'" &
    BLANK_PID=$!
    log "screen blanking (Wayland): after ${n} s"
  elif [ "$n" -gt 0 ]; then
    log "KIOSK_BLANK_AFTER=$n, but blanking needs xset (X11) or swayidle + wlopm (Wayland); the screen stays on"
  else
    log "screen blanking: never"
  fi
}

BROWSER_PID=
BLANK_PID=

start_browser() {
  mark_clean_exit
  "$CHROMIUM" "${FLAGS[@]}" "${EXTRA[@]}" "$KIOSK_URL" &
  BROWSER_PID=$!
  log "started $CHROMIUM (pid $BROWSER_PID) on $KIOSK_URL"
}

stop_browser() {
  [ -n "$BROWSER_PID" ] || return 0
  if kill -0 "$BROWSER_PID" 2>/dev/null; then
    kill -TERM "$BROWSER_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$BROWSER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$BROWSER_PID" 2>/dev/null
  fi
  wait "$BROWSER_PID" 2>/dev/null
  BROWSER_PID=
}

shutdown() {
  log "stopping"
  stop_browser
  [ -n "$BLANK_PID" ] && kill "$BLANK_PID" 2>/dev/null
  exit 0
}
trap shutdown TERM INT HUP

mkdir -p "$KIOSK_PROFILE"
setup_blanking
wait_healthy
start_browser
fails=0
tab_fails=0
while true; do
  nap "$KIOSK_CHECK_EVERY"
  if ! kill -0 "$BROWSER_PID" 2>/dev/null; then
    wait "$BROWSER_PID" 2>/dev/null
    log "browser exited (status $?); restarting"
    BROWSER_PID=
    wait_healthy
    start_browser
    fails=0
  elif healthy; then
    fails=0
    tab_state
    case $? in
      1)
        tab_fails=$((tab_fails + 1))
        if [ "$tab_fails" -ge "$KIOSK_FAILURES" ]; then
          log "the tab does not show the kiosk ($tab_fails checks); restarting the browser"
          stop_browser
          start_browser
          tab_fails=0
        fi
        ;;
      *) tab_fails=0 ;;
    esac
  else
    fails=$((fails + 1))
    if [ "$fails" -ge "$KIOSK_FAILURES" ]; then
      log "no answer from $KIOSK_HEALTH_URL $fails times; restarting the browser"
      stop_browser
      wait_healthy
      start_browser
      fails=0
    fi
  fi
done
