#!/bin/bash
# shellcheck disable=SC2016 # the sh -c '...' snippets get their arguments as $1, $2
# vanbox installer for a Raspberry Pi (Raspberry Pi OS Bookworm, 64-bit) or Debian 12.
#
#   sudo deploy/install.sh              install or update, start the services
#   sudo deploy/install.sh --gps-hat    also switch the Pi's serial port to a GPS HAT
#   sudo deploy/install.sh --bridge     also run a local mosquitto bridged to the central broker
#   sudo deploy/install.sh --no-kiosk   no touchscreen browser (a box without a screen)
#   sudo deploy/install.sh --uninstall  remove services, program and user; keep config and data
#   sudo deploy/install.sh --uninstall --purge   ... and delete config and data too
#   deploy/install.sh --dry-run         print every action, change nothing
#   deploy/install.sh --root DIR        install the files under DIR (a throwaway root for tests);
#                                       apt-get, useradd, chown and systemctl are printed, not run
#   --source PATH                       install vanbox from PATH (a checkout or a wheel)
#                                       instead of this checkout
#
# It asks nothing. Running it twice changes nothing the second time. It never overwrites
# /etc/vanbox/vanbox.toml; it prints what to edit there. Exit status 3: installed, but a
# service did not start (the summary says where to look).
#
# Where things go:
#   /opt/vanbox/.venv           Python venv with vanbox (pip install of this checkout)
#   /usr/local/bin/vanbox       -> /opt/vanbox/.venv/bin/vanbox
#   /opt/vanbox/bin/kiosk-browser.sh, /opt/vanbox/README.md, /opt/vanbox/vanbox.example.toml
#   /etc/vanbox/vanbox.toml     the configuration (from the example, if missing)
#   /etc/vanbox/kiosk-browser.env  touchscreen browser settings (if missing)
#   /var/lib/vanbox/            the database (owner vanbox)
#   /etc/systemd/system/vanbox.service, vanbox-kiosk-browser.service, vanbox-prune.{service,timer}
#   /etc/systemd/journald.conf.d/vanbox.conf     journal size bounds
#   /etc/udev/rules.d/99-vanbox-gps.rules        /dev/vanbox-gps for USB GPS receivers
#   --bridge: /etc/mosquitto/conf.d/van-bridge.conf, /etc/systemd/system/mosquitto.service.d/vanbox.conf
#   --gps-hat: enable_uart=1 in config.txt, serial console off (raspi-config nonint)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPLOY=$REPO/deploy
ROOT=""
DRY=0
GPS_HAT=0
BRIDGE=0
KIOSK=1
ACTION=install
PURGE=0
SOURCE=$REPO
PYTHON=${PYTHON:-python3}
# Extra pip arguments, e.g. PIP_INSTALL_ARGS="--no-deps" for an offline test.
read -r -a PIP_ARGS <<<"${PIP_INSTALL_ARGS:-}"
USER_NAME=vanbox
GROUPS_WANTED=(gpio dialout video render input)
# The Python packages of pyproject.toml's [tool.setuptools.packages.find]: all of them,
# since `vanbox` imports every subcommand's module (hub too) before it runs one.
PACKAGES=(firmware telemetry kiosk hub)
# (the timer first: stopped before its service, it cannot start it again during --uninstall)
UNITS=(vanbox-prune.timer vanbox.service vanbox-prune.service vanbox-kiosk-browser.service)

usage() { sed -n '3,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --root) ROOT=$(realpath -m "${2:?--root needs a directory}"); shift ;;
    --root=*) ROOT=$(realpath -m "${1#--root=}") ;;
    --gps-hat) GPS_HAT=1 ;;
    --bridge) BRIDGE=1 ;;
    --no-kiosk) KIOSK=0 ;;
    --uninstall) ACTION=uninstall ;;
    --purge) PURGE=1 ;;
    --source) SOURCE=${2:?--source needs a path}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$PURGE" = 1 ] && [ "$ACTION" != uninstall ]; then
  echo "install.sh: --purge goes with --uninstall" >&2; exit 2
fi
if [ "$DRY" = 0 ] && [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run it as root: sudo $0 $*  (or --dry-run to see what it would do)" >&2; exit 1
fi

# --- helpers -------------------------------------------------------------------------
R() { printf '%s%s' "$ROOT" "$1"; }   # a path inside the target root
CHANGES=0
log() { echo "$*"; }
ok() { log "  ok      $*"; }
note() { log "  note    $*"; }

# do_it DESCRIPTION CMD...: a change to the target (files under the root).
do_it() {
  local what=$1; shift
  CHANGES=$((CHANGES + 1))
  if [ "$DRY" = 1 ]; then log "  would   $what"; else log "  do      $what"; "$@"; fi
}
# sys_do CMD...: a change to the running system (packages, users, services): printed
# with --dry-run, printed and skipped with --root, run otherwise.
sys_do() {
  if [ "$DRY" = 1 ]; then CHANGES=$((CHANGES + 1)); log "  would   run: $*"
  elif [ -n "$ROOT" ]; then log "  skip    (--root) $*"
  else CHANGES=$((CHANGES + 1)); log "  run     $*"; "$@"; fi
}
have() { command -v "$1" >/dev/null 2>&1; }
# (no `grep -q` after a pipe: with pipefail, the writer's SIGPIPE would count as failure)
pkg_installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
POLICY=""
pkg_available() { # one apt-cache call for all the optional packages
  [ -n "$POLICY" ] || POLICY=$(apt-cache policy chromium python3-lgpio 2>/dev/null || echo none)
  awk -v p="$1:" '$1 == p {f = 1; next} /^[^ ]/ {f = 0} f && $1 == "Candidate:" && $2 ~ /^[0-9]/ {ok = 1}
    END {exit !ok}' <<<"$POLICY"
}
user_exists() { [ -z "$ROOT" ] && getent passwd "$USER_NAME" >/dev/null 2>&1; }

# put_file SRC DEST MODE: install SRC at DEST unless it is there already, same content
# and mode. Returns 0 when it (would have) changed something.
put_file() {
  local src=$1 dest=$2 mode=$3 d
  d=$(R "$dest")
  if [ -f "$d" ] && cmp -s "$src" "$d"; then
    if [ "$(stat -c %a "$d")" != "$mode" ]; then do_it "chmod $mode $dest" chmod "$mode" "$d"; return 0; fi
    ok "$dest"
    return 1
  fi
  do_it "write $dest" install -D -m "$mode" "$src" "$d"
  return 0
}
# put_new SRC DEST MODE: install SRC at DEST only if DEST does not exist (config files).
put_new() {
  local src=$1 dest=$2 mode=$3
  if [ -e "$(R "$dest")" ]; then ok "$dest (kept as it is)"; return 1; fi
  do_it "write $dest" install -D -m "$mode" "$src" "$(R "$dest")"
  return 0
}
# ensure_group PATH GROUP: PATH belongs to GROUP (a change of ownership, like chown: printed
# and skipped with --root; a note if the group does not exist).
ensure_group() {
  local p=$1 grp=$2 d
  d=$(R "$p")
  if [ "$DRY" = 0 ] && [ ! -e "$d" ]; then return 0; fi
  if [ -e "$d" ] && [ "$(stat -c %G "$d")" = "$grp" ]; then ok "$p (group $grp)"; return 0; fi
  if [ -z "$ROOT" ] && [ "$DRY" = 0 ] && ! getent group "$grp" >/dev/null 2>&1; then
    note "no group $grp: run chgrp $grp $p once mosquitto is installed"; return 0
  fi
  sys_do chgrp "$grp" "$d"
}
ensure_dir() {
  local dir=$1 mode=$2 d
  d=$(R "$dir")
  if [ -d "$d" ]; then
    if [ "$(stat -c %a "$d")" != "$mode" ]; then do_it "chmod $mode $dir" chmod "$mode" "$d"; else ok "$dir/"; fi
  else
    do_it "mkdir -m $mode $dir" install -d -m "$mode" "$d"
  fi
}
ensure_symlink() {
  local target=$1 link=$2 l
  l=$(R "$link")
  if [ -L "$l" ] && [ "$(readlink "$l")" = "$target" ]; then ok "$link -> $target"; return; fi
  do_it "ln -sfn $target $link" sh -c 'mkdir -p "$(dirname "$2")" && ln -sfn "$1" "$2"' - "$target" "$l"
}
remove() {
  local p=$1
  if [ -e "$(R "$p")" ] || [ -L "$(R "$p")" ]; then do_it "remove $p" rm -rf "$(R "$p")"; else ok "$p (absent)"; fi
}
# remove_empty_dir DIR: remove DIR if it is empty and no Debian package ships it.
remove_empty_dir() {
  local d
  d=$(R "$1")
  if [ ! -d "$d" ] || [ -n "$(ls -A "$d")" ]; then return 0; fi
  if [ -z "$ROOT" ] && dpkg-query -S "$1" >/dev/null 2>&1; then return 0; fi
  do_it "remove $1/" rmdir "$d"
}
# chown_to_vanbox PATH: give PATH to the vanbox user unless it has it already.
chown_to_vanbox() {
  local p=$1
  if user_exists && [ -e "$p" ] && [ "$(stat -c %U "$p")" = "$USER_NAME" ]; then ok "$p owned by $USER_NAME"; return; fi
  sys_do chown -R "$USER_NAME:$USER_NAME" "$(R "$p")"
}
# The source's fingerprint: which vanbox the venv holds.
source_hash() {
  if [ -d "$SOURCE" ]; then
    (cd "$SOURCE" && find "${PACKAGES[@]}" pyproject.toml -type f \
      -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
  else
    sha256sum "$SOURCE" | cut -d' ' -f1
  fi
}
# needs_reload: systemd has an older copy of one of vanbox's units than the disk.
needs_reload() {
  [ -z "$ROOT" ] && have systemctl || return 1
  local u
  for u in "${UNITS[@]}"; do
    if [ "$(systemctl show -P NeedDaemonReload "$u" 2>/dev/null)" = yes ]; then return 0; fi
  done
  return 1
}
# udev_do ARGS...: udevadm ARGS, unless this system has no udev (a container, a chroot):
# then the rule takes effect wherever udev runs, and there is nothing to reload.
udev_do() {
  if [ "$DRY" = 0 ] && [ -z "$ROOT" ] && ! have udevadm; then note "no udevadm here (no udev): skipped udevadm $*"; return 0; fi
  sys_do udevadm "$@"
}
systemctl_state() { # systemctl_state is-enabled|is-active UNIT -> 0 if so (never with --root)
  [ -z "$ROOT" ] && have systemctl && systemctl "$1" --quiet "$2" 2>/dev/null
}

# pip_install PYTHON: install the source into that venv. A checkout is copied to a
# temporary folder first, so pip's build files never land (root-owned) in the checkout.
pip_install() {
  local py=$1 src=$SOURCE tmp=""
  if [ -d "$SOURCE" ]; then
    tmp=$(mktemp -d)
    local p
    for p in "${PACKAGES[@]}" pyproject.toml README.md; do cp -r "$SOURCE/$p" "$tmp"/; done
    find "$tmp" -name __pycache__ -prune -exec rm -rf {} +
    src=$tmp
  fi
  # --no-cache-dir: no copy of every wheel left in /root/.cache on the SD card
  "$py" -m pip install -q --disable-pip-version-check --no-cache-dir --upgrade "${PIP_ARGS[@]}" "$src"
  local rc=$?
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
  return $rc
}

# --- install -------------------------------------------------------------------------
install_packages() {
  log "packages"
  local pkgs=(python3 python3-venv python3-pip sqlite3 curl mosquitto-clients ca-certificates)
  if [ "$BRIDGE" = 1 ]; then pkgs+=(mosquitto); fi
  if [ "$KIOSK" = 1 ]; then
    pkgs+=(cage fonts-noto-core fonts-noto-color-emoji)
    if pkg_available chromium; then pkgs+=(chromium); else pkgs+=(chromium-browser); fi
  fi
  # gpiozero's pin library on the Pi 5 (and newer OS): from Raspberry Pi OS's archive
  if pkg_available python3-lgpio; then pkgs+=(python3-lgpio); fi
  local missing=() p
  for p in "${pkgs[@]}"; do
    pkg_installed "$p" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then ok "installed: ${pkgs[*]}"; return; fi
  sys_do apt-get update -qq
  sys_do env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

install_user() {
  log "user $USER_NAME"
  local groups=() g
  for g in "${GROUPS_WANTED[@]}"; do
    if getent group "$g" >/dev/null 2>&1; then groups+=("$g"); else note "group $g does not exist here (not a Raspberry Pi OS?): skipped"; fi
  done
  local list
  list=$(IFS=,; echo "${groups[*]}")
  if ! user_exists; then
    sys_do useradd --system --user-group --home-dir /var/lib/vanbox --no-create-home \
      --shell /usr/sbin/nologin ${list:+--groups "$list"} "$USER_NAME"
    return
  fi
  for g in "${groups[@]}"; do
    if id -nG "$USER_NAME" | tr ' ' '\n' | grep -x "$g" >/dev/null; then ok "$USER_NAME in group $g"; else sys_do usermod -aG "$g" "$USER_NAME"; fi
  done
}

install_program() {
  log "program"
  ensure_dir /opt/vanbox 755
  ensure_dir /opt/vanbox/bin 755
  local venv=/opt/vanbox/.venv
  if [ -x "$(R $venv/bin/python)" ]; then
    ok "$venv"
  else
    # --system-site-packages: Debian's pip (python3-pip) and, on the Pi, python3-lgpio
    # are used from the system; --without-pip saves a minute of ensurepip on a Pi.
    do_it "create the venv $venv" "$PYTHON" -m venv --system-site-packages --without-pip "$(R $venv)"
  fi
  local want have_hash=""
  want=$(source_hash)
  [ -f "$(R $venv/.vanbox-source)" ] && have_hash=$(cat "$(R $venv/.vanbox-source)")
  if [ "$want" = "$have_hash" ]; then
    ok "vanbox in $venv is this checkout ($SOURCE)"
  else
    do_it "pip install $SOURCE into $venv" pip_install "$(R $venv/bin/python)"
    do_it "remember the installed source" sh -c 'echo "$1" > "$2"' - "$want" "$(R $venv/.vanbox-source)"
    PROGRAM_CHANGED=1
  fi
  ensure_symlink $venv/bin/vanbox /usr/local/bin/vanbox
  put_file "$DEPLOY/kiosk-browser.sh" /opt/vanbox/bin/kiosk-browser.sh 755 || true
  put_file "$DEPLOY/vanbox.example.toml" /opt/vanbox/vanbox.example.toml 644 || true
  put_file "$REPO/README.md" /opt/vanbox/README.md 644 || true
}

install_config() {
  log "configuration and data"
  ensure_dir /etc/vanbox 755
  if put_new "$DEPLOY/vanbox.example.toml" /etc/vanbox/vanbox.toml 640; then NEW_CONFIG=1; fi
  if [ "$KIOSK" = 1 ]; then
    local env
    env=$(mktemp)
    cat >"$env" <<'EOF'
# Settings of the touchscreen browser (vanbox-kiosk-browser.service); see
# /opt/vanbox/bin/kiosk-browser.sh. After editing: sudo systemctl restart vanbox-kiosk-browser
KIOSK_URL=http://127.0.0.1:8080/
# Seconds without a touch before the screen blanks; 0 = never.
KIOSK_BLANK_AFTER=0
# Check the tab every N seconds (its page must answer within KIOSK_PAGE_TIMEOUT s); restart
# the browser after M failed checks.
KIOSK_CHECK_EVERY=10
KIOSK_FAILURES=3
EOF
    put_new "$env" /etc/vanbox/kiosk-browser.env 644 || true
    rm -f "$env"
  fi
  # config readable by the vanbox group only (it may name password files)
  if [ -e "$(R /etc/vanbox/vanbox.toml)" ] && user_exists && [ "$(stat -c %G /etc/vanbox/vanbox.toml)" = "$USER_NAME" ]; then
    ok "/etc/vanbox/vanbox.toml readable by group $USER_NAME"
  else
    sys_do chgrp "$USER_NAME" "$(R /etc/vanbox/vanbox.toml)"
  fi
  ensure_dir /var/lib/vanbox 750
  chown_to_vanbox /var/lib/vanbox
}

install_system_files() {
  log "services, journald, udev"
  local u
  for u in vanbox.service vanbox-prune.service vanbox-prune.timer; do
    if put_file "$DEPLOY/systemd/$u" "/etc/systemd/system/$u" 644; then UNITS_CHANGED=1; fi
  done
  if [ "$KIOSK" = 1 ]; then
    if put_file "$DEPLOY/systemd/vanbox-kiosk-browser.service" /etc/systemd/system/vanbox-kiosk-browser.service 644; then UNITS_CHANGED=1; fi
  fi
  if put_file "$DEPLOY/systemd/journald.conf.d/vanbox.conf" /etc/systemd/journald.conf.d/vanbox.conf 644; then JOURNALD_CHANGED=1; fi
  if put_file "$DEPLOY/udev/99-vanbox-gps.rules" /etc/udev/rules.d/99-vanbox-gps.rules 644; then UDEV_CHANGED=1; fi
  if [ "$BRIDGE" = 1 ]; then
    if put_file "$DEPLOY/systemd/mosquitto.service.d/vanbox.conf" /etc/systemd/system/mosquitto.service.d/vanbox.conf 644; then UNITS_CHANGED=1; fi
    if put_new "$DEPLOY/mosquitto/van-bridge.conf" /etc/mosquitto/conf.d/van-bridge.conf 640; then BRIDGE_CHANGED=1; NEW_BRIDGE=1; fi
    # root:mosquitto 640: mosquitto re-reads its config on SIGHUP (logrotate's daily
    # reload) as the mosquitto user, after dropping root; a root-only file stops the reload.
    ensure_group /etc/mosquitto/conf.d/van-bridge.conf mosquitto
    local main
    main=$(R /etc/mosquitto/mosquitto.conf)
    if [ -f "$main" ] && ! grep -q '^include_dir /etc/mosquitto/conf.d' "$main"; then
      note "/etc/mosquitto/mosquitto.conf lacks 'include_dir /etc/mosquitto/conf.d': add it, or the bridge is not read"
    fi
  fi
}

# The GPS HAT talks on the Pi's UART (GPIO 14/15, /dev/serial0): switch the UART on and
# the Linux login console on it off. raspi-config does both where it exists; elsewhere
# (and with --root) config.txt and cmdline.txt are edited directly.
install_gps_hat() {
  log "serial port for a GPS HAT"
  local cfg="" cmd="" f
  for f in /boot/firmware/config.txt /boot/config.txt; do [ -f "$(R $f)" ] && { cfg=$f; break; }; done
  for f in /boot/firmware/cmdline.txt /boot/cmdline.txt; do [ -f "$(R $f)" ] && { cmd=$f; break; }; done
  if [ -z "$cfg" ]; then note "no config.txt under /boot/firmware or /boot: is this a Raspberry Pi? skipped"; return; fi
  local uart_on=0 console_off=1
  grep -q '^enable_uart=1' "$(R $cfg)" && uart_on=1
  [ -n "$cmd" ] && grep -Eq 'console=(serial0|ttyAMA0|ttyS0)' "$(R $cmd)" && console_off=0
  if [ $uart_on = 1 ] && [ $console_off = 1 ]; then ok "UART on ($cfg), no serial console"; return; fi
  if [ -z "$ROOT" ] && have raspi-config; then
    sys_do raspi-config nonint do_serial_hw 0     # 0 = enable the UART
    sys_do raspi-config nonint do_serial_cons 1   # 1 = no login console on it
  else
    if [ $uart_on = 0 ]; then
      do_it "add enable_uart=1 to $cfg" sh -c 'printf "\n# vanbox: GPS HAT on the UART\nenable_uart=1\n" >> "$1"' - "$(R $cfg)"
    fi
    if [ $console_off = 0 ]; then
      do_it "remove the serial console from $cmd" sed -i -E 's/ ?console=(serial0|ttyAMA0|ttyS0),[0-9]+//g; s/^ +//' "$(R $cmd)"
    fi
  fi
  REBOOT=1
}

# start_unit start|restart UNIT: a unit that does not start is reported, not fatal, so the
# summary still says what to edit (a new box fails until its config names its hardware);
# install.sh then exits with status 3.
FAILED_UNITS=()
start_unit() {
  if sys_do systemctl "$1" "$2"; then return 0; fi
  FAILED_UNITS+=("$2")
  note "$2 did not start: journalctl -u $2 -n 30 says why"
}

start_services() {
  log "systemd"
  # (NeedDaemonReload: a unit file changed by an earlier run that stopped half-way)
  if [ "${UNITS_CHANGED:-0}" = 1 ] || needs_reload; then sys_do systemctl daemon-reload; fi
  if [ "${JOURNALD_CHANGED:-0}" = 1 ]; then sys_do systemctl restart systemd-journald; fi
  if [ "${UDEV_CHANGED:-0}" = 1 ]; then
    udev_do control --reload-rules
    udev_do trigger --subsystem-match=tty
  fi
  local units=(vanbox.service vanbox-prune.timer) u
  if [ "$KIOSK" = 1 ]; then units+=(vanbox-kiosk-browser.service); fi
  if [ "$BRIDGE" = 1 ]; then units=(mosquitto.service "${units[@]}"); fi
  for u in "${units[@]}"; do
    if systemctl_state is-enabled "$u"; then ok "$u enabled"; else sys_do systemctl enable "$u"; fi
  done
  if [ "${BRIDGE_CHANGED:-0}" = 1 ]; then start_unit restart mosquitto.service; fi
  for u in "${units[@]}"; do
    if [ "$u" = mosquitto.service ] && [ "${BRIDGE_CHANGED:-0}" = 1 ]; then continue; fi
    if ! systemctl_state is-active "$u"; then
      start_unit start "$u"
    elif [ "$u" = vanbox.service ] && [ "${PROGRAM_CHANGED:-0}${UNITS_CHANGED:-0}" != 00 ]; then
      start_unit restart "$u"
    else
      ok "$u running"
    fi
  done
  if [ "$KIOSK" = 1 ] && [ -z "$ROOT" ] && have systemctl \
    && [ "$(systemctl get-default 2>/dev/null)" = graphical.target ] && systemctl_state is-enabled lightdm.service; then
    note "a desktop (lightdm) starts at boot and takes the screen from the kiosk; to show only the kiosk:"
    note "  sudo systemctl set-default multi-user.target && sudo reboot"
  fi
}

summary() {
  echo
  if [ "$DRY" = 1 ]; then echo "dry run: $CHANGES change(s) would be made; nothing was changed."; return; fi
  if [ "$CHANGES" = 0 ]; then echo "vanbox is installed; nothing to change."; else echo "vanbox installed ($CHANGES change(s))."; fi
  if [ "${NEW_CONFIG:-0}" = 1 ]; then
    cat <<'EOF'

Now edit /etc/vanbox/vanbox.toml (sudo nano /etc/vanbox/vanbox.toml):
  [van]    id, name, tid         - this van's id (one per van, part of every MQTT topic)
  [gps]    port, baud            - "/dev/serial0" for a GPS HAT, "/dev/vanbox-gps" for a USB puck
  [sensor] kind, pin, pin_b      - "door", "beam" or "beam-pair" and the GPIO pins you wired
  [mqtt]   host, port, tls, username, password_file, ca_file - the central broker
  [[tour.stops]]                 - the weekly tour plan
Then:  sudo systemctl restart vanbox && sudo vanbox doctor
EOF
  fi
  if [ "${NEW_BRIDGE:-0}" = 1 ]; then
    echo
    echo "Edit the lines marked EDIT in /etc/mosquitto/conf.d/van-bridge.conf (central broker, login,"
    echo "van id), then: sudo systemctl restart mosquitto"
  fi
  if [ "${REBOOT:-0}" = 1 ]; then echo; echo "Reboot once to switch the serial port to the GPS HAT: sudo reboot"; fi
  echo
  echo "Check:  sudo vanbox doctor   |   vanbox status   |   journalctl -u vanbox -f"
  if [ ${#FAILED_UNITS[@]} -gt 0 ]; then
    echo
    echo "NOT RUNNING: ${FAILED_UNITS[*]} (see journalctl -u ${FAILED_UNITS[0]} -n 30; sudo vanbox doctor)"
    exit 3
  fi
}

# --- uninstall -----------------------------------------------------------------------
uninstall() {
  log "services"
  local u
  for u in "${UNITS[@]}"; do
    if [ -e "$(R "/etc/systemd/system/$u")" ]; then
      if systemctl_state is-enabled "$u" || systemctl_state is-active "$u" || [ -n "$ROOT" ] || [ "$DRY" = 1 ]; then
        sys_do systemctl disable --now "$u"
      fi
    fi
  done
  for u in "${UNITS[@]}"; do  # a failed unit stays listed (not-found failed) until reset
    if systemctl_state is-failed "$u"; then sys_do systemctl reset-failed "$u"; fi
  done
  log "files"
  local had_units=0
  for u in "${UNITS[@]}" mosquitto.service.d/vanbox.conf; do
    if [ -e "$(R "/etc/systemd/system/$u")" ]; then had_units=1; fi
    remove "/etc/systemd/system/$u"
  done
  # drop-ins of vanbox's units (`systemctl edit vanbox`, a test's) go with the units
  for u in "${UNITS[@]}"; do
    if [ -e "$(R "/etc/systemd/system/$u.d")" ]; then had_units=1; remove "/etc/systemd/system/$u.d"; fi
  done
  local had_udev=0
  if [ -e "$(R /etc/udev/rules.d/99-vanbox-gps.rules)" ]; then had_udev=1; fi
  remove /etc/udev/rules.d/99-vanbox-gps.rules
  remove /etc/systemd/journald.conf.d/vanbox.conf
  # folders install.sh made for its files (no package's, nothing else in them)
  local d
  for d in /etc/systemd/system/mosquitto.service.d /etc/systemd/journald.conf.d /etc/udev/rules.d /etc/udev; do
    remove_empty_dir "$d"
  done
  remove /usr/local/bin/vanbox
  remove /opt/vanbox
  # RuntimeDirectoryPreserve=yes keeps /run/vanbox after the box stopped; Persistent=yes
  # keeps the timer's last run in a stamp file
  remove /run/vanbox
  remove /var/lib/systemd/timers/stamp-vanbox-prune.timer
  if [ $had_units = 1 ]; then sys_do systemctl daemon-reload; fi
  if [ $had_udev = 1 ]; then udev_do control --reload-rules; fi
  log "user $USER_NAME"
  if user_exists || [ -n "$ROOT" ]; then
    sys_do userdel "$USER_NAME"
  else
    ok "no user $USER_NAME"
  fi
  log "configuration and data"
  if [ "$PURGE" = 1 ]; then
    remove /etc/vanbox
    remove /var/lib/vanbox
    if [ -e "$(R /etc/mosquitto/conf.d/van-bridge.conf)" ]; then
      remove /etc/mosquitto/conf.d/van-bridge.conf
      if systemctl_state is-active mosquitto.service; then sys_do systemctl restart mosquitto.service; fi
    fi
  else
    local p
    for p in /etc/vanbox /var/lib/vanbox /etc/mosquitto/conf.d/van-bridge.conf; do
      if [ -e "$(R $p)" ]; then note "kept $p (delete it with --uninstall --purge)"; fi
    done
  fi
  note "the serial port settings of --gps-hat and the Debian packages stay as they are"
  echo
  if [ "$DRY" = 1 ]; then echo "dry run: $CHANGES change(s) would be made; nothing was changed."
  else echo "vanbox removed ($CHANGES change(s))."; fi
}

# --- main ----------------------------------------------------------------------------
DRYNOTE=""
if [ "$DRY" = 1 ]; then DRYNOTE=" (dry run: nothing is changed)"; fi
echo "vanbox $ACTION${ROOT:+ into $ROOT}$DRYNOTE"
if [ -n "$ROOT" ] && [ "$DRY" = 0 ]; then mkdir -p "$ROOT"; fi
if [ "$ACTION" = uninstall ]; then
  uninstall
  exit 0
fi
install_packages
install_user
install_program
install_config
install_system_files
if [ "$GPS_HAT" = 1 ]; then install_gps_hat; fi
start_services
summary
