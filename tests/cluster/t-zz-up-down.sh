# shellcheck shell=bash
# Runs last: "cluster down" removes everything "up" created (daemons,
# shellcheck disable=SC2016  # single-quoted scripts run on the nodes
# namespaces, links, bridge, /etc/hosts lines, the test user if it made
# it, its state), and the cluster comes up and goes down cleanly again.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

check_clean() { # WHAT
    local what=$1
    [ ! -e "$STATE" ] || fail "$what: $STATE still exists"
    if ip netns list | grep -q '^tck-n'; then fail "$what: namespaces left: $(ip netns list)"; fi
    if ip link show tckbr0 >/dev/null 2>&1; then fail "$what: bridge tckbr0 left"; fi
    if ip -o link | grep -q 'tckv[0-9]'; then fail "$what: veth links left"; fi
    if grep -q 'tierckpt-cluster' /etc/hosts; then fail "$what: /etc/hosts lines left"; fi
    for p in $ctld_pid $slurmd_pids; do
        if kill -0 "$p" 2>/dev/null; then fail "$what: daemon pid $p still runs"; fi
    done
    if [ "$made_user" = yes ] && id ckuser >/dev/null 2>&1; then fail "$what: user ckuser left"; fi
    if [ -n "$munged_pid" ] && kill -0 "$munged_pid" 2>/dev/null; then fail "$what: munged $munged_pid still runs"; fi
    return 0
}

snapshot() {
    ctld_pid=$(cat "$STATE/run/slurmctld.pid")
    slurmd_pids=$(cat "$STATE"/run/slurmd-n*.pid)
    made_user=no
    grep -qx 'user ckuser' "$STATE/ledger" && made_user=yes
    munged_pid=$(sed -n 's/^munged //p' "$STATE/ledger")
    hosts_before=$(grep -v 'tierckpt-cluster' /etc/hosts)
}

for round in 1 2; do
    step "round $round: down"
    snapshot
    "$CLUSTER" down
    check_clean "after down (round $round)"
    assert_eq "$(cat /etc/hosts)" "$hosts_before" "/etc/hosts after down"

    step "round $round: up again"
    "$CLUSTER" up 4
    out=$(ck srun --mpi=pmix -N2 -n2 tierckpt-mpi-probe)
    assert_match "$out" '^sum=1 expected=1 nodes=2$' "MPI after up (round $round)"
    step "round $round: up is idempotent"
    before=$(cat "$STATE/run/slurmctld.pid" "$STATE"/run/slurmd-n*.pid)
    "$CLUSTER" up 4
    assert_eq "$(cat "$STATE/run/slurmctld.pid" "$STATE"/run/slurmd-n*.pid)" "$before" "daemon pids after a second up"
done

step "final down"
snapshot
"$CLUSTER" down
check_clean "after the final down"
