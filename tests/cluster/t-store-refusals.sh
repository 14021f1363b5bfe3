# shellcheck shell=bash
# shellcheck disable=SC2016  # single-quoted scripts run on the nodes
# Bad --ckpt-* values and requests over the admin's cap fail srun non-zero
# with a message naming the option, the value and what is accepted, and
# create nothing; the cluster runs the next job normally.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

refused() { # EXPECTED-REGEX SRUN-ARGS...
    local expect=$1 out rc
    shift
    set +e
    out=$(ck srun -N2 "$@" true 2>&1)
    rc=$?
    set -e
    echo "srun $* -> exit $rc"
    printf '    %s\n' "$out"
    [ "$rc" -ne 0 ] || fail "srun $* succeeded"
    assert_match "$out" "$expect" "message for srun $*"
}

step "malformed values fail at once, naming option, value and form"
for v in abc -5G 0 1e99 99999999T 4X 150%; do
    refused "tierckpt: --ckpt-mem: invalid size '$v'.*expected a number with an optional K, M, G or T suffix" \
        "--ckpt-mem=$v"
done
refused "tierckpt: --ckpt-replicas=-1: not a whole number; expected a whole number from 0 to 16" \
    --ckpt-mem=8M --ckpt-replicas=-1
refused "tierckpt: --ckpt-replicas=17: out of range" --ckpt-mem=8M --ckpt-replicas=17
refused "tierckpt: --ckpt-persist=$STATE/jobs/../etc: contains a '.' or '..' component" \
    --ckpt-mem=8M --ckpt-persist="$STATE/jobs/../etc"
refused "tierckpt: --ckpt-persist=relative: not an absolute path" --ckpt-mem=8M --ckpt-persist=relative
refused "tierckpt: --ckpt-persist-every=0: out of range" --ckpt-mem=8M --ckpt-persist=/x --ckpt-persist-every=0
refused "tierckpt: --ckpt-persist-every=5 needs --ckpt-persist=DIR" --ckpt-mem=8M --ckpt-persist-every=5
refused "tierckpt: --ckpt-replicas is given without --ckpt-mem" --ckpt-replicas=2

step "over the cap (max_mem=50%): refused in srun when both are percentages"
refused "above the admin's cap max_mem \(50% of the node's memory\)" --ckpt-mem=60%

step "over the cap on the nodes: the tasks do not start, the message names the cap"
name=tck-refused-$$
refused "slurmstepd-n[0-9]: error: tierckpt: --ckpt-mem asks for 100 GiB on this node, above the admin's cap max_mem \(50% of the node's memory = [0-9.]+ GiB here\)" \
    -w n1,n2 --job-name="$name" --ckpt-mem=100G
job=$(ck squeue -h -t all -n "$name" -o %i)
[ -n "$job" ] || fail "cannot find the refused job $name"
for n in n1 n2; do
    left=$(on_node "$n" 'ls /dev/shm/tierckpt 2>/dev/null; true')
    assert_no_match "$left" "^job\.$job\$" "a store of the refused job $job on $n"
done

step "the cluster runs the next job normally"
out=$(ck srun -N2 -w n1,n2 --ckpt-mem=8M sh -c 'echo "ok $TIERCKPT_STORE_BYTES"')
assert_eq "$out" "ok 8388608
ok 8388608" "next job"

step "with persist_dirs set by the admin, a directory outside the list is refused, naming the list"
alt=$(mktemp -d "$STATE/etc/persist.XXXXXX")
trap 'rm -rf "$alt"' EXIT
sed "s|^PlugStackConfig=.*|PlugStackConfig=$alt/plugstack.conf|" "$STATE/etc/slurm.conf" >"$alt/slurm.conf"
sed "s|\$| persist_dirs=$STATE/jobs/ckpt:/lustre|" "$STATE/etc/plugstack.conf" | grep -v '^#' >"$alt/plugstack.conf"
chmod -R a+rX "$alt"
set +e
out=$(ck env SLURM_CONF="$alt/slurm.conf" srun -N1 --ckpt-mem=8M --ckpt-persist=/home/ckuser/ckpt true 2>&1)
rc=$?
set -e
echo "$out"
[ "$rc" -ne 0 ] || fail "srun accepted a persistent directory outside persist_dirs"
assert_match "$out" "tierckpt: --ckpt-persist=/home/ckuser/ckpt: not below a directory the admin allows for checkpoints; use a directory under: $STATE/jobs/ckpt, /lustre" \
    "refusal naming the allowed directories"
out=$(ck env SLURM_CONF="$alt/slurm.conf" srun -N1 --ckpt-mem=8M --ckpt-persist="$STATE/jobs/ckpt/run1" sh -c 'echo "$TIERCKPT_PERSIST_DIR"')
assert_eq "$out" "$STATE/jobs/ckpt/run1" "a directory below an allowed one"
