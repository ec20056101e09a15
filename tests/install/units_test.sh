#!/usr/bin/env bash
# The installed systemd units verify (ExecStart is this prefix's binary,
# Documentation= the installed man page); the user units name no target a
# user manager lacks; the watch units are Type=notify with a watchdog.
#   units_test.sh CMAKE BUILD_DIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"
CMAKE=$1 BUILD=$2
require systemd-analyze systemd
require man man-db
install_fresh "$CMAKE" "$BUILD"
U=$P/lib/systemd/user S=$P/lib/systemd/system

if grep -n 'network-online\|network\.target' "$U"/*; then
  fail "user units reference a target the user manager does not have"
fi

# Templates verify only as instances: copy them under instance names.
mkdir "$TMP/user" "$TMP/system" "$TMP/run"
chmod 700 "$TMP/run"
cp "$U/shotsync.service" "$U/shotsync.timer" "$TMP/user/"
cp "$U/shotsync@.service" "$TMP/user/shotsync@weddings.service"
cp "$U/shotsync@.timer" "$TMP/user/shotsync@weddings.timer"
cp "$U/shotsync-watch@.service" "$TMP/user/shotsync-watch@weddings.service"
user=$(id -un)  # User=%i must name an existing account
cp "$S/shotsync@.service" "$TMP/system/shotsync@$user.service"
cp "$S/shotsync@.timer" "$TMP/system/shotsync@$user.timer"
cp "$S/shotsync-watch@.service" "$TMP/system/shotsync-watch@$user.service"

# The watch units: systemd's protocol (notify, watchdog, reload by SIGHUP)
# and the sandbox that keeps the state folder writable.
for unit in "$U/shotsync-watch@.service" "$S/shotsync-watch@.service"; do
  for line in 'Type=notify' 'NotifyAccess=main' 'ExecReload=/bin/kill -HUP $MAINPID' \
              'Restart=on-failure' 'WatchdogSec=60s' 'NoNewPrivileges=yes'; do
    grep -qxF "$line" "$unit" || fail "$unit lacks $line"
  done
  grep -qx "ExecStart=$P/bin/shotsync --config .* watch" "$unit" || fail "$unit: ExecStart is not $P/bin/shotsync ... watch"
done
for line in 'ProtectSystem=strict' 'ProtectHome=read-only' 'CapabilityBoundingSet=' \
            'ReadWritePaths=/home/%i/.local/state/shotsync -/home/%i/Pictures/headshots'; do
  grep -qxF "$line" "$S/shotsync-watch@.service" || fail "system watch unit lacks $line"
done

# --user needs a runtime folder, not a running user manager.
out=$(XDG_RUNTIME_DIR=$TMP/run MANPATH=$P/share/man systemd-analyze --user verify "$TMP"/user/* 2>&1) ||
  fail "systemd-analyze --user verify:
$out"
[ -z "$out" ] || fail "systemd-analyze --user verify warns:
$out"
out=$(MANPATH=$P/share/man systemd-analyze verify "$TMP"/system/* 2>&1) ||
  fail "systemd-analyze verify (system units):
$out"
[ -z "$out" ] || fail "systemd-analyze verify (system units) warns:
$out"
echo "ok: user and system units (sync and watch) verify"
