# shellcheck shell=bash
# Shared by the tests/hooks/*.sh cases, which source it and call
#   hooks_setup SHOTSYNC EMULATOR GENPHOTOS
# It starts the emulator, makes a fake HOME with a profile at the default path
# whose token comes only from a token_file (mode 600), a root with photos at
# $ROOT, and a bin dir ($BIN) holding shotsync and shotsync-hook, as an
# install would. desktop CMD... then runs CMD the way a desktop app does:
# a bare environment with no token variable and no terminal.
set -euo pipefail

HOOKS_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$HOOKS_SRC/scripts/lib/common.sh"
HOOKS_DIST=$HOOKS_SRC/dist/hooks
TOKEN=sb-test-token

fail() {
  echo "FAIL: $*" >&2
  if [ -n "${HOOK_LOG:-}" ] && [ -f "$HOOK_LOG" ]; then
    echo "--- $HOOK_LOG" >&2
    cat "$HOOK_LOG" >&2
  fi
  exit 1
}

need() {  # need COMMAND DEBIAN_PACKAGE
  command -v "$1" >/dev/null || fail "$1 not found: apt-get install -y $2"
}

hooks_cleanup() {
  stop_emulator
  [ -z "${WORK:-}" ] || rm -rf "$WORK"
}

hooks_setup() {
  local shotsync=$1 emulator=$2 genphotos=$3
  need curl curl
  WORK=$(mktemp -d)
  trap hooks_cleanup EXIT
  HOME_DIR=$WORK/home
  BIN=$WORK/bin
  ROOT=$HOME_DIR/Photos/Exports
  HOOK_LOG=$HOME_DIR/.local/state/shotsync/hook.log
  mkdir -p "$BIN" "$HOME_DIR/.config/shotsync" "$ROOT" "$WORK/run"
  chmod 700 "$WORK/run"
  ln -s "$shotsync" "$BIN/shotsync"
  ln -s "$HOOKS_DIST/shotsync-hook" "$BIN/shotsync-hook"

  start_emulator "$emulator"
  printf '%s\n' "$TOKEN" >"$HOME_DIR/.config/shotsync/shootbin.token"
  chmod 600 "$HOME_DIR/.config/shotsync/shootbin.token"
  cat >"$HOME_DIR/.config/shotsync/config.toml" <<TOML
[shootbin]
base_url = "$EMU_URL"
token_file = "~/.config/shotsync/shootbin.token"
[[roots]]
path = "~/Photos/Exports"
project = "Demo"
album = "Hooks"
create = true
TOML
  "$genphotos" "$ROOT" --count 3 --per-dir 8 --width 64 --height 48 >/dev/null
}

# desktop CMD...: as a program started from the desktop session runs it.
desktop() {
  env -i HOME="$HOME_DIR" PATH="$BIN:/usr/bin:/bin" DISPLAY=:0 XDG_RUNTIME_DIR="$WORK/run" \
    LANG=C.UTF-8 "$@"
}

# emu_stat NAME: one counter of the emulator's /_emulator/stats.
emu_stat() {
  curl -fsS "$EMU_URL/_emulator/stats" | grep -oE "\"$1\":[0-9]+" | head -n 1 | cut -d: -f2
}

# expect_sent N: N photos arrived as new uploads, and the hook left its log.
expect_sent() {
  local got
  got=$(emu_stat uploads)
  [ "$got" = "$1" ] || fail "expected $1 uploads, the emulator counted ${got:-none}"
  [ -f "$HOOK_LOG" ] || fail "no hook log at $HOOK_LOG"
  ! grep -qF "$TOKEN" "$HOOK_LOG" || fail "the token is in the hook log"
}
