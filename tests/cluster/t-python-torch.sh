# shellcheck shell=bash
# shellcheck disable=SC2016  # commands run later, by eval or on the nodes
# The Python binding on the cluster: examples/torch_train.py (an MLP with
# dropout, Adam, a step LR schedule; Debian's PyTorch on the CPU) under
# srun --mpi=pmix. Without mpi4py: a node killed after a committed save, the
# job relaunched on the survivors plus the spare ends with parameters and
# optimizer state bit-identical to a straight run's, on every rank. With
# --elastic (the same state on every rank), 3 ranks lose n2 and 2 ranks go
# on to the straight run's result. With
# mpi4py (gradients averaged across ranks): a run resumed in a second step
# ends as the straight run.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

need_torch_example
ck "$PY" -c 'import tierckpt.torch' || fail "the installed package does not import as the test user"

OPTS=(--ckpt-mem=256M --ckpt-replicas=1 --ckpt-transport=ucx)
TRAIN="$PY $EX --steps 20 --ckpt-every 4 --hidden 128"
FIRST_PART_SECONDS=240  # six Python ranks importing torch on two cores
trap '[ -n "$pending_go" ] && touch "$pending_go"; "$CLUSTER" revive n2 >/dev/null 2>&1 || true' EXIT
"$CLUSTER" revive n2 >/dev/null

step "reference: a straight run of 20 steps (3 nodes x 2 ranks)"
# shellcheck disable=SC2086  # TRAIN is a command line
ref=$(ck srun --mpi=pmix -N3 -n6 "${OPTS[@]}" $TRAIN)
echo "$ref"
assert_eq "$(grep -c '^rank=[0-5] restored none$' <<<"$ref")" 6 "a new job finds no checkpoint"
assert_eq "$(finals "$ref" | grep -c ' step=20 params=[0-9a-f]\{16\} optim=[0-9a-f]\{16\} other=[0-9a-f]\{16\}$')" 6 "every rank's final line"
assert_eq "$(finals "$ref" | awk '{print $4}' | sort -u | wc -l)" 6 "every rank trains its own replica"

step "the same job: 12 steps on n1-n3, n2 dies, relaunched on n1, n3 and the spare n4 up to step 20"
out=$(with_failure "srun -N3 -n6 -w n1,n2,n3 --mpi=pmix $TRAIN --steps 12" \
                   '"$CLUSTER" kill n2' \
                   "srun -N3 -n6 -w n1,n3,n4 --mpi=pmix $TRAIN")
echo "$out"
assert_match "$out" '^saved step=12 ' "the first step saves step 12"
assert_eq "$(grep -c '^rank=[0-5] restored step=12 source=\(local\|peer\)$' <<<"$out")" 6 \
    "every rank restores step 12 although n2 is gone"
assert_match "$out" '^rank=[45] restored step=12 source=peer$' "ranks moved to the spare fetch from peers"
assert_eq "$(finals "$out" | grep ' step=20 ')" "$(finals "$ref")" \
    "parameters and optimizer state of every rank after losing a node, against the straight run"
"$CLUSTER" revive n2

step "--elastic (tierckpt.torch, elastic=True): 3 ranks save, n2 dies, 2 ranks on n1 and n3 go on to step 20"
# Every rank trains the same model on the same batches: the result does
# not depend on the number of ranks, and a fresh process's Adam has no
# state until the restore creates it from the checkpoint.
# shellcheck disable=SC2086  # TRAIN is a command line
ref=$(ck srun --mpi=pmix -N1 -n1 -w n4 "${OPTS[@]}" $TRAIN --elastic)
want=$(finals "$ref" | awk '{print $3, $4, $5, $6}')
assert_match "$want" '^step=20 params=' "the straight run's final line"
out=$(with_failure "srun -N3 -n3 -w n1,n2,n3 --mpi=pmix $TRAIN --elastic --steps 12" \
                   '"$CLUSTER" kill n2' \
                   "srun -N2 -n2 -w n1,n3 --mpi=pmix $TRAIN --elastic")
echo "$out"
assert_eq "$(grep -c '^rank=[0-1] restored step=12 source=\(local\|peer\)$' <<<"$out")" 2 \
    "both ranks restore step 12, saved by 3 ranks, although n2 is gone"
assert_eq "$(finals "$out" | grep ' step=20 ' | awk '{print $3, $4, $5, $6}' | sort -u)" "$want" \
    "parameters, Adam's state and the rest on both ranks, against the straight run"
"$CLUSTER" revive n2

if ck "$PY" -c 'import mpi4py' >/dev/null 2>&1; then
    step "with mpi4py (data parallel, gradients averaged): straight, then stopped at 8 and resumed"
    # shellcheck disable=SC2086
    ref=$(ck srun --mpi=pmix -N2 -n4 "${OPTS[@]}" $TRAIN --steps 12 --allreduce)
    assert_eq "$(finals "$ref" | awk '{print $4, $5}' | sort -u | wc -l)" 1 "all ranks hold the same model"
    out=$(ck salloc -N2 -n4 "${OPTS[@]}" bash -c "
        srun --mpi=pmix $TRAIN --steps 8 --allreduce | grep '^final'
        srun --mpi=pmix $TRAIN --steps 12 --allreduce")
    echo "$out"
    assert_eq "$(grep -c '^rank=[0-3] restored step=8 source=local$' <<<"$out")" 4 "every rank restores step 8"
    assert_eq "$(finals "$out" | grep ' step=12 ')" "$(finals "$ref")" "the resumed data-parallel run"
else
    echo "SKIPPED PART: mpi4py is not installed for $PY (apt-get install python3-mpi4py)"
fi
