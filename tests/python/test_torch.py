"""tierckpt.torch with Debian's PyTorch (CPU), a real node store, one MPI
process. Skipped, visibly, where PyTorch is missing."""
import pytest

torch = pytest.importorskip("torch", reason="PyTorch not installed (apt-get install python3-torch)")

import tierckpt  # noqa: E402
import tierckpt.torch as tt  # noqa: E402


def make(seed, hidden=16, names=("fc1", "fc2")):
    torch.manual_seed(seed)
    model = torch.nn.Sequential()
    model.add_module(names[0], torch.nn.Linear(8, hidden))
    model.add_module("act", torch.nn.ReLU())
    model.add_module(names[1], torch.nn.Linear(hidden, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return model, opt, sched


def train(model, opt, sched, steps):
    g = torch.Generator().manual_seed(1234)
    for _ in range(steps):
        x = torch.randn(16, 8, generator=g)
        noise = torch.rand(1).item()  # uses the global RNG: restored too
        loss = ((model(x) - noise) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def flat(model, opt):
    out = [p.detach().clone() for p in model.state_dict().values()]
    for st in opt.state.values():
        out += [v.clone() for v in st.values()]
    return out


def same(a, b):
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def test_resume_is_bit_identical(store):
    model, opt, sched = make(0)
    extra = {"epoch": 0}
    with tt.Checkpointer(model, opt, sched, state=extra, store=store, store_bytes="64M") as ck:
        assert ck.restore() is None
        train(model, opt, sched, 3)
        extra["epoch"] = 3
        ck.save(3)
        rng_after_save = torch.get_rng_state()
        train(model, opt, sched, 2)  # the uninterrupted run goes on
    reference = flat(model, opt)

    model2, opt2, sched2 = make(99)  # other initial weights, no optimizer state yet
    params_before = [p.data_ptr() for p in model2.parameters()]
    extra2 = {"epoch": 0}
    torch.manual_seed(7)
    with tt.Checkpointer(model2, opt2, sched2, state=extra2, store=store) as ck:
        assert ck.restore() == 3
    assert [p.data_ptr() for p in model2.parameters()] == params_before  # in place
    assert extra2["epoch"] == 3 and sched2.last_epoch == 3 and opt2.param_groups[0]["lr"] == pytest.approx(5e-3)
    assert torch.equal(torch.get_rng_state(), rng_after_save)
    train(model2, opt2, sched2, 2)
    assert same(flat(model2, opt2), reference)


def test_no_checkpoint_leaves_a_fresh_optimizer_fresh(store):
    model, opt, sched = make(0)
    before = [p.clone() for p in model.parameters()]
    with tt.Checkpointer(model, opt, sched, store=store, store_bytes="64M") as ck:
        assert ck.restore() is None
        assert len(opt.state) == 0 and all(p.grad is None for p in model.parameters())
        assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
        train(model, opt, sched, 1)
        ck.save(1)  # registers the optimizer state created by the step
        train(model, opt, sched, 1)
        ck.save(2)


def test_a_model_of_other_shape_is_refused_untouched(store):
    model, opt, sched = make(0)
    with tt.Checkpointer(model, opt, sched, store=store, store_bytes="64M") as ck:
        train(model, opt, sched, 1)
        ck.save(1)
    model2, opt2, sched2 = make(5, hidden=17)
    before = [p.clone() for p in model2.parameters()]
    with tt.Checkpointer(model2, opt2, sched2, store=store) as ck:
        with pytest.raises(tierckpt.StateMismatchError, match=r"'model.fc1.weight' \(shape \[17, 8\], dtype float32"):
            ck.restore()
    assert all(torch.equal(a, b) for a, b in zip(before, model2.parameters()))


def test_a_model_with_other_names_is_refused(store):
    model, opt, sched = make(0)
    with tt.Checkpointer(model, opt, sched, store=store, store_bytes="64M") as ck:
        train(model, opt, sched, 1)
        ck.save(1)
    model2, opt2, sched2 = make(0, names=("enc", "dec"))
    with tt.Checkpointer(model2, opt2, sched2, store=store) as ck:
        with pytest.raises(tierckpt.StateMismatchError, match="'model.enc.weight'.*differs.*fc1.weight"):
            ck.restore()


def test_a_model_of_other_dtype_is_refused(store):
    model, opt, sched = make(0)
    with tt.Checkpointer(model, store=store, store_bytes="64M") as ck:
        ck.save(1)
    model2 = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2)).half()
    model2[0].weight.data = torch.zeros(16, 16, dtype=torch.half)  # 512 bytes, as the float32 16x8
    model2[0].bias.data = torch.zeros(32, dtype=torch.half)
    with tt.Checkpointer(model2, store=store) as ck:
        with pytest.raises(tierckpt.StateMismatchError, match=r"'model.0.weight' \(shape \[16, 16\], dtype float16"):
            ck.restore()


def test_replacing_parameters_between_saves_is_refused(store):
    model, opt, sched = make(0)
    with tt.Checkpointer(model, opt, sched, store=store, store_bytes="64M") as ck:
        train(model, opt, sched, 1)
        ck.save(1)
        model.fc1.weight.data = model.fc1.weight.data.clone()
        with pytest.raises(tierckpt.TierckptError, match="'model.fc1.weight'.*other memory.*in place"):
            ck.save(2)


def test_plain_tensors_and_dict_state(store):
    t = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    state = {"t": t, "sd": {"w": torch.ones(3)}, "step_note": "x"}
    with tierckpt.Checkpointer(store=store, store_bytes="64M") as ck:
        ck.save(4, state)
    t2 = torch.zeros(2, 3, dtype=torch.float64)
    w2 = torch.zeros(3)
    out = {"t": t2, "sd": {"w": w2}, "step_note": None}
    with tierckpt.Checkpointer(store=store) as ck:
        assert ck.restore(out) == 4
    assert out["t"] is t2 and torch.equal(t2, t) and torch.equal(w2, torch.ones(3)) and out["step_note"] == "x"


def test_non_contiguous_and_device_tensors_are_refused(store):
    with tierckpt.Checkpointer(store=store, store_bytes="64M") as ck:
        with pytest.raises(tierckpt.TierckptError, match="'t': the tensor is not contiguous"):
            ck.save(1, {"t": torch.zeros(4, 4).t()})
        meta = torch.empty(4, device="meta")
        with pytest.raises(tierckpt.TierckptError, match="'m' is a meta tensor: libtierckpt checkpoints host memory and, with its CUDA tier, CUDA memory only"):
            ck.save(1, {"m": meta})


def test_cuda_tensors_need_the_cuda_tier(store):
    with tierckpt.Checkpointer(store=store, store_bytes="64M", cuda=False) as ck:
        assert not ck._cuda
        ck.save(1, {"t": torch.ones(3)})
        assert ck.stage_path == "host"
    with tierckpt.Checkpointer(store=store, store_bytes="64M") as ck:
        assert ck._cuda == ("cuda" in tierckpt.features())
        ck.save(2, {"t": torch.ones(3)})
        assert ck.stage_path == "host"


@pytest.mark.skipif(not torch.cuda.is_available() or "cuda" not in tierckpt.features(),
                    reason="needs a CUDA device, PyTorch with CUDA and libtierckpt's CUDA tier")
def test_cuda_tensors_round_trip(store):
    g = torch.Generator(device="cpu").manual_seed(3)
    t = torch.rand(1 << 20, generator=g).cuda()
    host = torch.arange(10)
    want_t, want_h = t.clone(), host.clone()
    with tierckpt.Checkpointer(store=store, store_bytes="64M") as ck:
        ck.save(1, {"t": t, "h": host})
        assert ck.stage_path in ("cuda-direct", "cuda-bounce")
        ck.wait()
        t.zero_()
        host.zero_()
        assert ck.restore({"t": t, "h": host}) == 1
    assert torch.equal(t, want_t) and torch.equal(host, want_h)


def test_state_names_must_not_clash():
    model, _, _ = make(0)
    with pytest.raises(tierckpt.TierckptError, match="state has an entry 'model'"):
        tt.Checkpointer(model, state={"model": 1}, store="/dev/shm/unused")
