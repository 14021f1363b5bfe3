# shellcheck shell=bash
# shellcheck disable=SC2016  # single-quoted scripts run in the allocation
# The automatic checkpoint schedule on the cluster (3 nodes x 2 ranks, one
# replica): every decision is Daly's interval from the costs the job
# measured (the median of the last three saves'), in whole steps, never
# shorter than a commit; when the state
# grows eightfold the interval grows with it; no save waits for a commit;
# a run whose rank is killed resumes from memory to the straight run's
# digest; and with --ckpt-persist-every=auto the flush cadence is the
# fewest saves whose periods cover a flush.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

# The job's MTBF: a node's (90 s here, to see several decisions in a short
# run; a real one is months) over 3 nodes: 30 s.
NODE_MTBF=90s
MEM=(--ckpt-mem=1200M --ckpt-replicas=1)

step "auto: the interval follows the measured cost as the state grows from 8 to 64 MiB a rank"
out=$(ck srun --mpi=pmix -N3 -n6 -w n1,n2,n3 "${MEM[@]}" --ckpt-interval=auto --ckpt-node-mtbf=$NODE_MTBF \
    --export=ALL,TIERCKPT_RUN_REPORT=1 \
    tierckpt-synth-train --ckpt-every auto --state-mib 8 --grow-at 100 --grow-mib 64 --steps 300 --step-ms 40 2>&1) ||
    fail "the run ended with status $?: $out"
grep -E '^(saved|committed|final|tierckpt: schedule)' <<<"$out"
assert_match "$out" '^final steps=300 digest=' "the run finished"
assert_match "$out" '^tierckpt: schedule: mode=auto step=2 ' "the first save one step after the first"
python3 - "$out" <<'EOF' || fail "the schedule's decisions"
import math, re, sys
lines = [l for l in sys.argv[1].splitlines() if l.startswith("tierckpt-report schedule ")]
assert len(lines) >= 6, f"only {len(lines)} decisions"
def daly(c, m):  # Daly (2006), as tierckpt(7) states it
    if c >= 2 * m:
        return m
    r = c / (2 * m)
    return math.sqrt(2 * c * m) * (1 + math.sqrt(r) / 3 + r / 9) - c
before, after = [], []
for l in lines:
    d = dict(kv.split("=", 1) for kv in l.split()[2:])
    step, steps = int(d["step"]), int(d["steps"])
    f = {k: float(d[k]) for k in ("step_s", "stall_s", "commit_s", "job_mtbf_s", "optimum_s", "interval_s")}
    assert d["mode"] == "auto", l
    assert abs(f["job_mtbf_s"] - 30) < 1e-6, l  # 90 s / 3 nodes
    assert int(d["next"]) == step + steps, l
    # Printed to 4 significant digits: compare at 0.2 %.
    assert abs(f["optimum_s"] - daly(f["stall_s"], 30)) <= 2e-3 * f["optimum_s"] + 1e-3, l
    iv = steps * f["step_s"]
    assert abs(iv - f["interval_s"]) <= 2e-3 * iv + 1e-3, l
    lo = math.floor(f["optimum_s"] / f["step_s"])
    if d["bound"] == "optimum":
        # One of the two whole-step neighbours of the optimum (the inputs are
        # printed to 4 digits: one step either way).
        assert max(1, lo) - 1 <= steps <= lo + 2, l
        assert iv + 1.01 * f["step_s"] >= f["commit_s"], l
    elif d["bound"] == "commit":
        # The fewest whole steps that cover a commit, above the lower neighbour.
        assert abs(steps - math.ceil(f["commit_s"] / f["step_s"])) <= 1, l
        assert lo <= math.ceil(f["commit_s"] / f["step_s"]) + 1, l
    else:
        raise AssertionError(f"unexpected bound: {l}")
    # Saves from step 100 on hold the grown state; a decision takes the
    # median stall of the last three saves.
    (after if step >= 100 else before).append(f["interval_s"])
after = after[1:]  # the first decision after the growth has one grown save of three
assert before and len(after) >= 2, (before, after)
b, a = sum(before[1:] or before) / len(before[1:] or before), sum(after) / len(after)
print(f"interval before growth {b:.2f} s, after {a:.2f} s")
assert a > 1.3 * b, f"the interval did not follow the cost: {b:.2f} s -> {a:.2f} s"
EOF
last=$(grep '^saved version=' <<<"$out" | tail -n 1)
assert_match "$last" ' room_waits=0 ' "saves that waited for room"
assert_match "$last" ' superseded=0 ' "saves that came before the previous commit was decided"

step "a straight run with auto, and one whose rank 3 is killed: the same digest"
TRAIN="tierckpt-synth-train --ckpt-every auto --state-mib 32 --steps 120 --step-ms 40"
# shellcheck disable=SC2086  # TRAIN is a command line
ref=$(ck srun --mpi=pmix -N3 -n6 -w n1,n2,n3 "${MEM[@]}" --ckpt-node-mtbf=$NODE_MTBF $TRAIN 2>&1) ||
    fail "the straight run ended with status $?: $ref"
grep -E '^(saved|committed|final)' <<<"$ref"
digest=$(sed -n 's/^final steps=120 digest=\([0-9a-f]*\)$/\1/p' <<<"$ref")
[ -n "$digest" ] || fail "no final digest in the straight run"
out=$(ck salloc -N3 -n6 -w n1,n2,n3 "${MEM[@]}" --ckpt-node-mtbf=$NODE_MTBF bash -c "
    srun -K --mpi=pmix -n6 $TRAIN --kill-at 70:3; echo step1-exit=\$?
    srun --mpi=pmix -n6 $TRAIN" 2>&1 || true)
grep -E '^(saved|committed|final|rank=|step1)' <<<"$out"
assert_match "$out" '^rank=3 killed at step=70$' "rank 3 killed itself"
assert_no_match "$out" '^step1-exit=0$' "the killed step's exit status"
restored=$(sed -n 's/^rank=0 restored version=\([0-9]*\) source=.*$/\1/p' <<<"$out")
if [ -z "$restored" ] || [ "$restored" -ge 70 ]; then
    fail "the second step restored no version before step 70: '$restored'"
fi
assert_eq "$(grep -c "^rank=[0-5] restored version=$restored source=local\$" <<<"$out")" 6 \
    "every rank restores version $restored from its node's memory"
assert_match "$out" "^final steps=120 digest=$digest$" "the digest after the kill"

step "--ckpt-persist-every=auto: flush every k-th version, k periods covering a flush"
work=$(ck mktemp -d "$STATE/jobs/schedule.XXXXXX")
# shellcheck disable=SC2086  # TRAIN is a command line
out=$(ck srun --mpi=pmix -N3 -n6 -w n1,n2,n3 "${MEM[@]}" --ckpt-node-mtbf=$NODE_MTBF \
    --ckpt-persist="$work/run" --ckpt-persist-every=auto --export=ALL,TIERCKPT_RUN_REPORT=1 $TRAIN 2>&1) ||
    fail "the run ended with status $?: $out"
grep -E '^(saved|committed|final|tierckpt: schedule)' <<<"$out"
assert_match "$out" "^final steps=120 digest=$digest$" "the digest with a persistent tier"
python3 - "$out" <<'EOF' || fail "the flush cadence"
import math, sys
lines = [l for l in sys.argv[1].splitlines() if l.startswith("tierckpt-report schedule ")]
assert len(lines) >= 3, f"only {len(lines)} decisions"
flushed = False
for l in lines:
    d = dict(kv.split("=", 1) for kv in l.split()[2:])
    k, flush = int(d["persist_every"]), float(d["flush_s"])
    period = float(d["interval_s"]) + float(d["stall_s"])
    # One replica: memory recovers every single-node failure, so the model
    # gives the persistent tier no reason but keeping up.
    assert d["persist_bound"] == "flush-time", l
    ratio = flush / period  # printed to 4 digits: allow the rounding
    assert k == max(1, math.ceil(ratio - 1e-9)) or abs(ratio - round(ratio)) < 1e-2, l
    flushed = flushed or flush > 0
assert flushed, "no flush was measured"
EOF
last=$(grep '^committed version=' <<<"$out")
assert_no_match "$last" ' persisted=0 ' "a version reached the persistent tier"
