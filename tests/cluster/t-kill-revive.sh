# shellcheck shell=bash
# "cluster kill" is a node dying: every process in its namespace is gone and
# shellcheck disable=SC2016  # single-quoted scripts run on the nodes
# its memory (/dev/shm) with them; "cluster revive" brings it back empty and
# in service; the other nodes keep their memory throughout.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

step "a marker in /dev/shm on n2 and n3"
ck srun -N2 -w n2,n3 sh -c 'echo "$(hostname)" > /dev/shm/tck-marker'
out=$(ck srun -N2 -w n2,n3 sh -c 'cat /dev/shm/tck-marker' | sort)
assert_eq "$out" "n2
n3" "markers before the kill"

step "kill n2"
"$CLUSTER" kill n2
pids=$(ip netns pids tck-n2)
assert_eq "$pids" "" "processes left in n2's namespace"

step "revive n2: empty, idle, usable"
"$CLUSTER" revive n2
assert_eq "$(node_state n2)" idle "state of n2"
# Empty but for the store directory slurmd makes when it starts, which
# holds no store.
out=$(ck srun -N1 -w n2 sh -c 'ls -A /dev/shm; ls /dev/shm/tierckpt; hostname')
assert_eq "$out" "tierckpt
n2" "n2's /dev/shm after revive (only the store directory, no store) and hostname"

step "n3 kept its memory"
out=$(ck srun -N1 -w n3 cat /dev/shm/tck-marker)
assert_eq "$out" n3 "n3's marker"
ck srun -N1 -w n3 rm -f /dev/shm/tck-marker
