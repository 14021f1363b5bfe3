"""Run by test_dcp.py under mpirun -n 2: tierckpt.dcp's agreed save over the
real communicator. Both ranks save version 1; then rank 1 alone cannot stage
version 2 (its part outgrows the capacity): no rank may save it, both must
raise, and a restore must give version 1 back, bytes intact."""
import os
import sys

import torch

import tierckpt
import tierckpt.dcp as tdcp

store = sys.argv[1]
rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMIX_RANK", "0")))
good = torch.full((8,), float(rank + 1))
with tdcp.Storage(4096, store=store, store_bytes="16M") as st:
    st._save_agreed(None, lambda v: tdcp.pack(st._buf, [(("x", None), good)], {"v": v}))
    big = torch.zeros(4096 if rank == 1 else 8)
    try:
        st._save_agreed(None, lambda v: tdcp.pack(st._buf, [(("x", None), big)], {"v": v}))
        second = "saved"
    except tierckpt.TierckptError as e:
        if "this rank could not stage" in e.message and "capacity" in e.message:
            second = "refused:own"
        elif "another rank could not stage" in e.message:
            second = "refused:other"
        else:
            second = "refused:" + e.message
    kept = st.version
    st.wait()
with tdcp.Storage(4096, store=store) as st:
    v = st.restore()
    entries, extra = tdcp.read_index(st._buf)
    back = tdcp.item_tensor(st._buf, entries[("x", None)])
    intact = torch.equal(back, good) and extra == {"v": 1}
print(f"rank {rank} second {second} kept {kept} restored {v} intact {intact}", flush=True)
