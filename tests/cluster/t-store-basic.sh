# shellcheck shell=bash
# shellcheck disable=SC2016  # single-quoted scripts run on the nodes
# srun --ckpt-mem gives every node of the step a store of exactly that size,
# owned by the job's user with mode 0600 in a directory of root's that holds
# nothing else, handed to
# the tasks through TIERCKPT_*; a later step of the same job finds the same
# store with its bytes intact; a job that succeeds frees its stores.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

step "the options are in srun --help"
help=$(ck srun --help)
for o in ckpt-mem=SIZE ckpt-replicas=N ckpt-persist=DIR ckpt-persist-every=N; do
    assert_match "$help" "--$o" "srun --help"
done

step "srun -N3 --ckpt-mem=64M: one store per node, exactly 64 MiB, private"
out=$(ck srun -N3 --ckpt-mem=64M --ckpt-replicas=2 --ckpt-persist="$STATE/jobs/persist" sh -c '
    s=$TIERCKPT_STORE
    echo "$(hostname) path=$s bytes=$TIERCKPT_STORE_BYTES created=$TIERCKPT_STORE_CREATED" \
         "stat=$(stat -c "%U:%a:%s:%b:%B" "$s") dir=$(stat -c "%U:%a" "$(dirname "$s")")" \
         "replicas=$TIERCKPT_REPLICAS persist=$TIERCKPT_PERSIST_DIR every=$TIERCKPT_PERSIST_EVERY" \
         "job=$TIERCKPT_JOB_ID/$SLURM_JOB_ID restarts=$TIERCKPT_RESTART_COUNT"' | sort)
echo "$out"
assert_eq "$(wc -l <<<"$out")" 3 "task lines"
while read -r host path bytes created stat dir replicas persist every job restarts; do
    assert_match "$path" '^path=/dev/shm/tierckpt/job\.[0-9]+/store$' "store path on $host"
    assert_eq "$bytes" "bytes=67108864" "TIERCKPT_STORE_BYTES on $host"
    assert_eq "$created" "created=1" "TIERCKPT_STORE_CREATED on $host"
    IFS=: read -r owner mode size blocks blksize <<<"${stat#stat=}"
    assert_eq "$owner:$mode:$size" "ckuser:600:67108864" "owner, mode and size of the store on $host"
    [ $((blocks * 512)) -ge 67108864 ] || fail "store on $host is not allocated up front: $blocks blocks of 512 B"
    : "$blksize"
    assert_eq "$dir" "dir=root:711" "owner and mode of the job's store directory on $host"
    assert_eq "$replicas $every $restarts" "replicas=2 every=10 restarts=0" "TIERCKPT_* on $host"
    assert_eq "$persist" "persist=$STATE/jobs/persist" "TIERCKPT_PERSIST_DIR on $host"
    j=${job#job=}
    assert_eq "${j%/*}" "${j#*/}" "TIERCKPT_JOB_ID vs SLURM_JOB_ID on $host"
done <<<"$out"

step "that job has ended: its stores wait keep_seconds for a requeue"
job=$(sed -n 's/.* job=\([0-9]*\)\/.*/\1/p' <<<"$out" | head -n 1)
while read -r n _; do
    wait_for "node_root $n ls /dev/shm/tierckpt/.tierckpt/expire" "^$job$" 20
done <<<"$out"

step "a batch job: step 2 finds the store step 1 wrote, bytes intact"
jobdir=$(ck mktemp -d "$STATE/jobs/store.XXXXXX")
ck sh -c "cat > '$jobdir/job.sh'" <<'JOB'
#!/bin/bash
#SBATCH -N3 --ckpt-mem=32M
srun sh -c 'printf "%s-%s" "$(hostname)" "$SLURM_JOB_ID" | dd of="$TIERCKPT_STORE" bs=1 seek=1048576 conv=notrunc status=none
            echo "step1 $(hostname) created=$TIERCKPT_STORE_CREATED"'
srun sh -c 'echo "step2 $(hostname) created=$TIERCKPT_STORE_CREATED bytes=$TIERCKPT_STORE_BYTES" \
                 "data=$(dd if="$TIERCKPT_STORE" bs=1 skip=1048576 count=32 status=none | tr -d "\0")"'
JOB
ck sbatch --wait --output="$jobdir/out.txt" "$jobdir/job.sh" >/dev/null
res=$(cat "$jobdir/out.txt")
echo "$res"
assert_eq "$(grep -c '^step1 n[0-9] created=1$' <<<"$res")" 3 "step 1 creates a store on each node"
while read -r _ host created bytes data; do
    assert_eq "$created $bytes" "created=0 bytes=33554432" "step 2 on $host re-attaches"
    assert_match "$data" "^data=$host-[0-9]+$" "step 2 on $host reads what step 1 wrote"
done < <(grep '^step2' <<<"$res")
assert_eq "$(grep -c '^step2' <<<"$res")" 3 "step 2 lines"
