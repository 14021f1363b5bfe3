"""Run by test_binding.py under mpirun -n 2: an elastic checkpointer's two
ranks either save a state cut over them (mode "save") or restore, two ranks,
what another number of ranks saved (mode "restore"), or rank 1 gives a
Slice that lies outside its array (mode "badslice": both ranks raise).
Modes "experts" and "no-experts" restore through the C API what one rank
saved: "w" cut in halves, "step" replicated, and "e" (an expert's
array) registered by rank 0 alone, or by no rank. The state: "w", a
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
elif mode == "badslice":
    w = np.zeros(6)
    state = {"w": tierckpt.Slice(w, 10 if rank == 1 else 0, 12), "bias": np.zeros(3)}
    with tierckpt.Checkpointer(store=store, store_bytes="64M", elastic=True) as ck:
        try:
            ck.save(1, state)
            print(f"rank {rank} saved", file=out, flush=True)
        except tierckpt.TierckptError as e:
            print(f"rank {rank} refused: {e}", file=out, flush=True)
elif mode in ("experts", "no-experts"):
    import ctypes
    from tierckpt import _lib
    lib = _lib.get()
    w, e, step = np.full(6, -1.0), np.full(4, -1.0), np.zeros(1, dtype=np.uint64)
    with tierckpt.Checkpointer(store=store) as ck:
        h = ck._h()
        assert lib.tierckpt_register_slice(h, b"w", w.ctypes.data, w.nbytes, rank * 48, 96) == 0
        if rank == 0 and mode == "experts":
            assert lib.tierckpt_register_slice(h, b"e", e.ctypes.data, e.nbytes, 0, 32) == 0
        assert lib.tierckpt_register_replicated(h, b"step", step.ctypes.data, step.nbytes) == 0
        found, version = ctypes.c_int(0), ctypes.c_uint64(0)
        rc = lib.tierckpt_restore(h, ctypes.byref(found), ctypes.byref(version))
        msg = lib.tierckpt_last_error().decode() if rc else ""
        print(f"rank {rank} rc={rc} found={found.value} version={version.value} w={w.tolist()} e={e.tolist()} "
              f"step={int(step[0])} {msg}".rstrip(), file=out, flush=True)
else:
    w = np.full(6, -1.0)
    state = {"w": tierckpt.Slice(w, rank * 6, 12), "bias": np.zeros(3), "who": None}
    with tierckpt.Checkpointer(store=store, elastic=True) as ck:
        step = ck.restore(state)
        print(f"rank {rank} restored {step} w={w.tolist()} bias={state['bias'].tolist()} who={state['who']} "
              f"source={ck.restore_source}", file=out, flush=True)
out.close()
