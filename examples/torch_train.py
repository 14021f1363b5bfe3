#!/usr/bin/env python3
"""torch_train.py: a PyTorch training job that checkpoints with tierckpt.

Every rank trains a model on synthetic data that depends only on (rank,
step); --model picks it (a comma list: rank r trains the (r mod n)th):

  mlp          an MLP with dropout, Adam, a step LR schedule (the default)
  resnet50     torchvision's ResNet-50 in channels_last, SGD with momentum and
               weight decay, a GradScaler (active on CUDA only), 32x32 images
  transformer  nn.TransformerEncoder (2 layers, dropout) with AdamW and a
               linear warm-up (LambdaLR)
  moe          a router and eight expert MLPs with Adam; the router may pick
               only the first 2 + step//3 experts, so the others have no
               gradient and no optimizer state yet when early saves happen
  many         10,000 small parameters (5,000 Linear(2, 2)) with Adam

With --allreduce the ranks average their gradients through mpi4py (data
parallel); without it each rank trains its own replica. With --elastic every
rank starts from the same seed and sees the same batches, so all ranks hold
the same state whatever their number, and the checkpointer is elastic
(tierckpt.torch.Checkpointer(elastic=True)): a run that lost a node goes on
with fewer ranks and ends as one that ran straight through. Every --ckpt-every
steps (or, with --ckpt-every auto, when the runtime's schedule says a save is
due: ck.save_if_due) the model, optimizer, scheduler, scaler and RNG states
are saved into node memory; at start the newest checkpoint is restored, so a run that was
killed and relaunched ends bit-identical to one that ran straight through.
The last line of each rank says so:

    final rank=R step=S params=SHA256 optim=SHA256 other=SHA256

(params: parameters and buffers; optim: the optimizer state, parameter by
parameter, with which parameters have any; other: hyperparameters, the
scheduler's and scaler's state and the RNG states; 16 hex digits each).

Run it under srun --mpi=pmix --ckpt-mem=SIZE, or without Slurm under mpirun
with --store PATH --store-bytes SIZE. See tierckpt-python(3).
"""
import argparse
import hashlib
import os
import pickle
import random
import sys
import time

EXIT_PEER = 75  # a peer failed: relaunch (as tierckpt-synth-train)
MODELS = ("mlp", "resnet50", "transformer", "moe", "many")


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=30, help="train up to this step (default 30)")
    p.add_argument("--ckpt-every", default="5",
                   help="save every K steps (default 5), or auto: when the runtime's schedule says so "
                        "(srun --ckpt-interval, tierckpt(7) SCHEDULE)")
    p.add_argument("--model", default="mlp",
                   help="what each rank trains: " + ", ".join(MODELS) + "; a comma list: rank r takes the (r mod n)th")
    p.add_argument("--hidden", type=int, default=256, help="width of the MLP's hidden layers (default 256)")
    p.add_argument("--step-ms", type=int, default=0, help="sleep this long per step (to kill a node mid-run)")
    p.add_argument("--allreduce", action="store_true", help="average gradients across ranks with mpi4py")
    p.add_argument("--elastic", action="store_true",
                   help="the same seed and batches on every rank, and an elastic checkpointer: restores on any number "
                        "of ranks")
    p.add_argument("--store", help="without Slurm: the node store's path (on a tmpfs)")
    p.add_argument("--store-bytes", help="without Slurm: its size, e.g. 256M")
    a = p.parse_args()
    if a.ckpt_every != "auto":
        if not a.ckpt_every.isdigit():
            p.error(f"--ckpt-every {a.ckpt_every}: give a whole number of steps or auto")
        a.ckpt_every = int(a.ckpt_every)
    if a.steps < 0 or (a.ckpt_every != "auto" and a.ckpt_every < 1) or a.hidden < 1 or a.step_ms < 0:
        p.error("--steps, --step-ms must be 0 or more; --ckpt-every and --hidden 1 or more")
    if a.store_bytes and not a.store:
        p.error("--store-bytes needs --store")
    if a.elastic and (a.allreduce or "," in a.model):
        p.error("--elastic trains one model the same way on every rank: without --allreduce, one --model")
    a.models = a.model.split(",")
    for m in a.models:
        if m not in MODELS:
            p.error(f"--model {m}: choose from {', '.join(MODELS)}")
    return a


def rank_of_env():
    for v in ("SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        if v in os.environ:
            return int(os.environ[v])
    return 0


def digest(tensors):
    h = hashlib.sha256()
    for t in tensors:
        h.update(str((tuple(t.shape), t.dtype)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def optim_digest(opt, torch):
    """The optimizer state parameter by parameter (the order of opt.state is
    the order parameters first got state, which says nothing about it)."""
    h = hashlib.sha256()
    for i, p in enumerate(q for g in opt.param_groups for q in g["params"]):
        st = opt.state[p] if p in opt.state else {}
        h.update(f"{i}:{sorted(st)};".encode())
        for k in sorted(st):
            v = st[k]
            h.update(v.detach().cpu().contiguous().numpy().tobytes() if isinstance(v, torch.Tensor) else repr(v).encode())
    return h.hexdigest()[:16]


def other_digest(opt, sched, scaler, torch):
    groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    rng = (torch.get_rng_state().numpy().tobytes(), random.getstate())
    blob = pickle.dumps((repr(groups), repr(sched.state_dict()), repr(scaler.state_dict()), rng))
    return hashlib.sha256(blob).hexdigest()[:16]


def build(name, rank, a, torch):
    """The model, optimizer, scheduler, scaler and a function giving the
    loss of a step (its data drawn from a generator seeded by step and
    rank)."""
    nn = torch.nn
    scaler = torch.cuda.amp.GradScaler(enabled=torch.cuda.is_available())
    if name == "mlp":
        teacher = torch.Generator().manual_seed(7)
        target_w = torch.randn(32, 8, generator=teacher)
        model = nn.Sequential(nn.Linear(32, a.hidden), nn.ReLU(), nn.Dropout(0.1),
                              nn.Linear(a.hidden, a.hidden), nn.ReLU(), nn.Linear(a.hidden, 8))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)

        def loss(step, g):
            x = torch.randn(64, 32, generator=g)
            y = x @ target_w + 0.01 * torch.randn(64, 8, generator=g)
            return nn.functional.mse_loss(model(x), y)
    elif name == "resnet50":
        import torchvision

        model = torchvision.models.resnet50(num_classes=10).to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=1e-4, nesterov=True)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)

        def loss(step, g):
            x = torch.randn(2, 3, 32, 32, generator=g).to(memory_format=torch.channels_last)
            y = torch.randint(0, 10, (2,), generator=g)
            return nn.functional.cross_entropy(model(x), y)
    elif name == "transformer":
        layer = nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128, dropout=0.1, batch_first=True)
        model = nn.ModuleDict({"embed": nn.Embedding(100, 64), "encoder": nn.TransformerEncoder(layer, num_layers=2),
                               "head": nn.Linear(64, 100)})
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 5))  # warm-up

        def loss(step, g):
            tokens = torch.randint(0, 100, (4, 16), generator=g)
            out = model["head"](model["encoder"](model["embed"](tokens)))
            return nn.functional.cross_entropy(out[:, :-1].reshape(-1, 100), tokens[:, 1:].reshape(-1))
    elif name == "moe":
        model = nn.ModuleDict({"router": nn.Linear(16, 8), "experts": nn.ModuleList(
            nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16)) for _ in range(8))})
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.99)

        def loss(step, g):
            x = torch.randn(32, 16, generator=g)
            logits = model["router"](x)
            allowed = min(8, 2 + step // 3)  # experts unlock over time: early saves hold state for some only
            choice = logits[:, :allowed].argmax(-1)
            gate = torch.softmax(logits, -1)
            out = torch.zeros_like(x)
            for e in choice.unique().tolist():
                sel = choice == e
                out[sel] = model["experts"][e](x[sel]) * gate[sel, e : e + 1]
            return nn.functional.mse_loss(out, x.flip(-1))
    else:  # many
        model = nn.ModuleList(nn.Linear(2, 2) for _ in range(5000))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)

        def loss(step, g):
            x = torch.randn(4, 2, generator=g)
            return sum(m(x).pow(2).mean() for m in model) / len(model)
    return model, opt, sched, scaler, loss


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
    name = a.models[rank % len(a.models)]

    # Each rank its own start (the same for all with --allreduce or --elastic).
    seed = 1000 if comm or a.elastic else 1000 + rank
    torch.manual_seed(seed)
    random.seed(seed)  # Python's generator is in the RNG state tierckpt saves: a reproducible start
    model, opt, sched, scaler, step_loss = build(name, rank, a, torch)

    settings = {"store": a.store, "store_bytes": a.store_bytes} if a.store else {}
    if a.elastic:
        settings["elastic"] = True
    try:
        ck = tierckpt.torch.Checkpointer(model, opt, sched, state={"scaler": scaler}, comm=comm,  # 1
                                         **settings)
        step = ck.restore()                                                                       # 2
        if step is None:
            print(f"rank={rank} restored none", flush=True)
            step = 0
        else:
            print(f"rank={rank} restored step={step} source={ck.restore_source}", flush=True)

        while step < a.steps:
            step += 1
            g = torch.Generator().manual_seed(step * 4099 + (0 if a.elastic else rank))
            loss = step_loss(step, g)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if comm:
                for p in model.parameters():
                    if p.grad is None:
                        p.grad = torch.zeros_like(p)
                    buf = p.grad.numpy()
                    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
                    p.grad.div_(comm.Get_size())
            scaler.step(opt)
            scaler.update()
            sched.step()
            if a.step_ms:
                time.sleep(a.step_ms / 1000)
            if a.ckpt_every == "auto":
                saved = ck.save_if_due(step)                                                      # 3
            else:
                saved = step % a.ckpt_every == 0
                if saved:
                    ck.save(step)                                                                 # 3
            if saved:
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
    print(f"final rank={rank} step={step} params={params} optim={optim_digest(opt, torch)} "
          f"other={other_digest(opt, sched, scaler, torch)}", flush=True)


if __name__ == "__main__":
    main()
