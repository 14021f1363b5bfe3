#!/bin/bash
# A workload shaped like a real job, on the test cluster (root): 3 nodes, 2
# ranks each, 256 MiB of state per rank, one replica, a save every 5 steps of
# 200 ms (the synthetic trainer), 30 steps. Called by transport.sh with the
# cluster up and BEST_GBPS (the best tool figure of the run). Lines:
#   bench ckpt_blocking_6x256MiB value=MEDIAN worst=W unit=ms reference=R ratio=MEDIAN/R worst_ratio=W/R
#       what training loses per save (the most any rank spent in stall +
#       wait, every save, the first included), against a memcpy of 256 MiB
#       by 6 processes at once on the same machine (bench_refs memcpy)
#   bench ckpt_call_6x256MiB value=MEDIAN worst=W ... (the same, timing the
#       save call itself: the longest any rank spent in it)
#   bench commit_6x256MiB value=MS unit=ms reference=R ratio=R/MS
#       the last save's time from save to commit, against MPI point-to-point
#       moving the same bytes between the same node pairs (bench_refs ring)
#   bench commit_6x256MiB_vs_tool value=MS unit=ms reference=R ratio=R/MS
#       the same against the bytes one node sends at BEST_GBPS
#   bench commit_6x256MiB_vs_cpu value=MS unit=ms reference=R ratio=R/MS
#       the same against what this machine's cores must do for a commit
#       when the transfer costs CPU (TCP, not RDMA): the MPI ring plus two
#       checksums of every shard (the owner's, the partner's verification),
#       each measured with all ranks at once (bench_refs ring, crc)
# Each ratio's goal (issue "Fast under a real workload"): blocking within 2x
# of the memcpy, commit at least 0.8 of the references.
set -euo pipefail
SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
BUILDDIR=${TCK_BUILDDIR:-$SRCDIR}
CLUSTER=$SRCDIR/tests/cluster/cluster
STATE=${TIERCKPT_CLUSTER_DIR:-/var/lib/tierckpt-cluster}
: "${BEST_GBPS:?the best tool figure of the run, in GB/s (transport.sh passes it)}"
MIB=256
bin=$BUILDDIR/tests/bench/.libs/bench_refs
[ -x "$bin" ] || bin=$BUILDDIR/tests/bench/bench_refs
cp "$bin" "$STATE/jobs/bench_refs" && chmod a+rx "$STATE/jobs/bench_refs"
refs() { # MODE: the figure bench_refs prints
    "$CLUSTER" exec srun --mpi=pmix -N3 -n6 -w n1,n2,n3 "$STATE/jobs/bench_refs" "$1" "$MIB" |
        sed -n "s/^$1_ms=\([0-9.]*\) .*/\1/p"
}
memcpy_ms=$(refs memcpy)
crc_ms=$(refs crc)
ring_ms=$(refs ring)
out=$("$CLUSTER" exec srun --mpi=pmix -N3 -n6 -w n1,n2,n3 --ckpt-mem=3G --ckpt-replicas=1 \
    tierckpt-synth-train --state-mib "$MIB" --steps 30 --ckpt-every 5 --step-ms 200 2>&1) || {
    echo "bench ckpt_blocking_6x${MIB}MiB: the workload failed:"
    tail -n 20 <<<"$out"
    exit 0
}
blocked=$(sed -n 's/^saved version=.* blocked_ms=\([0-9.]*\) .*/\1/p' <<<"$out")
calls=$(sed -n 's/^saved version=.* call_ms=\([0-9.]*\) .*/\1/p' <<<"$out")
commit_ms=$(sed -n 's/^committed version=30 commit_ms=\([0-9.]*\) .*/\1/p' <<<"$out")
echo "note workload: blocked per save (ms): $(tr '\n' ' ' <<<"$blocked"); references (ms): memcpy $memcpy_ms, crc32c $crc_ms, MPI ring $ring_ms"
sort -g <<<"$blocked" | awk -v r="$memcpy_ms" -v n="ckpt_blocking_6x${MIB}MiB" '{ v[NR] = $1 } END {
    k = NR; m = (k % 2) ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
    printf "bench %s value=%.1f worst=%.1f saves=%d unit=ms reference=%.1f ratio=%.3f worst_ratio=%.3f\n", n, m, v[k], k, r, m / r, v[k] / r
}'
# The save call itself, as training sees it (stall, wait and the save's
# own collectives), against the same memcpy.
sort -g <<<"$calls" | awk -v r="$memcpy_ms" -v n="ckpt_call_6x${MIB}MiB" '{ v[NR] = $1 } END {
    k = NR; if (k == 0) { print "bench " n ": no call_ms in the output"; exit }
    m = (k % 2) ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
    printf "bench %s value=%.1f worst=%.1f saves=%d unit=ms reference=%.1f ratio=%.3f worst_ratio=%.3f\n", n, m, v[k], k, r, m / r, v[k] / r
}'
# What one node sends per commit: its ranks' shards, once per replica.
tool_ms=$(awk -v g="$BEST_GBPS" -v mib="$MIB" 'BEGIN { printf "%.1f", 2 * mib * 1048576 / (g * 1e6) }')
awk -v c="$commit_ms" -v r="$ring_ms" -v t="$tool_ms" -v h="$crc_ms" -v n="commit_6x${MIB}MiB" 'BEGIN {
    printf "bench %s value=%.1f unit=ms reference=%.1f ratio=%.3f\n", n, c, r, r / c
    printf "bench %s_vs_tool value=%.1f unit=ms reference=%.1f ratio=%.3f\n", n, c, t, t / c
    printf "bench %s_vs_cpu value=%.1f unit=ms reference=%.1f ratio=%.3f\n", n, c, r + 2 * h, (r + 2 * h) / c
}'
