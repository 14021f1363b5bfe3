#!/usr/bin/env python3
"""elastic_train.py: a NumPy training loop whose checkpoint restores on any
number of ranks (tierckpt.Checkpointer(elastic=True), tierckpt.Slice).

The state is one global array of --global-mib MiB of float64, cut evenly
over the ranks (each rank holds its tierckpt.Slice), plus a vector that is
the same on every rank ("bias") and the step. A step updates every element
from its global index and the step alone, so the result does not depend
on how many ranks share the array. Every --ckpt-every steps the state is
saved into node memory; at start the newest checkpoint is restored, saved
by however many ranks, and the loop goes on from its step. Rank 0's last
line:

    final steps=S digest=HEX

(a digest of the whole global array and the bias, gathered over MPI; the
same for a run of 6 ranks straight through and one of 6 ranks that lost a
node and went on with 4). Needs mpi4py. Run it under srun --mpi=pmix
--ckpt-mem=SIZE; see tierckpt-python(3).
"""
import argparse
import hashlib
import sys


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20, help="train up to this step (default 20)")
    p.add_argument("--ckpt-every", type=int, default=4, help="save every this many steps (default 4)")
    p.add_argument("--global-mib", type=int, default=48, help="size of the global array in MiB (default 48)")
    a = p.parse_args()

    from mpi4py import MPI  # initialises MPI; tierckpt then leaves it to mpi4py
    import numpy as np

    import tierckpt

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    total = a.global_mib * (1 << 20) // 8  # elements of the global array
    begin, end = rank * total // size, (rank + 1) * total // size
    index = np.arange(begin, end, dtype=np.float64)  # each element's global index
    w = np.sin(index * 1e-3)  # the start values depend on the global index only
    state = {"w": tierckpt.Slice(w, begin, total), "bias": np.zeros(16), "step": 0}

    with tierckpt.Checkpointer(comm=comm, elastic=True) as ck:
        step = ck.restore(state)
        if step is None:
            print(f"rank={rank} restored none", flush=True)
            step = 0
        else:
            print(f"rank={rank} restored step={step} source={ck.restore_source}", flush=True)
            assert state["step"] == step
        while step < a.steps:
            step += 1
            w *= 0.999
            w += np.cos(index * 1e-3 + step) * 1e-3
            state["bias"] += step
            state["step"] = step
            if step % a.ckpt_every == 0:
                ck.save(step, state)
                if rank == 0:
                    print(f"saved step={step} stall_ms={ck.stats.stall_ms:.2f}", flush=True)
        ck.wait()

    h = hashlib.sha256()
    parts = comm.gather(w.tobytes(), root=0)
    if rank == 0:
        for part in parts:
            h.update(part)
        h.update(state["bias"].tobytes())
        print(f"final steps={step} digest={h.hexdigest()[:16]}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
