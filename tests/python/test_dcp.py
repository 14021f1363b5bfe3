"""tierckpt.dcp: the staging layout with real tensors (any PyTorch), the
storage through a real node store, and, where PyTorch has a working
torch.distributed.checkpoint (>= 2.2), dcp.save/dcp.load through it. The DCP
tests are skipped, visibly, elsewhere (Debian 12's PyTorch is 1.13)."""
import contextlib
import os
import re
import tempfile
import threading

import pytest

torch = pytest.importorskip("torch", reason="PyTorch not installed (apt-get install python3-torch)")

import tierckpt  # noqa: E402
import tierckpt.dcp as tdcp  # noqa: E402
from conftest import run_two_ranks

needs_dcp = pytest.mark.skipif(not tdcp.AVAILABLE, reason=tdcp.UNAVAILABLE_REASON or "")


# ---- the layout: no DCP needed


def sample():
    torch.manual_seed(3)
    wide = torch.randn(6, 10)
    return [
        (("w", None), torch.randn(4, 5)),
        (("w", (4, 0)), torch.randn(3, 5)),  # another chunk of the same name
        (("half", None), torch.randn(7).to(torch.bfloat16)),
        (("steps", None), torch.arange(9, dtype=torch.int64)),
        (("mask", None), torch.tensor([True, False, True])),
        (("empty", None), torch.empty(0, 3)),
        (("view", None), wide[1:5, 2:8:2]),  # not contiguous
        (("blob", None), b"\x00pickled\xffbytes"),
    ]


def test_pack_round_trip_is_bit_identical():
    items = sample()
    buf = bytearray(1 << 16)
    used = tdcp.pack(buf, items, {"note": 7})
    assert 0 < used <= len(buf)
    entries, extra = tdcp.read_index(buf)
    assert extra == {"note": 7}
    assert list(entries) == [k for k, _ in items]
    for key, value in items:
        e = entries[key]
        if isinstance(value, torch.Tensor):
            got = tdcp.item_tensor(buf, e)
            assert got.dtype == value.dtype and got.shape == value.shape
            assert torch.equal(got, value)
            assert e[2] % 64 == 0  # aligned
        else:
            assert bytes(tdcp.item_bytes(buf, e)) == value


def test_pack_refuses_a_small_capacity_before_writing():
    buf = bytearray(1024)
    with pytest.raises(tierckpt.TierckptError) as e:
        tdcp.pack(buf, [(("big", None), torch.zeros(1024))])
    assert "capacity" in str(e.value) and "capacity=" in str(e.value)
    assert buf == bytearray(1024)


def test_read_index_refuses_what_pack_did_not_write():
    with pytest.raises(tierckpt.TierckptError, match="no tierckpt.dcp checkpoint"):
        tdcp.read_index(bytearray(256))


def test_capacity_sizes():
    assert tdcp._size("64M") == 64 << 20 and tdcp._size(4096) == 4096 and tdcp._size("2G") == 2 << 30
    with pytest.raises(tierckpt.TierckptError, match="capacity="):
        tdcp._size("lots")


def test_storage_saves_and_restores_the_layout(store):
    items = sample()
    with tdcp.Storage("1M", store=store, store_bytes="16M") as st:
        assert st.restore() is None
        tdcp.pack(st._buf, items, {"metadata": b"x"})
        st._save(5)
        assert st.version == 5
    with tdcp.Storage(1 << 20, store=store) as st:
        assert st.restore() == 5
        entries, extra = tdcp.read_index(st._buf)
        assert extra == {"metadata": b"x"}
        assert torch.equal(tdcp.item_tensor(st._buf, entries[("view", None)]), items[6][1])


def test_storage_refuses_another_capacity(store):
    with tdcp.Storage("1M", store=store, store_bytes="16M") as st:
        tdcp.pack(st._buf, sample())
        st._save(1)
    with tdcp.Storage("2M", store=store) as st:
        with pytest.raises(tierckpt.StateMismatchError):
            st.restore()


# ---- a save is agreed on before it is made (what Writer.write_data does)


def test_save_outcome_says_which_rank_failed():
    assert tdcp._save_outcome(None, True, 4, 3) is None
    own = tdcp._save_outcome(tierckpt.TierckptError(2, "too big"), False, 4, 3)
    assert own.code == 2 and "this rank could not stage" in own.message and "version 3 stays the newest" in own.message
    other = tdcp._save_outcome(None, False, 4, 0)
    assert "another rank could not stage" in other.message and "no rank saved it" in other.message
    assert tdcp._save_outcome(ValueError("x"), False, 1, 0).code == 8


def test_carry_and_first_error():
    assert tdcp._carry(lambda a: a + 1, 1) == (2, None)
    assert tdcp._carry(lambda: {}["k"]) == (None, "KeyError: 'k'")
    assert tdcp._first_error([None, "", "ValueError: a", "KeyError: b"]) == (2, "ValueError: a")
    assert tdcp._first_error([None, None]) is None


def test_a_failed_stage_saves_nothing_and_keeps_the_last_good_version(store):
    good = torch.arange(16, dtype=torch.float32)
    with tdcp.Storage(4096, store=store, store_bytes="16M") as st:
        assert st._save_agreed(None, lambda v: tdcp.pack(st._buf, [(("x", None), good)], {"v": v})) == 1

        def scribble_then_fail(v):
            st._buf[:64] = b"\xff" * 64  # half-staged, as a failing planner could leave it
            tdcp.pack(st._buf, [(("x", None), torch.zeros(4096))])

        with pytest.raises(tierckpt.TierckptError, match=r"could not stage.*capacity.*no rank saved it") as e:
            st._save_agreed(None, scribble_then_fail)
        assert e.value.code == 2 and st.version == 1
        assert st._restored is None  # the staging region was overwritten: a load must restore again
        assert st._save_agreed(3, lambda v: tdcp.pack(st._buf, [(("x", None), good * 3)], {"v": v})) == 3
        with pytest.raises(tierckpt.TierckptError, match="ValueError: no"):
            st._save_agreed(None, lambda v: (_ for _ in ()).throw(ValueError("no")))
        assert st.version == 3
    with tdcp.Storage(4096, store=store) as st:
        assert st.restore() == 3
        entries, extra = tdcp.read_index(st._buf)
        assert extra == {"v": 3} and torch.equal(tdcp.item_tensor(st._buf, entries[("x", None)]), good * 3)


def test_two_ranks_agree_to_skip_a_save_one_could_not_stage(store):
    r = run_two_ranks("two_ranks_dcp.py", store)
    assert r.returncode == 0, r.stdout + r.stderr
    # mpirun forwards the ranks' output in pieces: two lines may run together
    # ("...intact Truerank 1 ..."), so the pattern ends on the exact word.
    lines = sorted(re.findall(r"rank \d second \S+ kept \d+ restored \S+ intact (?:True|False)", r.stdout))
    assert lines == ["rank 0 second refused:other kept 1 restored 1 intact True",
                     "rank 1 second refused:own kept 1 restored 1 intact True"], r.stdout + r.stderr


def test_collectives_from_another_thread_need_thread_multiple(store):
    with tdcp.Storage(4096, store=store, store_bytes="16M") as st:
        st._check_thread("save")  # MPI's main thread: always allowed
        caught = []

        def other():
            try:
                st._check_thread("save")
                st._check_thread("wait")
            except tierckpt.TierckptError as e:
                caught.append(e)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        if tdcp._lib_thread_level() < tierckpt._lib.MPI_THREAD_MULTIPLE:
            assert len(caught) == 1 and "MPI_THREAD_MULTIPLE" in caught[0].message
        else:
            assert not caught


@pytest.mark.skipif(tdcp.AVAILABLE, reason="this PyTorch has torch.distributed.checkpoint")
def test_without_dcp_the_classes_say_what_they_need(store):
    with pytest.raises(ImportError, match=r"needs PyTorch >= 2\.2"):
        tdcp.Writer(None)
    with pytest.raises(ImportError, match=r"needs PyTorch >= 2\.2"):
        tdcp.Reader(None)


# ---- with torch.distributed.checkpoint


@pytest.fixture
def group():
    """A one-rank gloo group (dcp.save/load and async_save want one)."""
    import torch.distributed as dist

    if dist.is_initialized():
        yield
        return
    fd, path = tempfile.mkstemp(prefix="tierckpt-dcp-pg-")
    os.close(fd)
    dist.init_process_group("gloo", init_method=f"file://{path}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()
        with contextlib.suppress(FileNotFoundError):  # c10d's FileStore removes it itself
            os.unlink(path)


def make(seed, hidden=16):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    return model, opt


def train(model, opt, steps):
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        loss = (model(torch.randn(4, 8, generator=g)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def states(model, opt):
    from torch.distributed.checkpoint.state_dict import get_state_dict

    msd, osd = get_state_dict(model, opt)
    return {"model": msd, "optim": osd}


def flat(sd, prefix=""):
    out = {}
    for k, v in sd.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        elif isinstance(v, list):
            out.update(flat(dict(enumerate(v)), f"{prefix}{k}."))
        else:
            out[prefix + str(k)] = v.clone() if isinstance(v, torch.Tensor) else v
    return out


def assert_loads(store, want):
    """dcp.load of the store's newest checkpoint into a model of other
    weights gives want's tensors, bit for bit."""
    import torch.distributed.checkpoint as dcp

    other, _ = make(5)
    with tdcp.Storage("8M", store=store) as st:
        sd = {"model": other.state_dict()}
        dcp.load(sd, storage_reader=st.reader())
    assert all(torch.equal(want[k], v) for k, v in other.state_dict().items())


@needs_dcp
def test_dcp_round_trip_is_bit_identical(store, group):
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import set_state_dict

    model, opt = make(0)
    train(model, opt, 3)
    with tdcp.Storage("8M", store=store, store_bytes="64M") as st:
        sd = states(model, opt)
        sd["extra"] = {"epoch": 3, "name": "run7", "blob": b"abc"}  # non-tensors: DCP BytesIO items
        dcp.save(sd, storage_writer=st.writer())
        saved = flat(sd)
        v = st.version

    model2, opt2 = make(99)
    with tdcp.Storage("8M", store=store) as st:
        assert st.restore() == v
        sd2 = states(model2, opt2)
        sd2["extra"] = {"epoch": 0, "name": "", "blob": b""}
        dcp.load(sd2, storage_reader=st.reader())
        set_state_dict(model2, opt2, model_state_dict=sd2["model"], optim_state_dict=sd2["optim"])
    got = flat(states(model2, opt2))
    got.update(flat({"extra": sd2["extra"]}))
    assert set(got) == set(saved)
    for k, want in saved.items():
        if isinstance(want, torch.Tensor):
            assert torch.equal(got[k], want), k
        else:
            assert got[k] == want, k


@needs_dcp
def test_dcp_refuses_a_changed_shape(store, group):
    import torch.distributed.checkpoint as dcp

    model, opt = make(0)
    with tdcp.Storage("8M", store=store, store_bytes="64M") as st:
        dcp.save({"model": model.state_dict()}, storage_writer=st.writer())
    other, _ = make(1, hidden=32)
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with tdcp.Storage("8M", store=store) as st:
        with pytest.raises(BaseException, match=r"(?i)mismatch|does not match|size"):  # DCP's CheckpointException
            dcp.load({"model": other.state_dict()}, storage_reader=st.reader())
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())


@needs_dcp
def test_dcp_capacity_outgrown_saves_nothing_and_the_last_good_one_loads(store, group):
    import torch.distributed.checkpoint as dcp

    small, _ = make(0)  # about 2 KB packed
    big, _ = make(0, hidden=1024)  # about 45 KB of tensors
    want = {k: v.clone() for k, v in small.state_dict().items()}
    with tdcp.Storage(16384, store=store, store_bytes="64M") as st:
        w = st.writer()
        dcp.save({"model": small.state_dict()}, storage_writer=w)
        assert st.version == 1
        # DCP wraps every rank's error in CheckpointException(BaseException)
        with pytest.raises(BaseException, match="capacity"):
            dcp.save({"model": big.state_dict()}, storage_writer=w)
        assert st.version == 1
    other, _ = make(7)
    with tdcp.Storage(16384, store=store) as st:
        assert st.restore() == 1
        dcp.load({"model": other.state_dict()}, storage_reader=st.reader())
    assert all(torch.equal(want[k], v) for k, v in other.state_dict().items())


@needs_dcp
def test_dcp_load_without_a_checkpoint_says_so(store, group):
    import torch.distributed.checkpoint as dcp

    model, _ = make(0)
    with tdcp.Storage(16384, store=store, store_bytes="64M") as st:
        # newer DCP loses read_metadata's message in some versions ("metadata is None")
        with pytest.raises(BaseException, match="no checkpoint|metadata is None"):
            dcp.load({"model": model.state_dict()}, storage_reader=st.reader())


@needs_dcp
def test_dcp_writer_reuse_forgets_the_checkpoint_id(store, group):
    import torch.distributed.checkpoint as dcp

    if "checkpoint_id" not in __import__("inspect").signature(dcp.save).parameters:
        pytest.skip(f"torch {torch.__version__}: dcp.save takes no checkpoint_id")
    model, _ = make(0)
    with tdcp.Storage("1M", store=store, store_bytes="64M") as st:
        w = st.writer()
        dcp.save({"model": model.state_dict()}, storage_writer=w, checkpoint_id=5)
        dcp.save({"model": model.state_dict()}, storage_writer=w)
        assert st.version == 6


@needs_dcp
def test_dcp_async_save(store, group):
    import torch.distributed.checkpoint as dcp

    if not hasattr(dcp, "async_save"):
        pytest.skip(f"torch {torch.__version__} has no dcp.async_save")
    model, _ = make(0)
    want = {k: v.clone() for k, v in model.state_dict().items()}
    with tdcp.Storage("8M", store=store, store_bytes="64M") as st:
        fut = dcp.async_save({"model": model.state_dict()}, storage_writer=st.writer())
        if tdcp._lib_thread_level() < tierckpt._lib.MPI_THREAD_MULTIPLE:
            with pytest.raises(BaseException, match="MPI_THREAD_MULTIPLE"):
                fut.result()
            return
        fut.result()
    assert_loads(store, want)


def test_async_staging_copies_every_tensor():
    """What dcp.async_save saves in the background (Writer.stage): new CPU
    tensors, so later changes to the live ones do not reach it."""
    t = torch.arange(4.0)
    sd = {"m": {"w": t, "nested": [t, (t, 3)]}, "step": 5, "blob": b"x"}
    staged = tdcp._stable_copy(sd)
    t.add_(100)
    assert staged["m"]["w"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert staged["m"]["nested"][1][0].tolist() == [0.0, 1.0, 2.0, 3.0] and staged["m"]["nested"][1][1] == 3
    assert staged["m"]["w"].data_ptr() != t.data_ptr() and staged["step"] == 5 and staged["blob"] == b"x"


@needs_dcp
def test_dcp_async_save_keeps_the_state_of_the_call(store, group):
    """A tensor changed after dcp.async_save returned does not reach that
    checkpoint: the background save is held until the change is made."""
    import torch.distributed.checkpoint as dcp

    if not hasattr(dcp, "async_save"):
        pytest.skip(f"torch {torch.__version__} has no dcp.async_save")
    if tdcp._lib_thread_level() < tierckpt._lib.MPI_THREAD_MULTIPLE:
        pytest.skip("async_save needs MPI_THREAD_MULTIPLE (import mpi4py first)")
    model, _ = make(0)
    want = {k: v.clone() for k, v in model.state_dict().items()}
    changed = threading.Event()
    with tdcp.Storage("8M", store=store, store_bytes="64M") as st:
        writer = st.writer()
        write_data = writer.write_data

        def held(*args, **kwargs):
            assert changed.wait(60)
            return write_data(*args, **kwargs)

        writer.write_data = held
        fut = dcp.async_save({"model": model.state_dict()}, storage_writer=writer)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)  # after async_save returned, before its background save packs
        changed.set()
        fut.result()
    assert_loads(store, want)
