# shellcheck shell=bash
# The failover scripts against job arrays, heterogeneous jobs and job text
# chosen to fool them (tierckpt-failover(8)):
#  - an array of two training jobs on two nodes each; a node of the element
#    whose own job id is also the array's id fails its health check: that
#    element alone is requeued (ARRAYJOBID_TASKID: the plain id would requeue
#    the whole array), released without the node, and resumes from memory
#    with the uninterrupted run's digest; the other element is not touched;
#  - a job whose name and comment hold newlines, fake "ExcNodeList=..."
#    fields, ";", $(...) and backquotes: the release acts on its real
#    fields only (excludes exactly the failed node, asks for exactly the
#    survivor) and nothing in that text runs;
#  - a heterogeneous job whose second component trains: its node fails, the
#    job is requeued as a whole through its leader's id, that component
#    released without the node, and it resumes from memory.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

TRAIN="tierckpt-synth-train --state-mib 16 --ckpt-every 4 --step-ms 250 --steps 60"
OPTS=(--ckpt-mem=512M --ckpt-replicas=1)
unhealthy=""
heal() { # takes the unhealthy node back into service
    [ -n "$unhealthy" ] || return 0
    node_root "$unhealthy" rm -f /tmp/TIERCKPT_TEST_UNHEALTHY 2>/dev/null || true
    "$CLUSTER" revive "$unhealthy" >/dev/null 2>&1 || true
    unhealthy=""
}
marker=$STATE/jobs/t-failover-array.executed.$$
trap 'heal; rm -f "$marker"' EXIT
for n in n1 n2 n3 n4; do "$CLUSTER" revive "$n" >/dev/null; done  # every node up and idle to start with

# FIELD (an squeue -O field: one that no user text can reach) of the job
# record whose own id is ID.
field() { # ID FIELD
    ck squeue -h -t all -j "$1" -O "JobID:0 ,$2:0 " | sed -n "s/^$1 \(.*\) \$/\1/p"
}
excluded() { ck squeue -h -t all -j "$1" -o '%A %x' | sed -n "s/^$1 //p"; }
done_regex='^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)$'

# Fails the health check of NODE and waits until it is drained.
fail_node() { # NODE
    unhealthy=$1
    node_root "$1" touch /tmp/TIERCKPT_TEST_UNHEALTHY
    wait_for "ck sinfo -h -N -n $1 -o '%T %E'" "^drain.* tierckpt: health check 'test' failed \(status 1\)$" 30
}

# Checks the output of a run that was requeued once: every one of RANKS
# ranks resumed from memory, the same version, and ended with the digest.
check_resumed() { # OUTPUT RANKS WHAT
    local restarted last=$(($2 - 1))
    echo "$1" | grep -v '^\(saved\|committed\)'
    restarted=$(sed -n "/^rank=[0-$last] restored version=/,\$p" <<<"$1")
    assert_eq "$(grep -cE "^rank=[0-$last] restored version=[0-9]+ source=(local|peer)$" <<<"$restarted")" "$2" \
        "$3: every rank resumes from memory"
    assert_match "$restarted" 'source=peer$' "$3: the new node's ranks fetch their shards from peers"
    assert_eq "$(sed -n "s/^rank=[0-$last] restored version=\([0-9]*\) .*/\1/p" <<<"$restarted" | sort -u | wc -l)" 1 \
        "$3: every rank restores the same version"
    assert_match "$restarted" "^final steps=60 digest=$digest$" "$3: digest after the requeue"
}

step "reference: a straight run on two nodes"
# shellcheck disable=SC2086  # TRAIN is a command line
ref=$(ck srun --mpi=pmix -N2 -n4 "${OPTS[@]}" $TRAIN)
digest=$(sed -n 's/^final steps=60 digest=\([0-9a-f]*\)$/\1/p' <<<"$ref")
[ -n "$digest" ] || fail "no digest in the reference run: $ref"

# ---------------------------------------------------------------------------
step "an array element's node fails its health check: that element alone is requeued and resumes from memory"
dir=$(ck mktemp -d "$STATE/jobs/array.XXXXXX")
array=$(ck sbatch --parsable --requeue --array=1-2 --open-mode=append -N2 -n4 "${OPTS[@]}" -o "$dir/out.%a" \
    --wrap "srun --mpi=pmix $TRAIN")
[[ $array =~ ^[0-9]+$ ]] || fail "sbatch said: $array"
wait_for "ck squeue -h -j $array -t RUNNING -O 'JobID:0 ,ArrayTaskID:0 ,NodeList:0 ' | grep -c n" '^2$' 60
elements=$(ck squeue -h -j "$array" -O 'JobID:0 ,ArrayTaskID:0 ,NodeList:0 ')
echo "$elements"
# Slurm gives the last element it starts the array's own id: requeue ID or
# update JobId=ID would then act on every element.
victim=$array
task=$(sed -n "s/^$array \([0-9]*\) .*/\1/p" <<<"$elements")
if [ -z "$task" ]; then
    echo "NOTE: no element has the array's own id; failing element 2's node"
    task=2 victim=$(sed -n 's/^\([0-9]*\) 2 .*/\1/p' <<<"$elements")
fi
other_task=$((3 - task))
other=$(sed -n "s/^\([0-9]*\) $other_task .*/\1/p" <<<"$elements")
[[ $victim =~ ^[0-9]+$ && $other =~ ^[0-9]+$ ]] || fail "cannot tell the elements apart: $elements"
mapfile -t vnodes < <(ck scontrol show hostnames "$(field "$victim" NodeList)")
[ "${#vnodes[@]}" -eq 2 ] || fail "element ${array}_$task is not on two nodes: ${vnodes[*]}"
survivor=${vnodes[0]} bad=${vnodes[1]}
wait_for "cat '$dir/out.$task'" '^saved version=16 ' 90
fail_node "$bad"
wait_for "field $victim RestartCnt" '^1$' 30
echo "when ${array}_$task was requeued, element ${array}_$other_task (job $other) was $(field "$other" State)"
wait_for "field $victim State" "$done_regex" 240
wait_for "field $other State" "$done_regex" 60
assert_eq "$(field "$victim" State)" COMPLETED "element ${array}_$task (job $victim) completed"
assert_eq "$(field "$victim" RestartCnt)" 1 "element ${array}_$task was requeued once"
assert_no_match "$(ck scontrol show hostnames "$(field "$victim" NodeList)")" "^$bad\$" \
    "element ${array}_$task ran again without $bad"
assert_match "$(ck scontrol show hostnames "$(field "$victim" NodeList)")" "^$survivor\$" \
    "element ${array}_$task ran again on its survivor $survivor"
assert_eq "$(excluded "$victim")" "$bad" "element ${array}_$task excludes exactly $bad"
check_resumed "$(cat "$dir/out.$task")" 4 "element ${array}_$task"
assert_eq "$(field "$other" State)" COMPLETED "element ${array}_$other_task (job $other) completed"
assert_eq "$(field "$other" RestartCnt)" 0 "element ${array}_$other_task was not requeued"
assert_eq "$(excluded "$other")" "" "element ${array}_$other_task excludes nothing"
out=$(cat "$dir/out.$other_task")
assert_no_match "$out" 'restored version=' "element ${array}_$other_task ran once, from the start"
assert_match "$out" "^final steps=60 digest=$digest$" "element ${array}_$other_task: digest"
log=$(cat "$STATE/log/failover.log")
assert_match "$log" "tierckpt-healthcheck: requeued job $victim \(array element ${array}_$task\): its node $bad failed its health check" \
    "the health check requeued the element by its array name"
assert_match "$log" "tierckpt-epilog-slurmctld: job $victim \(array element ${array}_$task\) requeued without $bad, on $survivor first; released at once" \
    "the element was released without $bad"
assert_no_match "$log" "job $other\b" "nothing was done to element ${array}_$other_task"
heal

# ---------------------------------------------------------------------------
step "a job whose name and comment pretend to be fields: the scripts act on its real ones, nothing runs"
name="evil ExcNodeList=n3 ReqNodeList=n3
JobState=PENDING \$(touch $marker); \`touch $marker\`"
comment=" ExcNodeList=n4 ReqNodeList=n4 JobState=PENDING Restarts=0 NodeList=n4
   ExcNodeList=n3 NodeList=n3 \$(touch $marker);touch $marker; \`touch $marker\`"
out_file=$(ck mktemp "$STATE/jobs/hostile.XXXXXX")
job=$(ck sbatch --parsable --requeue --open-mode=append -N2 -n4 -w n1,n2 "${OPTS[@]}" -o "$out_file" \
    -J "$name" --comment="$comment" --wrap "srun --mpi=pmix $TRAIN")
[[ $job =~ ^[0-9]+$ ]] || fail "sbatch said: $job"
ck scontrol show job "$job" | sed -n '1,2p;/Comment=/,/StdErr=/p'
wait_for "cat '$out_file'" '^saved version=16 ' 90
fail_node n2
wait_for "field $job State" "$done_regex" 240
ck scontrol show job "$job" | grep -E 'JobState|Restarts|NodeList'
assert_eq "$(field "$job" State)" COMPLETED "the job completed"
assert_eq "$(field "$job" RestartCnt)" 1 "the job was requeued once"
assert_eq "$(excluded "$job")" n2 "its excluded nodes: the failed node alone, none named in its text"
assert_eq "$(field "$job" ReqNodes)" n1 "its requested nodes: the survivor alone, none named in its text"
assert_match "$(ck scontrol show hostnames "$(field "$job" NodeList)")" '^n1$' "the second run is on the survivor n1"
assert_no_match "$(ck scontrol show hostnames "$(field "$job" NodeList)")" '^n2$' "the second run left n2 out"
check_resumed "$(cat "$out_file")" 4 "hostile job"
log=$(cat "$STATE/log/failover.log")
assert_match "$log" "tierckpt-healthcheck: requeued job $job: its node n2 failed its health check" \
    "the health check requeued the job"
assert_match "$log" "tierckpt-epilog-slurmctld: job $job requeued without n2, on n1 first; released at once" \
    "the job was released without n2, on n1"
assert_no_match "$log" "job $job: (could not|cannot)" "every step of the release worked"
[ ! -e "$marker" ] || fail "text from the job's name or comment was executed: $marker exists"
heal

# ---------------------------------------------------------------------------
step "a heterogeneous job's second component loses a node: requeued whole by its leader, resumed from memory"
script=$(ck mktemp "$STATE/jobs/het.XXXXXX")
out_file=$(ck mktemp "$STATE/jobs/het-out.XXXXXX")
printf '#!/bin/bash\nsrun --het-group=1 --mpi=pmix %s\n' "$TRAIN" >"$script"
job=$(ck sbatch --parsable --requeue --open-mode=append -o "$out_file" -N1 -n1 -w n1 "${OPTS[@]}" \
    : -N2 -n4 -w n2,n3 "${OPTS[@]}" "$script")
[[ $job =~ ^[0-9]+$ ]] || fail "sbatch said: $job"
components=$(ck squeue -h -j "$job" -O 'JobID:0 ,HetJobID:0 ,HetJobOffset:0 ,NodeList:0 ')
echo "$components"
excluded_before=$(excluded "$job")
second=$(sed -n "s/^\([0-9]*\) $job 1 .*/\1/p" <<<"$components")
[[ $second =~ ^[0-9]+$ ]] || fail "no second component of $job: $components"
wait_for "cat '$out_file'" '^saved version=16 ' 90
node_root n3 ls /dev/shm/tierckpt || true
fail_node n3
wait_for "field $second State" "$done_regex" 240
ck squeue -h -t all -j "$job" -O 'JobID:0 ,HetJobOffset:0 ,State:0 ,RestartCnt:0 ,NodeList:0 ,ReqNodes:0 '
assert_eq "$(field "$job" State) $(field "$second" State)" "COMPLETED COMPLETED" "both components completed"
assert_eq "$(field "$job" RestartCnt) $(field "$second" RestartCnt)" "1 1" "the job was requeued once, whole"
# Slurm itself excludes from each component the nodes the others require
# (-w): n1 from the second; the release keeps that.
assert_eq "$(excluded "$second")" "n[1,3]" "the second component excludes n3 and still n1"
assert_eq "$(excluded "$job")" "$excluded_before" "the first component's exclusions are untouched"
assert_match "$(ck scontrol show hostnames "$(field "$second" NodeList)")" '^n2$' "the second component kept n2"
assert_no_match "$(ck scontrol show hostnames "$(field "$second" NodeList)")" '^n3$' "and left n3 out"
check_resumed "$(cat "$out_file")" 4 "heterogeneous job"
log=$(cat "$STATE/log/failover.log")
assert_match "$log" "tierckpt-healthcheck: requeued job $second \(component $job\+1 of heterogeneous job $job\), as a whole: its node n3 failed its health check" \
    "the health check requeued the whole job through its leader"
assert_match "$log" "tierckpt-epilog-slurmctld: job $second \(component $job\+1 of heterogeneous job $job\) requeued without n3, on n2 first; released at once" \
    "the component was released without n3"
heal
