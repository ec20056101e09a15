#!/usr/bin/env bash
# Upload benchmark: shotsync sync vs curl, same files, same multipart form,
# same emulator (rate limit raised out of the way), interleaved rounds (every
# tool once per round), best of ROUNDS.
#   benchmarks/upload.sh [COUNT] [WIDTH] [ROUNDS]   (defaults: 300 photos of 1600 px, ~0.6 MB each; 3)
# Before each run (untimed) the emulator is reset to an empty album and
# shotsync's state folder removed, so every run uploads every file. shotsync's
# time includes its walk, hashing and manifest. The one-curl-per-file peer
# times the first min(COUNT, 100) files; its ratio is per file.
# Prints files/s and MB/s per tool; ratio = shotsync's files/s / the peer's.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
COUNT=${1:-300}
WIDTH=${2:-1600}
ROUNDS=${3:-${BENCH_ROUNDS:-3}}
ensure_packages curl
bench_setup shotsync-cli shotsync-emulator shotsync-genphotos
"$BIN/tests/shotsync-genphotos" "$WORK/photos" --count "$COUNT" --width "$WIDTH" --height $((WIDTH * 2 / 3)) --per-dir 100 >/dev/null
BYTES=$(du -sb "$WORK/photos" | cut -f1)
N_PER=$((COUNT < 100 ? COUNT : 100))

start_emulator "$BIN/tests/shotsync-emulator" --shootbin-rpm 100000000
URL="$EMU_URL/api/projects/1/albums/1/photos"
AUTH="Authorization: Bearer sb-test-token"

# curl config: one request per file, separated by `next` (reuses the connection).
find "$WORK/photos" -type f -name '*.jpg' | sort >"$WORK/files"
head -n "$N_PER" "$WORK/files" >"$WORK/files.per"
: >"$WORK/curl.cfg"
first=1
while IFS= read -r f; do
  rel=${f#"$WORK/photos/"}
  [ $first -eq 1 ] || echo "next" >>"$WORK/curl.cfg"
  first=0
  cat >>"$WORK/curl.cfg" <<CFG
url = "$URL"
header = "$AUTH"
header = "Accept: application/json"
form = "photo=@$f"
form = "client_original_filename=$rel"
output = "/dev/null"
silent
fail
CFG
done <"$WORK/files"

cat >"$WORK/config.toml" <<TOML
state_dir = "$WORK/state"
jobs = 8
[shootbin]
base_url = "$EMU_URL"
rpm = 1000000
[[roots]]
path = "$WORK/photos"
project = "1"
album = "1"
TOML
export SHOOTBIN_API_TOKEN=sb-test-token

run_shotsync() { "$BIN/cli/shotsync" --config "$WORK/config.toml" sync --quiet; }
run_par() { curl --parallel --parallel-max 8 -K "$WORK/curl.cfg"; }
run_seq() { curl -K "$WORK/curl.cfg"; }
run_per() {
  local f
  while IFS= read -r f; do
    curl -fsS -o /dev/null -H "$AUTH" -H "Accept: application/json" -F "photo=@$f" \
      -F "client_original_filename=${f#"$WORK/photos/"}" "$URL" || return 1
  done <"$WORK/files.per"
}
fresh_album() {  # untimed, before every run
  curl -fsS -X POST "$EMU_URL/_emulator/reset" >/dev/null && rm -rf "$WORK/state"
}
stored() {  # photos in the album now
  curl -fsS "$EMU_URL/_emulator/photos?project=1&album=1" | grep -o '"original_filename"' | wc -l
}
check_stored() {
  local want=$COUNT got
  [ "$1" != per ] || want=$N_PER
  got=$(stored)
  [ "$got" = "$want" ] || { echo "error: $1 left $got photos in the album, expected $want" >&2; return 1; }
}

echo "==> uploading $COUNT files, $((BYTES / 1000000)) MB, $ROUNDS interleaved rounds" >&2
bench_interleave "$ROUNDS" --setup fresh_album --check check_stored \
  shotsync run_shotsync par run_par seq run_seq per run_per

T_SS=${BEST_NS[shotsync]}
KB=$((BYTES / COUNT / 1000))
printf '\nUpload %d files of ~%d KB (%.1f MB) to the emulator on loopback (%s cores), best of %d\n' \
  "$COUNT" "$KB" "$(awk -v b="$BYTES" 'BEGIN { print b / 1e6 }')" "$(nproc)" "$ROUNDS"
bench_times shotsync par seq per
printf '   %-44s %10s %10s\n' "tool (best run)" files/s MB/s
printf '   %-44s %10s %10s\n' "shotsync sync (jobs 8)" "$(per_s "$COUNT" "$T_SS")" "$(mb_s "$BYTES" "$T_SS")"
printf '   %-44s %10s %10s\n' "curl --parallel --parallel-max 8" "$(per_s "$COUNT" "${BEST_NS[par]}")" "$(mb_s "$BYTES" "${BEST_NS[par]}")"
printf '   %-44s %10s %10s\n' "curl, one process, keep-alive" "$(per_s "$COUNT" "${BEST_NS[seq]}")" "$(mb_s "$BYTES" "${BEST_NS[seq]}")"
printf '   %-44s %10s %10s\n' "curl, one process per file ($N_PER files)" "$(per_s "$N_PER" "${BEST_NS[per]}")" "-"

NAME="upload $COUNT x ${KB} KB (files/s)"
SS_RATE="$(per_s "$COUNT" "$T_SS") files/s"
bench_result "$NAME" "$SS_RATE" "curl --parallel --parallel-max 8" \
  "$(per_s "$COUNT" "${BEST_NS[par]}") files/s" "$(ratio "${BEST_NS[par]}" "$T_SS")" ">= 1.0"
bench_result "$NAME" "$SS_RATE" "curl keep-alive, one process" \
  "$(per_s "$COUNT" "${BEST_NS[seq]}") files/s" "$(ratio "${BEST_NS[seq]}" "$T_SS")" "(info)"
bench_result "$NAME" "$SS_RATE" "curl, one process per file" \
  "$(per_s "$N_PER" "${BEST_NS[per]}") files/s" "$(rate_ratio "$COUNT" "$T_SS" "$N_PER" "${BEST_NS[per]}")" "(info)"
echo "(ratio = shotsync's files/s / the peer's: above 1 is shotsync faster)"
