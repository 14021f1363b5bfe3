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


def test_replaced_parameters_are_saved_from_their_new_memory(store):
    model, opt, sched = make(0)
    with tt.Checkpointer(model, opt, sched, store=store, store_bytes="64M") as ck:
        train(model, opt, sched, 1)
        ck.save(1)
        model.fc1.weight.data = model.fc1.weight.data.clone() + 1  # replaced, not updated in place
        ck.save(2)
    want = model.fc1.weight.detach().clone()
    model2, opt2, sched2 = make(9)
    with tt.Checkpointer(model2, opt2, sched2, store=store) as ck:
        assert ck.restore() == 2
    assert torch.equal(model2.fc1.weight, want)


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


def test_views_that_overlap_or_leave_gaps_sparse_and_meta_tensors_are_refused_by_name(store):
    with tierckpt.Checkpointer(store=store, store_bytes="64M") as ck:
        with pytest.raises(tierckpt.TierckptError, match=r"'t': the tensor's elements overlap or leave gaps in memory "
                                                         r"\(shape \[4, 2\], strides \[4, 2\]: an expanded or sliced view\)"):
            ck.save(1, {"t": torch.zeros(4, 4)[:, ::2]})
        with pytest.raises(tierckpt.TierckptError, match="'e': the tensor's elements overlap"):
            ck.save(1, {"e": torch.zeros(1, 3).expand(4, 3)})
        with pytest.raises(tierckpt.TierckptError, match=r"'s' is a torch.sparse_coo tensor: .*\.values\(\)"):
            ck.save(1, {"s": torch.zeros(3, 3).to_sparse()})
        with pytest.raises(tierckpt.TierckptError, match=r"'m' is a meta tensor: it has no data .*to_empty"):
            ck.save(1, {"m": torch.empty(4, device="meta")})
        ck.save(1, {"ok": torch.zeros(2)})  # nothing was left half registered


def test_dense_tensors_in_any_stride_order_are_restored_in_place(store):
    g = torch.Generator().manual_seed(2)
    state = {
        "cl": torch.randn(2, 3, 4, 5, generator=g).to(memory_format=torch.channels_last),
        "t": torch.randn(6, 7, generator=g).t(),
        "one": torch.randn(1, 8, 1, generator=g).transpose(0, 2),
    }
    want = {k: v.clone() for k, v in state.items()}
    with tierckpt.Checkpointer(store=store, store_bytes="64M") as ck:
        ck.save(1, state)
        assert ck._regions[0].layout == (60, 1, 15, 3) and ck._regions[1].layout == (1, 7)
        assert ck._regions[2].layout is None  # dimensions of size 1 do not make a layout
    out = {"cl": torch.zeros(2, 3, 4, 5).to(memory_format=torch.channels_last), "t": torch.zeros(6, 7).t(),
           "one": torch.zeros(1, 8, 1)}
    ptrs = {k: v.data_ptr() for k, v in out.items()}
    with tierckpt.Checkpointer(store=store) as ck:
        assert ck.restore(out) == 1
    for k in out:
        assert out[k].data_ptr() == ptrs[k] and out[k].stride() == want[k].stride() or k == "one"
        assert torch.equal(out[k], want[k])
    contiguous = {"cl": torch.zeros(2, 3, 4, 5), "t": out["t"], "one": out["one"]}
    with tierckpt.Checkpointer(store=store) as ck:
        with pytest.raises(tierckpt.StateMismatchError, match=r"'cl' .*another memory layout \(strides \[60, 1, 15, 3\]\).*"
                                                              r"channels_last"):
            ck.restore(contiguous)
    assert not contiguous["cl"].any()


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


# ---- training states that real models produce


class MoE(torch.nn.Module):
    """A router and eight expert MLPs; the top-1 router sends the tokens to
    some experts only, so the others get no gradient (and Adam no state)."""

    def __init__(self, d=8, experts=8):
        super().__init__()
        self.router = torch.nn.Linear(d, experts)
        self.experts = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.GELU(), torch.nn.Linear(16, d)) for _ in range(experts)
        )

    def forward(self, x, allowed):
        logits = self.router(x)
        mask = torch.full_like(logits, float("-inf"))
        mask[:, allowed] = 0
        choice = (logits + mask).argmax(-1)
        out = torch.zeros_like(x)
        for e in choice.unique().tolist():
            sel = choice == e
            out[sel] = self.experts[e](x[sel]) * torch.softmax(logits[sel], -1)[:, e : e + 1]
        return out


def train_moe(model, opt, steps, allowed, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(32, 8, generator=g)
        loss = (model(x, allowed) - x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def optimizer_tensors(opt):
    params = [p for grp in opt.param_groups for p in grp["params"]]
    out = {}
    for i, p in enumerate(params):
        if p in opt.state:
            for k, v in opt.state[p].items():
                out[(i, k)] = v.clone() if isinstance(v, torch.Tensor) else v
    return out


def same_state(a, b):
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a
    )


def make_moe(seed):
    torch.manual_seed(seed)
    model = MoE()
    return model, torch.optim.Adam(model.parameters(), lr=1e-2)


def test_parameters_without_optimizer_state_resume_bit_exact(store):
    model, opt = make_moe(0)
    with tt.Checkpointer(model, opt, store=store, store_bytes="64M") as ck:
        train_moe(model, opt, 3, allowed=[0, 2, 5], seed=1)  # experts 1, 3, 4, 6, 7 get no tokens
        ck.save(3)
        without = sum(1 for p in model.parameters() if p not in opt.state)
        assert without == 20  # 5 experts x 4 tensors
        train_moe(model, opt, 2, allowed=[0, 1, 2, 3, 4, 5, 6, 7], seed=2)  # now every expert trains
        ck.save(5)  # the state grew: registered anew
    reference_model = [p.detach().clone() for p in model.state_dict().values()]
    reference_opt = optimizer_tensors(opt)

    model2, opt2 = make_moe(42)
    with tt.Checkpointer(model2, opt2, store=store) as ck:
        assert ck.restore() == 5
    assert all(torch.equal(a, b) for a, b in zip(reference_model, model2.state_dict().values()))
    assert same_state(optimizer_tensors(opt2), reference_opt)

    # Resume from the save at step 3 (only some experts with state) and
    # train on: the same bits as the run that never stopped.
    model, opt = make_moe(0)
    train_moe(model, opt, 3, allowed=[0, 2, 5], seed=1)
    store3 = store + "-3"
    with tt.Checkpointer(model, opt, store=store3, store_bytes="64M") as ck:
        ck.save(3)
    train_moe(model, opt, 2, allowed=list(range(8)), seed=2)
    model3, opt3 = make_moe(7)
    try:
        with tt.Checkpointer(model3, opt3, store=store3) as ck:
            assert ck.restore() == 3
            assert sum(1 for p in model3.parameters() if p not in opt3.state) == 20  # as saved: no state there
            train_moe(model3, opt3, 2, allowed=list(range(8)), seed=2)
    finally:
        import os
        os.unlink(store3)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model3.state_dict().values()))
    assert same_state(optimizer_tensors(opt3), optimizer_tensors(opt))


def test_a_refused_restore_leaves_model_and_optimizer_as_they_were(store):
    model, opt = make_moe(0)
    with tt.Checkpointer(model, opt, store=store, store_bytes="64M") as ck:
        train_moe(model, opt, 2, allowed=[1, 3], seed=1)
        ck.save(2)
    # A trained model of another shape: one expert wider.
    model2, opt2 = make_moe(5)
    model2.experts[7][2] = torch.nn.Linear(16, 8, bias=False)
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-2)
    train_moe(model2, opt2, 1, allowed=[0, 3, 7], seed=3)
    before_model = [p.detach().clone() for p in model2.state_dict().values()]
    before_opt = optimizer_tensors(opt2)
    state_ids = {id(p): {k: id(v) for k, v in st.items()} for p, st in opt2.state.items()}
    with tt.Checkpointer(model2, opt2, store=store) as ck:
        with pytest.raises(tierckpt.StateMismatchError):
            ck.restore()
    assert all(torch.equal(a, b) for a, b in zip(before_model, model2.state_dict().values()))
    assert same_state(optimizer_tensors(opt2), before_opt)
    assert {id(p): {k: id(v) for k, v in st.items()} for p, st in opt2.state.items()} == state_ids
    # A fresh optimizer stays fresh.
    model3, _ = make_moe(5)
    model3.experts[7][2] = torch.nn.Linear(16, 8, bias=False)
    opt3 = torch.optim.Adam(model3.parameters(), lr=1e-2)
    with tt.Checkpointer(model3, opt3, store=store) as ck:
        with pytest.raises(tierckpt.StateMismatchError):
            ck.restore()
    assert len(opt3.state) == 0


def test_parameter_groups_added_later(store):
    torch.manual_seed(0)
    body, head = torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(body.parameters(), lr=0.1, momentum=0.9)
    model = torch.nn.Sequential(body, head)
    x = torch.randn(8, 4)
    with tt.Checkpointer(model, opt, store=store, store_bytes="64M") as ck:
        model(x).sum().backward()
        opt.step()
        ck.save(1)
        opt.add_param_group({"params": head.parameters(), "lr": 0.01})  # unfrozen later
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
        ck.save(2)
    want = optimizer_tensors(opt)

    torch.manual_seed(1)
    body2, head2 = torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)
    opt2 = torch.optim.SGD(body2.parameters(), lr=0.1, momentum=0.9)
    with tt.Checkpointer(torch.nn.Sequential(body2, head2), opt2, store=store) as ck:
        with pytest.raises(tierckpt.StateMismatchError, match=r"has 2 parameter group\(s\) of \[2, 2\] parameters, "
                                                              r"this one 1 of \[2\].*add_param_group"):
            ck.restore()
        assert len(opt2.state) == 0
        opt2.add_param_group({"params": head2.parameters(), "lr": 0.5})
        assert ck.restore() == 2
    assert same_state(optimizer_tensors(opt2), want) and opt2.param_groups[1]["lr"] == 0.01


def test_unicode_module_names(store):
    torch.manual_seed(0)
    model = torch.nn.ModuleDict({"编码器第一层": torch.nn.Linear(4, 4), "解码器" * 20: torch.nn.Linear(4, 2)})
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with tt.Checkpointer(model, opt, store=store, store_bytes="64M") as ck:
        for step in (1, 2):
            loss = model["解码器" * 20](model["编码器第一层"](torch.randn(3, 4))).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            ck.save(step)
    want = [p.detach().clone() for p in model.parameters()]
    torch.manual_seed(1)
    model2 = torch.nn.ModuleDict({"编码器第一层": torch.nn.Linear(4, 4), "解码器" * 20: torch.nn.Linear(4, 2)})
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-3)
    with tt.Checkpointer(model2, opt2, store=store) as ck:
        assert ck.restore() == 2
    assert all(torch.equal(a, b) for a, b in zip(want, model2.parameters()))


def test_thousands_of_tensors(store):
    torch.manual_seed(0)
    model = torch.nn.ModuleList(torch.nn.Linear(2, 2) for _ in range(2500))  # 5,000 parameters
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)  # 15,000 state tensors
    x = torch.randn(1, 2)
    with tt.Checkpointer(model, opt, store=store, store_bytes="256M") as ck:
        loss = sum(m(x).sum() for m in model)
        loss.backward()
        opt.step()
        ck.save(1)
        assert len(ck._regions) == 20000 and ck.meta_bytes > tierckpt.DEFAULT_META_BYTES
    want = optimizer_tensors(opt)
    torch.manual_seed(1)
    model2 = torch.nn.ModuleList(torch.nn.Linear(2, 2) for _ in range(2500))
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-3)
    with tt.Checkpointer(model2, opt2, store=store) as ck:
        assert ck.restore() == 1
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), model2.parameters()))
    assert same_state(optimizer_tensors(opt2), want)


def test_a_module_where_the_checkpoint_has_plain_values_or_the_reverse_is_refused_before_writing(store):
    model, _, _ = make(0)
    with tt.Checkpointer(state={"m": model}, rng=False, store=store, store_bytes="64M") as ck:
        ck.save(1)
    other, _, _ = make(3)
    before = [p.detach().clone() for p in other.parameters()]
    with tt.Checkpointer(state={"m": other.state_dict()}, rng=False, store=store) as ck:
        with pytest.raises(tierckpt.StateMismatchError, match="the checkpoint holds a module at 'm', this state "
                                                              "OrderedDict: restore into the kind of object"):
            ck.restore()
    assert all(torch.equal(a, b) for a, b in zip(before, other.parameters()))

    store2 = store + "-plain"
    try:
        with tt.Checkpointer(state={"m": model.state_dict()}, rng=False, store=store2, store_bytes="64M") as ck:
            ck.save(1)
        with tt.Checkpointer(state={"m": other}, rng=False, store=store2) as ck:
            with pytest.raises(tierckpt.StateMismatchError, match=r"holds plain values at 'm', this state a module "
                                                                  r"\(Sequential\)"):
                ck.restore()
    finally:
        import os
        os.unlink(store2)
    assert all(torch.equal(a, b) for a, b in zip(before, other.parameters()))


def test_a_module_whose_state_dict_hands_out_copies_is_restored_through_load_state_dict(store):
    class Copied(torch.nn.Module):  # a state-dict hook that clones: what packed parameters look like
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(4))
            self._register_state_dict_hook(lambda m, sd, prefix, local: sd.__setitem__(prefix + "w",
                                                                                        sd[prefix + "w"].clone()))

    torch.manual_seed(0)
    a = Copied()
    with tt.Checkpointer(a, rng=False, store=store, store_bytes="64M") as ck:
        ck.save(1)
        a.w.data.add_(1)  # saved anew: the copy is other memory every time
        ck.save(2)
    torch.manual_seed(1)
    b = Copied()
    with tt.Checkpointer(b, rng=False, store=store) as ck:
        assert ck.restore() == 2
    assert torch.equal(a.w, b.w)


def test_quantized_modules_keep_their_state_dict_versions(store):
    torch.backends.quantized.engine = "fbgemm" if "fbgemm" in torch.backends.quantized.supported_engines else \
        torch.backends.quantized.supported_engines[-1]
    torch.manual_seed(0)
    q = torch.nn.Sequential(torch.ao.nn.quantized.Linear(4, 3))
    with tt.Checkpointer(q, rng=False, store=store, store_bytes="64M") as ck:
        ck.save(1)
    torch.manual_seed(1)
    q2 = torch.nn.Sequential(torch.ao.nn.quantized.Linear(4, 3))
    q2[0].set_weight_bias(torch.quantize_per_tensor(torch.zeros(3, 4), 0.1, 0, torch.qint8), torch.zeros(3))
    with tt.Checkpointer(q2, rng=False, store=store) as ck:
        assert ck.restore() == 1
    x = torch.quantize_per_tensor(torch.randn(2, 4), 0.05, 64, torch.quint8)
    assert torch.equal(q(x).dequantize(), q2(x).dequantize())


def test_a_scheduler_of_another_class_is_refused_before_writing(store):
    model, opt, _ = make(0)
    with tt.Checkpointer(model, opt, torch.optim.lr_scheduler.StepLR(opt, 2), store=store, store_bytes="64M") as ck:
        train(model, opt, torch.optim.lr_scheduler.StepLR(opt, 2), 1)
        ck.save(1)
    model2, opt2, _ = make(4)
    before = [p.detach().clone() for p in model2.parameters()]
    lam = torch.optim.lr_scheduler.LambdaLR(opt2, lambda e: 1.0)
    with tt.Checkpointer(model2, opt2, lam, store=store) as ck:
        with pytest.raises(tierckpt.StateMismatchError, match=r"holds a torch.optim.lr_scheduler.StepLR at 'scheduler', "
                                                              r"this state a torch.optim.lr_scheduler.LambdaLR"):
            ck.restore()
    assert all(torch.equal(a, b) for a, b in zip(before, model2.parameters())) and len(opt2.state) == 0


def test_lbfgs_history_lists_are_restored(store):
    def run(model, opt, steps, seed):
        g = torch.Generator().manual_seed(seed)
        x, y = torch.randn(16, 4, generator=g), torch.randn(16, 1, generator=g)
        for _ in range(steps):
            def closure():
                opt.zero_grad()
                loss = ((model(x) - y) ** 2).mean()
                loss.backward()
                return loss
            opt.step(closure)

    def build(seed):
        torch.manual_seed(seed)
        m = torch.nn.Linear(4, 1)
        return m, torch.optim.LBFGS(m.parameters(), lr=0.5, history_size=5, max_iter=3)

    model, opt = build(0)
    run(model, opt, 4, 1)
    with tt.Checkpointer(model, opt, rng=False, store=store, store_bytes="64M") as ck:
        ck.save(4)
    run(model, opt, 2, 2)
    want = [p.detach().clone() for p in model.parameters()]
    for other_steps in (0, 1):  # a fresh LBFGS, and one whose history has another length
        model2, opt2 = build(3)
        run(model2, opt2, other_steps, 5)
        with tt.Checkpointer(model2, opt2, rng=False, store=store) as ck:
            assert ck.restore() == 4
        run(model2, opt2, 2, 2)
        assert all(torch.equal(a, b) for a, b in zip(want, model2.parameters())), other_steps


def test_restore_right_after_a_save_waits_for_its_commit(store):
    model, opt, sched = make(0)
    with tt.Checkpointer(model, opt, sched, store=store, store_bytes="64M") as ck:
        train(model, opt, sched, 1)
        ck.save(1)
        assert ck.restore() == 1  # no "a save is in flight"


def test_an_elastic_checkpoint_of_two_data_parallel_ranks_restores_on_one_with_lazy_adam_state(store, tmp_path):
    from conftest import run_two_ranks

    r = run_two_ranks("two_ranks_elastic_torch.py", store, str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    for rank in (0, 1):
        assert (tmp_path / f"rank{rank}.txt").read_text() == f"rank {rank} saved 6\n"
    model, opt, sched = make(0)
    train(model, opt, sched, 3)
    reference = flat(model, opt)  # what both ranks held
    model2, opt2, sched2 = make(99)  # other weights, and Adam has no state yet
    assert not opt2.state
    with tt.Checkpointer(model2, opt2, sched2, store=store, elastic=True, rng=False) as ck:
        assert ck.restore() == 6
        assert ck.restore_source == "local"
    assert same(flat(model2, opt2), reference)
    assert sched2.last_epoch == 3
