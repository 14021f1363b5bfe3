"""Run by test_binding.py under mpirun -n 2: each rank saves its own bytes
and restores them; then rank 1 alone restores into a state of another shape,
and both ranks are refused (rank 0: another rank's state does not match)."""
import os
import sys

import numpy as np

import tierckpt

store = sys.argv[1]
rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMIX_RANK", "0")))
a = np.full(2, float(rank))
with tierckpt.Checkpointer(store=store, store_bytes="64M") as ck:
    ck.save(4, {"a": a, "epoch": 4})
    ck.wait()
b = np.full(2, -1.0)
out = {"a": b, "epoch": 0}
with tierckpt.Checkpointer(store=store) as ck:
    v = ck.restore(out)
bad = {"a": np.zeros(3 if rank == 1 else 2), "epoch": 0}
with tierckpt.Checkpointer(store=store) as ck:
    try:
        ck.restore(bad)
        verdict = "accepted"
    except tierckpt.StateMismatchError as e:
        if "another rank's state does not match" in e.message:
            verdict = "refused:another-rank"
        elif "'a' (shape [3], dtype float64, 24 bytes)" in e.message:
            verdict = "refused:names-a"
        else:
            verdict = "refused:" + e.message
print(f"rank {rank} restored {v} {b.tolist()} epoch {out['epoch']} {verdict}", flush=True)
