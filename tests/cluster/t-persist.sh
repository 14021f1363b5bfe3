# shellcheck shell=bash
# shellcheck disable=SC2016  # single-quoted scripts run in the allocation
# The persistent tier, 3 nodes x 2 ranks, as ckuser: every 2nd committed
# version is flushed in the background; `tierckpt flush` writes the newest
# one on demand and the epilog at job end; a brand new job (new job id,
# empty node stores) restores from the directory, bit-exact; a truncated
# shard is caught and an older version used; another world size is refused
# naming both sizes; a full file system (a real 12 MiB tmpfs) during a flush:
# training finishes, the error is in the statistics and the logs, and the
# older version still restores.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

TRAIN="tierckpt-synth-train --state-mib 8 --ckpt-every 4 --wait-commit"
MEM=(--ckpt-mem=256M --ckpt-replicas=0)
work=$(ck mktemp -d "$STATE/jobs/persist.XXXXXX")
PDIR=$work/run
full=""
cleanup() {
    if [ -n "$full" ]; then node_root n1 umount "$full" 2>/dev/null || true; fi
}
trap cleanup EXIT

step "reference: a straight run of 20 steps"
# shellcheck disable=SC2086  # TRAIN is a command line
ref=$(ck srun --mpi=pmix -N3 -n6 "${MEM[@]}" $TRAIN --steps 20)
digest=$(sed -n 's/^final steps=20 digest=\([0-9a-f]*\)$/\1/p' <<<"$ref")
[ -n "$digest" ] || fail "no final digest in the reference run: $ref"

step "flush every 2nd committed version in the background; tierckpt flush writes the newest on demand"
out=$(ck salloc -N3 -n6 -w n1,n2,n3 "${MEM[@]}" --ckpt-persist="$PDIR" --ckpt-persist-every=2 bash -c "
    srun --mpi=pmix -n6 $TRAIN --steps 12 --step-ms 100
    srun -N3 -n3 tierckpt flush" 2>&1 || true)
echo "$out"
# Commits 4, 8, 12: the 2nd (8) is flushed by the ranks while training
# goes on (settled at close); tierckpt flush writes 12, the newest.
assert_match "$out" '^final steps=12 ' "training ran"
assert_match "$out" 'tierckpt flush: .*: version 12 is complete in ' "tierckpt flush completes version 12"
ls_out=$(ck tierckpt ls "$PDIR")
echo "$ls_out"
assert_eq "$(grep -cE "^$PDIR +8 +6 +[0-5] +8\.0 MiB complete" <<<"$ls_out")" 6 "version 8: six shards"
assert_eq "$(grep -cE "^$PDIR +12 +6 +[0-5] +8\.0 MiB complete" <<<"$ls_out")" 6 "version 12: six shards"
assert_eq "$(stat -c '%U %a' "$PDIR" "$PDIR/v000000000012" "$PDIR/v000000000012/shard.4" \
    "$PDIR/v000000000012/MANIFEST" | sort -u | tr '\n' ' ')" "ckuser 600 ckuser 700 " "owner and modes"
assert_match "$(cat "$PDIR/v000000000012/MANIFEST")" '^shard 5 bytes [0-9]+ crc32c [0-9a-f]{8}$' "the manifest"

step "a brand new job restores version 12 from the persistent directory; the epilog writes version 20"
# shellcheck disable=SC2086
out=$(ck srun --mpi=pmix -N3 -n6 "${MEM[@]}" --ckpt-persist="$PDIR" $TRAIN --steps 20)
echo "$out"
assert_eq "$(grep -c '^rank=[0-5] restored version=12 source=persistent$' <<<"$out")" 6 \
    "every rank restores version 12 from the persistent tier"
assert_match "$out" "^final steps=20 digest=$digest$" "digest after restoring from the persistent tier"
# The job's epilog runs on every node after srun returns.
wait_for "ck tierckpt ls '$PDIR'" "^$PDIR +20 +6 +5 .* complete" 60
assert_eq "$(stat -c '%U %a' "$PDIR/v000000000020/shard.0")" "ckuser 600" "the epilog writes as the job's user"
ck tierckpt verify "$PDIR" >/dev/null || fail "tierckpt verify finds fault with a good directory"

step "a truncated shard of version 20: tierckpt verify and restore catch it; version 12 is used"
ck truncate -s 4096 "$PDIR/v000000000020/shard.3"
set +e
vout=$(ck tierckpt verify "$PDIR" 2>&1)
vrc=$?
set -e
echo "$vout"
assert_eq "$vrc" 1 "tierckpt verify's exit status"
assert_match "$vout" "^$PDIR +20 +6 +3 .* complete +corrupt$" "tierckpt verify names the shard"
# shellcheck disable=SC2086
out=$(ck srun --mpi=pmix -N3 -n6 "${MEM[@]}" --ckpt-persist="$PDIR" $TRAIN --steps 20 2>&1)
echo "$out"
assert_match "$out" 'rank 3: shard of version 20 from the persistent tier: .*shard\.3 is 4096 bytes, its manifest says [0-9]+ \(truncated or altered\)' \
    "the runtime names the truncated shard"
assert_eq "$(grep -c '^rank=[0-5] restored version=12 source=persistent$' <<<"$out")" 6 "every rank falls back to version 12"
assert_match "$out" "^final steps=20 digest=$digest$" "digest after the truncated shard"

step "another world size is refused, naming both sizes"
set +e
# shellcheck disable=SC2086
out=$(ck srun --mpi=pmix -N2 -n4 "${MEM[@]}" --ckpt-persist="$PDIR" $TRAIN --steps 20 2>&1)
set -e
echo "$out"
assert_match "$out" "holds checkpoints of a job of 6 ranks .*; this job has 4 ranks: restart it with 6 ranks" \
    "the world-size error"

step "a full file system during a flush: training finishes, the error is reported, the older version restores"
full=$(ck mktemp -d "$work/full.XXXXXX")
# On n1 only (each node has its own mount namespace): a node-local disk.
node_root n1 mount -t tmpfs -o size=12M,mode=0700,uid="$(id -u ckuser)",gid="$(id -g ckuser)" tmpfs "$full"
SMALL="tierckpt-synth-train --state-mib 4 --ckpt-every 4 --step-ms 150"
# shellcheck disable=SC2086
out=$(ck srun --mpi=pmix -N1 -n2 -w n1 --ckpt-mem=128M --ckpt-replicas=0 --ckpt-persist="$full/run" \
    --ckpt-persist-every=1 --ckpt-persist-keep=1 $SMALL --steps 16 2>&1)
echo "$out"
small_digest=$(sed -n 's/^final steps=16 digest=\([0-9a-f]*\)$/\1/p' <<<"$out")
[ -n "$small_digest" ] || fail "training did not finish with the file system full"
# Version 4 (8 MiB) fits; version 8 does not.
assert_match "$out" '^saved version=12 .* persisted=4 persist_failures=0 ' "version 4 flushed"
assert_match "$out" '^saved version=16 .* persisted=4 persist_failures=1 persist_status=I/O error committed=[0-9]* superseded=[0-9]* room_waits=[0-9]*$' \
    "the failed flush in the statistics"
assert_match "$out" 'flush of version 8 to .* failed: .*No space left on device' "the failed flush in the log"
out=$(on_node n1 "tierckpt ls '$full/run'")
echo "$out"
assert_match "$out" "^$full/run +4 +2 +1 .* complete" "version 4 is intact"
assert_no_match "$out" " (8|12|16) +[0-9]+ +[0-9]+ .* complete" "no failed version looks complete"
# shellcheck disable=SC2086
out=$(ck srun --mpi=pmix -N1 -n2 -w n1 --ckpt-mem=128M --ckpt-replicas=0 --ckpt-persist="$full/run" \
    $SMALL --steps 16 2>&1)
echo "$out"
assert_eq "$(grep -c '^rank=[01] restored version=4 source=persistent$' <<<"$out")" 2 \
    "a new job restores the older version"
assert_match "$out" "^final steps=16 digest=$small_digest$" "digest after the full file system"
# The epilogs of both jobs tried version 16 too, and said why they could not.
wait_for "grep 'flush to the persistent tier' '$STATE/log/slurmd-n1.log'" 'No space left on device' 30
