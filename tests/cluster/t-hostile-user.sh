# shellcheck shell=bash
# shellcheck disable=SC2016  # single-quoted scripts run on the nodes
# shellcheck disable=SC2086  # TRAIN is a command line
# Two users share the nodes: ckuser attacks what root runs for it (the
# plugin in slurmstepd, the epilog, an admin's `tierckpt` command) and
# ckuser2's checkpoints. Every attack of tierckpt-security (spank-tierckpt(8),
# SECURITY) is played and must fail: ckuser2's files intact and unread,
# root's commands ending with a clear error (never a signal, never a hang),
# the memory given back, the store at the size root reserved.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

TRAIN="tierckpt-synth-train --ckpt-every 2"
# The forging tool, where the test users can read it.
FORGE=$STATE/jobs/forge.py
install -m 0644 "$TCK_SRCDIR/tests/cluster/forge.py" "$FORGE"
home1=$(getent passwd ckuser | cut -d: -f6)
home2=$(getent passwd ckuser2 | cut -d: -f6)
# Root's tierckpt: the cluster's installed build.
tck=$STATE/root$(make_var bindir)/tierckpt
tck_libs=$STATE/root$(make_var libdir)
# Runs root's tierckpt on a node; prints its output and "rc=N".
root_tck() { # NODE ARGS...
    local node=$1 rc=0
    shift
    node_root "$node" env LD_LIBRARY_PATH="$tck_libs" timeout 20 "$tck" "$@" 2>&1 || rc=$?
    echo "rc=$rc"
}
no_signal() { # OUTPUT WHAT: the command ended by itself, with 0 or 1
    assert_match "$1" '^rc=[01]$' "$2 (a signal or a hang gives 124 or >= 128)"
}

# What an earlier run of this test left in the users' homes.
rm -rf "$home2/ckpt" "$home1/ckpt-link" "$home1/flushed" "$home1/pd" "$home1/pf" "$home1/fifo-store"
node_root n4 rm -f /dev/shm/keep

# ------------------------------------------------------------------
step "ckuser2 keeps checkpoints in its persistent directory"
victim=$home2/ckpt
ck2 srun --mpi=pmix -N1 -n1 -w n2 --ckpt-mem=64M --ckpt-replicas=0 --ckpt-persist="$victim" \
    --ckpt-persist-every=1 $TRAIN --state-mib 1 --steps 4 >/dev/null
fingerprint() { find "$victim" -printf '%P %s %m %u\n' | sort; sha256sum "$victim"/v*/* 2>/dev/null | sort; }
# Version 4 may reach the directory only with the epilog's flush at the
# end of the job: wait for it, so that what is compared below is final.
wait_for "ls $victim/v000000000004" '^MANIFEST$' 60
before=$(fingerprint)
echo "$before"
assert_match "$before" '^v000000000004/MANIFEST [0-9]+ 600 ckuser2$' "ckuser2's version 4"

# ------------------------------------------------------------------
step "1. ckuser's store names a symlink into ckuser2's directory; root's tierckpt flush refuses"
ck ln -sfn "$victim" "$home1/ckpt-link"
job=$(ck sbatch --wait --parsable -N1 -w n1 --ckpt-mem=64M --ckpt-replicas=0 --ckpt-persist="$home1/ckpt-link" \
    --ckpt-persist-every=1000 --output=/dev/null --wrap "srun --mpi=pmix $TRAIN --state-mib 1 --steps 10")
store=/dev/shm/tierckpt/job.$job/store
out=$(root_tck n1 flush "$store")
echo "$out"
no_signal "$out" "root's flush of ckuser's store"
assert_match "$out" '^rc=1$' "root's flush fails"
assert_match "$out" "belongs to uid $(id -u ckuser2), not to you \(uid $(id -u ckuser)\)|Permission denied" \
    "the flush ran as ckuser, not root"
assert_eq "$(fingerprint)" "$before" "ckuser2's checkpoints after root's flush"
assert_match "$(grep -h "epilog: job $job" "$STATE"/log/slurmd-n1.log || true)" \
    "belongs to uid $(id -u ckuser2)|Permission denied|no flush|nothing to do" "the epilog's flush ran as ckuser"

# ------------------------------------------------------------------
step "2. forged records and manifests: root's commands end with an error, not a signal"
# A record whose offset + capacity wraps around, one beyond the end, one
# over the header: valid checksums, as a user can compute them.
forged=$(ck salloc -N1 -w n1 --ckpt-mem=64M --ckpt-replicas=0 bash -c "
    srun --mpi=pmix $TRAIN --state-mib 1 --steps 4 >/dev/null
    srun sh -c 'python3 $FORGE record \$TIERCKPT_STORE 10 36864 18446744073709518848 4096 &&
                python3 $FORGE record \$TIERCKPT_STORE 11 1099511627776 4096 4096 &&
                python3 $FORGE record \$TIERCKPT_STORE 12 0 67108864 4096 && echo \$TIERCKPT_STORE'
    " 2>&1)
echo "$forged"
fstore=$(grep '^/dev/shm' <<<"$forged")
for cmd in ls verify; do
    out=$(root_tck n1 "$cmd" "$fstore")
    echo "$out"
    no_signal "$out" "root's tierckpt $cmd of a forged store"
    assert_no_match "$out" ' 1[012] +0 +1 +99 ' "a forged record listed"
done
out=$(root_tck n1 flush --dir "$home1/flushed" "$fstore")
echo "$out"
no_signal "$out" "root's flush of a forged store"
# A persistent directory whose MANIFEST claims a 1 TiB shard, and one whose
# MANIFEST is a FIFO: verify answers at once, allocates nothing of that size.
ck mkdir -p "$home1/pd/v000000000007" "$home1/pf/v000000000008"
ck python3 "$FORGE" manifest "$home1/pd/v000000000007/MANIFEST" 7 1099511627776
ck sh -c "head -c 4096 /dev/zero > '$home1/pd/v000000000007/shard.0'"
out=$(root_tck n1 verify "$home1/pd")
echo "$out"
assert_match "$out" '^rc=1$' "verify of a 1 TiB claim"
assert_match "$out" "shard.0 is 4096 bytes, its manifest says 1099511627776" "the size check, before any read"
ck mkfifo "$home1/pf/v000000000008/MANIFEST" "$home1/fifo-store"
out=$(root_tck n1 verify "$home1/pf")
echo "$out"
no_signal "$out" "verify with a FIFO for a MANIFEST"
out=$(root_tck n1 verify "$home1/fifo-store")
echo "$out"
assert_match "$out" '^rc=1$' "verify of a FIFO"
assert_match "$out" "fifo-store is not a regular file" "the FIFO named"

step "2b. the store is cut short while root verifies it: an error, not SIGBUS"
# Root reads 500 MiB of checksummed shards; ckuser cuts the file to 1 MiB a
# moment after root started (three moments: early, midway, late). Whatever
# root had read by then, it must end by itself (0 or 1).
sync=$(ck mktemp -d "$STATE/jobs/cut.XXXXXX")
ck salloc -N1 -w n3 --ckpt-mem=600M --ckpt-replicas=0 bash -c "
    srun --mpi=pmix tierckpt-synth-train --state-mib 250 --ckpt-every 1 --steps 2 >/dev/null
    for delay in 0.02 0.1 0.25; do
        srun --overlap sh -c 'echo \$TIERCKPT_STORE > $sync/store; while [ ! -e $sync/go ]; do sleep 0.005; done
                              sleep '\$delay'; truncate -s 1M \$TIERCKPT_STORE; rm $sync/go; touch $sync/cut'
        srun sh -c 'dd if=/dev/zero of=\$TIERCKPT_STORE bs=1M count=1 conv=notrunc status=none'  # a fresh store
        srun --mpi=pmix tierckpt-synth-train --state-mib 250 --ckpt-every 1 --steps 2 >/dev/null
    done" >"$sync/out" 2>&1 &
alloc=$!
for round in 1 2 3; do
    wait_for "cat $sync/store 2>/dev/null" '^/dev/shm' 120
    cstore=$(cat "$sync/store")
    rm -f "$sync/store" "$sync/cut"
    node_root n3 env LD_LIBRARY_PATH="$tck_libs" timeout 60 "$tck" verify "$cstore" >"$sync/verify" 2>&1 &
    verifier=$!
    touch "$sync/go"
    rc=0
    wait "$verifier" || rc=$?
    wait_for "ls $sync" '^cut$' 30
    echo "round $round: verify rc=$rc:"
    sed 's/^/    /' "$sync/verify"
    [ "$rc" -le 1 ] || fail "root's tierckpt verify ended with $rc while the store was cut short (signal?)"
done
wait "$alloc" || true

# ------------------------------------------------------------------
step "3. ckuser grows its store: the next step gets the reserved size back, memlock follows the reservation"
out=$(ck salloc -N1 -w n4 --ckpt-mem=64M --ckpt-replicas=0 bash -c '
    srun sh -c "truncate -s 2G \$TIERCKPT_STORE; stat -c grown=%s \$TIERCKPT_STORE"
    srun sh -c "echo bytes=\$TIERCKPT_STORE_BYTES size=\$(stat -c %s \$TIERCKPT_STORE) memlock=\$TIERCKPT_MEMLOCK_BYTES"
    ' 2>&1)
echo "$out"
assert_match "$out" '^grown=2147483648$' "the user's truncate"
assert_match "$out" '^bytes=67108864 size=67108864 memlock=[0-9]+$' "the next step"
# Raised to the reservation plus 64 MiB at most (here the sandbox's hard
# limit stops it lower: see HACKING.md).
memlock=$(sed -n 's/.*memlock=//p' <<<"$out")
[ "$memlock" -le $((64 * 1048576 + 64 * 1048576)) ] || fail "memlock $memlock above the reservation + 64 MiB"
assert_match "$(grep -h 'by its user; restoring' "$STATE"/log/slurmd-n4.log)" "was resized to 2 GiB by its user" \
    "slurmstepd's log"

# ------------------------------------------------------------------
step "4. ckuser tries to keep its store's memory: nothing beside the store, a hard link is emptied"
out=$(ck salloc -N1 -w n4 --ckpt-mem=64M --ckpt-replicas=0 bash -c '
    srun sh -c "dd if=/dev/zero of=\$TIERCKPT_STORE bs=1M count=64 conv=notrunc status=none
                mkdir \$(dirname \$TIERCKPT_STORE)/deep 2>&1 | sed s/^/mkdir:/
                ln \$TIERCKPT_STORE /dev/shm/keep && echo linked
                echo store=\$TIERCKPT_STORE"' 2>&1)
echo "$out"
assert_match "$out" '^mkdir:.*Permission denied' "a directory beside the store"
assert_match "$out" '^linked$' "the hard link"
kstore=$(sed -n 's/^store=//p' <<<"$out")
assert_eq "$(node_root n4 stat -c %s /dev/shm/keep)" 67108864 "the link while the store is kept"
step "ckuser2 cannot list or read ckuser's store meanwhile"
out=$(ck2 srun -N1 -w n4 sh -c "ls $(dirname "$kstore") 2>&1; head -c1 $kstore 2>&1; true")
echo "$out"
assert_match "$out" "cannot open directory.*Permission denied" "ckuser2 lists ckuser's job directory"
assert_match "$out" "cannot open '$kstore' for reading: Permission denied" "ckuser2 reads ckuser's store"

# ------------------------------------------------------------------
step "5. two first steps of one job make its store at once: one makes it, the other attaches"
out=$(ck salloc -N1 -w n2 -n2 --ckpt-mem=256M bash -c '
    srun --overlap -n1 sh -c "echo created=\$TIERCKPT_STORE_CREATED" &
    srun --overlap -n1 sh -c "echo created=\$TIERCKPT_STORE_CREATED" &
    wait' 2>&1)
echo "$out"
assert_eq "$(grep -c '^created=1$' <<<"$out")" 1 "steps that created the store"
assert_eq "$(grep -c '^created=0$' <<<"$out")" 1 "steps that attached to it"

# ------------------------------------------------------------------
step "6. a second checkpointing step on the same nodes is refused; the first ends with its own digest"
# The digest depends on the steps, not on their pace: the reference runs
# at full speed, the first step below slowly enough to outlast the second
# step's wait for it (20 s).
ref=$(ck srun --mpi=pmix -N2 -n4 -w n1,n2 --ckpt-mem=256M --ckpt-replicas=1 $TRAIN --state-mib 4 --steps 120)
digest=$(sed -n 's/^final steps=120 digest=\([0-9a-f]*\)$/\1/p' <<<"$ref")
[ -n "$digest" ] || fail "no digest in the reference run: $ref"
out=$(ck salloc -N2 -n4 -w n1,n2 --ckpt-mem=256M --ckpt-replicas=1 bash -c "
    srun --mpi=pmix -n4 $TRAIN --state-mib 4 --steps 120 --step-ms 330 > first.\$SLURM_JOB_ID 2>&1 &
    first=\$!
    sleep 4
    srun --overlap --mpi=pmix -n4 $TRAIN --state-mib 4 --steps 10; echo second-exit=\$?
    wait \$first; echo first-exit=\$?; cat first.\$SLURM_JOB_ID; rm -f first.\$SLURM_JOB_ID" 2>&1)
echo "$out"
assert_match "$out" "another run is checkpointing into this node's store .*: job [0-9]+ step [0-9]+" \
    "the second step's refusal names the first"
assert_match "$out" '^second-exit=[1-9]' "the second step fails"
assert_match "$out" '^first-exit=0$' "the first step"
assert_match "$out" "^final steps=120 digest=$digest$" "the first step's digest"

# ------------------------------------------------------------------
step "4 (end). once ckuser's stores expire, the memory is back: the hard link is empty"
wait_for "node_root n4 stat -c %s /dev/shm/keep; ck2 srun -N1 -w n4 true" '^0$' 90
assert_eq "$(node_root n4 stat -c %b /dev/shm/keep)" 0 "blocks held by the link"
node_root n4 rm -f /dev/shm/keep
out=$(ck2 srun -N1 -w n4 --ckpt-mem=64M sh -c 'echo ok=$TIERCKPT_STORE_BYTES')
assert_eq "$out" "ok=67108864" "ckuser2's next job on n4 reserves its store"
assert_eq "$(fingerprint)" "$before" "ckuser2's checkpoints at the end"
