# shellcheck shell=bash
# shellcheck disable=SC2016  # commands run later, by eval or on the nodes
# Real models through the Python binding on the cluster (Debian's PyTorch and
# torchvision, on the CPU): examples/torch_train.py --model with six ranks,
# two per node, each training another model: ResNet-50 in channels_last with
# SGD + momentum (about 190 MB of state per rank), a Transformer encoder with
# AdamW and a warm-up, a mixture of experts whose later experts have no
# optimizer state at the save, and a model of 10,000 small parameters (30,000
# tensors with Adam's state). A node is killed after a committed save, the
# step relaunched on the survivors plus the spare, and every rank's
# parameters, buffers, optimizer state (parameter by parameter), scheduler
# state, scaler state and RNG states end bit-identical to a straight run's.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

need_torch_example
ck "$PY" -c 'import torchvision' >/dev/null 2>&1 ||
    skip "torchvision is not installed for $PY (apt-get install python3-torchvision)"

# Per node: two ranks' shards, two versions each, and the copies of the
# previous node's (ResNet-50: 190 MB a shard).
OPTS=(--ckpt-mem=1536M --ckpt-replicas=1 --ckpt-transport=ucx)
TRAIN="$PY $EX --model resnet50,transformer,moe,many --steps 16 --ckpt-every 4"
FIRST_PART_SECONDS=300  # six Python ranks importing torch and building ResNet-50 on two cores
trap '[ -n "$pending_go" ] && touch "$pending_go"; "$CLUSTER" revive n2 >/dev/null 2>&1 || true' EXIT
"$CLUSTER" revive n2 >/dev/null

step "reference: a straight run of 16 steps (3 nodes x 2 ranks, four models)"
# shellcheck disable=SC2086  # TRAIN is a command line
ref=$(ck srun --mpi=pmix -N3 -n6 "${OPTS[@]}" $TRAIN)
echo "$ref"
assert_eq "$(grep -c '^rank=[0-5] restored none$' <<<"$ref")" 6 "a new job finds no checkpoint"
assert_eq "$(finals "$ref" | grep -c ' step=16 params=[0-9a-f]\{16\} optim=[0-9a-f]\{16\} other=[0-9a-f]\{16\}$')" 6 \
    "every rank's final line"
assert_match "$ref" '^saved step=16 .* bytes=1[89][0-9]{7}$' "rank 0 saves ResNet-50 with its momentum (about 190 MB)"

step "the same job: 12 steps on n1-n3, n2 (the MoE and many-parameter ranks) dies, relaunched on n1, n3, n4"
out=$(with_failure "srun -N3 -n6 -w n1,n2,n3 --mpi=pmix $TRAIN --steps 12" \
                   '"$CLUSTER" kill n2' \
                   "srun -N3 -n6 -w n1,n3,n4 --mpi=pmix $TRAIN")
echo "$out"
assert_match "$out" '^saved step=12 ' "the first step saves step 12"
assert_eq "$(grep -c '^rank=[0-5] restored step=12 source=\(local\|peer\)$' <<<"$out")" 6 \
    "every rank restores step 12 although n2 is gone"
assert_match "$out" '^rank=[45] restored step=12 source=peer$' "ranks moved to the spare fetch from peers"
assert_eq "$(finals "$out" | grep ' step=16 ')" "$(finals "$ref")" \
    "every rank's parameters, optimizer, scheduler, scaler and RNG states after losing a node, against the straight run"
"$CLUSTER" revive n2
