# shellcheck shell=bash
# Failure domains: with the admin's failure_domains=left:n[1-2];right:n[3-4]
# in plugstack.conf, each task learns its node's domain
# (TIERCKPT_FAILURE_DOMAIN) and copies leave the domain: n1's and n2's
# shards are copied to n3, n3's and n4's to n1 (without domains they would
# go to the next node, n2, n3, n4 and n1). slurmd reads plugstack.conf at
# start: the test restarts the cluster with the setting and without it.
# shellcheck disable=SC2016  # commands that run on the nodes
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

restart_cluster() { # [PLUGSTACK ARGS]
    "$CLUSTER" down >/dev/null
    TCK_PLUGSTACK_ARGS=${1:-} "$CLUSTER" up 4 >/dev/null
}
trap 'restart_cluster' EXIT
restart_cluster 'failure_domains=left:n[1-2];right:n[3-4]'

step "every task knows its node's failure domain"
out=$(ck srun -N4 -n4 --ckpt-mem=256M bash -c 'echo "$(hostname) $TIERCKPT_FAILURE_DOMAIN"' | sort)
echo "$out"
assert_eq "$out" "n1 left
n2 left
n3 right
n4 right" "domains by node"

step "copies go to the first node of another domain"
out=$(ck salloc -N4 -n8 --ckpt-mem=256M --ckpt-replicas=1 bash -c '
    srun --mpi=pmix tierckpt-synth-train --state-mib 4 --ckpt-every 4 --steps 8 | grep -v "^rank"
    srun -N4 -n4 bash -c "tierckpt ls | sed \"s/^/\$(hostname) /\""' 2>&1)
echo "$out"
for pair in "0 n3" "1 n3" "2 n3" "3 n3" "4 n1" "5 n1" "6 n1" "7 n1"; do
    read -r r holder <<<"$pair"
    assert_match "$out" "^$holder /dev/shm/tierckpt/job\.[0-9]+/store +[0-9]+ +$r +8 +8 +4\.0 MiB replica +complete" \
        "rank $r's copy of version 8 on $holder"
done
assert_no_match "$out" '^n[24] .* replica ' "n2 and n4 keep no copies"
assert_match "$out" '^final steps=8 ' "the job finished"

step "a malformed failure_domains stops srun with the reason"
"$CLUSTER" down >/dev/null
TCK_PLUGSTACK_ARGS='failure_domains=left:n[1-2' "$CLUSTER" up 4 >/dev/null 2>&1 || true
rc=0
out=$(ck srun -N1 --ckpt-mem=64M true 2>&1) || rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "srun ran with a malformed failure_domains"
assert_match "$out" "failure_domains: domain left: host list 'n\[1-2': unbalanced \[" "the message"
