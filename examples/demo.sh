#!/bin/bash
# make demo: the main job of tierckpt on a local multi-node Slurm cluster.
#
# A real 4-node Slurm cluster (one slurmd per network namespace), Open MPI
# launched by srun with PMIx, the tierckpt SPANK plugin giving the job a
# node store on every node, a training job that checkpoints into them with
# a copy on the next node, a node killed mid-job, and tierckpt run
# relaunching the step on the survivors plus the spare, which resume from
# the surviving copies, bit-exact.
#
# TIERCKPT_DEMO_KEEP=1 leaves the cluster up afterwards (take it down with
# tests/cluster/cluster down).
# shellcheck disable=SC2016  # single-quoted scripts run on the nodes
set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
BUILDDIR=${TCK_BUILDDIR:-$SRCDIR}
CLUSTER=$SRCDIR/tests/cluster/cluster
export TCK_BUILDDIR=$BUILDDIR

banner() { printf '\n=== %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it starts a local Slurm cluster)" >&2; exit 1; }

cleanup() {
    if [ "${TIERCKPT_DEMO_KEEP:-0}" != 1 ]; then
        banner "taking the cluster down"
        "$CLUSTER" down
    else
        echo "demo: the cluster stays up; use: eval \"\$($CLUSTER env)\"; take it down with: $CLUSTER down"
    fi
}
trap cleanup EXIT

banner "a 4-node Slurm cluster on this machine"
show "$CLUSTER" up 4
"$CLUSTER" exec sinfo -N

banner "MPI across three nodes, launched by srun with PMIx, as the unprivileged user ckuser"
"$CLUSTER" exec srun --mpi=pmix -N3 -n6 tierckpt-mpi-probe | sort

banner "the tierckpt SPANK plugin, as plugstack.conf lists it"
grep -v '^#' "${TIERCKPT_CLUSTER_DIR:-/var/lib/tierckpt-cluster}/etc/plugstack.conf"
"$CLUSTER" exec tierckpt info

TRAIN="tierckpt-synth-train --state-mib 16 --ckpt-every 4 --step-ms 200 --steps 60"
CKPT="--ckpt-mem=256M --ckpt-replicas=1"
JOBS=${TIERCKPT_CLUSTER_DIR:-/var/lib/tierckpt-cluster}/jobs

banner "reference: the training job straight through 60 steps (3 nodes x 2 ranks, 16 MiB of state per rank)"
# shellcheck disable=SC2086  # TRAIN and CKPT are command lines
ref=$("$CLUSTER" exec srun --mpi=pmix -N3 -n6 $CKPT $TRAIN | grep '^final')
echo "$ref"

banner "the same job under tierckpt run, in a 4-node allocation: 3 nodes work, n4 is the spare"
cat <<'TXT'
Every 4 steps each rank saves its state into its node's memory (the "stall"
is all the training waits for) and a copy goes to the next node in the
background. When n2 dies, its neighbours notice that it has gone silent,
tierckpt run finds the dead node, and relaunches the step on n1, n3 and
the spare n4, which restore from the copies in memory.
TXT
out=$("$CLUSTER" exec mktemp "$JOBS/demo.XXXXXX")
# shellcheck disable=SC2086
"$CLUSTER" exec salloc --no-kill -N4 -n8 $CKPT tierckpt run --spares 1 -- srun --mpi=pmix -n6 $TRAIN >"$out" 2>&1 &
demo_job=$!
# What a newcomer needs: the saves, the failure, the relaunch, the restore.
tail -n +1 -f --pid="$demo_job" "$out" | grep --line-buffered -E \
    '^(saved version|rank=[0-9]+ restored|final|tierckpt run:)|rank 0 on n1: peer rank' &
shown=$!
while ! grep -q '^saved version=16 ' "$out" 2>/dev/null; do
    kill -0 "$demo_job" 2>/dev/null || break
    sleep 0.2
done
banner "node n2 dies (every process in its namespace killed, its memory gone)"
"$CLUSTER" kill n2
wait "$demo_job" || true
wait "$shown" 2>/dev/null || true

banner "what happened"
final=$(grep '^final' "$out" || true)
echo "straight run:            $ref"
echo "through a node failure:  ${final:-(no result)}"
if [ -n "$final" ] && [ "$final" = "$ref" ]; then
    echo "The digests match: the job lost a node and not a bit of its training state."
else
    echo "The digests differ: something went wrong (full output: $out)"
    exit 1
fi
grep -E '^tierckpt run: (restart|attempt 2: restored)' "$out" | sed 's/^tierckpt run: /  /'
"$CLUSTER" revive n2 >/dev/null
