# shellcheck shell=bash
# Open MPI launched by srun with PMIx runs across three namespace nodes, as
# shellcheck disable=SC2016  # single-quoted scripts run on the nodes
# the unprivileged test user: each rank reports a distinct node of the
# allocation (two ranks per node, block distribution) and the allreduce of
# the ranks is right.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

step "srun --mpi=pmix -N3 -n6 tierckpt-mpi-probe"
out=$(ck srun --mpi=pmix -N3 -n6 tierckpt-mpi-probe)
echo "$out"

step "each rank ran once, on one of three nodes, two per node, in block order"
for r in 0 1 2 3 4 5; do
    n=$(grep -c "^rank=$r size=6 node=n[0-9]$" <<<"$out" || true)
    assert_eq "$n" 1 "lines for rank $r"
done
nodes=$(sed -n 's/^rank=\([0-9]*\) size=6 node=\(n[0-9]\)$/\1 \2/p' <<<"$out" | sort -n)
distinct=$(awk '{print $2}' <<<"$nodes" | sort -u | wc -l)
assert_eq "$distinct" 3 "distinct nodes"
for first in 0 2 4; do
    second=$((first + 1))
    a=$(awk -v r="$first" '$1 == r {print $2}' <<<"$nodes")
    b=$(awk -v r="$second" '$1 == r {print $2}' <<<"$nodes")
    assert_eq "$b" "$a" "node of rank $second (block distribution puts it beside rank $first)"
done

step "the collectives agree"
assert_match "$out" '^sum=15 expected=15 nodes=3$' "allreduce and allgather result"

step "tasks run as the test user, in their node's own network namespace"
ids=$(ck srun -N3 -n3 sh -c 'echo "$(id -un) $(hostname) $(ip -4 -o addr show eth0 | awk "{print \$4}")"' | sort)
echo "$ids"
while read -r user host addr; do
    assert_eq "$user" ckuser "task user on $host"
    assert_eq "$addr" "10.213.0.$((10 + ${host#n}))/24" "address of $host"
done <<<"$ids"

step "a batch job runs its script and its steps"
jobdir=$(ck mktemp -d "$STATE/jobs/sbatch.XXXXXX")
ck sh -c "cat > '$jobdir/job.sh'" <<'JOB'
#!/bin/bash
#SBATCH -N2 -n2
srun hostname
JOB
ck sbatch --wait --output="$jobdir/out.txt" "$jobdir/job.sh" >/dev/null
hosts=$(sort -u "$jobdir/out.txt")
echo "$hosts"
assert_eq "$(wc -l <<<"$hosts")" 2 "distinct hosts in the batch job's output"
assert_eq "$(stat -c %U "$jobdir/out.txt")" ckuser "owner of the job's output file"
