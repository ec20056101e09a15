#!/usr/bin/env bash
# The Nautilus script as Nautilus runs it: the selection, one path a line, in
# NAUTILUS_SCRIPT_SELECTED_FILE_PATHS; one name has a space.
source "$(dirname "$0")/lib.sh"
hooks_setup "$@"
mv "$ROOT/day01/IMG_0002.jpg" "$ROOT/day01/IMG 0002.jpg"
desktop NAUTILUS_SCRIPT_SELECTED_FILE_PATHS="$ROOT/day01/IMG_0001.jpg
$ROOT/day01/IMG 0002.jpg
" "$HOOKS_DIST/nautilus/Send to Shootbin" || fail "the Nautilus script exited $?"
expect_sent 2
