#!/usr/bin/env bash
# The whole resync, as a user runs it: `shotsync plan` (walk + manifest +
# planner) on FILES small files in nested folders beside
# find ROOT -type f -printf '%s %T@ %i %p\n', warm cache, interleaved rounds
# (best of ROUNDS):
#   the first plan (state folder removed before it: every file is recorded;
#   new files are not read, their upload hashes them) and the same plan again
#   before anything was sent; then, with the rows bound as a sync leaves them,
#   the no-op resync (nothing changed: goal <= 1.2x find);
#   the peak RSS of both (goal <= 64 MB) and the manifest's bytes per file.
# (benchmarks/run measures the walk and the hasher alone against find/xxhsum.)
# Usage: benchmarks/noop_plan.sh [FILES=100000] [ROUNDS=3]   (works at 1000000)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
FILES=${1:-100000}
ROUNDS=${2:-${BENCH_ROUNDS:-3}}
ensure_packages time findutils perl python3
bench_setup shotsync-cli

echo "==> making $FILES small files (1000 per folder, 100 per subfolder)" >&2
perl -e '
  my ($root, $n) = @ARGV; mkdir $root or die "$root: $!";
  for my $i (0 .. $n - 1) {
    my $top = sprintf("%s/d%03d", $root, int($i / 1000));
    my $d = sprintf("%s/s%02d", $top, int($i / 100) % 10);
    if ($i % 1000 == 0) { mkdir $top or die "$top: $!" }
    if ($i % 100 == 0) { mkdir $d or die "$d: $!" }
    open(my $f, ">", "$d/IMG_$i.jpg") or die "$d: $!"; print $f "x" x 100; close $f;
  }' "$WORK/tree" "$FILES"
cat >"$WORK/config.toml" <<TOML
state_dir = "$WORK/state"
[[roots]]
path = "$WORK/tree"
project = "P"
album = "A"
TOML
SS=("$BIN/cli/shotsync" --config "$WORK/config.toml")

run_plan() { "${SS[@]}" plan --quiet; }
run_find() { find "$WORK/tree" -type f -printf '%s %T@ %i %p\n'; }
forget() { [ "$1" != first ] || rm -rf "$WORK/state"; }  # untimed: the first plan starts from nothing

echo "==> $ROUNDS interleaved rounds (first plan, the plan again before any upload, find)" >&2
bench_interleave "$ROUNDS" --setup forget first run_plan planned run_plan find run_find
T_FIRST=${BEST_NS[first]} T_PLANNED=${BEST_NS[planned]} T_FIND1=${BEST_NS[find]}

rm -rf "$WORK/state"
RSS_FIRST=$(peak_rss_kb "${SS[@]}" plan --quiet)
# The no-op resync proper is of a synced library. Its rows are bound here as
# a sync leaves them (a hash, a photo, state synced) with python3's sqlite3:
# sending a million photos through the emulator would take half an hour, and
# the plan reads the rows the same way whoever wrote them.
python3 - "$WORK/state/manifest.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE files SET hash = printf('%032x', id), remote_photo_id = id, "
           "remote_hash = printf('%032x', id), state = 'synced'")
db.commit()
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
PY
echo "==> $ROUNDS interleaved rounds (no-op resync of the synced library, find)" >&2
bench_interleave "$ROUNDS" noop run_plan find run_find
if ! "${SS[@]}" plan 2>/dev/null | grep -q "would upload 0, revise 0, skip $FILES,"; then
  echo "error: the no-op plan did not skip all $FILES files:" >&2
  "${SS[@]}" plan 2>&1 | tail -2 >&2
  exit 1
fi
RSS_NOOP=$(peak_rss_kb "${SS[@]}" plan --quiet)
RSS_FIND=$(peak_rss_kb find "$WORK/tree" -type f -printf '%s %T@ %i %p\n')
STATE_BYTES=$(du -sb "$WORK/state" | cut -f1)

printf '\nshotsync plan on %d files of 100 bytes (%s cores), best of %d, warm cache\n' "$FILES" "$(nproc)" "$ROUNDS"
bench_times noop find
bench_result "no-op resync, $FILES synced files (time ratio)" "$(ns_s "${BEST_NS[noop]}") s" "find -type f -printf" \
  "$(ns_s "${BEST_NS[find]}") s" "$(ratio "${BEST_NS[noop]}" "${BEST_NS[find]}")" "<= 1.2"
bench_result "plan again before any upload, $FILES files (time ratio)" "$(ns_s "$T_PLANNED") s" "find -type f -printf" \
  "$(ns_s "$T_FIND1") s" "$(ratio "$T_PLANNED" "$T_FIND1")" "(info)"
bench_result "first plan (walk + record), $FILES files (time ratio)" "$(ns_s "$T_FIRST") s" "find -type f -printf" \
  "$(ns_s "$T_FIND1") s" "$(ratio "$T_FIRST" "$T_FIND1")" "(info)"
bench_result "peak RSS, first plan of $FILES files" "$(kb_mb "$RSS_FIRST") MB" "find -type f -printf" \
  "$(kb_mb "$RSS_FIND") MB" "-" "<= 64 MB"
bench_result "peak RSS, no-op plan of $FILES files" "$(kb_mb "$RSS_NOOP") MB" "find -type f -printf" \
  "$(kb_mb "$RSS_FIND") MB" "-" "<= 64 MB"
bench_result "manifest on disk, $FILES files (bytes/file)" \
  "$(awk -v b="$STATE_BYTES" -v n="$FILES" 'BEGIN { printf "%.0f B", b / n }')" "-" "-" "-" "(info)"
echo "(time ratio = shotsync's / find's: below 1 is shotsync faster)"
