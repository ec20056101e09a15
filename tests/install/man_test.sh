#!/usr/bin/env bash
# The installed man page renders without warnings and documents every
# sub-command `shotsync --help` lists and every exit code (0-5).
#   man_test.sh CMAKE BUILD_DIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"
CMAKE=$1 BUILD=$2
require man man-db
install_fresh "$CMAKE" "$BUILD"
PAGE=$P/share/man/man1/shotsync.1

warnings=$(MANWIDTH=80 man --warnings -l "$PAGE" 2>&1 >/dev/null)
[ -z "$warnings" ] || fail "man --warnings -l shotsync.1:
$warnings"
text=$(MANWIDTH=200 man -l "$PAGE" 2>/dev/null)

# section NAME: the rendered text of one section (headings start in column 1).
section() { awk -v s="$1" '/^[A-Z]/ { on = ($0 == s); next } on' <<<"$text"; }

# CLI11's help lists them under "Subcommands:", one per line indented by two
# spaces: the name (and any aliases, comma-separated) before a run of spaces;
# a long description's continuation lines are indented further.
help=$("$P/bin/shotsync" --help)
mapfile -t names < <(awk '/^Subcommands:/ { on = 1; next } on && /^$/ { exit }
  on && /^  [^ ]/ { sub(/^  /, ""); sub(/  .*/, ""); gsub(/,/, " "); print }' <<<"$help" | tr ' ' '\n' | grep -v '^$')
[ ${#names[@]} -gt 0 ] || fail "no Subcommands section in shotsync --help:
$help"

# Each is the first word of, or a name in, a subsection heading of COMMANDS.
headings=$(section COMMANDS | grep -E '^   [^ ]')
missing=()
for n in "${names[@]}"; do
  grep -qE "^   (.*[ ,|] )?$n([ ,]|$)" <<<"$headings" || missing+=("$n")
done
[ ${#missing[@]} -eq 0 ] || fail "sub-commands without a subsection in COMMANDS: ${missing[*]}"

status=$(section "EXIT STATUS")
for code in 0 1 2 3 4 5; do
  grep -qE "^ +$code( |$)" <<<"$status" || fail "exit code $code not in EXIT STATUS"
done
echo "ok: man page renders cleanly; documents ${names[*]} and exit codes 0-5"
