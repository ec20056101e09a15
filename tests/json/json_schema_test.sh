#!/usr/bin/env bash
# Runs every command with --json against the emulator, in success and failure
# cases (bad token, missing folder, rejected file, interrupted run, no config),
# and checks each output with validate.py against docs/shotsync.schema.json.
#   json_schema_test.sh SHOTSYNC EMULATOR GENPHOTOS SCHEMA
set -euo pipefail
SHOTSYNC=$1 EMULATOR=$2 GENPHOTOS=$3 SCHEMA=$4
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../../scripts/lib/common.sh"

fail() { echo "FAIL: $*" >&2; exit 1; }
# Debian's validator, whichever python3 comes first on PATH.
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || fail "/usr/bin/python3 not found: apt-get install -y python3"
"$PYTHON" -c 'import jsonschema' 2>/dev/null || fail "python3 jsonschema not found: apt-get install -y python3-jsonschema"
command -v curl >/dev/null || fail "curl not found: apt-get install -y curl"

WORK=$(mktemp -d)
cleanup() { stop_emulator; rm -rf "$WORK"; }
trap cleanup EXIT
OUT=$WORK/out
mkdir -p "$OUT" "$WORK/state" "$WORK/slow-state"
start_emulator "$EMULATOR"
curl -fsS -X POST "$EMU_URL/_emulator/seed" -H 'Content-Type: application/json' \
  -d '{"members": 2, "models_per_member": 1, "photos_per_model": 2}' >/dev/null
"$GENPHOTOS" "$WORK/photos" --count 4 --per-dir 4 --width 64 --height 48 >/dev/null
"$GENPHOTOS" "$WORK/slow" --count 12 --per-dir 12 --width 64 --height 48 >/dev/null

config() {  # config FILE STATE_DIR ROOT [RPM]
  cat >"$1" <<TOML
state_dir = "$2"
[shootbin]
base_url = "$EMU_URL"
rpm = ${4:-1000000}
[headshotpro]
base_url = "$EMU_URL/api/v2"
dest = "$WORK/headshots"
[[roots]]
path = "$3"
project = "Demo"
album = "Json"
create = true
TOML
}
config "$WORK/ok.toml" "$WORK/state" "$WORK/photos"
config "$WORK/missing.toml" "$WORK/missing-state" "$WORK/no-such-folder"
# 60 requests/min: a dozen uploads take longer than --max-duration 1s.
config "$WORK/slow.toml" "$WORK/slow-state" "$WORK/slow" 60
export SHOOTBIN_API_TOKEN=sb-test-token HEADSHOTPRO_API_KEY=hp-test-key

# run CASE COMMAND-NAME [env VAR=V...] -- ARGS...: stdout, exit code and the
# expected "command" of one run, for validate.py.
run() {
  local case=$1 command=$2; shift 2
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  local rc=0
  env "${envs[@]}" "$SHOTSYNC" --json "$@" >"$OUT/$case.out" 2>"$OUT/$case.err" </dev/null || rc=$?
  echo "$rc" >"$OUT/$case.rc"
  echo "$command" >"$OUT/$case.cmd"
  echo "$case: exit $rc"
}
expect_rc() {  # expect_rc CASE CODE: the case ended as its scenario must
  [ "$(cat "$OUT/$1.rc")" = "$2" ] || { cat "$OUT/$1.out" "$OUT/$1.err" >&2; fail "$1: exit $(cat "$OUT/$1.rc"), expected $2"; }
}

OK=(--config "$WORK/ok.toml")
run plan-first plan -- "${OK[@]}" plan;                       expect_rc plan-first 0
run plan-verbose plan -- "${OK[@]}" -v plan;                  expect_rc plan-verbose 0
run sync-ok sync -- "${OK[@]}" sync;                          expect_rc sync-ok 0
run sync-dry-run sync -- "${OK[@]}" sync --dry-run;           expect_rc sync-dry-run 0
printf 'not a photo' >"$WORK/photos/day01/notes.jpg"
run plan-rejected plan -- "${OK[@]}" plan
run sync-rejected sync -- "${OK[@]}" sync;                    expect_rc sync-rejected 1
run sync-rejected-earlier sync -- "${OK[@]}" sync;            expect_rc sync-rejected-earlier 1
run push-rejected push -- "${OK[@]}" push "$WORK/photos/day01/notes.jpg"
run push-ok push -- "${OK[@]}" push "$WORK/photos/day01/IMG_0001.jpg"; expect_rc push-ok 0
run push-outside push -- "${OK[@]}" push "$WORK/elsewhere.jpg"
run push-none push -- "${OK[@]}" push -
# A profile with photos to send (nothing to send asks the server nothing).
SLOW=(--config "$WORK/slow.toml")
run sync-bad-token sync SHOOTBIN_API_TOKEN=sb-wrong -- "${SLOW[@]}" sync; expect_rc sync-bad-token 3
run plan-bad-token plan SHOOTBIN_API_TOKEN=sb-wrong -- "${SLOW[@]}" plan
run sync-missing-folder sync -- --config "$WORK/missing.toml" sync
run plan-missing-folder plan -- --config "$WORK/missing.toml" plan
run sync-no-config sync -- --config "$WORK/none.toml" sync;   expect_rc sync-no-config 2
run sync-bad-duration sync -- "${OK[@]}" sync --max-duration soon; expect_rc sync-bad-duration 2
run sync-interrupted sync -- "${SLOW[@]}" sync --max-duration 1s; expect_rc sync-interrupted 5
run pull-dry-run pull -- "${OK[@]}" pull --dry-run;           expect_rc pull-dry-run 0
run pull-ok pull -- "${OK[@]}" pull;                          expect_rc pull-ok 0
run pull-bad-key pull HEADSHOTPRO_API_KEY=hp-wrong -- "${OK[@]}" pull; expect_rc pull-bad-key 3
run status status -- "${OK[@]}" status;                       expect_rc status 0
run status-interrupted status -- "${SLOW[@]}" status; expect_rc status-interrupted 0
run verify verify -- "${OK[@]}" verify
run verify-remote verify -- "${OK[@]}" verify --remote
run check-ok check -- "${OK[@]}" check
run check-bad-token check SHOOTBIN_API_TOKEN=sb-wrong -- "${OK[@]}" check
run check-no-config check -- --config "$WORK/none.toml" check; expect_rc check-no-config 2
run ls ls -- "${OK[@]}" ls;                                   expect_rc ls 0
run ls-project ls -- "${OK[@]}" ls Demo;                      expect_rc ls-project 0
run ls-no-such-project ls -- "${OK[@]}" ls Nowhere;           expect_rc ls-no-such-project 2
run ls-bad-token ls SHOOTBIN_API_TOKEN=sb-wrong -- "${OK[@]}" ls; expect_rc ls-bad-token 3
run ls-no-token ls SHOOTBIN_API_TOKEN= -- "${OK[@]}" ls;      expect_rc ls-no-token 3
run team-status team -- "${OK[@]}" team status;               expect_rc team-status 0
run team-bad-key team HEADSHOTPRO_API_KEY=hp-wrong -- "${OK[@]}" team status; expect_rc team-bad-key 3
printf 'a@example.com\nnot-an-email\n' >"$WORK/invites.csv"
run team-invite team -- "${OK[@]}" team invite --csv "$WORK/invites.csv" --dry-run
run team-revoke team -- "${OK[@]}" team revoke --dry-run nobody@example.com
run ignore-list ignore -- "${OK[@]}" ignore --list;           expect_rc ignore-list 0
run ignore-add ignore -- "${OK[@]}" ignore "$WORK/photos/day01/notes.jpg"
run ignore-list-after ignore -- "${OK[@]}" ignore --list;     expect_rc ignore-list-after 0
run shared-no-store shared -- "${OK[@]}" shared import;       expect_rc shared-no-store 2

# Commands whose --json prints nothing on success are not in the schema's list:
# say so instead of passing on an empty file.
for f in "$OUT"/*.out; do
  [ -s "$f" ] || { cat "${f%.out}.err" >&2; fail "$(basename "$f" .out): no JSON on stdout"; }
done
"$PYTHON" "$HERE/validate.py" "$SCHEMA" "$OUT" || {
  for f in "$OUT"/*.err; do [ -s "$f" ] && { echo "--- $(basename "$f")"; head -5 "$f"; }; done >&2
  fail "some --json outputs do not follow $SCHEMA"
}
