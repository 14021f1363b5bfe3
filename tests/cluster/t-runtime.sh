# shellcheck shell=bash
# shellcheck disable=SC2016  # single-quoted scripts run in the allocation
# The runtime under the plugin, 3 nodes x 2 ranks, as ckuser: a resumed run
# restores bit-exact (same final digest as a straight run); a run killed in
# the middle of a save restores the previous version, never the torn one;
# a flipped byte is caught and an older version used; ranks placed
# differently fetch their shards from the node that holds them.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

TRAIN="tierckpt-synth-train --state-mib 16 --ckpt-every 4 --wait-commit"
# The core alone: no replicas (t-replication.sh covers them).
MEM=(--ckpt-mem=256M --ckpt-replicas=0)

step "reference: a straight run of 20 steps"
# shellcheck disable=SC2086  # TRAIN is a command line
ref=$(ck srun --mpi=pmix -N3 -n6 "${MEM[@]}" $TRAIN --steps 20)
echo "$ref"
digest=$(sed -n 's/^final steps=20 digest=\([0-9a-f]*\)$/\1/p' <<<"$ref")
[ -n "$digest" ] || fail "no final digest in the reference run"
assert_eq "$(grep -c '^rank=[0-5] restored none$' <<<"$ref")" 6 "fresh job restores nothing"
assert_match "$ref" '^saved version=20 stall_ms=[0-9.]+ ' "save lines"

# Runs the bash script $1 in a 3-node, 6-task allocation with a store on
# each node; the assertions judge its output.
in_allocation() {
    ck salloc -N3 -n6 -w n1,n2,n3 "${MEM[@]}" bash -c "$1" 2>&1 || true
}

step "resume: 12 steps, then a new step goes on to 20 from the node stores"
out=$(in_allocation "srun --mpi=pmix -n6 $TRAIN --steps 12; srun --mpi=pmix -n6 $TRAIN --steps 20")
echo "$out"
assert_eq "$(grep -c '^rank=[0-5] restored version=12 source=local$' <<<"$out")" 6 "every rank restores version 12 locally"
assert_match "$out" "^final steps=20 digest=$digest$" "digest after resuming"

step "a rank dies in the middle of saving version 12: the next step restores version 8"
out=$(in_allocation "TIERCKPT_TEST_CRASH_IN_SAVE=12:3 srun -K --mpi=pmix -n6 $TRAIN --steps 20; echo step1-exit=\$?
                     srun -N1 -n1 -w n2 tierckpt ls
                     srun --mpi=pmix -n6 $TRAIN --steps 20")
echo "$out"
assert_no_match "$out" '^step1-exit=0$' "the crashed step's exit status"
assert_match "$out" '^/dev/shm/tierckpt/job\.[0-9]+/store +[0-9]+ +3 +6 +12 .* writing' "rank 3's torn shard of version 12"
assert_eq "$(grep -c '^rank=[0-5] restored version=8 source=local$' <<<"$out")" 6 "every rank restores version 8"
assert_match "$out" "^final steps=20 digest=$digest$" "digest after the crash"

step "rank 3 finds no room for version 12: every rank learns it at the next save, none is left waiting"
# Without --wait-commit: the failure reaches the ranks at save 16. A save
# that failed on rank 3 alone would send rank 3 to its exit while the
# others wait for it in the step's all-reduce (a hang, cut by timeout).
out=$(in_allocation "TIERCKPT_TEST_NO_ROOM=12:3 timeout 120 srun -K --mpi=pmix -n6 ${TRAIN% --wait-commit} --steps 20
                     echo step1-exit=\$?
                     srun --mpi=pmix -n6 $TRAIN --steps 20")
echo "$out"
assert_match "$out" '^step1-exit=75$' "the step's exit status (a version that did not commit; not 124, a hang)"
assert_match "$out" 'rank 3: no room for rank 3.s shard of version 12 .*; version 12 will not commit' "rank 3 says why"
# Every rank prints it, but the first to exit may abort the others first.
assert_match "$out" '^tierckpt-synth-train: rank [0-24-5]: version 12 did not commit' \
    "a rank other than rank 3 learns that version 12 did not commit"
assert_no_match "$out" '^rank=[0-5] restored version=12 ' "nobody restores version 12"
assert_match "$out" "^final steps=20 digest=$digest$" "digest after the failed version"

step "a byte flipped in rank 4's shard of version 12: caught, version 8 used"
out=$(in_allocation "srun --mpi=pmix -n6 $TRAIN --steps 12
    srun -N1 -n1 -w n3 bash -c '
        off=\$(tierckpt ls --json \"\$TIERCKPT_STORE\" | tr -d \" \" | grep \"\\\"rank\\\":4,\" | grep \"\\\"version\\\":12,\" |
              sed \"s/.*\\\"offset\\\":\\([0-9]*\\),.*/\\1/\")
        printf \"\\\\377\" | dd of=\"\$TIERCKPT_STORE\" bs=1 seek=\$((off + 4096)) conv=notrunc status=none
        tierckpt verify \"\$TIERCKPT_STORE\"; echo verify-exit=\$?'
    srun --mpi=pmix -n6 $TRAIN --steps 20")
echo "$out"
assert_match "$out" ' 4 +6 +12 .* corrupt$' "tierckpt verify finds the flipped shard"
assert_match "$out" '^verify-exit=1$' "tierckpt verify's exit status"
assert_match "$out" 'rank 4: shard of version 12 .*checksum mismatch' "the runtime reports the bad copy"
assert_eq "$(grep -c '^rank=[0-5] restored version=8 source=local$' <<<"$out")" 6 "every rank falls back to version 8"
assert_match "$out" "^final steps=20 digest=$digest$" "digest after the corruption"

step "ranks placed differently (cyclic): shards fetched from the nodes that hold them"
out=$(in_allocation "srun --mpi=pmix -n6 --distribution=block $TRAIN --steps 12
                     srun --mpi=pmix -n6 --distribution=cyclic $TRAIN --steps 20")
echo "$out"
assert_eq "$(grep -c '^rank=[0-5] restored version=12 source=\(local\|peer\)$' <<<"$out")" 6 "every rank restores version 12"
assert_match "$out" '^rank=[0-5] restored version=12 source=peer$' "some ranks fetch from another node"
assert_match "$out" "^final steps=20 digest=$digest$" "digest after moving ranks"
