# shellcheck shell=bash
# The installed failover scripts, run as Slurm runs them (as root, with only
# Slurm's variables): a broken failover.conf is reported line by line and
# never makes a script fail; a failing, missing or hanging health check
# drains the node with a reason that names tierckpt and the check; the
# prolog alone exits 1 then (so Slurm requeues the job elsewhere); the
# controller-side script leaves jobs without tierckpt options alone.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

# Where the cluster installed them: its slurm.conf wrapper execs the epilog.
scripts=$(dirname "$(awk '/exec/ {print $NF}' "$STATE/etc/epilog")")
[ -x "$scripts/tierckpt-epilog" ] || fail "no installed tierckpt-epilog in '$scripts'"
conf=$(mktemp "$STATE/etc/failover-test.XXXXXX")
log=$(mktemp "$STATE/log/failover-test.XXXXXX")
eval "$("$CLUSTER" env)"  # scontrol as root, for resuming n4
trap 'rm -f "$conf" "$log"; scontrol update NodeName=n4 State=RESUME >/dev/null 2>&1 || true' EXIT

# Runs one script as slurmd would on n4 (no PATH, Slurm's variables only).
run_script() { # NAME [VAR=VALUE...]
    local name=$1
    shift
    env -i SLURM_CONF="$STATE/etc/slurm.conf" TIERCKPT_FAILOVER_CONF="$conf" SLURMD_NODENAME=n4 \
        SLURM_JOB_ID=999999 "$@" "$scripts/tierckpt-$name"
}

step "a broken failover.conf: every bad line named, the scripts still succeed"
cat >"$conf" <<CONF
health_check = /bin/true
health_check_timeout = soon
requeue_on_health_failure = maybe
no equals sign here
colour = blue
log_file = $log
CONF
rc=0
out=$(run_script epilog 2>&1) || rc=$?
echo "$out"
assert_eq "$rc" 0 "the epilog's exit status"
assert_match "$out" 'failover-test.*:2: health_check_timeout=soon: give seconds' "a bad number is named"
assert_match "$out" ':3: requeue_on_health_failure=maybe: give yes or no' "a bad yes/no is named"
assert_match "$out" ':4: expected key = value; line ignored' "a line without = is named"
assert_match "$out" ":5: unknown key 'colour'" "an unknown key is named"
assert_eq "$(node_state n4)" idle "n4 after a passing health check"

step "a health check that fails: the epilog drains the node with tierckpt's reason and still exits 0"
printf 'health_check = /bin/sh -c "exit 3"\nlog_file = %s\n' "$log" >"$conf"
# Split at blanks, no shell: sh gets the words -c, "exit and 3" as they are.
rc=0
run_script epilog || rc=$?
assert_eq "$rc" 0 "the epilog's exit status"
wait_for "ck sinfo -h -N -n n4 -o '%T|%E'" "^drain.*\|tierckpt: health check 'sh' failed \(status [0-9]+" 10
cat "$log"
scontrol update NodeName=n4 State=RESUME

step "a missing health check program counts as failed; the prolog exits 1 so Slurm requeues the job"
printf 'health_check = /nonexistent/check --all\n' >"$conf"
rc=0
run_script prolog || rc=$?
assert_eq "$rc" 1 "the prolog's exit status"
wait_for "ck sinfo -h -N -n n4 -o '%T|%E'" "^drain.*\|tierckpt: health check 'check' failed \(status 127" 10
scontrol update NodeName=n4 State=RESUME

step "a health check that hangs: timed out, drained"
printf 'health_check = /bin/sleep 30\nhealth_check_timeout = 1\n' >"$conf"
rc=0
run_script epilog || rc=$?
assert_eq "$rc" 0 "the epilog's exit status"
wait_for "ck sinfo -h -N -n n4 -o '%T|%E'" "^drain.*\|tierckpt: health check 'sleep' timed out after 1 s" 10
scontrol update NodeName=n4 State=RESUME

step "no health check configured, or no configuration at all: nothing happens"
: >"$conf"
run_script prolog
run_script healthcheck
rm -f "$conf"
run_script epilog
# (Resumed a moment ago: until slurmd's next ping it may show idle*.)
wait_for "node_state n4" '^idle$' 30

step "the controller-side script ignores a job without tierckpt options"
printf 'log_file = %s\n' "$log" >"$conf"
: >"$log"
run_script epilog-slurmctld SLURM_JOB_NODELIST=n4
assert_eq "$(cat "$log")" "" "nothing logged for a job that is not tierckpt's"
