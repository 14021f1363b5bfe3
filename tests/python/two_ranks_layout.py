"""Run by test_binding.py under mpirun -n 2: the job-wide checks of a save
through the C API. A rank with no region, and slices that do not tile
their array, fail the save on both ranks alike (neither is left waiting in
a collective) and save nothing; slices that tile it save and restore.
Each rank writes its lines to OUTDIR/rank<R>.txt (mpirun may splice the
two ranks' standard outputs mid-line)."""
import ctypes
import os
import sys

import numpy as np

import tierckpt
from tierckpt import _lib

store, outdir = sys.argv[1], sys.argv[2]
rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMIX_RANK", "0")))
lib = _lib.get()
out = open(os.path.join(outdir, f"rank{rank}.txt"), "w")


def outcome(what, rc):
    msg = lib.tierckpt_last_error().decode() if rc else ""
    print(f"rank {rank} {what} rc={rc} {msg}", file=out, flush=True)


w = np.arange(rank * 6, rank * 6 + 6, dtype=np.float64)  # this rank's half of a 12-element array
step = np.array([41], dtype=np.uint64)
with tierckpt.Checkpointer(store=store, store_bytes="64M") as ck:
    h = ck._h()
    # Rank 1 has registered nothing yet.
    if rank == 0:
        assert lib.tierckpt_register(h, b"w", w.ctypes.data, w.nbytes) == 0
    outcome("empty", lib.tierckpt_save(h, 1))
    # Both register a slice, but rank 1's starts one element early: overlap.
    lib.tierckpt_unregister_all(h)
    off = 0 if rank == 0 else 5 * 8
    assert lib.tierckpt_register_slice(h, b"w", w.ctypes.data, w.nbytes, off, 96) == 0
    assert lib.tierckpt_register_replicated(h, b"step", step.ctypes.data, step.nbytes) == 0
    outcome("overlap", lib.tierckpt_save(h, 2))
    # The right cut: saved, and committed.
    lib.tierckpt_unregister_all(h)
    assert lib.tierckpt_register_slice(h, b"w", w.ctypes.data, w.nbytes, rank * 48, 96) == 0
    assert lib.tierckpt_register_replicated(h, b"step", step.ctypes.data, step.nbytes) == 0
    outcome("tiled", lib.tierckpt_save(h, 3))
    outcome("wait", lib.tierckpt_wait(h))

with tierckpt.Checkpointer(store=store) as ck:
    h = ck._h()
    back, back_step = np.zeros(6), np.zeros(1, dtype=np.uint64)
    assert lib.tierckpt_register_slice(h, b"w", back.ctypes.data, back.nbytes, rank * 48, 96) == 0
    assert lib.tierckpt_register_replicated(h, b"step", back_step.ctypes.data, back_step.nbytes) == 0
    found, version = ctypes.c_int(0), ctypes.c_uint64(0)
    rc = lib.tierckpt_restore(h, ctypes.byref(found), ctypes.byref(version))
    print(f"rank {rank} restored rc={rc} version={version.value} same={bool((back == w).all())} "
          f"step={int(back_step[0])}", file=out, flush=True)
out.close()
