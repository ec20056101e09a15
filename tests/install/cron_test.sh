#!/usr/bin/env bash
# The crontab line of docs/cron.md (the first line of its ```crontab block)
# runs as written, with cron's bare environment, on a fresh account: only
# its /usr/local is replaced by a temporary install prefix.
#   cron_test.sh CMAKE BUILD_DIR EMULATOR GENPHOTOS CRON_MD
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../../scripts/lib/common.sh"  # start_emulator, stop_emulator
CMAKE=$1 BUILD=$2 EMULATOR=$3 GENPHOTOS=$4 CRON_MD=$5
require curl curl
install_fresh "$CMAKE" "$BUILD"

line=$(awk '/^```crontab$/ { getline; print; exit }' "$CRON_MD")
[ -n "$line" ] || fail "no \`\`\`crontab block in $CRON_MD"
read -r _min _hour _dom _mon _dow cmd <<<"$line"
[[ $cmd == */usr/local/* ]] || fail "the crontab line names no /usr/local path: $line"
cmd=${cmd//\/usr\/local/$P}

start_emulator "$EMULATOR"
CLEANUP+=(stop_emulator)

# A fresh account: a config and the env file as docs/cron.md says, no state yet.
H=$TMP/home
mkdir -p "$H/.config/shotsync"
chmod 700 "$H" "$H/.config/shotsync"
"$GENPHOTOS" "$H/Photos" --count 3 --per-dir 3 --width 640 --height 480 >/dev/null
cat >"$H/.config/shotsync/config.toml" <<TOML
[shootbin]
base_url = "$EMU_URL"
[[roots]]
path = "$H/Photos"
project = "Cron test"
album = "Main"
create = true
TOML
install -m 600 /dev/null "$H/.config/shotsync/env"
echo "SHOOTBIN_API_TOKEN=sb-test-token" >>"$H/.config/shotsync/env"
[ ! -e "$H/.local" ] || fail "not a fresh account"

set +e
out=$(cd / && env -i HOME="$H" LOGNAME="$(id -un)" SHELL=/bin/sh PATH=/usr/bin:/bin /bin/sh -c "$cmd" 2>&1)
rc=$?
set -e
[ $rc -eq 0 ] || fail "the crontab line exited $rc:
  $cmd
$out"
[ -z "$out" ] || fail "the crontab line printed (cron would mail it):
$out"

stats=$(curl -fsS "$EMU_URL/_emulator/stats")
grep -q '"uploads":3[,}]' <<<"$stats" || fail "the emulator did not get the 3 photos: $stats"

log=$(sed -nE 's/.*--log-file "([^"]+)".*/\1/p' <<<"$cmd")
log=${log//\$HOME/$H}
[ -n "$log" ] || fail "no --log-file \"PATH\" in the crontab line"
[ -f "$log" ] || fail "no log file at $log"
[ "$(stat -c %a "$log")" = 600 ] || fail "$log is mode $(stat -c %a "$log"), want 600"
dir=$(dirname "$log")
[ "$(stat -c %a "$dir")" = 700 ] || fail "$dir is mode $(stat -c %a "$dir"), want 700"
echo "ok: the crontab line uploaded 3 photos on a fresh account; log $log (0600) in a 0700 folder"
