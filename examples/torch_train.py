#!/usr/bin/env python3
"""torch_train.py: a small PyTorch training job that checkpoints with tierckpt.

Every rank trains an MLP (with dropout) with Adam and a step LR schedule on
synthetic regression data that depends only on (rank, step). With
--allreduce the ranks average their gradients through mpi4py (data
parallel); without it each rank trains its own replica. Every --ckpt-every
steps the model, optimizer, scheduler and RNG states are saved into node
memory; at start the newest checkpoint is restored, so a run that was killed
and relaunched ends bit-identical to one that ran straight through. The last
line of each rank says so:

    final rank=R step=S params=SHA256 optim=SHA256

Run it under srun --mpi=pmix --ckpt-mem=SIZE, or without Slurm under mpirun
with --store PATH --store-bytes SIZE. See tierckpt-python(3).
"""
import argparse
import hashlib
import os
import sys
import time

EXIT_PEER = 75  # a peer failed: relaunch (as tierckpt-synth-train)


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=30, help="train up to this step (default 30)")
    p.add_argument("--ckpt-every", type=int, default=5, help="save every K steps (default 5)")
    p.add_argument("--hidden", type=int, default=256, help="width of the hidden layers (default 256)")
    p.add_argument("--step-ms", type=int, default=0, help="sleep this long per step (to kill a node mid-run)")
    p.add_argument("--allreduce", action="store_true", help="average gradients across ranks with mpi4py")
    p.add_argument("--store", help="without Slurm: the node store's path (on a tmpfs)")
    p.add_argument("--store-bytes", help="without Slurm: its size, e.g. 256M")
    a = p.parse_args()
    if a.steps < 0 or a.ckpt_every < 1 or a.hidden < 1 or a.step_ms < 0:
        p.error("--steps, --step-ms must be 0 or more; --ckpt-every and --hidden 1 or more")
    if a.store_bytes and not a.store:
        p.error("--store-bytes needs --store")
    return a


def rank_of_env():
    for v in ("SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        if v in os.environ:
            return int(os.environ[v])
    return 0


def digest(tensors):
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def main():
    a = parse()
    comm = None
    if a.allreduce:
        from mpi4py import MPI  # initialises MPI; tierckpt then leaves it to mpi4py

        comm = MPI.COMM_WORLD
    import torch

    import tierckpt
    import tierckpt.torch

    torch.set_num_threads(1)  # the same arithmetic in every run
    rank = comm.Get_rank() if comm else rank_of_env()

    torch.manual_seed(1000 + rank)  # each rank its own start (the same for all with --allreduce)
    if comm:
        torch.manual_seed(1000)
    model = torch.nn.Sequential(
        torch.nn.Linear(32, a.hidden), torch.nn.ReLU(), torch.nn.Dropout(0.1),
        torch.nn.Linear(a.hidden, a.hidden), torch.nn.ReLU(),
        torch.nn.Linear(a.hidden, 8),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    teacher = torch.Generator().manual_seed(7)
    target_w = torch.randn(32, 8, generator=teacher)

    settings = {"store": a.store, "store_bytes": a.store_bytes} if a.store else {}
    try:
        ck = tierckpt.torch.Checkpointer(model, opt, sched, comm=comm, **settings)  # 1
        step = ck.restore()                                                        # 2
        if step is None:
            print(f"rank={rank} restored none", flush=True)
            step = 0
        else:
            print(f"rank={rank} restored step={step} source={ck.restore_source}", flush=True)

        while step < a.steps:
            step += 1
            g = torch.Generator().manual_seed(step * 4099 + rank)
            x = torch.randn(64, 32, generator=g)
            y = x @ target_w + 0.01 * torch.randn(64, 8, generator=g)
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            if comm:
                for p in model.parameters():
                    buf = p.grad.numpy()
                    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
                    p.grad.div_(comm.Get_size())
            opt.step()
            sched.step()
            if a.step_ms:
                time.sleep(a.step_ms / 1000)
            if step % a.ckpt_every == 0:
                ck.save(step)                                                      # 3
                s = ck.stats
                if rank == 0:
                    print(f"saved step={step} loss={loss.item():.6f} stall_ms={s.stall_ms:.2f} bytes={s.bytes}",
                          flush=True)
        ck.wait()
        ck.close()
    except tierckpt.TierckptError as e:
        print(f"torch_train.py: rank {rank}: {e}", file=sys.stderr, flush=True)
        os._exit(EXIT_PEER if e.code == 6 else 1)  # no MPI_Finalize: the job is broken

    params = digest(model.state_dict().values())
    optim = digest([v for st in opt.state.values() for v in st.values() if isinstance(v, torch.Tensor)])
    print(f"final rank={rank} step={step} params={params} optim={optim}", flush=True)


if __name__ == "__main__":
    main()
