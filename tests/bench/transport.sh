#!/bin/bash
# The replication protocol's case, in numbers, on the test cluster (root):
# ucx_perftest's get, put, tag and active-message bandwidth between two
# namespace nodes over TCP, and tierckpt's own pull (the one replication
# and restore use) over UCX (both ways: rendezvous active messages, the
# default, and one-sided gets) and libfabric, a restore from a peer, and an
# elastic restore (6 ranks saved, 4 restore), all in the same run. Lines:
#   bench NAME value=X unit=GB/s reference=R ratio=X/R
# The reference for each is the best of these tools' figures in the run
# (ucx_perftest's, and libfabric's fi_pingpong).
# Then the workload bench (workload.sh) with that best figure.
set -euo pipefail
SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
BUILDDIR=${TCK_BUILDDIR:-$SRCDIR}
CLUSTER=$SRCDIR/tests/cluster/cluster
STATE=${TIERCKPT_CLUSTER_DIR:-/var/lib/tierckpt-cluster}
[ "$(id -u)" -eq 0 ] || { echo "transport bench: needs root (the test cluster); skipped"; exit 0; }
# A cluster this bench brings up goes down with it: one left up outlives
# the run (and its daemons, when the machine stops), see HACKING.md.
"$CLUSTER" status >/dev/null 2>&1 || trap '"$CLUSTER" down >/dev/null' EXIT
TCK_BUILDDIR=$BUILDDIR "$CLUSTER" up 4 >/dev/null
in_node() { # NODE CMD... (as root in the node's namespaces)
    local pid; pid=$(cat "$STATE/run/slurmd-$1.pid"); shift
    nsenter -t "$pid" -m -u -n -i env UCX_TLS=tcp "$@"
}
perftest() { # TEST: MB/s from ucx_perftest between n1 (server) and n2
    in_node n1 timeout 60 ucx_perftest -p 13337 >/dev/null 2>&1 &
    local srv=$! out
    sleep 1
    out=$(in_node n2 timeout 60 ucx_perftest -p 13337 -t "$1" -s 4194304 -n 50 n1 2>&1 || true)
    wait "$srv" || true
    # The "Final:" line: ... bandwidth (MB/s) in the 6th column from the end.
    awk '/Final:/ {print $(NF-3)}' <<<"$out"
}
# libfabric's own tool between the same nodes: 4 MiB messages over its tcp
# provider's RDM endpoint (ping-pong, one in flight); prints MB/s.
fi_pingpong_mbs() {
    local ip srv out
    ip=$(in_node n1 hostname -I | awk '{print $1}')
    in_node n1 timeout 60 fi_pingpong -p tcp -e rdm -S 4194304 -I 50 -B 47593 >/dev/null 2>&1 &
    srv=$!
    for _ in 1 2 3 4 5; do  # the server may take a moment to listen
        sleep 1
        out=$(in_node n2 timeout 60 fi_pingpong -p tcp -e rdm -S 4194304 -I 50 -P 47593 "$ip" 2>&1 || true)
        grep -q 'Connection refused' <<<"$out" || break
    done
    wait "$srv" || true
    awk '$1 == "4m" {print $6}' <<<"$out"
}
mbs() { awk -v x="$1" 'BEGIN { printf "%.3f", x / 1000 }'; }
get=$(mbs "$(perftest ucp_get)")
put=$(mbs "$(perftest ucp_put_bw)")
tag=$(mbs "$(perftest tag_bw)")
am=$(mbs "$(perftest ucp_am_bw)")
fip=$(mbs "$(fi_pingpong_mbs)")
best=$(printf '%s\n' "$get" "$put" "$tag" "$am" "$fip" | sort -g | tail -n 1)
report() { awk -v n="$1" -v v="$2" -v r="$best" 'BEGIN { printf "bench %s value=%.3f unit=GB/s reference=%.3f ratio=%.3f\n", n, v, r, v / r }'; }
report ucx_perftest_ucp_get "$get"
report ucx_perftest_ucp_put_bw "$put"
report ucx_perftest_tag_bw "$tag"
report ucx_perftest_ucp_am_bw "$am"
report libfabric_fi_pingpong "$fip"
# The real program, not libtool's wrapper: it finds libtierckpt through the
# cluster's LD_LIBRARY_PATH (the installed build).
bin=$BUILDDIR/tests/bench/.libs/bench_transport
[ -x "$bin" ] || bin=$BUILDDIR/tests/bench/bench_transport
cp "$bin" "$STATE/jobs/bench_transport" && chmod a+rx "$STATE/jobs/bench_transport"
for k in ucx ucx_get ofi; do
    line=$("$CLUSTER" exec env TIERCKPT_UCX_PULL="$([ "$k" = ucx_get ] && echo get || echo am)" \
        srun --mpi=pmix -N2 -n2 -w n1,n2 "$STATE/jobs/bench_transport" "${k%_get}" | grep '^transport=')
    grep -q 'data=ok' <<<"$line" || echo "bench replication_read_$k: wrong data: $line"
    report "replication_read_$k" "$(sed -n 's/.* gbps=\([0-9.]*\).*/\1/p' <<<"$line")"
    report "replication_read_${k}_first" "$(sed -n 's/.* first_gbps=\([0-9.]*\).*/\1/p' <<<"$line")"
done
# Restore from a peer: a step on n1 and n2 saves (copies of n2's shards on
# n1); the next step runs n2's ranks on n3, which has nothing: they fetch
# their shards from n1's memory. The runtime reports each rank's restore
# (TIERCKPT_RUN_REPORT=1); the figure is the moved bytes over the slowest
# moved rank's restore time (inventory, transfer and checksum included).
# The allocation names its nodes: one still completing the previous step
# would otherwise be left out, and the first step's -w n1,n2 refused.
# shellcheck disable=SC2016  # runs in the allocation
out=$("$CLUSTER" exec salloc -N3 -n6 -w n1,n2,n3 --ckpt-mem=1G --ckpt-replicas=1 bash -c '
    train="tierckpt-synth-train --state-mib 64 --ckpt-every 4 --steps 4"
    srun --mpi=pmix -N2 -n4 -w n1,n2 $train >/dev/null
    TIERCKPT_RUN_REPORT=1 srun --mpi=pmix -N2 -n4 -w n1,n3 $train --steps 8 2>&1' 2>&1)
peer=$(awk '/tierckpt-report restore .*source=peer/ {
        for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        bytes += v["bytes"]; if (v["ms"] > ms) ms = v["ms"]
    } END { if (ms > 0) printf "%.3f", bytes / ms / 1e6 }' <<<"$out")
if [ -n "$peer" ]; then
    report restore_from_peer "$peer"
    # Where the slowest moved rank's restore went (the run report's parts).
    awk '/tierckpt-report restore .*source=peer/ {
            for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            if (v["ms"] > ms) { ms = v["ms"]; line = sprintf("total=%s inventory=%s plan=%s move=%s verify=%s copy=%s agree=%s via=%s",
                v["ms"], v["inventory_ms"], v["plan_ms"], v["move_ms"], v["verify_ms"], v["copy_ms"], v["agree_ms"], v["via"]) }
            delete v
        } END { if (line != "") print "note restore_from_peer: the slowest rank, in ms: " line }' <<<"$out"
else
    echo "bench restore_from_peer: no peer restore in the output:"
    echo "$out" | tail -n 20
fi
# Restore on another number of ranks (elastic): 6 ranks on n1-n3 save one
# global array of 384 MiB (64 MiB a rank, one replica); then 4 ranks on n1
# and n3 restore it, 96 MiB a rank, as after losing n2 (a step reads only
# the stores of its own nodes: n2's shards come from their copies on n3).
# The figure: the bytes read from peers over the slowest rank's restore
# time (whole saved shards move, so a rank reads more than its slices).
# shellcheck disable=SC2016  # runs in the allocation
out=$("$CLUSTER" exec salloc -N3 -n6 -w n1,n2,n3 --ckpt-mem=1G --ckpt-replicas=1 bash -c '
    train="tierckpt-synth-train --layout sliced --global-mib 384 --ckpt-every 4 --steps 4"
    srun --mpi=pmix -N3 -n6 $train >/dev/null
    TIERCKPT_RUN_REPORT=1 srun --mpi=pmix -N2 -n4 -w n1,n3 $train --steps 8 2>&1' 2>&1) || true
elastic=$(awk '/tierckpt-report restore .*saved_world=6/ {
        for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        peer += v["peer_bytes"]; local += v["local_bytes"]; n++; if (v["ms"] > ms) ms = v["ms"]
    } END { if (n == 4 && ms > 0) printf "%.3f %d %d %.1f", peer / ms / 1e6, peer, local, ms }' <<<"$out")
if [ -n "$elastic" ]; then
    read -r gbps peer_b local_b slow_ms <<<"$elastic"
    report restore_elastic_6to4 "$gbps"
    echo "note restore_elastic_6to4: 4 ranks read $peer_b bytes from peers and $local_b from their own node; the slowest took $slow_ms ms"
else
    echo "bench restore_elastic_6to4: no elastic restore of 4 ranks in the output:"
    echo "$out" | tail -n 20
fi
# The workload of a real job (6 ranks, 256 MiB each): what training loses per
# save and the time to commit, against references of the same run.
BEST_GBPS=$best TCK_BUILDDIR=$BUILDDIR bash "$SRCDIR/tests/bench/workload.sh"
