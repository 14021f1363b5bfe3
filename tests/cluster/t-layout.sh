# shellcheck shell=bash
# shellcheck disable=SC2016  # single-quoted scripts run in the allocation
# Sliced and replicated regions, 3 nodes x 2 ranks: the synthetic
# trainer's state as one global array cut over the ranks (--layout sliced,
# tierckpt_register_slice) and its step replicated. A resumed run restores
# the recorded layout and ends with the straight run's digest; ranks whose
# slices do not tile the array make the first save fail on every rank with
# the reason, and nothing is saved.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

TRAIN="tierckpt-synth-train --state-mib 8 --ckpt-every 4 --wait-commit --layout sliced"
MEM=(--ckpt-mem=256M --ckpt-replicas=1)

in_allocation() {
    ck salloc -N3 -n6 -w n1,n2,n3 "${MEM[@]}" bash -c "$1" 2>&1 || true
}

step "reference: a straight run of 20 steps"
# shellcheck disable=SC2086  # TRAIN is a command line
ref=$(ck srun --mpi=pmix -N3 -n6 "${MEM[@]}" $TRAIN --steps 20)
echo "$ref"
digest=$(sed -n 's/^final steps=20 digest=\([0-9a-f]*\)$/\1/p' <<<"$ref")
[ -n "$digest" ] || fail "no final digest in the reference run"
# The digest is the global array's, whatever the cut: 3 ranks of twice
# the state hold the same array.
# shellcheck disable=SC2086  # a command line
out=$(ck srun --mpi=pmix -N3 -n3 "${MEM[@]}" ${TRAIN/--state-mib 8/--state-mib 16} --steps 20)
assert_match "$out" "^final steps=20 digest=$digest$" "the digest of the same array cut over 3 ranks"

step "resume: 12 steps, then a new step goes on to 20 from the node stores"
out=$(in_allocation "srun --mpi=pmix -n6 $TRAIN --steps 12
                     srun -N1 -n1 -w n2 tierckpt ls
                     srun --mpi=pmix -n6 $TRAIN --steps 20")
echo "$out"
assert_eq "$(grep -c '^rank=[0-5] restored version=12 source=local$' <<<"$out")" 6 "every rank restores version 12"
assert_match "$out" "^final steps=20 digest=$digest$" "digest after resuming"

step "rank 3's slice is half the others': the first save fails on every rank, naming the array and the ranks"
script=$(cat <<'SCRIPT'
srun --mpi=pmix -n6 bash -c 'm=8; [ "$SLURM_PROCID" = 3 ] && m=4
    exec tierckpt-synth-train --state-mib $m --ckpt-every 4 --wait-commit --layout sliced --steps 20'
echo step-exit=$?
srun -N1 -n1 -w n2 bash -c 'tierckpt ls "$TIERCKPT_STORE"'
SCRIPT
)
out=$(in_allocation "$script")
echo "$out"
assert_match "$out" '^step-exit=1$' "the step's exit status"
# 6 ranks x 8 MiB, but rank 3 counts 6 x 4 MiB.
assert_match "$out" "rank [0-5]: save\\(4\\): the global array 'state' has 50331648 bytes on rank 0 and 25165824 on rank 3; every slice must give the same global size; nothing was saved" \
    "the reason"
assert_no_match "$out" '^saved version=' "no save returned"
assert_no_match "$out" '^/dev/shm/tierckpt/job\.[0-9]+/store ' "no shard in n2's store"
