# shellcheck shell=bash
# shellcheck disable=SC2016  # single-quoted scripts run in the allocation
# tierckpt plan: the README's example prints what the README says; bad
# input is refused with the reason; and the --ckpt-mem it computes from a
# real store is exactly what the runtime needs: with it, saves made faster
# than their copies commit never wait for room (room_waits=0); one huge
# page less, every save waits for the previous verdict; at its minimum the
# job still commits every version; below that, versions fail for want of
# room, with a message that names the fix.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

step "the README's example: Llama 3 70B on 16 nodes of 8 GPUs"
out=$(ck tierckpt plan --layers 80 --hidden 8192 --ffn 28672 --heads 64 --kv-heads 8 --vocab 128256 \
    --nodes 16 --gpus-per-node 8 --step-time 10s --copy-bw 10 --checksum-bw 10)
echo "$out"
for line in \
    'weights              bf16           131.4 GiB      1.0 GiB      8.2 GiB' \
    'optimizer moments    2 x fp32       525.7 GiB      4.1 GiB     32.9 GiB' \
    '  save every 125 steps (20.8 min; optimum 20.9 min, rounded to whole steps)'; do
    grep -qxF -- "$line" <<<"$out" || fail "tierckpt plan does not print: $line"
    grep -qxF -- "$line" "$TCK_SRCDIR/README.md" || fail "the README does not show: $line"
done
assert_match "$out" '^model: 70\.55 B parameters in 723 tensors$' "the parameter count"
assert_match "$out" '^--ckpt-mem=206G   saves never wait' "--ckpt-mem for saves that never wait"
json=$(ck tierckpt plan --params 70553706496 --nodes 16 --copy-bw 10 --checksum-bw 10 --storage-bw 10 --json)
python3 -c 'import json, sys
d = json.loads(sys.argv[1])
assert d["parts"][0]["bytes"] == 141107412992, d["parts"][0]
assert d["parts"][1]["bytes"] == 564429651968, d["parts"][1]
assert d["schedule"] is None
# 8 shards a node: 3 versions + 2 of each copy (40 slots) without a flush,
# 4 + 3 (56 slots) with one; the header and slot directory: 36864 bytes.
m = d["ckpt_mem"]
assert (m["flushing_bytes"] - 36864) * 40 == (m["bytes"] - 36864) * 56, m
print("json: ok,", d["ckpt_mem"]["arg"])' "$json" || fail "tierckpt plan --json: $json"

step "bad input is refused with the reason"
check_refused() { # WHAT EXPECTED-MESSAGE-REGEX ARGS...
    local what=$1 re=$2 rc=0 msg
    shift 2
    msg=$(ck tierckpt plan "$@" 2>&1) || rc=$?
    assert_eq "$rc" 2 "exit status for $what"
    assert_match "$msg" "$re" "the message for $what"
}
check_refused "an unknown dtype" "unknown dtype 'fp12'; use one of" --params 7B --nodes 4 --weights fp12
check_refused "zero nodes" "--nodes=0: a job runs on at least one node" --params 7B --nodes 0
check_refused "more replicas than nodes" "--replicas=3 needs at least 4 nodes" --params 7B --nodes 3 --replicas 3
check_refused "no model" "no model given" --nodes 3
check_refused "a flush cadence that is no number" "--persist-every=x: .*, or auto" --params 7B --nodes 4 --persist-every x

# Saves every step, no compute between them: faster than the copies commit.
TRAIN="tierckpt-synth-train --state-mib 32 --steps 30 --ckpt-every 1"
run_with() { # MEM: prints rank 0's output
    # shellcheck disable=SC2086  # TRAIN is a command line
    ck srun --mpi=pmix -N3 -n6 -w n1,n2,n3 --ckpt-mem="$1" --ckpt-replicas=1 $TRAIN 2>&1 || true
}
room_waits() { sed -n 's/^saved version=30 .* room_waits=\([0-9]*\)$/\1/p' <<<"$1"; }

step "plan --from-store on a real job's store"
out=$(ck salloc -N3 -n6 -w n1,n2,n3 --ckpt-mem=1G --ckpt-replicas=1 bash -c \
    "srun --mpi=pmix -n6 $TRAIN --wait-commit | tail -n 1
     srun -N1 -n1 -w n2 bash -c 'tierckpt plan --from-store \"\$TIERCKPT_STORE\" --json --copy-bw 1 --checksum-bw 1'" 2>&1)
echo "$out"
read -r no_wait at_least < <(python3 -c 'import json, sys
for line in sys.stdin:
    if line.startswith("{"):
        d = json.loads(line)
        print(d["ckpt_mem"]["arg"], d["ckpt_mem"]["min_arg"])' <<<"$out")
if [ -z "$no_wait" ] || [ -z "$at_least" ]; then fail "no --ckpt-mem figures from tierckpt plan --from-store"; fi
echo "tierckpt plan: --ckpt-mem=$no_wait (saves never wait), $at_least at least"
mib() { echo "${1%M}"; }
[[ $no_wait == *M && $at_least == *M ]] || fail "expected sizes in MiB: $no_wait, $at_least"

step "--ckpt-mem=$no_wait: no save waits for room"
out=$(run_with "$no_wait")
grep -E '^(saved version=30|committed|final)' <<<"$out"
assert_match "$out" '^final steps=30 digest=' "the step finished"
assert_eq "$(room_waits "$out")" 0 "saves that waited for room"

step "one huge page less: every save after the first waits for the previous verdict"
out=$(run_with "$(( $(mib "$no_wait") - 2 ))M")
assert_match "$out" '^final steps=30 digest=' "the step finished"
waits=$(room_waits "$out")
echo "room_waits=$waits"
if [ -z "$waits" ] || [ "$waits" -lt 20 ]; then fail "expected most of 29 saves to wait for room, got '$waits'"; fi

step "--ckpt-mem=$at_least (the least): every version commits"
out=$(run_with "$at_least")
assert_match "$out" '^committed version=30 ' "version 30 committed"
assert_no_match "$out" 'did not commit' "no version failed"

step "below the least: versions fail, and the message names the fix"
out=$(run_with "$(( $(mib "$at_least") - 2 ))M")
assert_match "$out" 'has no room for a 32.0 MiB shard .*ask for more with --ckpt-mem \(tierckpt plan --from-store sizes it\)' \
    "the reason and the fix"
assert_match "$out" 'did not commit' "a version failed"
