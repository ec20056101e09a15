#!/usr/bin/env bash
# The whole no-op resync, as a user runs it: `shotsync plan` (walk + manifest
# + planner) on 100,000 small files against find -printf, warm cache, best of
# 3, and the peak RSS of the first (hashing) and of the no-op plan.
# (benchmarks/run measures the walk and the hasher alone against find/xxhsum.)
# Usage: benchmarks/noop_plan.sh [FILES=100000]
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
cd "$SHOTSYNC_ROOT"
FILES=${1:-100000}
ensure_packages "${SHOTSYNC_BUILD_PACKAGES[@]}" time bc
build_tree build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
BIN=$SHOTSYNC_ROOT/build/release
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

best3() {  # best wall time of three runs of "$@", in seconds
  local best=999999 s e t
  for _ in 1 2 3; do
    s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc -l)
    if (( $(echo "$t < $best" | bc -l) )); then best=$t; fi
  done
  echo "$best"
}

echo "==> making $FILES small files"
perl -e 'my ($root,$n)=@ARGV; for my $i (0..$n-1) { my $d=sprintf("%s/d%03d/s%02d",$root,int($i/1000),int($i/100)%10); if ($i%100==0) { system("mkdir","-p",$d) } open(my $f,">","$d/f$i.jpg") or die; print $f "x" x 100; close $f }' "$WORK/tree" "$FILES"
cat >"$WORK/config.toml" <<TOML
state_dir = "$WORK/state"
[[roots]]
path = "$WORK/tree"
project = "P"
album = "A"
TOML
SS="$BIN/cli/shotsync --config $WORK/config.toml"
/usr/bin/time -v $SS plan --quiet 2>"$WORK/time1.txt" >/dev/null || true
RSS_KB=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/time1.txt")
T_FIND=$(best3 find "$WORK/tree" -type f -printf '%s %T@ %i %p\n')
T_PLAN=$(best3 $SS plan --quiet)
/usr/bin/time -v $SS plan --quiet 2>"$WORK/time2.txt" >/dev/null || true
RSS2_KB=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/time2.txt")

printf '\n%-52s %10s %10s %8s\n' "benchmark" "shotsync" "peer" "ratio"
printf '%-52s %9.3fs %9.3fs %8.2f  (goal <= 1.20)\n' "no-op resync, $FILES files (plan vs find -printf)" "$T_PLAN" "$T_FIND" "$(echo "$T_PLAN / $T_FIND" | bc -l)"
printf '%-52s %7s MB (no-op plan: %s MB)  (goal <= 64)\n' "peak RSS, first plan of $FILES files" "$(( RSS_KB / 1024 ))" "$(( RSS2_KB / 1024 ))"

