#!/usr/bin/env bash
# Checks a built package (cpack -G DEB): it holds the binary, the man page,
# the completions and the units (configured for /usr), and Depends lists
# only package names (dpkg-shlibdeps found every library).
#   check_deb.sh shotsync_<version>_amd64.deb
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DEB=${1:?usage: check_deb.sh DEBFILE}
require dpkg-deb dpkg
[ -f "$DEB" ] || fail "$DEB: no such file"

files=$(dpkg-deb -c "$DEB" | awk '{ print $6 }')
for f in usr/bin/shotsync usr/share/man/man1/shotsync.1 \
         usr/share/bash-completion/completions/shotsync usr/share/zsh/site-functions/_shotsync \
         usr/share/fish/vendor_completions.d/shotsync.fish usr/share/doc/shotsync/examples/config.toml \
         usr/lib/systemd/user/shotsync.service usr/lib/systemd/user/shotsync.timer \
         usr/lib/systemd/user/shotsync@.service usr/lib/systemd/user/shotsync@.timer usr/lib/systemd/user/shotsync-watch@.service \
         usr/lib/systemd/system/shotsync@.service usr/lib/systemd/system/shotsync@.timer usr/lib/systemd/system/shotsync-watch@.service; do
  grep -qx "\./$f" <<<"$files" || fail "$DEB lacks /$f"
done
unit=$(dpkg-deb --fsys-tarfile "$DEB" | tar -xOf - ./usr/lib/systemd/user/shotsync.service)
grep -qx 'ExecStart=/usr/bin/shotsync --quiet sync' <<<"$unit" ||
  fail "the packaged user unit does not run /usr/bin/shotsync"

depends=$(dpkg-deb -f "$DEB" Depends)
[ -n "$depends" ] || fail "$DEB has no Depends (dpkg-shlibdeps did not run?)"
# "name (>= version)" items, alternatives separated by "|".
item='[a-z0-9][a-z0-9+.-]+( \((<<|<=|=|>=|>>) [^)]+\))?'
tr ',' '\n' <<<"$depends" | sed 's/^ *//; s/ *$//' | while read -r dep; do
  [[ $dep =~ ^$item( \| $item)*$ ]] || fail "Depends item is not a package: '$dep' (in: $depends)"
done
[[ $depends != *'???'* ]] || fail "Depends has unresolved libraries: $depends"
for field in Maintainer Description Homepage; do
  [ -n "$(dpkg-deb -f "$DEB" "$field")" ] || fail "$DEB has no $field"
done
echo "ok: $DEB: $(wc -c <"$DEB") bytes; Depends: $depends"
