#!/bin/bash
# How fast a job runs again after losing a node, on the test cluster (root):
# a 4-node --no-kill allocation, tierckpt run with one spare, 6 ranks of the
# synthetic trainer (64 MiB of state each, one replica); once version 12 is
# saved, a node is killed (its processes die), then in other runs frozen
# (its processes stop: silent). Several runs of each (TCK_BENCH_FAILOVER_RUNS,
# default 3). Lines:
#   bench failover_detect_s value=MEDIAN worst=W unit=s reference=R ratio=MEDIAN/R
#       tierckpt run's own account ("detected in") of a killed node, against
#       the peer timeout in force (the silence that must pass before anyone
#       may call a node dead that answers nothing)
#   bench failover_kill_to_running_s value=MEDIAN worst=W unit=s reference=R ratio=MEDIAN/R
#       from the kill until the relaunched step's last rank has restored, against
#       the peer timeout plus a fresh step's start to its first line
#       (srun, MPI_Init, open, an empty restore) measured in the same run
#   bench failover_detect_silent_s, failover_silent_to_running_s
#       the same for a frozen node (found by the peer timeout alone)
set -euo pipefail
SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
BUILDDIR=${TCK_BUILDDIR:-$SRCDIR}
CLUSTER=$SRCDIR/tests/cluster/cluster
STATE=${TIERCKPT_CLUSTER_DIR:-/var/lib/tierckpt-cluster}
RUNS=${TCK_BENCH_FAILOVER_RUNS:-3}
[ "$(id -u)" -eq 0 ] || { echo "failover bench: needs root (the test cluster); skipped"; exit 0; }
"$CLUSTER" status >/dev/null 2>&1 || trap '"$CLUSTER" down >/dev/null' EXIT
TCK_BUILDDIR=$BUILDDIR "$CLUSTER" up 4 >/dev/null
timeout_s=$(awk -v t="${TIERCKPT_PEER_TIMEOUT_MS:-8000}" 'BEGIN { printf "%.3f", t / 1000 }')
OPTS=(--ckpt-mem=1G --ckpt-replicas=1)
TRAIN=(tierckpt-synth-train --state-mib 64 --ckpt-every 4 --step-ms 250)
now() { date +%s.%N; }
# Waits until FILE has a line matching REGEX (up to 120 s); prints the time.
seen() { # FILE REGEX
    local i
    for ((i = 0; i < 1200; i++)); do
        grep -Eq -- "$2" "$1" && { now; return 0; }
        sleep 0.1
    done
    echo "failover bench: timed out waiting for /$2/ in $1" >&2
    cat "$1" >&2
    return 1
}

# The reference: a fresh step's start (srun to its first line).
refs=()
for ((r = 0; r < RUNS; r++)); do
    out=$("$CLUSTER" exec mktemp "$STATE/jobs/bench-failover.XXXXXX")
    t0=$(now)
    "$CLUSTER" exec srun --mpi=pmix -N3 -n6 -w n1,n3,n4 "${OPTS[@]}" "${TRAIN[@]}" --steps 1 >"$out" 2>&1 &
    pid=$!
    t1=$(seen "$out" '^rank=[0-9]+ restored')
    wait "$pid"
    refs+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
done
# One failure per run. kill: every process of n2 dies (its kernel lives on
# and answers that the ranks' heartbeat ports are closed, as after a crash or
# a reboot); freeze: every process of n2 stops (a hang, a lost link, a node
# without power: nothing answers, only the peer timeout finds it).
declare -A detects=() runnings=()
for mode in kill freeze; do
    for ((r = 0; r < RUNS; r++)); do
        out=$("$CLUSTER" exec mktemp "$STATE/jobs/bench-failover.XXXXXX")
        "$CLUSTER" exec salloc --no-kill -N4 -n8 -w n1,n2,n3,n4 "${OPTS[@]}" tierckpt run --spares 1 -- \
            srun --mpi=pmix -n6 "${TRAIN[@]}" --steps 40 >"$out" 2>&1 &
        pid=$!
        seen "$out" '^saved version=12 ' >/dev/null
        t_kill=$(now)
        "$CLUSTER" "$mode" n2 >/dev/null
        # Running again: every rank of the relaunch has restored (the program's
        # own lines; tierckpt run's account comes a second later).
        t_run=$(seen "$out" '^rank=5 restored version=')
        grep -q '^tierckpt run: attempt 2: step on' "$out" || { echo "failover bench: no relaunch:" >&2; cat "$out" >&2; exit 1; }
        wait "$pid" || { echo "failover bench: tierckpt run failed:" >&2; cat "$out" >&2; exit 1; }
        d=$(sed -n 's/^tierckpt run: restart 1: .*; detected in \([0-9.]*\) s; .*/\1/p' "$out")
        detects[$mode]+=" $d"
        runnings[$mode]+=" $(awk -v a="$t_kill" -v b="$t_run" 'BEGIN { printf "%.3f", b - a }')"
        grep -E '^tierckpt run: (restart|attempt 2: (restored|slowest))' "$out" | sed "s/^/note failover ($mode): /"
        [ "$mode" = freeze ] && "$CLUSTER" kill n2 >/dev/null
        "$CLUSTER" revive n2 >/dev/null
    done
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
worst() { printf '%s\n' "$@" | sort -g | tail -n 1; }
ref_start=$(median "${refs[@]}")
report() { # NAME REFERENCE VALUES...
    local name=$1 ref=$2
    shift 2
    awk -v n="$name" -v m="$(median "$@")" -v w="$(worst "$@")" -v r="$ref" -v k="$#" \
        'BEGIN { printf "bench %s value=%.2f worst=%.2f runs=%d unit=s reference=%.2f ratio=%.3f\n", n, m, w, k, r, m / r }'
}
# shellcheck disable=SC2086  # one figure per word
{
    report failover_detect_s "$timeout_s" ${detects[kill]}
    report failover_kill_to_running_s "$(awk -v a="$timeout_s" -v b="$ref_start" 'BEGIN { print a + b }')" ${runnings[kill]}
    report failover_detect_silent_s "$timeout_s" ${detects[freeze]}
    report failover_silent_to_running_s "$(awk -v a="$timeout_s" -v b="$ref_start" 'BEGIN { print a + b }')" ${runnings[freeze]}
}
echo "note failover: a fresh step's start (srun to its first line): ${refs[*]} s"
