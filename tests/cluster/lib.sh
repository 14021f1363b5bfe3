# shellcheck shell=bash
# Helpers for the cluster tests (tests/cluster/t-*.sh). Each test is a bash
# script that exits 0 when it passes, 77 when it must be skipped, anything
# else when it fails; tests/run runs them with the cluster up (4 nodes).
set -euo pipefail

: "${TCK_SRCDIR:?run through tests/run (make check)}"
CLUSTER=${CLUSTER:-$TCK_SRCDIR/tests/cluster/cluster}
# shellcheck disable=SC2034  # used by the tests that source this file
STATE=${TIERCKPT_CLUSTER_DIR:-/var/lib/tierckpt-cluster}

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "$*"; exit 77; }
step() { echo "== $*"; }

# Runs a command as the test user with the cluster's environment.
ck() { "$CLUSTER" exec "$@"; }

assert_eq() { # ACTUAL EXPECTED WHAT
    [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}
assert_match() { # TEXT EXTENDED-REGEX WHAT
    grep -Eq -- "$2" <<<"$1" || fail "$3: no line matches /$2/ in:
$1"
}
assert_no_match() { # TEXT EXTENDED-REGEX WHAT
    if grep -Eq -- "$2" <<<"$1"; then fail "$3: a line matches /$2/ in:
$1"; fi
}

node_state() { ck sinfo -h -N -n "$1" -o '%T' | head -n 1; }
