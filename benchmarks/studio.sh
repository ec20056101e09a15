#!/usr/bin/env bash
# Studio mode: N = 1, 2, 4 hosts (separate shotsync processes with their own
# state folders and photos) syncing into one album on one account at a fixed
# rpm, coordinated through a private PostgreSQL started for the run. Prints,
# for each N, the achieved rate of all hosts together ÷ the allowed rate
# (goal >= 0.95), the worst sliding 60 s window ÷ the allowed rpm (<= 1), the
# 429s (0) and when the first and the last host finished (no host starves);
# then the cost of one claim in the shared store beside the local SQLite claim.
#   benchmarks/studio.sh [RPM] [SECONDS] [HOSTS]     (defaults: 120 70 1,2,4)
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
cd "$SHOTSYNC_ROOT"
RPM=${1:-120}
SECONDS_OF_WORK=${2:-70}
HOSTS=${3:-1,2,4}
ensure_packages "${SHOTSYNC_BUILD_PACKAGES[@]}" "${SHOTSYNC_TEST_PACKAGES[@]}"
BIN=${SHOTSYNC_BUILD:-build/release}
cmake -S . -B "$BIN" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BIN" -j "$(nproc)" --target bench-studio shotsync-cli shotsync-emulator >/dev/null
"$BIN/benchmarks/bench-studio" --cli "$BIN/cli/shotsync" --rpm "$RPM" --seconds "$SECONDS_OF_WORK" --hosts "$HOSTS"
