#!/usr/bin/env bash
# Download benchmark: shotsync pull vs aria2c vs curl, the same headshots from
# the same emulator, interleaved rounds (every tool once per round), best of REPEAT.
#   benchmarks/download.sh [COUNT] [REPEAT] [LARGE_COUNT] [LARGE_MB]
#   (defaults: 500 small headshots, best of 5 rounds; then 200 files of 4 MB;
#    a count of 0 skips that case)
# The peers get the URLs of one listing (urls.txt); shotsync's time includes its
# own listing (members -> models -> photos) and an fsync + rename per file.
# Peers: aria2c -j 8, curl --parallel --parallel-max 8, curl keep-alive, and
# curl --parallel followed by an fsync of every file and of the folder: that one
# does the work shotsync does, so it is the fair comparison (the others leave
# the data in the page cache, which matters with large files).
# Large files: the emulator's seed "photo_bytes" pads each main JPEG to that size.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
COUNT=${1:-500}
ROUNDS=${2:-${BENCH_ROUNDS:-5}}
LARGE_COUNT=${3:-200}
LARGE_MB=${4:-4}
ensure_packages aria2 curl python3 coreutils
bench_setup shotsync-cli shotsync-emulator

MEMBERS=5
start_emulator "$BIN/tests/shotsync-emulator" --headshotpro-rpm 100000000
AUTH="Authorization: Bearer hp-test-key"
API="$EMU_URL/api/v2/organization"
cat >"$WORK/config.toml" <<TOML
state_dir = "$WORK/state"
jobs = 8
[headshotpro]
base_url = "$EMU_URL/api/v2"
rpm = 1000000
dest = "$WORK/shotsync"
TOML
export HEADSHOTPRO_API_KEY=hp-test-key

# seed_and_list COUNT PHOTO_BYTES: a fresh emulator with COUNT headshots (in
# MEMBERS models, rounded up), their bytes made now; urls.txt = COUNT main URLs
# of one listing, curl.cfg the same as url + output pairs. Sets N and TOTAL.
seed_and_list() {
  local count=$1 bytes=$2 per
  per=$(((count + MEMBERS - 1) / MEMBERS))
  TOTAL=$((MEMBERS * per))
  curl -fsS -X POST "$EMU_URL/_emulator/reset" >/dev/null
  curl -fsS -X POST "$EMU_URL/_emulator/seed" -H 'Content-Type: application/json' \
    -d "{\"members\": $MEMBERS, \"photos_per_model\": $per, \"pregenerate\": true, \"photo_bytes\": $bytes}" >/dev/null
  curl -fsS -H "$AUTH" "$API/models?status=active&limit=200" >"$WORK/models.json"
  python3 - "$WORK/models.json" >"$WORK/model_ids" <<'PY'
import json, sys
for m in json.load(open(sys.argv[1]))["models"]: print(m["id"])
PY
  : >"$WORK/urls.txt"
  local mid offset more
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
  head -n "$count" "$WORK/urls.txt" >"$WORK/urls.n" && mv "$WORK/urls.n" "$WORK/urls.txt"
  N=$(wc -l <"$WORK/urls.txt")
  : >"$WORK/curl.cfg"
  local i=0 u
  while IFS= read -r u; do
    [ $i -eq 0 ] || echo next >>"$WORK/curl.cfg"
    printf 'url = "%s"\noutput = "%s/curl/%05d.jpg"\nsilent\nfail\n' "$u" "$WORK" "$i" >>"$WORK/curl.cfg"
    i=$((i + 1))
  done <"$WORK/urls.txt"
}

run_shotsync() { "$BIN/cli/shotsync" --config "$WORK/config.toml" pull --quiet; }
run_aria() {
  aria2c -q -j 8 --auto-file-renaming=false --allow-overwrite=true --file-allocation=none \
    -d "$WORK/aria" -i "$WORK/urls.txt"
}
run_par() { curl --parallel --parallel-max 8 -K "$WORK/curl.cfg"; }
# coreutils sync with operands fsyncs each of them (files, then the folder).
run_par_fsync() { curl --parallel --parallel-max 8 -K "$WORK/curl.cfg" && sync "$WORK/curl"/* "$WORK/curl"; }
run_seq() { curl -K "$WORK/curl.cfg"; }
dir_of() { case $1 in shotsync) echo "$WORK/shotsync" ;; aria) echo "$WORK/aria" ;; *) echo "$WORK/curl" ;; esac; }
fresh_dest() {  # untimed, before every run: nothing downloaded, earlier writes flushed
  rm -rf "$WORK/state" "$(dir_of "$1")" && mkdir -p "$WORK/curl" "$WORK/aria" && sync
}
check_got() {
  local want=$N got bytes
  [ "$1" != shotsync ] || want=$TOTAL
  got=$(find "$(dir_of "$1")" -type f ! -name '*.part' ! -name '*.aria2' | wc -l)
  bytes=$(find "$(dir_of "$1")" -type f ! -name '*.part' ! -name '*.aria2' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
  GOT_BYTES[$1]=$bytes
  [ "$got" = "$want" ] || { echo "error: $1 wrote $got files, expected $want" >&2; return 1; }
}
declare -A GOT_BYTES

# run_case NAME COUNT PHOTO_BYTES UNIT: one case, its rows (UNIT: files or MB).
run_case() {
  local name=$1 count=$2 bytes=$3 unit=$4
  echo "==> $name: seeding $count headshots" >&2
  seed_and_list "$count" "$bytes"
  echo "==> $name: $ROUNDS interleaved rounds" >&2
  bench_interleave "$ROUNDS" --setup fresh_dest --check check_got \
    shotsync run_shotsync aria run_aria par run_par par+fsync run_par_fsync seq run_seq
  local ss=${BEST_NS[shotsync]} size_kb=$((GOT_BYTES[par] / N / 1000))
  printf '\nDownload %d headshots of ~%d KB (%d listed for shotsync) from the emulator on loopback (%s cores), best of %d\n' \
    "$N" "$size_kb" "$TOTAL" "$(nproc)" "$ROUNDS"
  bench_times shotsync aria par par+fsync seq
  local label peer value ss_value r bench
  if [ "$unit" = MB ]; then
    bench="download $N x $((size_kb / 1000)) MB (MB/s)"
    ss_value="$(mb_s "${GOT_BYTES[shotsync]}" "$ss") MB/s"
  else
    bench="download $N x $size_kb KB headshots (files/s)"
    ss_value="$(per_s "$TOTAL" "$ss") files/s"
  fi
  _BENCH_HEADER=  # a header above each case's rows
  for label in par+fsync par seq aria; do
    case $label in
      aria) peer="aria2c -j 8"; goal=">= 2.0" ;;
      par) peer="curl --parallel-max 8 (no fsync)"; goal=">= 1.0" ;;
      par+fsync) peer="curl --parallel-max 8 + fsync (fair)"; goal=">= 1.0" ;;
      seq) peer="curl keep-alive, one process"; goal=">= 1.0" ;;
    esac
    if [ "$unit" = MB ]; then
      value="$(mb_s "${GOT_BYTES[$label]}" "${BEST_NS[$label]}") MB/s"
      r=$(rate_ratio "${GOT_BYTES[shotsync]}" "$ss" "${GOT_BYTES[$label]}" "${BEST_NS[$label]}")
    else
      value="$(per_s "$N" "${BEST_NS[$label]}") files/s"
      r=$(rate_ratio "$TOTAL" "$ss" "$N" "${BEST_NS[$label]}")
    fi
    bench_result "$bench" "$ss_value" "$peer" "$value" "$r" "$goal"
  done
  echo "(ratio = shotsync's rate / the peer's: above 1 is shotsync faster. The fair one is curl + fsync:"
  echo " shotsync fsyncs and renames every file it writes; aria2c and plain curl leave theirs in the page cache.)"
}

[ "$COUNT" -eq 0 ] || run_case small "$COUNT" 0 files
[ "$LARGE_COUNT" -eq 0 ] || run_case large "$LARGE_COUNT" $((LARGE_MB * 1000000)) MB
