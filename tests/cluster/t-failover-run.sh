# shellcheck shell=bash
# tierckpt run in a --no-kill allocation of 4 nodes (3 working + 1 spare,
# replicas=1): a node killed mid-training, the runtime notices the silent
# peer, tierckpt run finds the dead node and relaunches the step on the
# survivors plus the spare, which restore from memory (local and peer, never
# persistent) and finish with the uninterrupted run's digest. Then a node
# killed during a save. Then the two nodes holding the only copies of shards
# killed: the job stops with "no complete checkpoint", never a wrong state;
# with a persistent tier configured, the relaunch restores from it instead.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

TRAIN="tierckpt-synth-train --state-mib 16 --ckpt-every 4 --step-ms 250"
OPTS=(--ckpt-mem=512M --ckpt-replicas=1)
trap '"$CLUSTER" revive n1 >/dev/null 2>&1 || true; "$CLUSTER" revive n2 >/dev/null 2>&1 || true' EXIT
"$CLUSTER" revive n2 >/dev/null  # every node up and idle to start with

# Starts `tierckpt run ARGS...` in a 4-node --no-kill allocation in the
# background, its output in $out_file.
run_in_allocation() {
    out_file=$(ck mktemp "$STATE/jobs/failover.XXXXXX")
    # Not through ck, which hands the output over only at the end.
    "$CLUSTER" exec salloc --no-kill -N4 -n8 "${OPTS[@]}" tierckpt run "$@" >"$out_file" 2>&1 &
    run_pid=$!
}
# Waits until the job's output has a line matching REGEX.
wait_output() { # REGEX [SECONDS]
    wait_for "cat '$out_file'" "$1" "${2:-60}"
}
# Once the job has saved VERSION, kills NODEs, waits for tierckpt run and
# shows its output; sets rc and out.
kill_after_save() { # VERSION NODE...
    local version=$1 node
    shift
    wait_output "^saved version=$version "
    for node in "$@"; do "$CLUSTER" kill "$node"; done
    rc=0
    wait "$run_pid" || rc=$?
    out=$(cat "$out_file")
    echo "$out" | grep -v '^\(saved\|committed\)'
}
# The final digest of a straight run: srun ARGS... (as the test user).
straight_digest() { # SRUN ARGS...
    local ref d
    ref=$(ck srun --mpi=pmix "${OPTS[@]}" "$@" --steps 60)
    d=$(sed -n 's/^final steps=60 digest=\([0-9a-f]*\)$/\1/p' <<<"$ref")
    [ -n "$d" ] || fail "no digest in the straight run: $ref"
    echo "$d"
}

step "reference: a straight run of 60 steps on 3 nodes"
# shellcheck disable=SC2086  # TRAIN is a command line
digest=$(straight_digest -N3 -n6 $TRAIN)

step "a node dies mid-training: tierckpt run relaunches on the survivors plus the spare"
# shellcheck disable=SC2086
run_in_allocation --spares 1 -- srun --mpi=pmix -n6 $TRAIN --steps 60
kill_after_save 16 n2
assert_eq "$rc" 0 "tierckpt run's exit status"
assert_match "$out" '^tierckpt run: attempt 1: step on n1,n2,n3 \(spares: n4\)$' "the first attempt leaves the spare out"
assert_match "$out" 'peer rank [23] on n2 silent for [0-9.]+ s; its node answers that its heartbeat port is closed' \
    "the runtime notices on its own that n2's ranks are gone (their ports closed, before the timeout)"
assert_match "$out" '^tierckpt run: restart 1: failed: n2 \(exit status [0-9]+\); seen: .*n2.*; detected in [0-9.]+ s; relaunching on n1,n3,n4 \(spare n4 in\)$' \
    "tierckpt run names the failed node, how it was seen and the replacement"
assert_eq "$(grep -cE '^rank=[0-5] restored version=[0-9]+ source=(local|peer)$' <<<"$out")" 6 \
    "every rank of attempt 2 restores from memory"
assert_match "$out" '^rank=[0-5] restored version=[0-9]+ source=local$' "some shards are on their own node"
assert_match "$out" '^rank=[0-5] restored version=[0-9]+ source=peer$' "the spare's ranks fetch from peers"
assert_no_match "$out" 'source=persistent' "nothing comes from the persistent tier"
assert_eq "$(sed -n 's/^rank=[0-5] restored version=\([0-9]*\) .*/\1/p' <<<"$out" | sort -u | wc -l)" 1 \
    "every rank restores the same version"
recovery=$(grep -E '^tierckpt run: attempt 2: restored version [0-9]+ on 6 ranks, .*: local [0-9]+, peer [0-9]+, persistent 0; detect [0-9.]+ s, relaunch [0-9.]+ s, restore [0-9.]+ s \([0-9.]+ GB/s\)$' <<<"$out") ||
    fail "no recovery account (detect, relaunch, restore) in the output"
echo "recovery breakdown: ${recovery#tierckpt run: }"
assert_match "$out" "^final steps=60 digest=$digest$" "digest after losing a node"
assert_match "$out" '^tierckpt run: the program finished \(attempt 2, 1 restart\(s\)\)$' "tierckpt run's last word"
"$CLUSTER" revive n2

step "a node dies during a save: the previous version (or the new one, if complete everywhere) is restored"
# shellcheck disable=SC2086
run_in_allocation --spares 1 -- srun --mpi=pmix -n6 ${TRAIN/--state-mib 16/--state-mib 40} --steps 60
kill_after_save 12 n2
assert_eq "$rc" 0 "tierckpt run's exit status"
restored=$(sed -n 's/^rank=[0-5] restored version=\([0-9]*\) source=\(local\|peer\)$/\1/p' <<<"$out" | sort -u)
assert_match "$restored" '^(8|12|16)$' "the one version every rank restores (8 committed, 12 in flight at the kill)"
# shellcheck disable=SC2086
digest40=$(straight_digest -N3 -n6 ${TRAIN/--state-mib 16/--state-mib 40})
assert_match "$out" "^final steps=60 digest=$digest40$" "digest after a node lost during a save"
"$CLUSTER" revive n2

step "the two nodes with the only copies of shards die: no complete checkpoint, the job stops, never a wrong state"
# shellcheck disable=SC2086
run_in_allocation --spares 2 -- srun --mpi=pmix -n4 $TRAIN --steps 60
kill_after_save 12 n1 n2
[ "$rc" -ne 0 ] || fail "tierckpt run succeeded although every copy of some shards is gone"
assert_match "$out" '^tierckpt run: restart 1: failed: n1,n2 .*relaunching on n3,n4 \(spares n3,n4 in\)$' \
    "relaunched on the spares"
assert_match "$out" 'no complete checkpoint: before this relaunch the job committed version (8|12)' \
    "the program says what is missing"
assert_match "$out" '^tierckpt run: the program failed \(exit status [0-9]+\) and every node of the step answers: not a node failure, not relaunching$' \
    "tierckpt run stops"
assert_no_match "$out" '^final steps=' "no result from a state that was not restored"
assert_no_match "$(sed -n '/attempt 2:/,$p' <<<"$out")" '^rank=[0-3] restored none$' "no silent start from scratch"
"$CLUSTER" revive n1
"$CLUSTER" revive n2

step "the same loss with a persistent tier: the relaunch restores the lost shards from it, bit-exact"
pdir=$(ck mktemp -d "$STATE/jobs/failover-persist.XXXXXX")
# shellcheck disable=SC2086
digest4=$(straight_digest -N2 -n4 $TRAIN)
OPTS+=(--ckpt-persist="$pdir" --ckpt-persist-every=1)
# shellcheck disable=SC2086
run_in_allocation --spares 2 -- srun --mpi=pmix -n4 $TRAIN --steps 60
kill_after_save 16 n1 n2
assert_eq "$rc" 0 "tierckpt run's exit status"
assert_eq "$(grep -cE '^rank=[0-3] restored version=[0-9]+ source=persistent$' <<<"$out")" 4 \
    "every rank of the relaunch restores from the persistent tier (the spares' stores are empty)"
assert_match "$out" "^final steps=60 digest=$digest4$" "digest after losing both copies"
