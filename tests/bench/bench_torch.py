"""make bench: the Python binding under real PyTorch states, each figure
against a reference measured in the same run:

  torch_save_resnet50          tierckpt.torch's save of ResNet-50 with SGD
                               momentum (what training waits for: the state
                               walk and the copy into node memory) against a
                               memcpy of the same bytes into pre-faulted tmpfs
  torch_save_resnet50_vs_torch_save
                               the same save against torch.save of the same
                               state into /dev/shm
  torch_save_100k_tensors      a save of 10^5 tensors of 1 KiB against a save
                               of one tensor of the same 100 MiB
  torch_restore_100k_tensors   the same for restore (fetch, check, fill)
  register_per_region_1e4, _1e5
                               tierckpt_register per region for 10^4 and 10^5
                               regions against 10^3 (linear: ratio near 1)

Lines: bench NAME value=X unit=U reference=R ratio=X/R. Without PyTorch or
torchvision the torch lines say skipped. Run by make bench with the
configured Python, against the build tree's libtierckpt.
"""
import ctypes
import mmap
import os
import statistics
import sys
import tempfile
import time


def report(name, value, unit, reference):
    print(f"bench {name} value={value:.3f} unit={unit} reference={reference:.3f} ratio={value / reference:.3f}",
          flush=True)


def ms(f, reps):
    """The median of reps timed calls of f, in ms."""
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        out.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(out)


class ShmBuffer:
    """A pre-faulted shared tmpfs mapping, like the node store."""

    def __init__(self, nbytes):
        fd, self.path = tempfile.mkstemp(prefix="tck-bench-ref-", dir="/dev/shm")
        os.posix_fallocate(fd, 0, nbytes)
        self.map = mmap.mmap(fd, nbytes)
        os.close(fd)
        self.map.write(b"\1" * nbytes)  # faulted in

    def close(self):
        self.map.close()
        os.unlink(self.path)


def memcpy_ms(nbytes, reps=5):
    import numpy as np

    src = np.ones(nbytes, dtype=np.uint8)
    ref = ShmBuffer(nbytes)
    views = [np.frombuffer(ref.map, dtype=np.uint8)]
    try:
        return ms(lambda: np.copyto(views[0], src), reps)
    finally:
        views.clear()  # the mapping closes only without views into it
        ref.close()


def store_path(tag):
    return f"/dev/shm/tck-bench-torch-{tag}-{os.getpid()}"


def bench_resnet(torch, tt):
    try:
        import torchvision
    except ImportError:
        print("bench torch_save_resnet50 skipped: torchvision not installed (apt-get install python3-torchvision)")
        return
    torch.manual_seed(0)
    model = torchvision.models.resnet50(num_classes=10).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    loss = model(torch.randn(2, 3, 32, 32).to(memory_format=torch.channels_last)).sum()
    loss.backward()
    opt.step()
    state = {"model": model.state_dict(), "optimizer": opt.state_dict()}
    nbytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    nbytes += sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values()
                  if isinstance(v, torch.Tensor))
    path = store_path("resnet")
    with tt.Checkpointer(model, opt, store=path, store_bytes=str(4 * nbytes + (64 << 20))) as ck:
        ck.save(1)  # registers
        ck.wait()
        saves = []
        for step in range(2, 7):
            t0 = time.perf_counter()
            ck.save(step)
            saves.append((time.perf_counter() - t0) * 1e3)
            ck.wait()  # the commit is not measured (the next save would wait for it)
        t_save = statistics.median(saves)
    os.unlink(path)
    target = f"/dev/shm/tck-bench-torch-save-{os.getpid()}.pt"
    try:
        t_torch = ms(lambda: torch.save(state, target), 5)
    finally:
        if os.path.exists(target):
            os.unlink(target)
    report("torch_save_resnet50", t_save, "ms", memcpy_ms(nbytes))
    report("torch_save_resnet50_vs_torch_save", t_save, "ms", t_torch)


def bench_many(torch, tierckpt):
    n, each = 100_000, 256  # 1 KiB float32 tensors: 100 MiB
    many = {f"layer{i}.weight": torch.full((each,), float(i % 7)) for i in range(n)}
    one = {"all": torch.ones(n * each)}
    out = {}
    for tag, state in (("many", many), ("one", one)):
        path = store_path(tag)
        with tierckpt.Checkpointer(store=path, store_bytes=str(4 * n * each * 4 + (256 << 20))) as ck:
            ck.save(1, state)  # registers
            ck.wait()
            saves = []
            for v in range(2, 5):
                t0 = time.perf_counter()
                ck.save(v, state)
                saves.append((time.perf_counter() - t0) * 1e3)
                ck.wait()
        restores = []
        for _ in range(3):
            with tierckpt.Checkpointer(store=path) as ck:
                t0 = time.perf_counter()
                ck.restore(state)
                restores.append((time.perf_counter() - t0) * 1e3)
        os.unlink(path)
        out[tag] = (statistics.median(saves), statistics.median(restores))
    report("torch_save_100k_tensors", out["many"][0], "ms", out["one"][0])
    report("torch_restore_100k_tensors", out["many"][1], "ms", out["one"][1])


def bench_register(tierckpt):
    from tierckpt import _lib

    lib = _lib.get()
    buf = (ctypes.c_char * 64)()
    path = store_path("reg")
    per = {}
    with tierckpt.Checkpointer(store=path, store_bytes="64M") as ck:
        h = ck._h()
        for n in (1_000, 10_000, 100_000):
            names = [f"r{i}".encode() for i in range(n)]
            lib.tierckpt_unregister_all(h)
            t0 = time.perf_counter()
            for name in names:
                lib.tierckpt_register(h, name, buf, 64)
            per[n] = (time.perf_counter() - t0) * 1e6 / n
            lib.tierckpt_unregister_all(h)
    os.unlink(path)
    report("register_per_region_1e4", per[10_000], "us", per[1_000])
    report("register_per_region_1e5", per[100_000], "us", per[1_000])


def main():
    import tierckpt

    bench_register(tierckpt)
    try:
        import torch
    except ImportError:
        print("bench torch_save_resnet50 skipped: PyTorch not installed (apt-get install python3-torch)")
        return 0
    import tierckpt.torch as tt

    torch.set_num_threads(1)
    bench_resnet(torch, tt)
    bench_many(torch, tierckpt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
