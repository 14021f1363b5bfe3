"""Run by test_binding.py under mpirun -n 2: an elastic checkpointer's two
ranks either save a state cut over them (mode "save") or restore, two ranks,
what another number of ranks saved (mode "restore"). The state: "w", a
global array of 12 float64 (element i holds 100 + i) cut in halves;
"bias", the same on both ranks; "who", a small object of each rank's own.
Each rank writes its lines to OUTDIR/rank<R>.txt."""
import os
import sys

import numpy as np

import tierckpt

store, outdir, mode = sys.argv[1], sys.argv[2], sys.argv[3]
rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMIX_RANK", "0")))
out = open(os.path.join(outdir, f"rank{rank}.txt"), "w")

if mode == "save":
    w = 100.0 + np.arange(rank * 6, rank * 6 + 6, dtype=np.float64)
    state = {"w": tierckpt.Slice(w, rank * 6, 12), "bias": np.full(3, 0.5), "who": f"saved by rank {rank}"}
    with tierckpt.Checkpointer(store=store, store_bytes="64M", elastic=True) as ck:
        ck.save(4, state)
        ck.save(8, state)
        ck.wait()
    print(f"rank {rank} saved 8", file=out, flush=True)
else:
    w = np.full(6, -1.0)
    state = {"w": tierckpt.Slice(w, rank * 6, 12), "bias": np.zeros(3), "who": None}
    with tierckpt.Checkpointer(store=store, elastic=True) as ck:
        step = ck.restore(state)
        print(f"rank {rank} restored {step} w={w.tolist()} bias={state['bias'].tolist()} who={state['who']} "
              f"source={ck.restore_source}", file=out, flush=True)
out.close()
