# shellcheck shell=bash
# shellcheck disable=SC2016  # single-quoted scripts run on the nodes
# A job that ends badly keeps its stores for keep_seconds (45 s on the test
# cluster), so a requeue finds them; then they are freed. A requeued job
# (same job id) finds its store and its bytes.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

keep=$(grep -o 'keep_seconds=[0-9]*' "$STATE/etc/plugstack.conf" | cut -d= -f2)
[ -n "$keep" ] || fail "no keep_seconds in the cluster's plugstack.conf"

step "a failing job: its store stays for a requeue"
set +e
ck srun -N1 -w n3 --ckpt-mem=8M sh -c 'echo "$SLURM_JOB_ID" > /dev/null; exit 3'
set -e
wait_for "on_node n3 'ls /dev/shm/tierckpt'" '^job\.[0-9]+$' 20
ended=$(date +%s)
jobs_left=$(on_node n3 'ls /dev/shm/tierckpt' | grep '^job\.')
echo "kept on n3: $jobs_left"

step "a requeued batch job finds its store and its bytes"
jobdir=$(ck mktemp -d "$STATE/jobs/requeue.XXXXXX")
ck sh -c "cat > '$jobdir/job.sh'" <<'JOB'
#!/bin/bash
#SBATCH -N2 -w n1,n2 --requeue --ckpt-mem=16M
srun sh -c 'if [ "$TIERCKPT_RESTART_COUNT" = 0 ]; then
                echo "gen0-$(hostname)" | dd of="$TIERCKPT_STORE" conv=notrunc status=none
                echo "run0 $(hostname) created=$TIERCKPT_STORE_CREATED"
            else
                echo "run$TIERCKPT_RESTART_COUNT $(hostname) created=$TIERCKPT_STORE_CREATED" \
                     "found=$(head -c 16 "$TIERCKPT_STORE" | tr -d "\0" | head -n 1)"
            fi'
[ "${SLURM_RESTART_COUNT:-0}" = 0 ] && sleep 600
exit 0
JOB
job=$(ck sbatch --parsable --output="$jobdir/out.txt" --open-mode=append "$jobdir/job.sh")
echo "job $job"
wait_for "cat '$jobdir/out.txt'" '^run0 n2' 30
wait_for "cat '$jobdir/out.txt'" '^run0 n1' 5
requeued_at=$(date +%s)
ck scontrol requeue "$job"
# A requeued job waits in BeginTime; release it as the failure-handling
# scripts do: in the next second at the earliest (slurmd refuses a job
# started again within the second it was killed: "Job credential revoked").
wait_for "ck squeue -h -j $job -o %T" 'PENDING' 30
while [ "$(date +%s)" -le "$requeued_at" ]; do sleep 0.1; done
ck scontrol update jobid="$job" StartTime=now
wait_for "ck squeue -h -j $job -o %T 2>&1; ck sacct -n -j $job 2>&1; cat '$jobdir/out.txt'" '^run1 n1' 60
wait_for "cat '$jobdir/out.txt'" '^run1 n2' 10
res=$(cat "$jobdir/out.txt")
echo "$res"
for n in n1 n2; do
    assert_match "$res" "^run1 $n created=0 found=gen0-$n$" "requeued run on $n"
done

step "after keep_seconds the failed job's store is freed"
left=$((ended + keep + 2 - $(date +%s)))
[ "$left" -gt 0 ] && sleep "$left"
# Any job on the node runs the prolog, which frees what has expired.
after=$(on_node n3 'ls /dev/shm/tierckpt')
echo "n3 after $keep s: $after"
for j in $jobs_left; do
    assert_no_match "$after" "^$j$" "expired store $j on n3"
done
