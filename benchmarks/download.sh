#!/usr/bin/env bash
# Download benchmark: shotsync pull vs aria2c vs curl, same 500 headshots from
# the same emulator, measured in one run (best of REPEAT interleaved rounds).
#   benchmarks/download.sh [COUNT] [REPEAT]     (defaults: 500 files, best of 5 rounds)
# The peers get the URLs of one listing (urls.txt); shotsync's time includes its
# own listing (members -> models -> photos) and an fsync + rename per file.
# SHOTSYNC_BUILD=DIR uses an existing build tree (else build/release is built,
# only the two programs needed).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
cd "$SHOTSYNC_ROOT"
COUNT=${1:-500}
REPEAT=${2:-5}
ensure_packages aria2 bc curl python3
if [ -n "${SHOTSYNC_BUILD:-}" ]; then
  BIN=$SHOTSYNC_BUILD
else
  BIN=build/release
  cmake -S . -B "$BIN" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BIN" --target shotsync-cli shotsync-emulator >/dev/null
fi
WORK=$(mktemp -d)
trap 'stop_emulator; rm -rf "$WORK"' EXIT

MEMBERS=5
PER=$(( (COUNT + MEMBERS - 1) / MEMBERS ))
start_emulator "$BIN/tests/shotsync-emulator" --headshotpro-rpm 100000000
curl -fsS -X POST "$EMU_URL/_emulator/seed" -H 'Content-Type: application/json' \
  -d "{\"members\": $MEMBERS, \"photos_per_model\": $PER, \"pregenerate\": true}" >/dev/null
AUTH="Authorization: Bearer hp-test-key"
API="$EMU_URL/api/v2/organization"

# One listing: every model's photos -> urls.txt (main variant), COUNT of them.
curl -fsS -H "$AUTH" "$API/models?status=active&limit=200" >"$WORK/models.json"
python3 - "$WORK/models.json" >"$WORK/model_ids" <<'PY'
import json, sys
for m in json.load(open(sys.argv[1]))["models"]: print(m["id"])
PY
: >"$WORK/urls.txt"
while read -r mid; do
  offset=0
  while :; do
    curl -fsS -H "$AUTH" "$API/models/$mid/photos?limit=200&offset=$offset" >"$WORK/page.json"
    more=$(python3 - "$WORK/page.json" "$WORK/urls.txt" <<'PY'
import json, sys
page = json.load(open(sys.argv[1]))
with open(sys.argv[2], "a") as out:
    for p in page["photos"]: out.write(p["urls"]["main"] + "\n")
print("1" if page["pagination"]["hasMore"] else "0")
PY
)
    [ "$more" = 1 ] || break
    offset=$((offset + 200))
  done
done <"$WORK/model_ids"
head -n "$COUNT" "$WORK/urls.txt" >"$WORK/urls.n" && mv "$WORK/urls.n" "$WORK/urls.txt"
N=$(wc -l <"$WORK/urls.txt")

# curl config: url + output per file (`next` separates them).
: >"$WORK/curl.cfg"
i=0
while IFS= read -r u; do
  [ $i -eq 0 ] || echo next >>"$WORK/curl.cfg"
  printf 'url = "%s"\noutput = "%s/curl/%05d.jpg"\nsilent\nfail\n' "$u" "$WORK" "$i" >>"$WORK/curl.cfg"
  i=$((i + 1))
done <"$WORK/urls.txt"

cat >"$WORK/config.toml" <<TOML
state_dir = "$WORK/state"
jobs = 8
[headshotpro]
base_url = "$EMU_URL/api/v2"
rpm = 1000000
dest = "$WORK/shotsync"
TOML
export HEADSHOTPRO_API_KEY=hp-test-key

now() { date +%s.%N; }
# Rounds: every tool once per round (interleaved, so load changes hit all
# tools alike); each tool's best time is kept.
declare -A BEST GOT
run_one() {  # name dir cmd...
  local name=$1 dir=$2 s t; shift 2
  rm -rf "$WORK/curl" "$WORK/aria" "$WORK/shotsync" "$WORK/state"; mkdir -p "$WORK/curl" "$WORK/aria"
  sync
  s=$(now)
  "$@" >/dev/null 2>"$WORK/err" || echo "error: $name failed: $(head -c 500 "$WORK/err")" >&2
  t=$(echo "$(now) - $s" | bc -l)
  GOT[$name]=$(find "$dir" -type f ! -name '*.part' ! -name '*.aria2' | wc -l)
  if [ -z "${BEST[$name]:-}" ] || [ "$(echo "$t < ${BEST[$name]}" | bc -l)" = 1 ]; then BEST[$name]=$t; fi
}
for ((k = 0; k < REPEAT; k++)); do
  run_one ss "$WORK/shotsync" "$BIN/cli/shotsync" --config "$WORK/config.toml" pull --quiet
  run_one aria "$WORK/aria" aria2c -q -j 8 --auto-file-renaming=false --allow-overwrite=true --file-allocation=none -d "$WORK/aria" -i "$WORK/urls.txt"
  run_one par "$WORK/curl" curl --parallel --parallel-max 8 -K "$WORK/curl.cfg"
  run_one seq "$WORK/curl" curl -K "$WORK/curl.cfg"
done
TOTAL=$((MEMBERS * PER))
T_SS=${BEST[ss]} GOT_SS=${GOT[ss]}
T_ARIA=${BEST[aria]} GOT_ARIA=${GOT[aria]}
T_PAR=${BEST[par]} GOT_PAR=${GOT[par]}
T_SEQ=${BEST[seq]} GOT_SEQ=${GOT[seq]}

rate() { echo "scale=1; $2 / $1" | bc -l; }
R_SS=$(rate "$T_SS" "$GOT_SS")
ratio() { echo "scale=2; $R_SS / $(rate "$1" "$2")" | bc -l; }
printf '\nDownload %d headshots (%d listed for shotsync) from the emulator on loopback (%s cores), best of %d\n' \
  "$N" "$TOTAL" "$(nproc)" "$REPEAT"
printf '%-44s %6s %8s %8s %12s\n' tool files seconds files/s "shotsync x"
printf '%-44s %6s %8.2f %8s %12s\n' "shotsync pull (jobs 8, listing+fsync incl.)" "$GOT_SS" "$T_SS" "$R_SS" "1.00"
printf '%-44s %6s %8.2f %8s %12s\n' "aria2c -j 8 -i urls.txt" "$GOT_ARIA" "$T_ARIA" "$(rate "$T_ARIA" "$GOT_ARIA")" "$(ratio "$T_ARIA" "$GOT_ARIA")"
printf '%-44s %6s %8.2f %8s %12s\n' "curl --parallel --parallel-max 8" "$GOT_PAR" "$T_PAR" "$(rate "$T_PAR" "$GOT_PAR")" "$(ratio "$T_PAR" "$GOT_PAR")"
printf '%-44s %6s %8.2f %8s %12s\n' "curl, one process, keep-alive" "$GOT_SEQ" "$T_SEQ" "$(rate "$T_SEQ" "$GOT_SEQ")" "$(ratio "$T_SEQ" "$GOT_SEQ")"
echo "(shotsync x = shotsync files/s divided by the tool's files/s; goal >= 1.0 vs the best curl mode, >= 2 vs aria2c)"
