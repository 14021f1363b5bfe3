# shellcheck shell=bash
# Failure domains: with the admin's failure_domains=left:n[1-2];right:n[3-4]
# in plugstack.conf, each task learns its node's domain
# (TIERCKPT_FAILURE_DOMAIN) and copies leave the domain: n1's and n2's
# shards are copied to n3, n3's and n4's to n1 (without domains they would
# go to the next node, n2, n3, n4 and n1). The same with
# failure_domains=topology, where the domains are the leaf switches of
# Slurm's topology.conf beside slurm.conf (or the file topology_conf=
# names), read by slurmstepd at each step. slurmd reads plugstack.conf at
# start: the test restarts the cluster with each setting and without one.
# shellcheck disable=SC2016  # commands that run on the nodes
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

restart_cluster() { # [PLUGSTACK ARGS]
    "$CLUSTER" down >/dev/null
    TCK_PLUGSTACK_ARGS=${1:-} "$CLUSTER" up 4 >/dev/null
}
trap 'restart_cluster' EXIT

check_domains() { # EXPECTED ("NODE DOMAIN" lines, n1 to n4)
    step "every task knows its node's failure domain"
    local out
    # srun carries the submitting shell's SLURMD_NODENAME (a batch host's,
    # or anything the user sets) to every node: the plugin must not use it.
    out=$(ck env SLURMD_NODENAME=n4 srun -N4 -n4 --ckpt-mem=256M bash -c 'echo "$(hostname) $TIERCKPT_FAILURE_DOMAIN"' |
        sort)
    echo "$out"
    assert_eq "$out" "$1" "domains by node"
}

check_copies() { # the domains of n1-n2 and n3-n4 differ
    step "copies go to the first node of another domain"
    local out pair r holder
    out=$(ck salloc -N4 -n8 --ckpt-mem=256M --ckpt-replicas=1 bash -c '
        srun --mpi=pmix tierckpt-synth-train --state-mib 4 --ckpt-every 4 --steps 8 --wait-commit | grep -v "^rank"
        srun -N4 -n4 bash -c "tierckpt ls | sed \"s/^/\$(hostname) /\""' 2>&1)
    echo "$out"
    for pair in "0 n3" "1 n3" "2 n3" "3 n3" "4 n1" "5 n1" "6 n1" "7 n1"; do
        read -r r holder <<<"$pair"
        assert_match "$out" "^$holder /dev/shm/tierckpt/job\.[0-9]+/store +[0-9]+ +$r +8 +8 +4\.0 MiB replica +complete" \
            "rank $r's copy of version 8 on $holder"
    done
    assert_no_match "$out" '^n[24] .* replica ' "n2 and n4 keep no copies"
    assert_match "$out" '^final steps=8 ' "the job finished"
}

step_refused() { # EXTENDED-REGEX WHAT: a step on n1 must fail with a line matching
    local rc=0 out
    out=$(ck srun -N1 -w n1 --ckpt-mem=64M true 2>&1) || rc=$?
    echo "$out"
    [ "$rc" -ne 0 ] || fail "srun ran: $2"
    assert_match "$out" "$1" "$2"
}

restart_cluster 'failure_domains=left:n[1-2];right:n[3-4]'
check_domains "n1 left
n2 left
n3 right
n4 right"
check_copies

step "failure_domains=topology: the leaf switches of topology.conf beside slurm.conf"
restart_cluster 'failure_domains=topology'
topo=$STATE/etc/topology.conf
cat >"$topo" <<'CONF'
# Written by t-placement-domains.sh: two racks under one top switch.
SwitchName=s1 Nodes=n[1-2]
switchname=s2 \
    nodes=n[3-4]   # keys are case-insensitive, "\" continues a line
SwitchName=top Switches=s[1-2]
CONF
check_domains "n1 s1
n2 s1
n3 s2
n4 s2"
check_copies

step "a malformed topology.conf stops the step with the file, the line and the fix"
printf 'SwitchName=s1 Nodes=n[1-2]\nSwitchName=s2 Nodes=n[3-4\n' >"$topo"
step_refused "failure_domains=topology: $topo line 2: Nodes=: host list 'n\[3-4': unbalanced \[; ask the admin" \
    "the malformed line"
printf 'SwitchName=s1 Nodes=n[1-2]\nSwitchName=s2 Nodes=n[1-4]\n' >"$topo"
step_refused "$topo line 2: node n1 is in s1 \(line 1\) and in s2: a node belongs to one leaf switch or block" \
    "a node in two leaf switches"
rm -f "$topo"
step_refused "failure_domains=topology: $topo does not exist: write it \(topology.conf\(5\)\), or name the file with topology_conf=" \
    "the missing file"

step "topology_conf= names another file: blocks of topology/block"
restart_cluster "failure_domains=topology topology_conf=$STATE/fabric.conf"
printf 'BlockName=b1 Nodes=n[1,3]\nBlockName=b2 Nodes=n[2,4]\nBlockSizes=2\n' >"$STATE/fabric.conf"
check_domains "n1 b1
n2 b2
n3 b1
n4 b2"

step "a malformed failure_domains stops srun with the reason"
"$CLUSTER" down >/dev/null
TCK_PLUGSTACK_ARGS='failure_domains=left:n[1-2' "$CLUSTER" up 4 >/dev/null 2>&1 || true
step_refused "failure_domains: domain left: host list 'n\[1-2': unbalanced \[" "the message"
