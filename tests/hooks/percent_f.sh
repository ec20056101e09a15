#!/usr/bin/env bash
# "shotsync-hook %F" as gThumb, Thunar and Dolphin expand it: each selected
# path its own argv word (gThumb and Thunar pass it through sh with the paths
# shell-quoted; Dolphin execs it directly). The names have a space and a quote.
source "$(dirname "$0")/lib.sh"
hooks_setup "$@"
mv "$ROOT/day01/IMG_0002.jpg" "$ROOT/day01/IMG 0002.jpg"
mv "$ROOT/day01/IMG_0003.jpg" "$ROOT/day01/Ann's 3.jpg"
desktop shotsync-hook "$ROOT/day01/IMG_0001.jpg" "$ROOT/day01/IMG 0002.jpg" "$ROOT/day01/Ann's 3.jpg" \
  || fail "shotsync-hook %F exited $?"
expect_sent 3
# Dolphin's service menu and Thunar's action run exactly that command.
grep -qx 'Exec=shotsync-hook %F' "$HOOKS_DIST/dolphin/shotsync-send.desktop" || fail "Dolphin Exec line"
grep -q '<command>shotsync-hook %F</command>' "$HOOKS_DIST/thunar/uca.xml" || fail "Thunar command"
