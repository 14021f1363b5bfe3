"""Run by test_binding.py under mpirun -n 2: the C API's two-step restore
(tierckpt_fetch, then tierckpt_restore) when one rank's regions do not match
its shard. Both ranks must be refused, and neither may have anything written
into its regions: the job agrees on the match before any rank copies."""
import ctypes
import os
import sys

import numpy as np

import tierckpt
from tierckpt import _lib

store = sys.argv[1]
rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMIX_RANK", "0")))
lib = _lib.get()

a = np.full(4, 10.0 + rank)
with tierckpt.Checkpointer(store=store, store_bytes="64M") as ck:
    h = ck._h()
    assert lib.tierckpt_register(h, b"a", a.ctypes.data, a.nbytes) == 0
    assert lib.tierckpt_save(h, 3) == 0
    assert lib.tierckpt_wait(h) == 0

with tierckpt.Checkpointer(store=store) as ck:
    h = ck._h()
    found, version = ctypes.c_int(0), ctypes.c_uint64(0)
    assert lib.tierckpt_fetch(h, ctypes.byref(found), ctypes.byref(version)) == 0 and version.value == 3
    out = np.full(4, -7.0)
    nbytes = out.nbytes if rank == 0 else out.nbytes // 2  # rank 1 registers the wrong size
    assert lib.tierckpt_register(h, b"a", out.ctypes.data, nbytes) == 0
    rc = lib.tierckpt_restore(h, ctypes.byref(found), ctypes.byref(version))
    msg = lib.tierckpt_last_error().decode()
    kind = "another-rank" if "another rank's regions do not match" in msg else \
        "mismatch" if "does not match the registered region 'a'" in msg else msg
    print(f"rank {rank} rc={rc} {kind} untouched={bool((out == -7.0).all())}", flush=True)
    # A save after the refusal goes on (nothing was settled: any version).
    lib.tierckpt_unregister_all(h)
    assert lib.tierckpt_register(h, b"a", out.ctypes.data, out.nbytes) == 0
    assert lib.tierckpt_save(h, 1) == 0
