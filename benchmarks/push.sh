#!/usr/bin/env bash
# Hook latency: `shotsync push FILE` (a new process per exported photo, as an
# editing program's export hook runs it) vs one `curl -F` upload of the same
# file to the same emulator, measured in one run.
#   benchmarks/push.sh [COUNT] [WIDTH]     (defaults: 40 photos of 1600 px)
# One round per file (curl, then shotsync: noise hits both alike). Prints the
# best and median ms per file of each; ratio = shotsync's median / curl's (a
# time ratio: below 1 is shotsync faster; goal <= 1.3).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
COUNT=${1:-40}
WIDTH=${2:-1600}
((COUNT >= 2)) || { echo "usage: benchmarks/push.sh [COUNT >= 2] [WIDTH]" >&2; exit 2; }
ensure_packages curl
bench_setup shotsync-cli shotsync-emulator shotsync-genphotos
"$BIN/tests/shotsync-genphotos" "$WORK/photos" --count "$COUNT" --width "$WIDTH" --height $((WIDTH * 2 / 3)) --per-dir 100 >/dev/null
mapfile -t FILES < <(find "$WORK/photos" -type f -name '*.jpg' | sort)

start_emulator "$BIN/tests/shotsync-emulator" --shootbin-rpm 100000000
URL="$EMU_URL/api/projects/1/albums/1/photos"
AUTH="Authorization: Bearer sb-test-token"
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

# Round k sends file k. curl's copies get other names, so both land.
run_curl() {
  local file=${FILES[BENCH_ROUND]}
  curl -fsS -o /dev/null -H "$AUTH" -H "Accept: application/json" -F "photo=@$file" \
    -F "client_original_filename=curl/${file#"$WORK/photos/"}" "$URL"
}
run_push() { "$BIN/cli/shotsync" --config "$WORK/config.toml" push --quiet "${FILES[BENCH_ROUND]}"; }

# The first push of a profile looks up the album once; that warm-up is not
# counted, as a hook's first export of the day would pay it once.
curl -fsS -X POST "$EMU_URL/_emulator/reset" >/dev/null
"$BIN/cli/shotsync" --config "$WORK/config.toml" push --quiet "${FILES[0]}"
N=$((${#FILES[@]} - 1))
echo "==> $N files, one round each" >&2
bench_interleave "$N" curl run_curl push run_push 2>"$WORK/rounds.txt"

STORED=$(curl -fsS "$EMU_URL/_emulator/photos?project=1&album=1" | grep -o '"original_filename"' | wc -l)
if [ "$STORED" != $((2 * N + 1)) ]; then
  echo "error: the album holds $STORED photos, expected $((2 * N + 1))" >&2
  exit 1
fi
KB=$(($(du -sb "$WORK/photos" | cut -f1) / ${#FILES[@]} / 1000))
printf '\nHook latency: %d files of ~%s KB, one process per file (%s cores)\n' "$N" "$KB" "$(nproc)"
printf '   %-34s %10s %10s\n' tool "best ms" "median ms"
printf '   %-34s %10s %10s\n' "curl -F (one upload)" "$(ns_ms "${BEST_NS[curl]}")" "$(ns_ms "${MEDIAN_NS[curl]}")"
printf '   %-34s %10s %10s\n' "shotsync push FILE" "$(ns_ms "${BEST_NS[push]}")" "$(ns_ms "${MEDIAN_NS[push]}")"
bench_result "hook latency, push of one ${KB} KB file (time ratio)" \
  "$(ns_ms "${MEDIAN_NS[push]}") ms (best $(ns_ms "${BEST_NS[push]}"))" "curl -F, one upload" \
  "$(ns_ms "${MEDIAN_NS[curl]}") ms (best $(ns_ms "${BEST_NS[curl]}"))" \
  "$(ratio "${MEDIAN_NS[push]}" "${MEDIAN_NS[curl]}")" "<= 1.3"
echo "(median ms per file; time ratio = shotsync's / curl's: below 1 is shotsync faster)"
