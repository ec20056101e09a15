# Shared by the install tests. Source it after `set -euo pipefail`.
# Each test installs into a temporary prefix of its own (tests run in parallel).

fail() { echo "FAIL: $*" >&2; exit 1; }

# require TOOL DEBIAN_PACKAGE: a missing tool fails the test, naming the package.
require() {
  command -v "$1" >/dev/null || fail "$1 not found: apt-get install -y $2"
}

# make_tmp: sets TMP to a fresh folder removed on exit (with whatever the test
# registered in CLEANUP first).
CLEANUP=()
make_tmp() {
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/shotsync-install.XXXXXX")
  trap 'for c in "${CLEANUP[@]}"; do eval "$c"; done; rm -rf "$TMP"' EXIT
}

# install_fresh CMAKE BUILD_DIR: make_tmp, then `cmake --install` into
# P=$TMP/prefix, quiet unless it fails.
install_fresh() {
  local out
  make_tmp
  P=$TMP/prefix
  out=$("$1" --install "$2" --prefix "$P" 2>&1) || fail "cmake --install failed:
$out"
}
