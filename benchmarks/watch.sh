#!/usr/bin/env bash
# Watch latency (issue 18): a photo renamed into a watched root, as an
# exporter's tmp-then-rename does, until the emulator's album lists it.
# One photo at a time, each after the previous one is listed.
#   benchmarks/watch.sh [COUNT] [WIDTH]     (defaults: 20 photos of 1600 px)
# Environment: BENCH_RPM=60 (the client's Shootbin rpm), SHOTSYNC_BUILD=DIR
# (a built tree to use as is; default: build/release, configured and built).
# Prints the median and p90 latency beside the settle time and the
# throttle's interval (60/rpm); goal: p90 <= 2 s + one interval.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
cd "$SHOTSYNC_ROOT"
COUNT=${1:-20}
WIDTH=${2:-1600}
RPM=${BENCH_RPM:-60}
SETTLE=0.3
ensure_packages "${SHOTSYNC_BUILD_PACKAGES[@]}" curl
if [ -n "${SHOTSYNC_BUILD:-}" ]; then
  BIN=$SHOTSYNC_BUILD
else
  build_tree build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  BIN=build/release
fi
SHOTSYNC=$BIN/cli/shotsync
if ! "$SHOTSYNC" watch --help >/dev/null 2>&1; then
  echo "error: $SHOTSYNC has no watch command" >&2
  exit 1
fi

WORK=$(mktemp -d)
WATCH_PID=
stop_watch() {
  [ -n "$WATCH_PID" ] || return 0
  kill -TERM "$WATCH_PID" 2>/dev/null || true
  wait "$WATCH_PID" 2>/dev/null || true
  WATCH_PID=
}
trap 'stop_watch; stop_emulator; rm -rf "$WORK"' EXIT

# COUNT measured photos plus one warm-up, all different (dedupe must not
# skip any), made outside the root and copied in one by one.
"$BIN/tests/shotsync-genphotos" "$WORK/samples" --count $((COUNT + 1)) --width "$WIDTH" \
  --height $((WIDTH * 2 / 3)) --per-dir $((COUNT + 1)) --prefix W >/dev/null
mapfile -t FILES < <(find "$WORK/samples" -type f -name '*.jpg' | sort)
mkdir "$WORK/root"

# The server's own limit far above the client's: the client's throttle is
# what is measured.
start_emulator "$BIN/tests/shotsync-emulator" --shootbin-rpm 100000000
cat >"$WORK/config.toml" <<TOML
state_dir = "$WORK/state"
[shootbin]
base_url = "$EMU_URL"
rpm = $RPM
[[roots]]
path = "$WORK/root"
project = "1"
album = "1"
[watch]
settle = "${SETTLE}s"
TOML
export SHOOTBIN_API_TOKEN=sb-test-token
"$SHOTSYNC" --config "$WORK/config.toml" watch >"$WORK/watch.log" 2>&1 &
WATCH_PID=$!

now_ns() { date +%s%N; }
listed() { curl -fsS "$EMU_URL/_emulator/photos?project=1&album=1" | grep -qF "$1\""; }
# drop SAMPLE: tmp-then-rename into the root (the temporary name matches no
# include pattern); waits until the album lists it, prints the ns it took.
drop() {
  local name s
  name=$(basename "$1")
  cp "$1" "$WORK/root/.$name.tmp"
  s=$(now_ns)
  mv "$WORK/root/.$name.tmp" "$WORK/root/$name"
  until listed "$name"; do
    kill -0 "$WATCH_PID" 2>/dev/null || { echo "error: watch exited:" >&2; cat "$WORK/watch.log" >&2; exit 1; }
    sleep 0.02
  done
  echo $(($(now_ns) - s))
}

# Warm-up, not counted: the start-up rescan and the first album lookup,
# which a long-running watcher pays once.
drop "${FILES[0]}" >/dev/null
LAT=()
for f in "${FILES[@]:1}"; do
  t=$(drop "$f")  # a plain assignment: set -e stops on a failed drop
  LAT+=("$t")
done

stop_watch_rc=0
kill -TERM "$WATCH_PID"
wait "$WATCH_PID" || stop_watch_rc=$?
WATCH_PID=
N=${#LAT[@]}
UPLOADS=$(curl -fsS "$EMU_URL/_emulator/stats" | sed -n 's/.*"uploads": *\([0-9]*\).*/\1/p')
# p-th percentile (nearest rank) of the latencies, in seconds.
pct() { printf '%s\n' "${LAT[@]}" | sort -n | awk -v p="$1" '{ v[NR] = $1 } END {
  r = int(NR * p / 100); if (r < NR * p / 100) r++; if (r < 1) r = 1; printf "%.3f", v[r] / 1e9 }'; }
MEDIAN=$(pct 50)
P90=$(pct 90)
INTERVAL=$(awk -v rpm="$RPM" 'BEGIN { printf "%.3f", 60 / rpm }')
GOAL=$(awk -v i="$INTERVAL" 'BEGIN { printf "%.3f", 2 + i }')

printf '\nWatch latency: %d photos of ~%s KB, rename into the root -> listed in the album (%s cores)\n' "$N" \
  "$(( $(du -sb "$WORK/samples" | cut -f1) / (N + 1) / 1024 ))" "$(nproc)"
printf '%-36s %9s\n' "settle" "${SETTLE} s"
printf '%-36s %9s\n' "throttle interval (60/rpm, rpm $RPM)" "$INTERVAL s"
printf '%-36s %9s\n' "median latency" "$MEDIAN s"
printf '%-36s %9s\n' "p90 latency" "$P90 s"
printf 'p90 %s, goal <= %s s (2 s + one interval); median %.2fx settle; emulator counted %s uploads (expected %d); watch exited %d on SIGTERM (expected 0)\n' \
  "$(awk -v v="$P90" -v g="$GOAL" 'BEGIN { print (v <= g) ? "ok" : "MISSED" }')" "$GOAL" \
  "$(awk -v m="$MEDIAN" -v s="$SETTLE" 'BEGIN { printf "%.2f", m / s }')" "$UPLOADS" $((N + 1)) "$stop_watch_rc"
