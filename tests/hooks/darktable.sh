#!/usr/bin/env bash
# darktable's export: shotsync.lua under a stub darktable module (its
# register_storage signature) gets darktable's temporary exports through
# store(), moves them into the export folder and runs the real shotsync-hook
# once from finalize().
source "$(dirname "$0")/lib.sh"
need lua5.4 lua5.4
hooks_setup "$@"
luac5.4 -p "$HOOKS_DIST/darktable/shotsync.lua" || fail "shotsync.lua does not compile"
tmp=$WORK/darktable-tmp
mkdir -p "$tmp" "$ROOT/darktable"
cp "$ROOT/day01/IMG_0001.jpg" "$tmp/DSC 0001.jpg"
cp "$ROOT/day01/IMG_0002.jpg" "$tmp/DSC_0002'x.jpg"
desktop lua5.4 "$HOOKS_SRC/tests/hooks/darktable/export.lua" "$HOOKS_DIST/darktable/shotsync.lua" \
  "$ROOT/darktable" "$tmp/DSC 0001.jpg" "$tmp/DSC_0002'x.jpg" || fail "the darktable export failed"
expect_sent 2
for f in "DSC 0001.jpg" "DSC_0002'x.jpg"; do
  [ -f "$ROOT/darktable/$f" ] || fail "$f is not in the export folder"
done
[ -z "$(ls -A "$tmp")" ] || fail "darktable's temporary files were left behind"
