# shellcheck shell=bash
# The SPANK plugin is installed as an admin would (plugstack.conf, required)
# shellcheck disable=SC2016  # single-quoted scripts run on the nodes
# and runs: srun with the cluster's plugstack.conf is quiet; a plugstack.conf
# with an unknown key makes srun fail with a message naming the key.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

conf=$STATE/etc
step "plugstack.conf lists the installed plugin"
line=$(grep -v '^#' "$conf/plugstack.conf")
echo "$line"
assert_match "$line" '^required /.*/spank_tierckpt\.so' "plugstack.conf entry"
so=$(awk '{print $2}' <<<"$line")
[ -f "$so" ] || fail "plugin $so is not installed"

step "its exported symbols are the plugin's alone"
syms=$(nm -D --defined-only "$so" | awk '{print $3}')
assert_match "$syms" '^slurm_spank_init$' "exported init"
assert_match "$syms" '^plugin_name$' "exported plugin_name"
assert_no_match "$syms" '^_ZN' "exported C++ symbols"

step "srun with the plugin: no plugin error"
out=$(ck srun -N1 true 2>&1)
assert_no_match "$out" 'tierckpt|spank' "srun output"

step "an unknown plugstack key is refused with its name"
bad=$(mktemp -d "$STATE/etc/bad.XXXXXX")
trap 'rm -rf "$bad"' EXIT
sed "s|^PlugStackConfig=.*|PlugStackConfig=$bad/plugstack.conf|" "$conf/slurm.conf" >"$bad/slurm.conf"
sed 's/log=info/log=info sotre_dir=\/dev\/shm/' "$conf/plugstack.conf" >"$bad/plugstack.conf"
chmod -R a+rX "$bad"
set +e
out=$(ck env SLURM_CONF="$bad/slurm.conf" srun -N1 true 2>&1)
rc=$?
set -e
echo "$out"
[ "$rc" -ne 0 ] || fail "srun ran with a broken plugstack.conf"
assert_match "$out" "tierckpt: plugstack.conf: unknown key 'sotre_dir'" "error naming the key"
assert_match "$out" 'known keys: default_mem, default_replicas, failure_domains, flush_seconds, keep_seconds, log, max_mem, node_mtbf, persist_dirs, prefault, store_dir' \
    "error listing the known keys"
assert_match "$out" 'see spank-tierckpt\(8\)' "error pointing to the man page"
