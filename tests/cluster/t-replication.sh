# shellcheck shell=bash
# shellcheck disable=SC2016  # commands run later, by eval or on the nodes
# Replication (receiver-driven RDMA reads), over UCX and over libfabric
# (tcp;ofi_rxm): after a committed save every node's store also holds
# copies of the previous node's shards; a node killed after a committed
# save, the job goes on in a new step on the survivors plus the spare,
# restoring from the copies, bit-exact; a copy corrupted on purpose is
# caught and an older version used.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

TRAIN="tierckpt-synth-train --state-mib 16 --ckpt-every 4 --wait-commit"
OPTS=(--ckpt-mem=256M --ckpt-replicas=1 --ckpt-transport=ucx)
TRANSPORTS=${TCK_TRANSPORTS:-ucx ofi}
trap '[ -n "$pending_go" ] && touch "$pending_go"; "$CLUSTER" revive n2 >/dev/null 2>&1 || true' EXIT
"$CLUSTER" revive n2 >/dev/null  # every node up and idle to start with

step "reference: a straight run of 20 steps"
# shellcheck disable=SC2086  # TRAIN is a command line
ref=$(ck srun --mpi=pmix -N3 -n6 "${OPTS[@]}" $TRAIN --steps 20)
digest=$(sed -n 's/^final steps=20 digest=\([0-9a-f]*\)$/\1/p' <<<"$ref")
[ -n "$digest" ] || fail "no digest in the reference run: $ref"

for transport in $TRANSPORTS; do
    OPTS=(--ckpt-mem=256M --ckpt-replicas=1 --ckpt-transport="$transport")
    step "$transport: a committed save; each store holds the previous node's shards as replicas; n2 dies; the job resumes on n1, n3, n4"
    out=$(with_failure "srun -N3 -n6 -w n1,n2,n3 --mpi=pmix $TRAIN --steps 12 | grep -v '^rank'
                        srun -N3 -n3 -w n1,n2,n3 tierckpt ls
                        srun -N1 -n1 -w n1 tierckpt ls --json | tr -d ' ' | grep '\"version\":12,'" \
                       '"$CLUSTER" kill n2' \
                       "TIERCKPT_RUN_REPORT=1 srun -N3 -n6 -w n1,n3,n4 --mpi=pmix $TRAIN --steps 20")
    echo "$out"
    # Placement: n1 -> n2 -> n3 -> n1, two ranks a node.
    for pair in "0 n2" "1 n2" "2 n3" "3 n3" "4 n1" "5 n1"; do
        read -r r holder <<<"$pair"
        assert_match "$out" "^/dev/shm/tierckpt/job\.[0-9]+/store +[0-9]+ +$r +6 +12 +16\.0 MiB replica +complete" \
            "a replica of rank $r's version 12 (kept on $holder)"
    done
    assert_eq "$(grep -cE ' 6 +12 +16\.0 MiB replica ' <<<"$out")" 6 "replicas of version 12, one per rank"
    # Shards and copies carry a piece table (checksums of 4 MiB pieces,
    # tierckpt-store(5)): the owner's from its checksum, the copy's from
    # the receiver's verification.
    assert_eq "$(grep -cE '"rank":[01],.*"kind":"own",.*"piece_bytes":4194304' <<<"$out")" 2 \
        "n1's own shards of version 12 have piece tables"
    assert_eq "$(grep -cE '"rank":[45],.*"kind":"replica",.*"piece_bytes":4194304' <<<"$out")" 2 \
        "n1's replicas of version 12 have piece tables"
    assert_eq "$(grep -c '^rank=[0-5] restored version=12 source=\(local\|peer\)$' <<<"$out")" 6 \
        "every rank restores version 12 although n2 is gone"
    assert_match "$out" '^rank=[23] restored version=12 source=local$' "n2's ranks, now on n3, find n3's replicas"
    assert_match "$out" '^rank=[45] restored version=12 source=peer$' "ranks moved to the spare n4 fetch from peers"
    assert_eq "$(grep -cE "^tierckpt-report restore rank=[45] node=n4 version=12 source=peer .* via=$transport " <<<"$out")" 2 \
        "n4's ranks read their shards over $transport, not MPI"
    # Where their time went: the parts are there, the transfer took some,
    # and together they do not exceed the whole (1 ms of rounding per part).
    breakdown=$(awk '/^tierckpt-report restore rank=[45] .*source=peer/ {
            for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            sum = v["inventory_ms"] + v["plan_ms"] + v["move_ms"] + v["verify_ms"] + v["copy_ms"] + v["agree_ms"]
            ok = ("move_ms" in v) && v["move_ms"] > 0 && sum <= v["ms"] + 6
            print (ok ? "ok" : "bad: " $0); delete v
        }' <<<"$out")
    assert_eq "$(grep -c '^ok$' <<<"$breakdown")" 2 "the peer restores report where their time went: $breakdown"
    assert_eq "$(grep -cE '^tierckpt-report restore rank=[0-3] .* via=store ' <<<"$out")" 4 \
        "the other ranks read their node's store"
    assert_match "$out" "^final steps=20 digest=$digest$" "digest after losing a node"
    "$CLUSTER" revive n2
done
OPTS=(--ckpt-mem=256M --ckpt-replicas=1 --ckpt-transport=ucx)

# A command for the job: damages one byte of rank R's replica of version 12
# in NODE's store, and shows tierckpt verify's verdict.
flip() { # NODE RANK
    printf '%s\n' "srun -N1 -n1 -w $1 bash -c '
        off=\$(tierckpt ls --json \"\$TIERCKPT_STORE\" | tr -d \" \" | grep \"\\\"rank\\\":$2,\" |
              grep \"\\\"version\\\":12,\" | grep replica | sed \"s/.*\\\"offset\\\":\\([0-9]*\\),.*/\\1/\")
        printf \"\\\\377\" | dd of=\"\$TIERCKPT_STORE\" bs=1 seek=\$((off + 8192)) conv=notrunc status=none
        tierckpt verify \"\$TIERCKPT_STORE\" | grep corrupt'"
}

step "the only copy left of rank 2's version 12 is corrupted: caught, version 8 restored"
out=$(with_failure "srun -N3 -n6 -w n1,n2,n3 --mpi=pmix $TRAIN --steps 12 | grep -v '^rank'
                    $(flip n3 2)" \
                   '"$CLUSTER" kill n2' \
                   "srun -N3 -n6 -w n1,n3,n4 --mpi=pmix $TRAIN --steps 20")
echo "$out"
assert_match "$out" ' 2 +6 +12 +16\.0 MiB replica +complete +corrupt$' "tierckpt verify finds the corrupted replica"
assert_match "$out" 'rank 2: shard of version 12 .*checksum mismatch' "the runtime reports the bad copy"
assert_eq "$(grep -c '^rank=[0-5] restored version=8 source=\(local\|peer\)$' <<<"$out")" 6 \
    "every rank restores version 8"
assert_match "$out" "^final steps=20 digest=$digest$" "digest after the corrupted replica"
"$CLUSTER" revive n2

step "a copy read over the transport arrives corrupted: caught, the other copy read instead, version 12 restored"
# Rank 4's shard of version 12 is on n3 (its own) and n1 (its replica);
# moved to the spare n4 it reads n1's copy first, which is damaged.
out=$(with_failure "srun -N3 -n6 -w n1,n2,n3 --mpi=pmix $TRAIN --steps 12 | grep -v '^rank'
                    $(flip n1 4)" \
                   '"$CLUSTER" kill n2' \
                   "TIERCKPT_RUN_REPORT=1 srun -N3 -n6 -w n1,n3,n4 --mpi=pmix $TRAIN --steps 20")
echo "$out"
assert_match "$out" ' 4 +6 +12 +16\.0 MiB replica +complete +corrupt$' "tierckpt verify finds the corrupted replica"
assert_match "$out" "rank 4: shard of version 12 from rank 0's node over ucx: checksum mismatch" \
    "the reader catches the damage"
assert_match "$out" '^tierckpt-report restore rank=4 node=n4 version=12 source=peer .* via=ucx ' \
    "rank 4 reads its own node's copy over the transport instead"
assert_eq "$(grep -c '^rank=[0-5] restored version=12 source=\(local\|peer\)$' <<<"$out")" 6 \
    "every rank restores version 12"
assert_match "$out" "^final steps=20 digest=$digest$" "digest after the corrupted transfer"
"$CLUSTER" revive n2

step "a partner that never copies version 12: the saves after it do not wait, they are superseded; 12 does not commit, the error says why; no superseded version is restored"
# A save every step (500 ms): version 12 stays in flight for the replica
# timeout (3 s), and each save meanwhile waits behind it and supersedes the
# one before (the store holds three versions). The save that finds 12 failed
# stages its own version and returns the error; the step ends with status 75.
out=$(ck salloc -N3 -n6 -w n1,n2,n3 "${OPTS[@]}" bash -c "
    TIERCKPT_REPLICA_TIMEOUT_MS=3000 TIERCKPT_TEST_IGNORE_REPLICA=12:3 \
        srun -K --mpi=pmix tierckpt-synth-train --state-mib 16 --ckpt-every 1 --step-ms 500 --steps 20
    echo step1-exit=\$?
    srun --mpi=pmix $TRAIN --steps 20" 2>&1 || true)
echo "$out"
assert_match "$out" 'version 12: 0 of 1 partners acknowledged their copy within 3000 ms' "the owner's report"
assert_match "$out" '^saved version=12 .* committed=11 superseded=0 room_waits=[0-9]+$' "every version before 12 committed, none superseded"
# Versions 13-16 waited behind 12 (unannounced) and were superseded by the
# next save, none of them waiting for 12's verdict.
assert_match "$out" '^saved version=17 .* committed=11 superseded=([4-9]|[1-9][0-9]) room_waits=[0-9]+$' \
    "versions 13-16 superseded while 12 was in flight"
assert_match "$out" 'version 12 did not commit: .*partner node did not acknowledge its copy; version 11 stays the newest committed' \
    "the error given to the program"
failed_at=$(sed -n 's/^tierckpt-synth-train: rank [0-5]: version 12 did not commit: .*(version \([0-9]*\) is staged)$/\1/p' <<<"$out" | sort -u)
assert_match "$failed_at" '^(1[89]|20)$' "the program learns at the first save after the timeout"
assert_match "$out" '^step1-exit=75$' "the step ends with the peer-failure status"
# The next step restores the newest version whose shards are complete on
# every node: 11 (committed), 12 (the partner dropped only copies) or the
# version staged when 12 failed; never one that was superseded.
restored=$(sed -n 's/^rank=[0-5] restored version=\([0-9]*\) source=local$/\1/p' <<<"$out" | sort -u)
assert_match "$restored" "^(11|12|$failed_at)$" "the one version every rank restores (not a superseded one)"
assert_eq "$(grep -c "^rank=[0-5] restored version=$restored source=local$" <<<"$out")" 6 "ranks restoring version $restored"
assert_match "$out" "^final steps=20 digest=$digest$" "digest after the failed version"
