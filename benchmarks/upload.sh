#!/usr/bin/env bash
# Upload benchmark: shotsync sync vs curl, same files, same multipart form,
# same emulator (rate limit raised out of the way), measured in one run.
#   benchmarks/upload.sh [COUNT] [WIDTH]     (defaults: 300 photos of 1600 px, ~0.6 MB each)
# Prints files/s and MB/s per tool and shotsync's ratio to each.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
cd "$SHOTSYNC_ROOT"
COUNT=${1:-300}
WIDTH=${2:-1600}
ensure_packages "${SHOTSYNC_BUILD_PACKAGES[@]}" time bc
build_tree build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
BIN=build/release
WORK=$(mktemp -d)
trap 'stop_emulator; rm -rf "$WORK"' EXIT
"$BIN/tests/shotsync-genphotos" "$WORK/photos" --count "$COUNT" --width "$WIDTH" --height $((WIDTH * 2 / 3)) --per-dir 100 >/dev/null
BYTES=$(du -sb "$WORK/photos" | cut -f1)

start_emulator "$BIN/tests/shotsync-emulator" --shootbin-rpm 100000000
URL="$EMU_URL/api/projects/1/albums/1/photos"
AUTH="Authorization: Bearer sb-test-token"

# curl config: one request per file, separated by `next` (reuses the connection).
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
CFG
done < <(find "$WORK/photos" -type f -name '*.jpg' | sort)

now() { date +%s.%N; }
run_timed() { local s; s=$(now); "$@" >/dev/null 2>&1; echo "$(now) - $s" | bc -l; }

reset() { curl -fsS -X POST "$EMU_URL/_emulator/reset" >/dev/null; }

reset
T_PAR=$(run_timed curl --parallel --parallel-max 8 -K "$WORK/curl.cfg")
reset
T_SEQ=$(run_timed curl -K "$WORK/curl.cfg")
reset
N_PER=$(( COUNT < 100 ? COUNT : 100 ))
s=$(now)
find "$WORK/photos" -type f -name '*.jpg' | sort | head -n "$N_PER" | while IFS= read -r f; do
  curl -s -o /dev/null -H "$AUTH" -H "Accept: application/json" -F "photo=@$f" -F "client_original_filename=${f#"$WORK/photos/"}" "$URL"
done
T_PER=$(echo "($(now) - $s) * $COUNT / $N_PER" | bc -l)
reset

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
T_SS=$(run_timed "$BIN/cli/shotsync" --config "$WORK/config.toml" sync --quiet)
UPLOADS=$(curl -fsS "$EMU_URL/_emulator/stats" | sed -n 's/.*"uploads": *\([0-9]*\).*/\1/p')

rate() { echo "scale=1; $COUNT / $1" | bc -l; }
mbs() { echo "scale=1; $BYTES / 1000000 / $1" | bc -l; }
ratio() { echo "scale=2; $1 / $T_SS" | bc -l; }
printf '\nUpload %d files, %.1f MB, to the emulator on loopback (%s cores)\n' "$COUNT" "$(echo "$BYTES/1000000" | bc -l)" "$(nproc)"
printf '%-38s %8s %8s %10s\n' tool files/s MB/s "shotsync x"
printf '%-38s %8s %8s %10s\n' "shotsync sync (jobs 8)" "$(rate "$T_SS")" "$(mbs "$T_SS")" "1.00"
printf '%-38s %8s %8s %10s\n' "curl --parallel --parallel-max 8" "$(rate "$T_PAR")" "$(mbs "$T_PAR")" "$(ratio "$T_PAR")"
printf '%-38s %8s %8s %10s\n' "curl, one process, keep-alive" "$(rate "$T_SEQ")" "$(mbs "$T_SEQ")" "$(ratio "$T_SEQ")"
printf '%-38s %8s %8s %10s\n' "curl, one process per file" "$(rate "$T_PER")" "$(mbs "$T_PER")" "$(ratio "$T_PER")"
echo "(shotsync x = how many times faster shotsync is; emulator counted $UPLOADS shotsync uploads)"
