#!/usr/bin/env bash
# Bandwidth limit benchmark: `shotsync sync --bwlimit R` against the emulator
# (its rate limit and the client's rpm raised out of the way), for R = 4M and
# 20M; prints the achieved bytes/s as a ratio to the limit (goal: within 5 %).
#   benchmarks/bwlimit.sh [SECONDS]    (default 12: each run sends ~SECONDS of data at its limit)
# "whole run" is the photos' bytes over the wall time of the sync; "sending"
# takes off what the same sync needs unlimited (scan, hash, listing, the
# confirmations, and its own sending at full speed), an estimate of the time
# spent sending under the limit.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
cd "$SHOTSYNC_ROOT"
SECS=${1:-12}
ensure_packages "${SHOTSYNC_BUILD_PACKAGES[@]}" bc curl
BIN=${SHOTSYNC_BUILD:-build/release}
build_tree "$BIN" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
WORK=$(mktemp -d)
trap 'stop_emulator; rm -rf "$WORK"' EXIT
start_emulator "$BIN/tests/shotsync-emulator" --shootbin-rpm 100000000
export SHOOTBIN_API_TOKEN=sb-test-token

now() { date +%s.%N; }
# photos NAME BYTES: a folder of photos (~2.5 MB each) holding at least BYTES.
photos() {
  local dir=$WORK/$1 want=$2 count
  count=$(( want / 2500000 + 1 ))
  "$BIN/tests/shotsync-genphotos" "$dir" --count "$count" --width 3000 --height 2000 --per-dir 50 >/dev/null
  du -sb --apparent-size "$dir" | cut -f1
}
# sync_time DIR [ARGS...]: wall seconds of one sync of DIR into a fresh album and state.
sync_time() {
  local dir=$1; shift
  curl -fsS -X POST "$EMU_URL/_emulator/reset" >/dev/null
  rm -rf "$WORK/state"
  cat >"$WORK/config.toml" <<TOML
state_dir = "$WORK/state"
jobs = 8
[shootbin]
base_url = "$EMU_URL"
rpm = 1000000
[[roots]]
path = "$dir"
project = "1"
album = "1"
TOML
  local s e
  s=$(now)
  "$BIN/cli/shotsync" --config "$WORK/config.toml" sync --quiet "$@" >/dev/null
  e=$(now)
  echo "$e - $s" | bc -l
}

printf '\nsync --bwlimit on loopback (%s cores), ~%s s of data per limit\n' "$(nproc)" "$SECS"
printf '%-8s %10s %10s %12s %10s %10s\n' limit MB seconds "MiB/s" "whole run" sending
for limit in 4M 20M; do
  case $limit in 4M) rate=$((4 << 20)) ;; 20M) rate=$((20 << 20)) ;; esac
  bytes=$(photos "p$limit" $((rate * SECS)))
  t_free=$(sync_time "$WORK/p$limit")
  t=$(sync_time "$WORK/p$limit" --bwlimit "$limit")
  printf '%-8s %10.1f %10.2f %12.2f %10.3f %10.3f\n' "$limit" "$(echo "$bytes / 1000000" | bc -l)" "$t" \
    "$(echo "$bytes / 1048576 / $t" | bc -l)" "$(echo "$bytes / $t / $rate" | bc -l)" \
    "$(echo "$bytes / ($t - $t_free) / $rate" | bc -l)"
done
echo "(ratio = achieved bytes/s / limit; goal 0.95-1.05)"
