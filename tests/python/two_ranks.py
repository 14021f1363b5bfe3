"""Run by test_binding.py under mpirun -n 2: each rank saves its own bytes,
restores them, then a restore with a mismatching state on rank 1 only is
refused on both ranks."""
import sys

import numpy as np

import tierckpt

store = sys.argv[1]
with tierckpt.Checkpointer(store=store, store_bytes="64M") as ck:
    a = np.zeros(2)
    state = {"a": a, "epoch": 4}
    # Every rank saves a different value: its rank, learnt from the env.
    import os

    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMIX_RANK", "0")))
    a[:] = rank
    ck.save(4, state)
    ck.wait()
b = np.full(2, -1.0)
out = {"a": b, "epoch": 0}
with tierckpt.Checkpointer(store=store) as ck:
    v = ck.restore(out)
# Rank 1 restores a state of another shape; rank 0 is told another rank's
# state does not match.
bad = {"a": np.zeros(3 if rank == 1 else 2), "epoch": 0}
with tierckpt.Checkpointer(store=store) as ck:
    try:
        ck.restore(bad)
        verdict = "accepted"
    except tierckpt.StateMismatchError:
        verdict = "other-rank-refused"
print(f"rank {rank} restored {v} {list(b)} epoch {out['epoch']} {verdict}", flush=True)
