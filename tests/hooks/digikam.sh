#!/usr/bin/env bash
# The digiKam Batch Queue Manager's "User Shell Script" line "shotsync-bqm
# $INPUT $OUTPUT" as digiKam runs it (userscript.cpp): $INPUT and $OUTPUT
# replaced by the double-quoted paths, then /bin/sh -c, with its TITLE /
# RATING / ... variables. First in the queue, $INPUT is the album's photo and
# $OUTPUT a BatchTool-*.digikamtempfile.* file beside it.
source "$(dirname "$0")/lib.sh"
hooks_setup "$@"
ln -s "$HOOKS_DIST/digikam/shotsync-bqm" "$BIN/shotsync-bqm"
in="$ROOT/day01/IMG_0001.jpg"
out="$ROOT/day01/BatchTool-EpEjEz-9e1c7a12.digikamtempfile.jpg"
desktop TITLE="Studio" RATING=3 COLORLABEL=0 PICKLABEL=0 COMMENTS= TAGSPATH= \
  /bin/sh -c "shotsync-bqm \"$in\" \"$out\"" || fail "the BQM script exited $?"
expect_sent 1
cmp -s "$in" "$out" || fail "the script did not copy \$INPUT to \$OUTPUT"
# A later tool's $INPUT is digiKam's temporary copy: refused, not sent as a new photo.
if desktop /bin/sh -c "shotsync-bqm \"$out\" \"$ROOT/day01/BatchTool-x.digikamtempfile.jpg\"" 2>/dev/null; then
  fail "the BQM script sent a digiKam temporary file"
fi
expect_sent 1
