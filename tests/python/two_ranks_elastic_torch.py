"""Run by test_torch.py under mpirun -n 2: data-parallel ranks (the same
model, Adam and data on both) save with an elastic tierckpt.torch
checkpointer; the test restores what they saved in one process, whose Adam
has no state yet. Each rank writes "rank R saved 6" to OUTDIR/rank<R>.txt."""
import os
import sys

import torch

import tierckpt.torch as tt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_torch import make, train  # noqa: E402

store, outdir = sys.argv[1], sys.argv[2]
rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMIX_RANK", "0")))
torch.set_num_threads(1)
model, opt, sched = make(0)
with tt.Checkpointer(model, opt, sched, store=store, store_bytes="64M", elastic=True, rng=False) as ck:
    train(model, opt, sched, 3)
    ck.save(6)
    ck.wait()
with open(os.path.join(outdir, f"rank{rank}.txt"), "w") as out:
    print(f"rank {rank} saved 6", file=out)
