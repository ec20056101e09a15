#!/usr/bin/env bash
# A token file others can read: shotsync refuses it, the hook exits non-zero,
# writes one line to its log, calls notify-send, and shows the token nowhere.
source "$(dirname "$0")/lib.sh"
hooks_setup "$@"
chmod 644 "$HOME_DIR/.config/shotsync/shootbin.token"
# A notify-send that records its arguments, first on PATH as libnotify-bin's would be.
cat >"$BIN/notify-send" <<SH
#!/bin/sh
for a in "\$@"; do printf '%s\n' "\$a"; done >>"$WORK/notified"
SH
chmod +x "$BIN/notify-send"
rc=0
desktop shotsync-hook "$ROOT/day01/IMG_0001.jpg" 2>"$WORK/stderr" || rc=$?
[ "$rc" -ne 0 ] || fail "the hook exited 0 with a group-readable token file"
[ "$rc" -eq 2 ] || fail "expected shotsync's config-error exit 2, got $rc"
[ "$(emu_stat uploads)" = 0 ] || fail "something was uploaded"
[ -f "$HOOK_LOG" ] || fail "no hook log"
n=$(grep -c 'ERROR hook: shotsync push exited 2: .*shootbin.token' "$HOOK_LOG") || true
[ "$n" = 1 ] || fail "expected one hook error line naming the cause, found ${n:-0}"
[ -f "$WORK/notified" ] || fail "notify-send was not called"
grep -q 'exit 2' "$WORK/notified" || fail "the notification does not give the exit code"
grep -q 'shootbin.token' "$WORK/notified" || fail "the notification does not give the error"
for f in "$HOOK_LOG" "$WORK/notified" "$WORK/stderr"; do
  ! grep -qF "$TOKEN" "$f" || fail "the token is in $f"
done
