# shellcheck shell=bash
# shellcheck disable=SC2016  # single-quoted scripts run on the nodes
# The store directory cannot be taken from tierckpt: slurmd makes it when it
# starts (before any job), and where a user still got the name first (here:
# root removed it, as a reboot without the tmpfiles.d line would), the next
# step moves the user's planted symlink aside, writes nothing through it,
# and makes the directory again.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

step "a fresh n4: slurmd made the store directory at start, root's"
"$CLUSTER" kill n4
"$CLUSTER" revive n4
out=$(node_root n4 stat -c '%U %a' /dev/shm/tierckpt)
assert_eq "$out" "root 755" "store directory after slurmd started"
set +e
out=$(on_node n4 'ln -s /tmp /dev/shm/tierckpt/x 2>&1; ln -s /tmp /dev/shm/tierckpt 2>&1; echo rc=$?')
set -e
echo "$out"
assert_match "$out" "rc=1" "ckuser cannot take the name"

step "root removes it; ckuser plants /dev/shm/tierckpt -> a directory of theirs"
bait=$(ck mktemp -d "$STATE/jobs/bait.XXXXXX")
node_root n4 rm -r /dev/shm/tierckpt
on_node n4 "ln -s '$bait' /dev/shm/tierckpt && ls -l /dev/shm"

step "the next job on n4 moves the symlink aside and gets its store"
out=$(ck srun -N1 -w n4 --ckpt-mem=16M sh -c 'stat -c "%U %a" "$(dirname "$(dirname "$TIERCKPT_STORE")")"')
assert_eq "$out" "root 755" "store directory made again by the plugin"
assert_eq "$(ls -A "$bait")" "" "files created through the symlink"
aside=$(node_root n4 sh -c 'ls -A /dev/shm')
echo "$aside"
assert_match "$aside" "^\.tierckpt\.squatted\.$(id -u ckuser)\.[0-9]+$" "the planted link, moved aside"
assert_match "$(grep -h 'was made by uid' "$STATE"/log/slurmd-n4.log)" \
    "store_dir /dev/shm/tierckpt was made by uid $(id -u ckuser), not root; moved it aside" "slurmd log"
