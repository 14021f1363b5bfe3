# shellcheck shell=bash
# Liveness under load. The workload of a real job (3 nodes, 2 ranks each, 256
# MiB of state per rank, one replica, a save every second or so) runs while
# two busy loops take this machine's cores and a memory hog keeps it close to
# running out of memory (tests/cluster/hog.py): no rank may be declared dead
# while its node lives, with the default peer timeout. Then, under the same
# load, a node hangs under tierckpt run (every process of it stopped: it
# answers nothing, so only the silence finds it): it is still detected, the
# step runs again on the spare and finishes. Prints the longest silence any rank
# saw from a live peer, and the kill-to-detection and kill-to-running times.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

HOG="$TCK_SRCDIR/tests/cluster/hog.py"
hogs=()
stop_hogs() {
    local p
    for p in "${hogs[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${hogs[@]}"; do wait "$p" 2>/dev/null || true; done
    hogs=()
}
start_hogs() { # FLOOR_MIB: the memory the hog leaves available
    python3 "$HOG" cpu & hogs+=($!)
    python3 "$HOG" cpu & hogs+=($!)
    python3 "$HOG" mem "$1" & hogs+=($!)
}
trap 'stop_hogs; "$CLUSTER" revive n2 >/dev/null 2>&1 || true' EXIT
"$CLUSTER" revive n2 >/dev/null  # every node up and idle to start with

OPTS=(--ckpt-mem=3G --ckpt-replicas=1)
TRAIN="tierckpt-synth-train --state-mib 256 --ckpt-every 5 --step-ms 200"
# The longest silence each rank saw from a watched peer (logged at close).
longest_silence() { # OUTPUT
    sed -n 's/.*the longest silence of a watched peer was \([0-9]*\) ms.*/\1/p' <<<"$1" | sort -n | tail -n 1
}
# Starts CMD... as the test user in the background, its output in $out_file.
start_job() {
    out_file=$(ck mktemp "$STATE/jobs/soak.XXXXXX")
    "$CLUSTER" exec env TIERCKPT_LOG=info "$@" >"$out_file" 2>&1 &
    job_pid=$!
}
wait_output() { wait_for "cat '$out_file'" "$1" "${2:-120}"; }

step "the workload under CPU and memory pressure: nobody is declared dead"
# The hogs start once the stores exist: a store is refused, not squeezed,
# when the node lacks the memory (t-store-refusals).
# shellcheck disable=SC2086  # TRAIN is a command line
start_job srun --mpi=pmix -N3 -n6 -w n1,n2,n3 "${OPTS[@]}" $TRAIN --steps 150
wait_output '^saved version=5 '
start_hogs 1536
rc=0
wait "$job_pid" || rc=$?
stop_hogs
out=$(cat "$out_file")
grep -E '^(saved|committed)' <<<"$out" | sed -n '1p;$p'
echo "stall + wait per save under load (ms, the most any rank lost): $(sed -n 's/^saved version=.* blocked_ms=\([0-9.]*\) .*/\1/p' <<<"$out" | tr '\n' ' ')"
assert_no_match "$out" 'silent for' "no live peer is taken for dead"
assert_eq "$rc" 0 "the step's exit status"
assert_match "$out" '^final steps=150 digest=' "the step finished"
worst=$(longest_silence "$out")
[ -n "$worst" ] || fail "no rank logged the longest silence of its peers"
echo "the longest silence of a live peer under load: $worst ms (the default timeout: 8000 ms)"

step "a node that hangs under the same load is still detected; the step runs again on the spare"
# shellcheck disable=SC2086
start_job salloc --no-kill -N4 -n8 "${OPTS[@]}" tierckpt run --spares 1 -- srun --mpi=pmix -n6 \
    ${TRAIN/--state-mib 256/--state-mib 128} --steps 60
wait_output '^saved version=10 '
start_hogs 2048  # the spare's store is made already (tierckpt run prepares it)
sleep 5
wait_output '^saved version=20 '
t_kill=$(date +%s.%N)
"$CLUSTER" freeze n2
t_running=""
for _ in $(seq 1200); do  # 120 s
    if grep -q '^tierckpt run: attempt 2: restored version' "$out_file"; then
        t_running=$(date +%s.%N)
        break
    fi
    sleep 0.1
done
rc=0
wait "$job_pid" || rc=$?
stop_hogs
"$CLUSTER" kill n2 >/dev/null
out=$(cat "$out_file")
echo "$out" | grep -E '^tierckpt run|silent for' || true
assert_eq "$rc" 0 "tierckpt run's exit status"
[ -n "$t_running" ] || fail "the step did not run again within 120 s of the kill"
assert_match "$out" 'peer rank [23] on n2 silent for [0-9.]+ s \(' "n2's silence is noticed (by the timeout: nothing answers)"
assert_no_match "$out" 'peer rank [0-9]+ on n[134] silent for' "no live node is taken for dead"
assert_match "$out" '^tierckpt run: restart 1: failed: n2 .*relaunching on n1,n3,n4 \(spare n4 in\)$' \
    "tierckpt run replaces n2 with the spare"
assert_match "$out" '^final steps=60 digest=' "the step finished after the restart"
detect=$(sed -n 's/^tierckpt run: restart 1: .*; detected in \([0-9.]*\) s; .*/\1/p' <<<"$out")
echo "under load: detected in $detect s (tierckpt run's account); hang to running again: $(awk -v a="$t_kill" -v b="$t_running" 'BEGIN {printf "%.1f", b - a}') s"
"$CLUSTER" revive n2
