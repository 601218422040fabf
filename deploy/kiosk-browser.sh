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
#  - restarts the browser whenever it exits or crashes;
#  - watches the tab through Chromium's DevTools on 127.0.0.1:$KIOSK_DEVTOOLS_PORT
#    (kiosk/browser_watch.py): the tab must show the kiosk's address AND its page must
#    answer (`document.readyState`, within $KIOSK_PAGE_TIMEOUT s). A page that does not
#    answer (a crashed renderer, "Aw, Snap!", still listed under the kiosk's address) is
#    navigated to the start page, which brings a crashed renderer back at once; a page
#    that does not answer even then (a hung renderer) gets a fresh browser at once; a tab
#    off the kiosk (blank, a browser error page, another site) for $KIOSK_FAILURES checks
#    in a row gets a fresh browser once the box answers (no error page while it is away);
#  - while the box does not answer, a tab that shows the kiosk stays: its service worker
#    shows the kiosk's own "one moment" screen and returns to the start by itself within
#    seconds of the box's return (restarting the browser would blank the screen instead);
#  - without the tab check (KIOSK_DEVTOOLS_PORT=0, or browser_watch.py not found) it checks
#    $KIOSK_HEALTH_URL every $KIOSK_CHECK_EVERY seconds; after $KIOSK_FAILURES failures in
#    a row it closes the browser, waits for the box to answer again and starts a fresh one;
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
#   KIOSK_PAGE_TIMEOUT seconds the page may take to answer the tab check (default 5)
#   KIOSK_START_GRACE  seconds a new browser may take to open DevTools (default 30)
#   KIOSK_WATCH        path of browser_watch.py (default: beside this checkout's deploy/, else
#                      from the vanbox package of $VANBOX_PYTHON, /opt/vanbox/.venv/bin/python)
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
KIOSK_PAGE_TIMEOUT=${KIOSK_PAGE_TIMEOUT:-5}
KIOSK_START_GRACE=${KIOSK_START_GRACE:-30}
KIOSK_WATCH=${KIOSK_WATCH:-}
VANBOX_PYTHON=${VANBOX_PYTHON:-/opt/vanbox/.venv/bin/python}
# waiting for the box: look every second (or more often, if checks are more frequent)
WAIT_EVERY=$(awk -v c="$KIOSK_CHECK_EVERY" 'BEGIN { print (c < 1) ? c : 1 }')

log() { echo "kiosk-browser: $*" >&2; }
# sleep that the TERM trap can interrupt at once
nap() {
  sleep "$1" &
  wait $!
}

# Settings are checked once: a typo stops here with a clear message, not in a loop later.
bad_setting() {
  log "$1=${!1}: $2 (see /etc/vanbox/kiosk-browser.env)"
  exit 1
}
for v in KIOSK_CHECK_EVERY KIOSK_PAGE_TIMEOUT; do
  [[ ${!v} =~ ^[0-9]{1,3}(\.[0-9]+)?$ ]] || bad_setting "$v" "seconds, a number like 10 or 0.5"
done
awk -v c="$KIOSK_CHECK_EVERY" 'BEGIN { exit !(c >= 0.05) }' || bad_setting KIOSK_CHECK_EVERY "at least 0.05 s"
awk -v t="$KIOSK_PAGE_TIMEOUT" 'BEGIN { exit !(t >= 0.1 && t <= 60) }' ||
  bad_setting KIOSK_PAGE_TIMEOUT "between 0.1 and 60 s"
for v in KIOSK_FAILURES KIOSK_START_GRACE KIOSK_BLANK_AFTER KIOSK_DEVTOOLS_PORT; do
  [[ ${!v} =~ ^[0-9]{1,5}$ ]] || bad_setting "$v" "a whole number"
done
[ "$KIOSK_FAILURES" -ge 1 ] || bad_setting KIOSK_FAILURES "at least 1"
[ "$KIOSK_DEVTOOLS_PORT" -le 65535 ] || bad_setting KIOSK_DEVTOOLS_PORT "a TCP port (1-65535), 0 = off"

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
  # local only: the tab check reads the list of tabs and asks the kiosk page one question
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

# The tab check (kiosk/browser_watch.py, stdlib only): found beside this checkout, else in
# the installed vanbox package. Without it (or with KIOSK_DEVTOOLS_PORT=0) the launcher
# falls back to restarting the browser when /healthz fails.
find_watch() {
  [ -z "$KIOSK_WATCH" ] || return 0
  local here
  here=$(cd "$(dirname "$0")" && pwd)
  if [ -f "$here/../kiosk/browser_watch.py" ]; then
    KIOSK_WATCH="$here/../kiosk/browser_watch.py"
  elif [ -x "$VANBOX_PYTHON" ]; then
    KIOSK_WATCH=$("$VANBOX_PYTHON" -c 'import importlib.util as u, os
s = u.find_spec("kiosk")
print(os.path.join(list(s.submodule_search_locations)[0], "browser_watch.py"))' 2>/dev/null) || true
  fi
}
TAB_CHECK=0
if [ "$KIOSK_DEVTOOLS_PORT" != "0" ]; then
  find_watch
  if [ -n "$KIOSK_WATCH" ] && [ -f "$KIOSK_WATCH" ]; then
    TAB_CHECK=1
  else
    log "browser_watch.py not found (set KIOSK_WATCH); checking /healthz only"
  fi
fi

# One tab check; sets WATCH_SAID to its reason. Status as browser_watch.py: 0 fine,
# 1 the tab is off the kiosk, 2 no DevTools answer, 3 reloaded a dead page, 4 hung page.
tab_state() {
  # -I: not the script's folder on sys.path (kiosk/calendar.py would hide the stdlib one)
  WATCH_SAID=$(python3 -I "$KIOSK_WATCH" --port "$KIOSK_DEVTOOLS_PORT" --url "$KIOSK_URL" \
    --timeout "$KIOSK_PAGE_TIMEOUT" 2>&1)
}

wait_healthy() {
  local said=0
  until healthy; do
    if [ $said -eq 0 ]; then log "waiting for the box at $KIOSK_HEALTH_URL"; said=1; fi
    nap "$WAIT_EVERY"
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
STARTED_AT=0

start_browser() {
  mark_clean_exit
  "$CHROMIUM" "${FLAGS[@]}" "${EXTRA[@]}" "$KIOSK_URL" &
  BROWSER_PID=$!
  STARTED_AT=$SECONDS
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
restart_browser() {
  log "$1; restarting the browser"
  stop_browser
  wait_healthy
  start_browser
  fails=0
  tab_fails=0
}
while true; do
  nap "$KIOSK_CHECK_EVERY"
  if ! kill -0 "$BROWSER_PID" 2>/dev/null; then
    wait "$BROWSER_PID" 2>/dev/null
    log "browser exited (status $?); restarting"
    BROWSER_PID=
    wait_healthy
    start_browser
    fails=0
    tab_fails=0
  elif [ "$TAB_CHECK" = 1 ]; then
    tab_state
    case $? in
      0) tab_fails=0 ;;
      3) log "$WATCH_SAID"; tab_fails=0 ;;
      4) restart_browser "$WATCH_SAID" ;;
      64 | 126 | 127)
        log "the tab check cannot run ($WATCH_SAID); checking /healthz only"
        TAB_CHECK=0
        ;;
      2)
        # a browser that opened no DevTools long after its start is wedged
        if [ $((SECONDS - STARTED_AT)) -ge "$KIOSK_START_GRACE" ]; then
          tab_fails=$((tab_fails + 1))
          [ "$tab_fails" -lt "$KIOSK_FAILURES" ] || restart_browser "$WATCH_SAID ($tab_fails checks)"
        fi
        ;;
      *)
        tab_fails=$((tab_fails + 1))
        if [ "$tab_fails" -ge "$KIOSK_FAILURES" ]; then
          restart_browser "the tab does not show the kiosk ($tab_fails checks: $WATCH_SAID)"
        fi
        ;;
    esac
  elif healthy; then
    fails=0
  else
    fails=$((fails + 1))
    if [ "$fails" -ge "$KIOSK_FAILURES" ]; then
      restart_browser "no answer from $KIOSK_HEALTH_URL $fails times"
    fi
  fi
done
