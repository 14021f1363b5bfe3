# shellcheck shell=bash
# shellcheck disable=SC2016  # single-quoted scripts run on the nodes
# A user who plants a symlink where the store directory would go (the
# world-writable /dev/shm of a fresh node) gets nothing: the plugin refuses
# it with a clear error and writes nothing through it.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

step "a fresh n4: empty /dev/shm"
"$CLUSTER" kill n4
"$CLUSTER" revive n4
bait=$(ck mktemp -d "$STATE/jobs/bait.XXXXXX")

step "ckuser plants /dev/shm/tierckpt -> $bait on n4"
on_node n4 "ln -s '$bait' /dev/shm/tierckpt && ls -l /dev/shm"

step "a job asking for a store on n4 is refused"
set +e
out=$(ck srun -N1 -w n4 --ckpt-mem=16M true 2>&1)
rc=$?
set -e
echo "$out"
[ "$rc" -ne 0 ] || fail "srun succeeded on a planted symlink"
assert_match "$out" "store_dir /dev/shm/tierckpt is a symlink or not a directory" "refusal"
assert_eq "$(ls -A "$bait")" "" "files created through the symlink"

step "once the symlink is gone, n4 works"
on_node n4 "rm /dev/shm/tierckpt"
out=$(ck srun -N1 -w n4 --ckpt-mem=16M sh -c 'stat -c "%U %a" "$(dirname "$(dirname "$TIERCKPT_STORE")")"')
assert_eq "$out" "root 755" "store directory made by the plugin"
