#!/usr/bin/env bash
# Local pipeline benchmarks (issue 4), each against a peer measured in the
# same run, warm cache, best of 3:
#   1. no-op resync of 100,000 small files: shotsync plan vs find -printf (stat walk)
#   2. hashing ~2 GB of photo-sized files: engine Hasher vs xxhsum -H2, 1 and 2 threads
#   3. peak RSS of the first (hashing) plan of the 100k tree
# Usage: benchmarks/local.sh [FILES=100000] [HASH_MB=2000]
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
cd "$SHOTSYNC_ROOT"
FILES=${1:-100000}
HASH_MB=${2:-2000}
ensure_packages "${SHOTSYNC_BUILD_PACKAGES[@]}" xxhash time bc
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

echo "==> making ~$HASH_MB MB of photo-sized files"
mkdir -p "$WORK/big"
n=$(( HASH_MB / 8 ))
for i in $(seq 1 "$n"); do head -c $(( (5 + i % 6) * 1024 * 1024 )) /dev/urandom >"$WORK/big/p$i.raw"; done
cat "$WORK/big"/* >/dev/null
BYTES=$(du -sb "$WORK/big" | cut -f1)
T_X1=$(best3 xxhsum -H2 "$WORK/big"/*)
T_B1=$(best3 "$BIN/benchmarks/bench-hash" --threads 1 "$WORK/big"/*)
T_X2=$(best3 sh -c "ls '$WORK/big'/* | xargs -P2 -n 8 xxhsum -H2")
T_B2=$(best3 "$BIN/benchmarks/bench-hash" --threads 2 "$WORK/big"/*)

mbs() { echo "scale=0; $BYTES / 1048576 / $1" | bc -l; }
printf '\n%-52s %10s %10s %8s\n' "benchmark" "shotsync" "peer" "ratio"
printf '%-52s %9.3fs %9.3fs %8.2f  (goal <= 1.20)\n' "no-op resync, $FILES files (plan vs find -printf)" "$T_PLAN" "$T_FIND" "$(echo "$T_PLAN / $T_FIND" | bc -l)"
printf '%-52s %7s MB/s %5s MB/s %8.2f  (goal >= 0.90)\n' "hash 1 thread (vs xxhsum -H2)" "$(mbs "$T_B1")" "$(mbs "$T_X1")" "$(echo "$T_X1 / $T_B1" | bc -l)"
printf '%-52s %7s MB/s %5s MB/s %8.2f  (goal >= 1.00)\n' "hash 2 threads (vs xargs -P2 xxhsum -H2)" "$(mbs "$T_B2")" "$(mbs "$T_X2")" "$(echo "$T_X2 / $T_B2" | bc -l)"
printf '%-52s %7s MB (no-op plan: %s MB)  (goal <= 64)\n' "peak RSS, first plan of $FILES files" "$(( RSS_KB / 1024 ))" "$(( RSS2_KB / 1024 ))"
