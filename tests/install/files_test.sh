#!/usr/bin/env bash
# cmake --install puts every file in place, and the installed example config
# (what `shotsync init` writes) loads.
#   files_test.sh CMAKE BUILD_DIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"
CMAKE=$1 BUILD=$2
install_fresh "$CMAKE" "$BUILD"

[ -x "$P/bin/shotsync" ] || fail "bin/shotsync missing or not executable"
for f in share/man/man1/shotsync.1 \
         share/bash-completion/completions/shotsync \
         share/zsh/site-functions/_shotsync \
         share/fish/vendor_completions.d/shotsync.fish \
         share/doc/shotsync/examples/config.toml \
         share/doc/shotsync/README.md share/doc/shotsync/cron.md \
         lib/systemd/user/shotsync.service lib/systemd/user/shotsync.timer \
         lib/systemd/user/shotsync@.service lib/systemd/user/shotsync@.timer lib/systemd/user/shotsync-watch@.service \
         lib/systemd/system/shotsync@.service lib/systemd/system/shotsync@.timer lib/systemd/system/shotsync-watch@.service; do
  [ -s "$P/$f" ] || fail "$f missing or empty"
done
# Configured at install time: the units name this prefix's binary.
grep -qx "ExecStart=$P/bin/shotsync --quiet sync" "$P/lib/systemd/user/shotsync.service" ||
  fail "user shotsync.service does not run $P/bin/shotsync"

# `status` loads the config and opens the (new) state folder, and needs no
# network, no token and no root folder: a syntax error in the example would
# fail it with exit 2 and file:line.
mkdir "$TMP/home"
set +e
out=$(env -i HOME="$TMP/home" PATH=/usr/bin:/bin \
  "$P/bin/shotsync" --config "$P/share/doc/shotsync/examples/config.toml" status 2>&1)
rc=$?
set -e
[ $rc -eq 0 ] || fail "the installed example config does not load (exit $rc):
$out"
echo "ok: every file installed under $P; the example config loads"
