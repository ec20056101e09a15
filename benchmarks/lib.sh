# shellcheck shell=bash
# Shared by the benchmark scripts. Source it after `set -euo pipefail`:
#   source "$(dirname "$0")/lib.sh"
#   bench_setup shotsync-cli shotsync-emulator   # BIN (the build tree) and WORK (a temp dir)
#   bench_interleave ROUNDS [--setup FN] [--check FN] [--warmup] LABEL FN [LABEL FN ...]
#   bench_result BENCHMARK SHOTSYNC_VALUE PEER_NAME PEER_VALUE RATIO GOAL
# Environment:
#   SHOTSYNC_BUILD=DIR  use this build tree as it is (else build/release,
#                       configured RelWithDebInfo and built for the named targets only)
#   BENCH_TMP=DIR       where WORK goes (default $TMPDIR or /tmp)
# Also brings scripts/lib/common.sh (SHOTSYNC_ROOT, ensure_packages,
# start_emulator/stop_emulator) and cds to SHOTSYNC_ROOT.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/common.sh"
cd "$SHOTSYNC_ROOT" || exit 1

# ---------------------------------------------------------------- build tree

# bench_target_path TARGET: where a CMake target's program lands in BIN.
bench_target_path() {
  case $1 in
    shotsync-cli) echo "$BIN/cli/shotsync" ;;
    shotsync-emulator | shotsync-genphotos) echo "$BIN/tests/$1" ;;
    bench-*) echo "$BIN/benchmarks/$1" ;;
    *) echo "$BIN/$1" ;;
  esac
}

# bench_build TARGET...: sets BIN; builds only those targets unless
# SHOTSYNC_BUILD names a tree, which is used as it is (never rebuilt).
bench_build() {
  if [ -n "${SHOTSYNC_BUILD:-}" ]; then
    BIN=$(cd "$SHOTSYNC_BUILD" && pwd)
  else
    ensure_packages "${SHOTSYNC_BUILD_PACKAGES[@]}"
    BIN=$SHOTSYNC_ROOT/build/release
    local log
    log=$(mktemp)
    echo "==> building $* in $BIN" >&2
    if ! { cmake -S "$SHOTSYNC_ROOT" -B "$BIN" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
      cmake --build "$BIN" -j "$(nproc)" --target "$@"; } >"$log" 2>&1; then
      tail -n 40 "$log" >&2
      rm -f "$log"
      echo "error: build failed" >&2
      exit 1
    fi
    rm -f "$log"
  fi
  local t
  for t in "$@"; do
    [ -x "$(bench_target_path "$t")" ] ||
      { echo "error: $(bench_target_path "$t") is missing (target $t; build tree $BIN)" >&2; exit 1; }
  done
}

# bench_workdir: WORK, a fresh temp dir removed on exit (the emulator, if
# one was started, is stopped first).
bench_workdir() {
  WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/shotsync-bench-XXXXXX")
  trap _bench_cleanup EXIT
}
_bench_cleanup() {
  stop_emulator
  [ -z "${WORK:-}" ] || rm -rf "$WORK"
}

bench_setup() { bench_build "$@"; bench_workdir; }

# ---------------------------------------------------------------- timing

# now_ns: wall clock in nanoseconds (microsecond resolution; no fork).
now_ns() { local t=${EPOCHREALTIME/[.,]/}; echo "${t}000"; }

declare -gA BEST_NS=() MEDIAN_NS=() TIMES_NS=()
BENCH_ROUND=0  # the round now running, for the benchmarks' functions
export BENCH_ROUND

# bench_interleave ROUNDS [--setup FN] [--check FN] [--warmup] LABEL FN [LABEL FN ...]
# Each round runs every FN once, in the order given, so that whatever else the
# machine does hits all tools alike. Before each run `SETUP LABEL` runs and
# after it `CHECK LABEL` (both untimed, in this shell; CHECK fails the
# benchmark with a message when the run did not do its work). --warmup runs
# one untimed round first. BENCH_ROUND is the round (1..ROUNDS; 0 for the
# warm-up) while FN runs. FN's stdout goes to /dev/null (redirect inside FN
# to keep it); its exit status is its last command's (chain with &&: a
# function called as a condition does not stop at a failing command), and a
# failure ends the script with FN's stderr.
# Sets BEST_NS[LABEL], MEDIAN_NS[LABEL] and TIMES_NS[LABEL] (every time, ns).
bench_interleave() {
  local rounds=$1 setup='' check='' warmup=0
  shift
  while [ $# -gt 0 ]; do
    case $1 in
      --setup) setup=$2; shift 2 ;;
      --check) check=$2; shift 2 ;;
      --warmup) warmup=1; shift ;;
      *) break ;;
    esac
  done
  if (($# == 0 || $# % 2 != 0 || rounds < 1)); then
    echo "bench_interleave: ROUNDS >= 1 and LABEL FN pairs expected" >&2
    exit 2
  fi
  local -a labels=() fns=()
  while [ $# -gt 0 ]; do labels+=("$1"); fns+=("$2"); shift 2; done
  local r i label s e ns line
  for label in "${labels[@]}"; do TIMES_NS[$label]=; done
  for ((r = 1 - warmup; r <= rounds; r++)); do
    BENCH_ROUND=$r
    line=
    for i in "${!labels[@]}"; do
      label=${labels[i]}
      if [ -n "$setup" ] && ! "$setup" "$label"; then _bench_fail "setup for $label" ""; fi
      s=${EPOCHREALTIME/[.,]/}
      if ! "${fns[i]}" >/dev/null 2>"$WORK/bench.err"; then _bench_fail "$label (${fns[i]})" "$WORK/bench.err"; fi
      e=${EPOCHREALTIME/[.,]/}
      ns=$(((e - s) * 1000))
      if [ -n "$check" ] && ! "$check" "$label"; then _bench_fail "check of $label" "$WORK/bench.err"; fi
      ((r < 1)) || TIMES_NS[$label]+="$ns "
      line+=" $label $((ns / 1000000)) ms;"
    done
    if ((r < 1)); then echo "   warm-up:$line" >&2; else echo "   round $r/$rounds:$line" >&2; fi
  done
  local -a sorted
  for label in "${labels[@]}"; do
    # shellcheck disable=SC2086  # split into one time per line
    mapfile -t sorted < <(printf '%s\n' ${TIMES_NS[$label]} | sort -n)
    BEST_NS[$label]=${sorted[0]}
    local n=${#sorted[@]}
    if ((n % 2)); then MEDIAN_NS[$label]=${sorted[n / 2]}
    else MEDIAN_NS[$label]=$(((sorted[n / 2 - 1] + sorted[n / 2]) / 2)); fi
  done
}
_bench_fail() {
  echo "error: $1 failed" >&2
  [ -z "$2" ] || head -c 2000 "$2" >&2
  exit 1
}

# bench_times LABEL...: the best and median seconds of each, one line each.
bench_times() {
  _BENCH_HEADER=  # result rows after this get their own header
  local label
  printf '   %-44s %10s %10s\n' "run (best and median of the rounds)" "best s" "median s"
  for label in "$@"; do
    printf '   %-44s %10s %10s\n' "$label" "$(ns_s "${BEST_NS[$label]}")" "$(ns_s "${MEDIAN_NS[$label]}")"
  done
}

# ------------------------------------------------------------ arithmetic (awk)

ns_s() { awk -v n="$1" 'BEGIN { printf "%.3f", n / 1e9 }'; }
ns_ms() { awk -v n="$1" 'BEGIN { printf "%.1f", n / 1e6 }'; }
# per_s COUNT NS: COUNT per second.  mb_s BYTES NS: MB (10^6 bytes) per second.
per_s() { awk -v c="$1" -v n="$2" 'BEGIN { printf "%.1f", c * 1e9 / n }'; }
mb_s() { awk -v b="$1" -v n="$2" 'BEGIN { printf "%.1f", b / 1e6 / (n / 1e9) }'; }
# ratio A B: A / B, two decimals. For a time ratio pass (shotsync, peer):
# below 1 is shotsync faster; for a throughput ratio pass (peer, shotsync) times.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }
# rate_ratio SS_COUNT SS_NS PEER_COUNT PEER_NS: shotsync's rate / the peer's
# (above 1 is shotsync faster), for runs that did different amounts of work.
rate_ratio() {
  awk -v c1="$1" -v n1="$2" -v c2="$3" -v n2="$4" 'BEGIN { printf "%.2f", (c1 / n1) / (c2 / n2) }'
}
# kb_mb KB: kilobytes (as /usr/bin/time -v prints them) in MB, one decimal.
kb_mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# peak_rss_kb CMD...: the command's peak RSS in kB (output discarded; a
# failing command fails).
peak_rss_kb() {
  /usr/bin/time -v "$@" >/dev/null 2>"$WORK/time.txt" || { cat "$WORK/time.txt" >&2; return 1; }
  sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/time.txt"
}

# ---------------------------------------------------------------- results

# bench_verdict SHOTSYNC_VALUE RATIO GOAL: ok or MISSED; "-" for a goal that
# is no comparison (e.g. "(info)"). A goal with a unit ("<= 64 MB") applies to
# SHOTSYNC_VALUE's leading number, a bare one (">= 1.0") to RATIO.
bench_verdict() {
  local value=$2 goal=$3 re='^(<=|>=|<|>) *([0-9]+(\.[0-9]+)?) *(.*)$' num='^([0-9]+(\.[0-9]+)?)'
  if ! [[ $goal =~ $re ]]; then echo "-"; return; fi
  local op=${BASH_REMATCH[1]} bound=${BASH_REMATCH[2]} unit=${BASH_REMATCH[4]}
  [ -z "$unit" ] || value=$1
  if ! [[ $value =~ $num ]]; then echo "?"; return; fi
  awk -v v="${BASH_REMATCH[1]}" -v g="$bound" -v op="$op" 'BEGIN {
    ok = op == "<=" ? v <= g : op == ">=" ? v >= g : op == "<" ? v < g : v > g
    print ok ? "ok" : "MISSED" }'
}

# bench_result BENCHMARK SHOTSYNC_VALUE PEER_NAME PEER_VALUE RATIO GOAL
# Prints a row for people and a line for benchmarks/all:
#   RESULT<TAB>benchmark<TAB>shotsync<TAB>peer<TAB>peer value<TAB>ratio<TAB>goal<TAB>verdict
bench_result() {
  local f=() a verdict
  for a in "$@"; do f+=("${a//$'\t'/ }"); done
  while ((${#f[@]} < 6)); do f+=(""); done
  verdict=$(bench_verdict "${f[1]}" "${f[4]}" "${f[5]}")
  if [ -z "${_BENCH_HEADER:-}" ]; then
    _BENCH_HEADER=1
    printf '\n%-52s %18s  %-40s %14s %7s  %-9s %s\n' benchmark shotsync peer "peer value" ratio goal verdict
  fi
  printf '%-52s %18s  %-40s %14s %7s  %-9s %s\n' "${f[0]}" "${f[1]}" "${f[2]}" "${f[3]}" "${f[4]}" "${f[5]}" "$verdict"
  printf 'RESULT\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${f[@]:0:6}" "$verdict"
}
