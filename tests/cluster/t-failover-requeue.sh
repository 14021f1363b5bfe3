# shellcheck shell=bash
# Requeue through the failover scripts wired in slurm.conf (as
# tierckpt-failover(8) tells admins): a batch job with --requeue on 3 of 4
# nodes loses a node; Slurm requeues it, tierckpt-epilog-slurmctld excludes
# the dead node and releases it at once; it runs again on the survivors plus
# the fourth node and resumes from memory with the uninterrupted run's
# digest. Then a live node fails the admin's health check
# (tierckpt-healthcheck): drained with a reason naming tierckpt, the job
# requeued and resumed the same way.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

TRAIN="tierckpt-synth-train --state-mib 16 --ckpt-every 4 --step-ms 250 --steps 60"
OPTS=(--ckpt-mem=512M --ckpt-replicas=1)
undo_unhealthy() { node_root n2 rm -f /tmp/TIERCKPT_TEST_UNHEALTHY 2>/dev/null || true; }
trap 'undo_unhealthy; "$CLUSTER" revive n2 >/dev/null 2>&1 || true' EXIT
"$CLUSTER" revive n2 >/dev/null  # every node up and idle to start with

step "reference: a straight run"
# shellcheck disable=SC2086  # TRAIN is a command line
ref=$(ck srun --mpi=pmix -N3 -n6 "${OPTS[@]}" $TRAIN)
digest=$(sed -n 's/^final steps=60 digest=\([0-9a-f]*\)$/\1/p' <<<"$ref")
[ -n "$digest" ] || fail "no digest in the reference run: $ref"

# Submits the training as a batch job on n1-n3 and waits until it has saved
# version 16. Sets job and out_file.
submit() {
    out_file=$(ck mktemp "$STATE/jobs/requeue.XXXXXX")
    job=$(ck sbatch --parsable --requeue --open-mode=append -N3 -n6 -w n1,n2,n3 "${OPTS[@]}" -o "$out_file" \
        --wrap "srun --mpi=pmix $TRAIN")
    [[ $job =~ ^[0-9]+$ ]] || fail "sbatch said: $job"
    wait_for "cat '$out_file'" '^saved version=16 ' 90
}
# Waits for the job to finish after its requeue and checks the resumed run.
check_resumed() { # WHAT
    # Finished after a requeue (a job the ranks ended with status 75 is
    # FAILED for a moment before the script requeues it).
    wait_for "ck scontrol -o show job $job" \
        ' JobState=(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) .* Restarts=[1-9]' 240
    local out restarted
    out=$(cat "$out_file")
    echo "$out" | grep -v '^\(saved\|committed\)'
    ck scontrol show job "$job" | grep -E 'JobState|Restarts|NodeList|ExcNodeList'
    assert_match "$(ck scontrol show job "$job")" 'Restarts=1 ' "the job was requeued once"
    assert_match "$(ck scontrol show job "$job")" 'JobState=COMPLETED ' "the job completed"
    assert_match "$(ck scontrol show job "$job")" ' NodeList=n\[1,3-4\]' "the second run left n2 out"
    restarted=$(sed -n '/^rank=[0-5] restored version=/,$p' <<<"$out")
    assert_eq "$(grep -cE '^rank=[0-5] restored version=[0-9]+ source=(local|peer)$' <<<"$restarted")" 6 \
        "$1: every rank resumes from memory"
    assert_match "$restarted" 'source=peer$' "$1: n4's ranks fetch their shards from peers"
    assert_eq "$(sed -n 's/^rank=[0-5] restored version=\([0-9]*\) .*/\1/p' <<<"$restarted" | sort -u | wc -l)" 1 \
        "$1: every rank restores the same version"
    assert_match "$restarted" "^final steps=60 digest=$digest$" "$1: digest after the requeue"
}

step "a batch job loses n2: requeued, released at once without n2, resumed from memory"
submit
"$CLUSTER" kill n2
check_resumed "node killed"
log=$(cat "$STATE/log/failover.log")
# Slurm requeues the job when it declares n2 down before the job ends; when
# the ranks ended it first (status 75, the peer timeout is shorter than
# SlurmdTimeout), the script requeues it (the next step makes that sure).
assert_match "$log" "tierckpt-epilog-slurmctld: job $job (ended with failed node\(s\) n2; waiting for its requeue|ended with exit status 75 \(a rank lost a replication peer\); requeueing it)" \
    "the controller-side script saw the failed node"
assert_match "$log" "tierckpt-epilog-slurmctld: job $job requeued without n2, on n1,n3 first; released at once" \
    "the requeued job was released without n2"
"$CLUSTER" revive n2

step "a job that ends with status 75 before Slurm notices a dead node: the script requeues it"
# What the ranks do when a peer goes silent (TIERCKPT_EXIT_PEER_LOST), here
# without the race: the job ends with 75 while every node still answers;
# then n2 dies. Slurm sees a failed job, not a node failure: the
# controller-side script requeues it, waits for Slurm's verdict on n2 and
# releases it without n2. The second run exits 0.
# shellcheck disable=SC2016  # the job's script, not ours
job=$(ck sbatch --parsable --requeue -N2 -w n1,n2 --ckpt-mem=16M -o /dev/null \
    --wrap '[ "${SLURM_RESTART_COUNT:-0}" -gt 0 ] || exit 75')
[[ $job =~ ^[0-9]+$ ]] || fail "sbatch said: $job"
wait_for "cat '$STATE/log/failover.log'" "job $job ended with exit status 75 \(a rank lost a replication peer\); requeueing it" 60
"$CLUSTER" kill n2
wait_for "ck scontrol -o show job $job" ' JobState=COMPLETED .* Restarts=1 ' 120
assert_match "$(ck scontrol show job "$job")" 'ExcNodeList=n2' "the second run excludes n2"
log=$(cat "$STATE/log/failover.log")
assert_match "$log" "tierckpt-epilog-slurmctld: job $job: requeued after node\(s\) n2 failed" \
    "the script waited for Slurm's verdict on n2"
assert_match "$log" "tierckpt-epilog-slurmctld: job $job requeued without n2, on n1 first; released at once" \
    "and released the job without n2"
"$CLUSTER" revive n2

step "a live node fails the health check: drained with tierckpt's reason, the job requeued and resumed"
submit
node_root n2 touch /tmp/TIERCKPT_TEST_UNHEALTHY
wait_for "ck sinfo -h -N -n n2 -o '%T %E'" "^drain.* tierckpt: health check 'test' failed \(status 1\)$" 30
check_resumed "health check failed"
log=$(cat "$STATE/log/failover.log")
assert_match "$log" "tierckpt-healthcheck: requeued job $job: its node n2 failed its health check" \
    "the health check requeued the job"
assert_match "$log" "tierckpt-epilog-slurmctld: job $job requeued without n2" "and it was released without n2"
undo_unhealthy
