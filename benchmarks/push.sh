#!/usr/bin/env bash
# Hook latency: `shotsync push FILE` (a new process per exported photo, as an
# editing program's export hook runs it) vs one `curl -F` upload of the same
# file to the same emulator, measured in one run.
#   benchmarks/push.sh [COUNT] [WIDTH]     (defaults: 40 photos of 1600 px)
# Prints the mean wall time per file of each and the overhead ratio (goal <= 1.3).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
cd "$SHOTSYNC_ROOT"
COUNT=${1:-40}
WIDTH=${2:-1600}
ensure_packages "${SHOTSYNC_BUILD_PACKAGES[@]}" bc
build_tree build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
BIN=build/release
WORK=$(mktemp -d)
trap 'stop_emulator; rm -rf "$WORK"' EXIT
"$BIN/tests/shotsync-genphotos" "$WORK/photos" --count "$COUNT" --width "$WIDTH" --height $((WIDTH * 2 / 3)) --per-dir 100 >/dev/null
mapfile -t FILES < <(find "$WORK/photos" -type f -name '*.jpg' | sort)

start_emulator "$BIN/tests/shotsync-emulator" --shootbin-rpm 100000000
URL="$EMU_URL/api/projects/1/albums/1/photos"
AUTH="Authorization: Bearer sb-test-token"
reset() { curl -fsS -X POST "$EMU_URL/_emulator/reset" >/dev/null; }
now() { date +%s.%N; }

cat >"$WORK/config.toml" <<TOML
state_dir = "$WORK/state"
[shootbin]
base_url = "$EMU_URL"
rpm = 1000000
[[roots]]
path = "$WORK/photos"
project = "1"
album = "1"
TOML
export SHOTSYNC_API_TOKEN=unused SHOOTBIN_API_TOKEN=sb-test-token

# Interleaved rounds (curl, then shotsync, per file) so that machine noise
# hits both alike. The first push of a profile looks up the album once; that
# warm-up is not counted, as a hook's first export of the day would pay it once.
reset
"$BIN/cli/shotsync" --config "$WORK/config.toml" push --quiet "${FILES[0]}"
T_CURL=0
T_PUSH=0
for f in "${FILES[@]:1}"; do
  rel=${f#"$WORK/photos/"}
  s=$(now)
  curl -fsS -o /dev/null -H "$AUTH" -H "Accept: application/json" -F "photo=@$f" \
    -F "client_original_filename=curl/$rel" "$URL"
  T_CURL=$(echo "$T_CURL + $(now) - $s" | bc -l)
  s=$(now)
  "$BIN/cli/shotsync" --config "$WORK/config.toml" push --quiet "$f"
  T_PUSH=$(echo "$T_PUSH + $(now) - $s" | bc -l)
done
N=$(( ${#FILES[@]} - 1 ))
STATS=$(curl -fsS "$EMU_URL/_emulator/stats")
UPLOADS=$(echo "$STATS" | sed -n 's/.*"uploads": *\([0-9]*\).*/\1/p')
printf '\nHook latency: %d files of ~%s KB, one process per file (%s cores)\n' "$N" \
  "$(( $(du -sb "$WORK/photos" | cut -f1) / ${#FILES[@]} / 1024 ))" "$(nproc)"
printf '%-34s %10s\n' tool "ms/file"
printf '%-34s %10.1f\n' "curl -F (one upload)" "$(echo "$T_CURL * 1000 / $N" | bc -l)"
printf '%-34s %10.1f\n' "shotsync push FILE" "$(echo "$T_PUSH * 1000 / $N" | bc -l)"
printf 'push overhead: %.2fx curl (goal <= 1.3); emulator counted %s uploads (expected %d)\n' \
  "$(echo "$T_PUSH / $T_CURL" | bc -l)" "$UPLOADS" $(( 2 * N + 1 ))
