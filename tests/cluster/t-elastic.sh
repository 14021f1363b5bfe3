# shellcheck shell=bash
# shellcheck disable=SC2016  # commands run later, by eval or on the nodes
# Elastic restore: a checkpoint saved by 6 ranks on 3 nodes restores on
# another number of ranks, from the node stores (--layout sliced: the
# synthetic trainer's state is one global array cut over the ranks, and
# its digest does not depend on the cut). n2 dies and no spare is used:
# 4 ranks on n1 and n3 go on, the dead node's slices read from their
# replicas; 4 ranks that saved grow to 6; a damaged copy is passed over
# for another, and with no good copy left an older version is restored.
# A new job on 2 nodes restores what 6 ranks flushed to the persistent tier.
# Then tierckpt run --min-nodes does the same by itself: n2 dies mid-run in
# an allocation with no spare, and the step goes on with 4 ranks on 2 nodes;
# and a requeued batch job with --ckpt-min-nodes=2 and no node free starts
# again on the 2 survivors (tierckpt-epilog-slurmctld).
# Last, the Python binding: examples/elastic_train.py (a NumPy array cut
# with tierckpt.Slice) loses n2 and goes on with 4 ranks.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

# 48 MiB of global state: 8 MiB a rank on 6 ranks, 12 on 4.
TRAIN="tierckpt-synth-train --ckpt-every 4 --wait-commit --layout sliced"
OPTS=(--ckpt-mem=256M --ckpt-replicas=1)
trap '[ -n "$pending_go" ] && touch "$pending_go"; [ -n "$run_pid" ] && kill "$run_pid" 2>/dev/null
      "$CLUSTER" revive n2 >/dev/null 2>&1 || true' EXIT
"$CLUSTER" revive n2 >/dev/null  # every node up and idle to start with

step "reference: a straight run of 20 steps on 6 ranks"
# shellcheck disable=SC2086  # TRAIN is a command line
ref=$(ck srun --mpi=pmix -N3 -n6 "${OPTS[@]}" $TRAIN --state-mib 8 --steps 20)
digest=$(sed -n 's/^final steps=20 digest=\([0-9a-f]*\)$/\1/p' <<<"$ref")
[ -n "$digest" ] || fail "no digest in the reference run: $ref"

# A command for the job: damages one byte of the data of rank R's shard
# of version 12 of KIND (own or replica) in NODE's store.
flip() { # NODE RANK KIND
    printf '%s\n' "srun -N1 -n1 -w $1 bash -c '
        off=\$(tierckpt ls --json \"\$TIERCKPT_STORE\" | tr -d \" \" | grep \"\\\"rank\\\":$2,\" |
              grep \"\\\"version\\\":12,\" | grep \"\\\"$3\\\"\" | sed \"s/.*\\\"offset\\\":\\([0-9]*\\),.*/\\1/\")
        printf \"\\\\377\" | dd of=\"\$TIERCKPT_STORE\" bs=1 seek=\$((off + 8192)) conv=notrunc status=none
        tierckpt verify \"\$TIERCKPT_STORE\" | grep corrupt'"
}

step "6 ranks save; n2 dies; no spare: 4 ranks on n1 and n3 restore version 12 from memory"
out=$(with_failure "srun -N3 -n6 -w n1,n2,n3 --mpi=pmix $TRAIN --state-mib 8 --steps 12 | grep -v '^rank'" \
                   '"$CLUSTER" kill n2' \
                   "TIERCKPT_RUN_REPORT=1 srun -N2 -n4 -w n1,n3 --mpi=pmix $TRAIN --state-mib 12 --steps 20")
echo "$out"
assert_eq "$(grep -c '^rank=[0-3] restored version=12 source=\(local\|peer\)$' <<<"$out")" 4 \
    "every rank of the 4 restores version 12"
assert_eq "$(grep -cE '^tierckpt-report restore rank=[0-3] .*version=12 .* saved_world=6 ' <<<"$out")" 4 \
    "the report says the version was saved by 6 ranks"
# New rank 1 (n1) holds global MiB [12, 24): saved ranks 1 (n1's own) and
# 2 (n2's, whose copy lives on n3): part of its bytes come from a peer.
assert_match "$out" '^tierckpt-report restore rank=1 node=n1 .* local_bytes=[1-9][0-9]* peer_bytes=[1-9][0-9]* ' \
    "new rank 1 reads saved rank 1 from its node and n2's slice from n3's replica"
assert_match "$out" "^final steps=20 digest=$digest$" "the digest of the straight run"
"$CLUSTER" revive n2

step "growing: 4 ranks on 2 nodes save, 6 ranks on 3 nodes restore"
out=$(ck salloc -N3 -n6 -w n1,n2,n3 "${OPTS[@]}" bash -c "
    srun -N2 -n4 -w n1,n2 --mpi=pmix $TRAIN --state-mib 12 --steps 12 | grep -v '^rank'
    srun -N3 -n6 --mpi=pmix $TRAIN --state-mib 8 --steps 20" 2>&1)
echo "$out"
assert_eq "$(grep -c '^rank=[0-5] restored version=12 source=\(local\|peer\)$' <<<"$out")" 6 \
    "every rank of the 6 restores version 12"
assert_match "$out" '^rank=[45] restored version=12 source=peer$' "n3's ranks, new to the job, read from peers"
assert_match "$out" "^final steps=20 digest=$digest$" "the digest of the straight run"

step "a damaged copy of a saved slice: another copy is read, version 12 restored"
# Saved rank 0's own shard on n1 is damaged; its replica lies on n2.
out=$(ck salloc -N3 -n6 -w n1,n2,n3 "${OPTS[@]}" bash -c "
    srun -N3 -n6 --mpi=pmix $TRAIN --state-mib 8 --steps 12 | grep -v '^rank'
    $(flip n1 0 own)
    srun -N2 -n4 -w n1,n2 --mpi=pmix $TRAIN --state-mib 12 --steps 20" 2>&1)
echo "$out"
assert_match "$out" ' 0 +6 +12 +8\.0 MiB own +committed +corrupt$' "tierckpt verify finds the damaged shard"
assert_match "$out" 'slot [0-9]+ \(rank 0, version 12\): damaged in 4 MiB of its 8\.0 MiB \(payload bytes \[0, 4194304\)\)$' \
    "tierckpt verify names the damaged piece (the shard's piece table)"
assert_match "$out" "saved rank 0's shard of version 12 from this node's store: checksum mismatch in bytes \[0, 4194304\) of the shard" \
    "the reader catches the damage in the pieces it reads"
assert_eq "$(grep -c '^rank=[0-3] restored version=12 source=\(local\|peer\)$' <<<"$out")" 4 \
    "every rank restores version 12"
assert_match "$out" "^final steps=20 digest=$digest$" "the digest of the straight run"

step "n2 dies and the only copy left of its rank 2's slice is damaged: version 8 restored on 4 ranks"
out=$(with_failure "srun -N3 -n6 -w n1,n2,n3 --mpi=pmix $TRAIN --state-mib 8 --steps 12 | grep -v '^rank'
                    $(flip n3 2 replica)" \
                   '"$CLUSTER" kill n2' \
                   "srun -N2 -n4 -w n1,n3 --mpi=pmix $TRAIN --state-mib 12 --steps 20")
echo "$out"
assert_match "$out" ' 2 +6 +12 +8\.0 MiB replica +complete +corrupt$' "tierckpt verify finds the damaged replica"
assert_match "$out" "saved rank 2's shard of version 12 .*checksum mismatch" "the reader catches the damage"
assert_eq "$(grep -c '^rank=[0-3] restored version=8 source=\(local\|peer\)$' <<<"$out")" 4 \
    "every rank restores version 8"
assert_match "$out" "^final steps=20 digest=$digest$" "the digest of the straight run"
"$CLUSTER" revive n2

step "persistent tier only: a new job of 4 ranks on 2 nodes restores what 6 ranks flushed"
pdir=$(ck mktemp -d "$STATE/jobs/elastic-persist.XXXXXX")/run
# shellcheck disable=SC2086  # a command line
out=$(ck srun --mpi=pmix -N3 -n6 --ckpt-mem=256M --ckpt-replicas=0 --ckpt-persist="$pdir" --ckpt-persist-every=1 \
    $TRAIN --state-mib 8 --steps 12 2>&1)
assert_match "$out" '^final steps=12 ' "the saving job ran"
ls_out=$(ck tierckpt ls "$pdir")
assert_eq "$(grep -cE "^$pdir +12 +6 +[0-5] +8\.0 MiB complete" <<<"$ls_out")" 6 "version 12 of 6 ranks in the persistent tier"
# A new job: new node stores, nothing in memory.
# shellcheck disable=SC2086
out=$(ck srun --mpi=pmix -N2 -n4 -w n1,n3 --ckpt-mem=256M --ckpt-replicas=0 --ckpt-persist="$pdir" \
    --export=ALL,TIERCKPT_RUN_REPORT=1 $TRAIN --state-mib 12 --steps 20 2>&1)
echo "$out" | grep -v '^saved'
assert_eq "$(grep -c '^rank=[0-3] restored version=12 source=persistent$' <<<"$out")" 4 \
    "every rank of the 4 restores version 12 from the persistent tier"
assert_eq "$(grep -cE '^tierckpt-report restore rank=[0-3] .* saved_world=6 local_bytes=0 peer_bytes=0 persistent_bytes=[1-9]' <<<"$out")" 4 \
    "the report: saved by 6 ranks, every byte from the persistent tier"
assert_match "$out" "^final steps=20 digest=$digest$" "the digest of the straight run"

step "opaque regions on another number of ranks: refused, with the fix"
out=$(ck salloc -N3 -n6 -w n1,n2,n3 "${OPTS[@]}" bash -c "
    srun -N3 -n6 --mpi=pmix tierckpt-synth-train --ckpt-every 4 --wait-commit --state-mib 1 --steps 4 | grep -v '^rank'
    srun -N2 -n4 -w n1,n2 --mpi=pmix tierckpt-synth-train --ckpt-every 4 --wait-commit --state-mib 1 --steps 8
    echo step-exit=\$?" 2>&1)
echo "$out"
assert_match "$out" 'the node stores hold checkpoints of a job of 6 ranks; this job has 4 ranks: restart it with 6 ranks' \
    "the refusal names both world sizes"
assert_no_match "$out" '^final steps=8' "the step does not go on from scratch"

step "tierckpt run --min-nodes 2, no spare: n2 dies mid-run, the step goes on with 4 ranks on n1 and n3"
# --global-mib: the same 48 MiB array on however many ranks run.
LONG="tierckpt-synth-train --layout sliced --global-mib 48 --ckpt-every 4 --step-ms 250 --steps 60"
# shellcheck disable=SC2086  # a command line
ref=$(ck srun --mpi=pmix -N3 -n6 "${OPTS[@]}" $LONG)
digest60=$(sed -n 's/^final steps=60 digest=\([0-9a-f]*\)$/\1/p' <<<"$ref")
[ -n "$digest60" ] || fail "no digest in the straight run: $ref"
out_file=$(ck mktemp "$STATE/jobs/elastic-run.XXXXXX")
# shellcheck disable=SC2086
"$CLUSTER" exec salloc --no-kill -N3 -n6 -w n1,n2,n3 "${OPTS[@]}" \
    tierckpt run --min-nodes 2 -- srun --mpi=pmix --ntasks-per-node=2 $LONG >"$out_file" 2>&1 &
run_pid=$!
wait_for "cat '$out_file'" "^saved version=16 " 90
"$CLUSTER" kill n2
rc=0
wait "$run_pid" || rc=$?
run_pid=""
out=$(cat "$out_file")
echo "$out" | grep -v '^\(saved\|committed\)'
assert_eq "$rc" 0 "tierckpt run's exit status"
assert_match "$out" '^tierckpt run: restart 1: failed: n2 .*relaunching on n1,n3 \(no spare left: 2 node\(s\) instead of 3, --min-nodes=2\)$' \
    "the relaunch on the survivors, and why"
assert_match "$out" '^tierckpt run: attempt 2: step on n1,n3$' "the second attempt runs on the two survivors"
assert_eq "$(grep -cE '^rank=[0-3] restored version=(1[6-9]|[2-9][0-9]) source=(local|peer)$' <<<"$out")" 4 \
    "4 ranks restore a version from memory"
assert_no_match "$out" '^rank=[4-5] restored version' "no fifth rank in the second attempt"
assert_match "$out" '^tierckpt run: attempt 2: restored version [0-9]+ on 4 ranks \(saved by 6 ranks; read: [0-9.]+ MiB local, [0-9.]+ MiB from peers, 0 B from the persistent tier\), ' \
    "tierckpt run's account of the elastic restore"
assert_match "$out" "^final steps=60 digest=$digest60$" "the digest of the straight run"
"$CLUSTER" revive n2

step "requeue onto fewer nodes: a batch job with --ckpt-min-nodes=2 loses n2, no node is free: it goes on with 4 ranks on n1 and n3"
# A second user holds n4 (a running job) and waits for three nodes with a
# job of the same kind (--requeue --ckpt-min-nodes=1): nothing can replace
# n2. tierckpt-epilog-slurmctld releases the requeued job, and when it has
# not started shrink_after (5 s here) later, asks for the survivors alone
# with as many tasks a node; the other user's jobs are left as they are.
holder=$(ck2 sbatch --parsable --exclusive -w n4 -o /dev/null --wrap "sleep 600")
[[ $holder =~ ^[0-9]+$ ]] || fail "sbatch (second user) said: $holder"
wait_for "ck2 squeue -h -j $holder -o %T" '^RUNNING$' 30
out_file=$(ck mktemp "$STATE/jobs/elastic-requeue.XXXXXX")
job=$(ck sbatch --parsable --requeue --open-mode=append -N3 --ntasks-per-node=2 "${OPTS[@]}" \
    --ckpt-min-nodes=2 -o "$out_file" --wrap "srun --mpi=pmix $LONG")
[[ $job =~ ^[0-9]+$ ]] || fail "sbatch said: $job"
wait_for "cat '$out_file'" '^saved version=16 ' 90
waiting=$(ck2 sbatch --parsable --requeue -N3 --ntasks-per-node=2 "${OPTS[@]}" --ckpt-min-nodes=1 -o /dev/null \
    --wrap "srun true")
[[ $waiting =~ ^[0-9]+$ ]] || fail "sbatch (second user) said: $waiting"
wait_for "ck2 squeue -h -j $waiting -o %T" '^PENDING$' 30
"$CLUSTER" kill n2
wait_for "ck scontrol -o show job $job" ' JobState=(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL) .* Restarts=[1-9]' 240
out=$(cat "$out_file")
echo "$out" | grep -v '^\(saved\|committed\)'
show=$(ck scontrol show job "$job")
grep -E 'JobState|Restarts|NodeList|NumNodes' <<<"$show"
assert_match "$show" 'JobState=COMPLETED ' "the job completed"
assert_match "$show" 'Restarts=1 ' "after one requeue"
assert_match "$show" ' NodeList=n\[1,3\]' "the second run is on the survivors alone"
assert_match "$show" 'NumNodes=2 .*NumTasks=4 ' "with 2 tasks a node"
assert_match "$(cat "$STATE/log/failover.log")" \
    "tierckpt-epilog-slurmctld: job $job: no node free to replace n2 within 5 s; starts on n1,n3 \(2 nodes, 4 tasks; --ckpt-min-nodes=2\)" \
    "the controller-side script shrank the job, and says why"
restarted=$(sed -n '/^rank=[0-5] restored version=/,$p' <<<"$out")
assert_eq "$(grep -cE '^rank=[0-3] restored version=(1[6-9]|[2-9][0-9]) source=(local|peer)$' <<<"$restarted")" 4 \
    "4 ranks restore a version from memory"
assert_no_match "$restarted" '^rank=[4-5] restored version' "no fifth rank in the second run"
assert_match "$out" "^final steps=60 digest=$digest60$" "the digest of the straight run"
assert_eq "$(ck2 squeue -h -j "$holder" -o '%T %N')" "RUNNING n4" "the second user's running job is untouched"
assert_eq "$(ck2 squeue -h -j "$waiting" -o '%T %D')" "PENDING 3" "the second user's waiting job keeps its 3 nodes"
assert_no_match "$(cat "$STATE/log/failover.log")" "job ($holder|$waiting):" \
    "the controller-side script did nothing to the second user's jobs"
ck2 scancel "$holder" "$waiting"
"$CLUSTER" revive n2


step "Python (tierckpt.Checkpointer(elastic=True), tierckpt.Slice): 6 ranks save, n2 dies, 4 ranks go on"
PY=$(make_var PYTHON)
EXE=$STATE/root$(make_var pkgdatadir)/examples/elastic_train.py
if [ -z "$PY" ] || [ "$PY" = : ]; then
    echo "SKIPPED PART: the Python package is not built (configure found no Python 3)"
elif ! ck "$PY" -c 'import mpi4py, numpy' >/dev/null 2>&1; then
    echo "SKIPPED PART: mpi4py or NumPy is not installed for $PY (apt-get install python3-mpi4py python3-numpy)"
else
    [ -f "$EXE" ] || fail "the example is not installed at $EXE"
    PYTRAIN="$PY $EXE --global-mib 48 --ckpt-every 4"
    # shellcheck disable=SC2086  # a command line
    ref=$(ck srun --mpi=pmix -N3 -n6 "${OPTS[@]}" $PYTRAIN --steps 20)
    pydigest=$(sed -n 's/^final steps=20 digest=\([0-9a-f]*\)$/\1/p' <<<"$ref")
    [ -n "$pydigest" ] || fail "no digest in the straight Python run: $ref"
    out=$(with_failure "srun -N3 -n6 -w n1,n2,n3 --mpi=pmix $PYTRAIN --steps 12 | grep -v '^rank'" \
                       '"$CLUSTER" kill n2' \
                       "srun -N2 -n4 -w n1,n3 --mpi=pmix $PYTRAIN --steps 20")
    echo "$out"
    assert_eq "$(grep -c '^rank=[0-3] restored step=12 source=\(local\|peer\)$' <<<"$out")" 4 \
        "every rank of the 4 restores step 12 from memory"
    assert_match "$out" "^final steps=20 digest=$pydigest$" "the digest of the straight 6-rank run"
    "$CLUSTER" revive n2
fi
