# Shared by scripts/test, scripts/demo and benchmarks/run. Source it.
# ensure_packages PKG...: apt-get update once, then install only what is absent.

SHOTSYNC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Packages needed to build shotsync, its tests and the emulator.
SHOTSYNC_BUILD_PACKAGES=(
  g++ cmake ninja-build pkg-config
  libcurl4-openssl-dev libtbb-dev libsqlite3-dev
  nlohmann-json3-dev libcli11-dev libtomlplusplus-dev libxxhash-dev
  catch2 libcpp-httplib-dev libssl-dev libjpeg62-turbo-dev libturbojpeg0-dev libutf8proc-dev libicu-dev
  libpq-dev curl openssl xxhash
)
# What the tests start or check with: the PostgreSQL server of studio mode
# (initdb, pg_ctl); man, systemd-analyze and dpkg-shlibdeps for the install
# tests; Lua for the darktable hook; nginx as a real HTTP/2 server in front of
# the emulator (tests/integration/http2_test.cpp).
SHOTSYNC_TEST_PACKAGES=(postgresql man-db systemd dpkg-dev lua5.4 python3-jsonschema nginx-light)
# clang with libFuzzer and the sanitizer runtimes (Debian bookworm: clang 14), for scripts/fuzz.
SHOTSYNC_FUZZ_PACKAGES=(clang libclang-rt-14-dev)

_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "error: need root (or sudo) to install packages: $*" >&2; return 1; fi
}

ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "==> installing: ${missing[*]}"
  if [ -z "${_SHOTSYNC_APT_UPDATED:-}" ]; then
    _as_root apt-get update -qq
    _SHOTSYNC_APT_UPDATED=1
  fi
  _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# build_tree DIR [cmake args...]: configure (once) and build.
build_tree() {
  local dir=$1; shift
  cmake -S "$SHOTSYNC_ROOT" -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}

# start_emulator EMULATOR_BINARY [args...]: starts it on a free loopback port,
# sets EMU_PID and EMU_URL. stop_emulator stops it.
start_emulator() {
  local bin=$1; shift
  local fifo
  fifo=$(mktemp -u)
  mkfifo "$fifo"
  "$bin" --port 0 "$@" >"$fifo" &
  EMU_PID=$!
  exec {EMU_FD}<"$fifo"
  rm -f "$fifo"
  if ! read -r -t 10 EMU_URL <&"$EMU_FD"; then
    echo "error: emulator did not start" >&2
    kill "$EMU_PID" 2>/dev/null
    return 1
  fi
  # Keep draining its stdout so it never blocks on a full pipe.
  cat <&"$EMU_FD" >/dev/null &
}

stop_emulator() {
  [ -n "${EMU_PID:-}" ] || return 0
  kill -TERM "$EMU_PID" 2>/dev/null || true
  wait "$EMU_PID" 2>/dev/null || true
  EMU_PID=
}
