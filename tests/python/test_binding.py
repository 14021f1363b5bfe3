"""The tierckpt Python binding over a real libtierckpt and a real node store
(one MPI process; tests/python/two_ranks.py runs two under mpirun)."""
import os
import pickle
import re
import subprocess
import sys
import threading

import pytest

import tierckpt
from tierckpt import StateMismatchError, TierckptError, _lib
from conftest import run_two_ranks

np = pytest.importorskip("numpy")


def open_ck(store, **kw):
    return tierckpt.Checkpointer(store=store, store_bytes="64M", **kw)


def test_library_loads_and_reports_itself():
    assert tierckpt.library_version() == tierckpt.__version__ or tierckpt.__version__ == "unknown"
    assert isinstance(tierckpt.features(), list)


def test_round_trip_in_place(store):
    a = np.arange(1000, dtype=np.float32)
    b = bytearray(b"x" * 64)
    nested = {"c": np.ones((3, 4)), "note": "hello"}
    state = {"a": a, "b": b, "epoch": 5, "nested": nested, "t": (1, "two")}
    with open_ck(store) as ck:
        ck.save(7, state)
        ck.wait()
        st = ck.stats
        assert st.version == 7 and st.committed and st.bytes >= a.nbytes + len(b)

    a2 = np.zeros(1000, dtype=np.float32)
    b2 = bytearray(64)
    nested2 = {"c": np.zeros((3, 4)), "note": ""}
    state2 = {"a": a2, "b": b2, "epoch": 0, "nested": nested2}
    with open_ck(store) as ck:
        assert ck.restore(state2) == 7
        assert ck.restore_source == "local"
    assert state2["a"] is a2 and state2["b"] is b2 and state2["nested"] is nested2  # filled in place
    assert np.array_equal(a2, a) and b2 == b and np.array_equal(nested2["c"], nested["c"])
    assert state2["epoch"] == 5 and nested2["note"] == "hello" and state2["t"] == (1, "two")


def test_no_checkpoint_gives_none_and_leaves_the_state(store):
    a = np.full(16, 3.0)
    state = {"a": a, "epoch": 1}
    with open_ck(store) as ck:
        assert ck.restore(state) is None
        assert ck.restore_source == "none"
    assert (a == 3.0).all() and state["epoch"] == 1


def test_saves_read_the_registered_memory(store):
    a = np.zeros(8)
    with open_ck(store) as ck:
        ck.save(1, {"a": a})
        a[:] = 42  # changed in place after the first save
        ck.save(2, {"a": a})
    out = np.zeros(8)
    with open_ck(store) as ck:
        assert ck.restore({"a": out}) == 2
    assert (out == 42).all()


def test_a_state_that_changes_between_saves_is_registered_anew(store):
    w = np.zeros(8)
    with open_ck(store) as ck:
        ck.save(1, {"weights": w})
        first = ck._regions[0].ptr
        w2 = np.full(8, 2.0)  # replaced, not updated in place
        ck.save(2, {"weights": w2})
        assert ck._regions[0].ptr == w2.ctypes.data != first
        extra = np.full(2, 3.0)  # an entry added
        ck.save(3, {"weights": w2, "extra": extra})
        assert [r.path for r in ck._regions] == ["weights", "extra"]
    out = {"weights": np.zeros(8), "extra": np.zeros(2)}
    with open_ck(store) as ck:
        assert ck.restore(out) == 3
    assert (out["weights"] == 2).all() and (out["extra"] == 3).all()


def test_the_fetch_api_reads_a_checkpoint_before_anything_is_registered(store):
    from tierckpt import _lib
    import ctypes

    with open_ck(store) as ck:
        ck.save(4, {"a": np.arange(4, dtype=np.int64), "b": bytearray(b"xyz")})
    with open_ck(store) as ck:
        lib, h = _lib.get(), ck._h()
        found, version = ctypes.c_int(0), ctypes.c_uint64(0)
        assert lib.tierckpt_fetch(h, ctypes.byref(found), ctypes.byref(version)) == 0
        assert (found.value, version.value) == (1, 4)
        n = ctypes.c_size_t(0)
        assert lib.tierckpt_fetched_count(h, ctypes.byref(n)) == 0 and n.value == 3
        name, size = ctypes.c_char_p(), ctypes.c_uint64(0)
        regions = []
        for i in range(3):
            assert lib.tierckpt_fetched_region(h, i, ctypes.byref(name), ctypes.byref(size)) == 0
            regions.append((name.value, size.value))
        assert regions[0][0] == b"tierckpt.meta" and [r[1] for r in regions[1:]] == [32, 3]
        buf = (ctypes.c_char * 16)()
        assert lib.tierckpt_fetched_read(h, regions[1][0], 8, buf, 16) == 0
        assert np.frombuffer(bytes(buf), dtype=np.int64).tolist() == [1, 2]
        assert lib.tierckpt_fetched_read(h, regions[1][0], 24, buf, 16) == 1  # beyond the region
        assert "lie beyond it" in lib.tierckpt_last_error().decode()
        assert lib.tierckpt_fetched_read(h, b"no such", 0, buf, 1) == 4
        assert lib.tierckpt_fetch_drop(h) == 0
        assert lib.tierckpt_fetched_count(h, ctypes.byref(n)) == 4  # none held any more
        # The Python restore is fetch, check, register, restore.
        out = {"a": np.zeros(4, dtype=np.int64), "b": bytearray(3)}
        assert ck.restore(out) == 4
    assert out["a"].tolist() == [0, 1, 2, 3] and out["b"] == b"xyz"


def test_a_registered_bytearray_cannot_be_resized(store):
    b = bytearray(16)
    with open_ck(store) as ck:
        ck.save(1, {"b": b})
        with pytest.raises(BufferError):
            b.extend(b"more")


def test_a_checkpoint_of_other_dtype_is_refused_and_nothing_written(store):
    with open_ck(store) as ck:
        ck.save(3, {"w": np.ones(4, dtype=np.float32)})
    w = np.arange(4, dtype=np.int32)  # the same 16 bytes, another dtype
    with open_ck(store) as ck:
        with pytest.raises(StateMismatchError, match=r"'w' \(shape \[4\], dtype int32, 16 bytes\) differs"):
            ck.restore({"w": w})
    assert list(w) == [0, 1, 2, 3]


def test_a_checkpoint_of_other_names_or_count_is_refused(store):
    with open_ck(store) as ck:
        ck.save(3, {"w": np.ones(4), "v": np.ones(2)})
    with open_ck(store) as ck:
        with pytest.raises(StateMismatchError, match="holds 2 tensors and buffers, this state 1"):
            ck.restore({"w": np.zeros(4)})
    with open_ck(store) as ck:
        with pytest.raises(StateMismatchError, match="'x'.*differs"):
            ck.restore({"x": np.zeros(4), "v": np.zeros(2)})


def test_the_small_object_room_grows_and_restore_takes_its_size_from_the_checkpoint(store):
    a = np.ones(2)
    with open_ck(store, meta_bytes=4096) as ck:
        ck.save(1, {"a": a, "blob": "x" * 100})
        assert ck.meta_bytes == 4096
        ck.save(2, {"a": a, "blob": "x" * 100000})
        assert ck.meta_bytes == 262144  # the next power of two from 64 KiB up, twice the pickle
    state = {"a": np.zeros(2), "blob": None}
    with open_ck(store) as ck:  # another meta_bytes: the checkpoint's is used
        assert ck.restore(state) == 2
        assert ck.meta_bytes == 262144
    assert state["blob"] == "x" * 100000 and (state["a"] == 1).all()


@pytest.mark.parametrize(
    "step, match",
    [(-1, "step=-1"), (True, "step=True"), (1.5, "step=1.5"), (2**64, "step=")],
)
def test_bad_steps_are_refused(store, step, match):
    with open_ck(store) as ck:
        with pytest.raises(TierckptError, match=match):
            ck.save(step, {"a": np.zeros(1)})


def test_versions_must_grow(store):
    state = {"a": np.zeros(1)}
    with open_ck(store) as ck:
        ck.save(5, state)
        with pytest.raises(TierckptError) as e:
            ck.save(5, state)
        assert e.value.code == 1 and "5" in e.value.message


def test_bad_state_and_buffers_are_refused(store):
    with open_ck(store) as ck:
        with pytest.raises(TierckptError, match="must be a mapping"):
            ck.save(1, [np.zeros(2)])
        with pytest.raises(TierckptError, match="top-level names must be strings"):
            ck.save(1, {1: np.zeros(2)})
        with pytest.raises(TierckptError, match=r"'a': the array's elements overlap or leave gaps in memory "
                                                 r"\(shape \[4\], strides \[32\]\); checkpoint the array it is a view of"):
            ck.save(1, {"a": np.zeros((4, 4))[:, 1]})
        with pytest.raises(TierckptError, match="'b': the buffer is not C-contiguous"):
            ck.save(1, {"b": memoryview(bytearray(8))[::2]})


def test_arrays_in_any_dense_order_are_restored_in_place_bit_exact(store):
    rng = np.random.default_rng(5)
    base = rng.standard_normal((3, 4, 5))
    state = {"f": np.asfortranarray(base), "t": base.copy().transpose(2, 0, 1), "r": base.copy()[::-1]}
    want = {k: v.copy() for k, v in state.items()}
    with open_ck(store) as ck:
        ck.save(1, state)
        assert [r.layout for r in ck._regions] == [(1, 3, 12), (1, 20, 5), (-20, 5, 1)]
    out = {"f": np.asfortranarray(np.zeros((3, 4, 5))), "t": np.zeros((3, 4, 5)).transpose(2, 0, 1),
           "r": np.zeros((3, 4, 5))[::-1]}
    ptrs = {k: v.ctypes.data for k, v in out.items()}
    with open_ck(store) as ck:
        assert ck.restore(out) == 1
    for k in out:
        assert out[k].ctypes.data == ptrs[k] and np.array_equal(out[k], want[k])
    with open_ck(store) as ck:  # a C-ordered array where the checkpoint holds a Fortran-ordered one
        wrong = {"f": np.zeros((3, 4, 5)), "t": out["t"], "r": out["r"]}
        with pytest.raises(StateMismatchError, match=r"'f' \(shape \[3, 4, 5\], dtype float64, 480 bytes\): the "
                                                     r"checkpoint holds it in another memory layout \(strides \[1, 3, 12\]\)"):
            ck.restore(wrong)
    assert not wrong["f"].any()


def test_names_are_any_unicode_of_any_length(store):
    long = "层" * 40  # 120 bytes of UTF-8
    state = {"编码器第一层": np.ones(3), long: np.full(2, 7.0), "x\0y": np.zeros(1), "a" * 300: np.ones(1)}
    with open_ck(store) as ck:
        ck.save(1, state)
        names = [r.name for r in ck._regions]
        assert all(len(n) <= 55 for n in names) and len(set(names)) == 4
        for n in names:
            n.decode("utf-8")  # cut at character boundaries
        ck.save(2, state)  # and the checkpointer goes on
    out = {k: np.zeros_like(v) for k, v in state.items()}
    with open_ck(store) as ck:
        assert ck.restore(out) == 2
    assert (out["编码器第一层"] == 1).all() and (out[long] == 7).all()
    other = {("编码器第二层" if k == "编码器第一层" else k): v for k, v in out.items()}  # the same order
    with open_ck(store) as ck:
        with pytest.raises(StateMismatchError, match="'编码器第二层'.*differs from the checkpoint's entry at the same "
                                                     "place \\('编码器第一层'"):
            ck.restore(other)


def test_tied_buffers_are_one_region(store):
    w = np.arange(6.0)
    with open_ck(store) as ck:
        ck.save(1, {"enc": w, "dec": w})
        assert len(ck._regions) == 1
    a = np.zeros(6)
    out = {"enc": a, "dec": a}
    with open_ck(store) as ck:
        assert ck.restore(out) == 1
    assert out["dec"] is a and (a == np.arange(6.0)).all()


def test_read_only_buffers_are_small_objects(store):
    state = {"b": b"immutable", "r": np.frombuffer(b"\x01\x02", dtype=np.uint8)}
    with open_ck(store) as ck:
        ck.save(1, state)
        assert ck._regions == []  # nothing registered in place
    out = {"b": None, "r": None}
    with open_ck(store) as ck:
        assert ck.restore(out) == 1
    assert out["b"] == b"immutable" and list(out["r"]) == [1, 2]


def test_structured_arrays_are_restored_in_place(store):
    rec = np.zeros(3, dtype=[("x", "<i4"), ("y", "<f8")])
    rec["x"] = [1, 2, 3]
    with open_ck(store) as ck:
        ck.save(1, {"rec": rec})
    out = np.zeros(3, dtype=rec.dtype)
    with open_ck(store) as ck:
        assert ck.restore({"rec": out}) == 1
    assert list(out["x"]) == [1, 2, 3]


def test_runtime_errors_carry_its_message():
    with pytest.raises(TierckptError, match="transport=carrier-pigeon: expected ucx, ofi or auto") as e:
        tierckpt.Checkpointer(store="/dev/shm/tierckpt-pytest-unused", transport="carrier-pigeon")
    assert e.value.code == 1 and e.value.status == "TIERCKPT_ERR_INVALID"


def test_errors_survive_pickling():
    # torch.distributed.checkpoint gathers each rank's exception with pickle.
    for e in (TierckptError(5, "checksum mismatch"), StateMismatchError("tensor 'w' has shape (3,), not (4,)")):
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e)
        assert (back.code, back.status, back.message, str(back)) == (e.code, e.status, e.message, str(e))


def test_without_plugin_or_settings_says_what_to_do(monkeypatch):
    monkeypatch.delenv("TIERCKPT_STORE", raising=False)
    with pytest.raises(TierckptError, match="srun --ckpt-mem=SIZE.*store="):
        tierckpt.Checkpointer()
    with pytest.raises(TierckptError, match="meta_bytes=8"):
        tierckpt.Checkpointer(store="/dev/shm/x", meta_bytes=8)


def test_closed_checkpointer_refuses(store):
    ck = open_ck(store)
    ck.close()
    ck.close()  # twice is fine
    assert ck.closed
    with pytest.raises(TierckptError, match="closed"):
        ck.save(1, {"a": np.zeros(1)})


def test_the_gil_is_released_during_a_save(store):
    big = np.ones(32 << 20, dtype=np.uint8)
    ran = []
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            ran.append(1)

    with tierckpt.Checkpointer(store=store, store_bytes="256M") as ck:
        ck.save(1, {"big": big})  # registers
        t = threading.Thread(target=spin)
        t.start()
        try:
            progressed = False
            for v in range(2, 12):  # a thread holding the GIL would starve spin() during every call
                before = len(ran)
                ck.save(v, {"big": big})
                if len(ran) > before:
                    progressed = True
                    break
        finally:
            stop.set()
            t.join()
    assert progressed, "no other Python thread ran during ten saves of 32 MiB"


def run_py(code, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=120)


def test_with_mpi4py_initialising_mpi(store):
    pytest.importorskip("mpi4py")
    code = f"""
from mpi4py import MPI
import numpy as np, tierckpt
a = np.arange(5.0)
with tierckpt.Checkpointer(comm=MPI.COMM_WORLD, store={store!r}, store_bytes="64M") as ck:
    ck.save(3, {{"a": a}})
b = np.zeros(5)
with tierckpt.Checkpointer(store={store!r}) as ck:
    print("restored", ck.restore({{"a": b}}), b.tolist(), MPI.Is_initialized(), MPI.Is_finalized())
"""
    r = run_py(code)
    assert r.returncode == 0, r.stderr
    assert "restored 3 [0.0, 1.0, 2.0, 3.0, 4.0] True False" in r.stdout


def test_comm_must_be_an_mpi4py_communicator(store):
    with pytest.raises(TierckptError, match="comm= takes an mpi4py communicator"):
        open_ck(store, comm=42)


def test_a_missing_library_is_named():
    r = run_py("import tierckpt; tierckpt.library_version()", {"TIERCKPT_LIBRARY": "/nonexistent/libtierckpt.so.0"})
    assert r.returncode != 0
    assert "cannot load libtierckpt (/nonexistent/libtierckpt.so.0: no such file)" in r.stderr


def test_two_ranks_under_mpirun(store):
    r = run_two_ranks("two_ranks.py", store)
    assert r.returncode == 0, r.stdout + r.stderr
    # mpirun forwards each rank's output in pieces: two ranks' lines can run
    # together, so pick the reports out of the text rather than its lines.
    lines = sorted(re.findall(r"rank \d restored \S+ \[[^\]]*\] epoch \d+ (?:accepted|refused:another-rank|refused:names-a)",
                              r.stdout))
    assert lines == ["rank 0 restored 4 [0.0, 0.0] epoch 4 refused:another-rank",
                     "rank 1 restored 4 [1.0, 1.0] epoch 4 refused:names-a"], r.stdout + r.stderr


def test_fetch_then_restore_writes_nothing_when_one_rank_does_not_match(store):
    r = run_two_ranks("two_ranks_fetch.py", store)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = sorted(re.findall(r"rank \d rc=\d+ \S+ untouched=(?:True|False)", r.stdout))
    assert lines == ["rank 0 rc=1 another-rank untouched=True", "rank 1 rc=1 mismatch untouched=True"], \
        r.stdout + r.stderr


def test_a_save_whose_layout_or_regions_a_rank_breaks_fails_on_every_rank(store, tmp_path):
    r = run_two_ranks("two_ranks_layout.py", store, str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = []
    for rank in (0, 1):
        lines += (tmp_path / f"rank{rank}.txt").read_text().splitlines()
    lines.sort()
    overlap = ("save(2): ranks 0 and 1 both hold bytes [40, 48) of the global array 'w'; slices must not overlap; "
               "nothing was saved")
    assert lines == [
        "rank 0 empty rc=1 save(1): rank 1 has no region registered; nothing was saved",
        f"rank 0 overlap rc=1 {overlap}",
        "rank 0 restored rc=0 version=3 same=True step=41",
        "rank 0 tiled rc=0 ",
        "rank 0 wait rc=0 ",
        "rank 1 empty rc=1 save(1): rank 1 has no region registered; nothing was saved",
        f"rank 1 overlap rc=1 {overlap}",
        "rank 1 restored rc=0 version=3 same=True step=41",
        "rank 1 tiled rc=0 ",
        "rank 1 wait rc=0 ",
    ], r.stdout + r.stderr


def test_pyproject_version_is_the_projects():
    tomllib = pytest.importorskip("tomllib", reason="Python < 3.11 has no tomllib")
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "python", "pyproject.toml"), "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    if tierckpt.__version__ == "unknown":
        pytest.skip("an unbuilt tree: no _config.py with configure's version")
    assert version == tierckpt.__version__ == tierckpt.library_version()


def test_a_number_of_steps_is_due_at_its_multiples(store):
    state = {"w": np.zeros(1024, dtype=np.float32)}
    with open_ck(store, ckpt_interval=3) as c:
        saved = [s for s in range(1, 11) if c.save_if_due(s, state)]
        assert saved == [3, 6, 9]
        sch = c.schedule
        assert (sch.mode, sch.steps, sch.next_due_step, sch.bound) == ("steps", 3, 12, "given")


def test_auto_saves_after_the_first_step_then_follows_daly(store):
    state = {"w": np.zeros(1 << 20, dtype=np.float32)}
    with open_ck(store, ckpt_interval="auto", node_mtbf="1h") as c:
        assert c.schedule.decisions == 0
        assert not c.due(1)
        assert c.save_if_due(2, state)
        sch = c.schedule
        assert sch.mode == "auto" and sch.decisions == 1
        assert sch.job_mtbf_s == 3600  # one node
        assert sch.stall_s > 0 and sch.step_s >= 0
        # Daly's estimate (tierckpt(7)) of the stall measured, rounded to whole steps.
        r = sch.stall_s / 7200
        daly = (2 * sch.stall_s * 3600) ** 0.5 * (1 + r ** 0.5 / 3 + r / 9) - sch.stall_s
        assert sch.optimum_s == pytest.approx(daly, rel=1e-9)
        assert sch.next_due_step == 2 + sch.steps
        assert not c.due(sch.next_due_step - 1) or sch.steps == 1
        assert c.due(sch.next_due_step)


def test_an_infinite_mtbf_never_saves_again(store):
    state = {"w": np.zeros(1024, dtype=np.float32)}
    with open_ck(store, node_mtbf="inf") as c:
        assert not c.due(1)
        assert c.save_if_due(2, state)  # the first save measures the costs
        assert c.schedule.bound == "no-failures" and c.schedule.next_due_step is None
        assert not any(c.due(s) for s in range(3, 1000))


@pytest.mark.parametrize("key,value,match", [
    ("ckpt_interval", "0", "ckpt_interval=0: expected auto, a number of steps"),
    ("ckpt_interval", "10x", "ckpt_interval=10x: expected auto"),
    ("node_mtbf", "0", "node_mtbf=0: expected a duration above 0"),
    ("max_overhead", "100", "max_overhead=100: expected a percentage above 0 and below 100"),
])
def test_bad_schedule_settings_are_refused(store, key, value, match):
    with pytest.raises(tierckpt.TierckptError, match=match):
        open_ck(store, **{key: value})


def test_due_refuses_steps_that_go_back(store):
    with open_ck(store, ckpt_interval=5) as c:
        assert not c.due(7)
        with pytest.raises(tierckpt.TierckptError, match="steps must not go back"):
            c.due(6)


def test_due_starts_over_after_a_restore(store):
    state = {"w": np.zeros(1024, dtype=np.float32)}
    with open_ck(store, ckpt_interval=4) as c:
        for s in range(1, 10):
            c.save_if_due(s, state)
        c.wait()
        assert c.restore(state) == 8
        # The loop goes on from step 9 again (no "steps must not go back").
        assert [s for s in range(9, 13) if c.due(s)] == [12]


def _run_elastic(store, tmp_path, mode):
    """Runs two_ranks_elastic.py MODE on two ranks; returns both ranks'
    lines (sorted) and the output, for assertion messages."""
    r = run_two_ranks("two_ranks_elastic.py", store, str(tmp_path), mode)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = []
    for rank in (0, 1):
        lines += (tmp_path / f"rank{rank}.txt").read_text().splitlines()
    return sorted(lines), r.stdout + r.stderr


def test_an_elastic_checkpoint_of_two_ranks_restores_on_one(store, tmp_path):
    lines, out = _run_elastic(store, tmp_path, "save")
    assert lines == ["rank 0 saved 8", "rank 1 saved 8"], out
    # One rank: the whole array, from both saved ranks' slices.
    w = np.zeros(12)
    state = {"w": tierckpt.Slice(w, 0, 12), "bias": np.zeros(3), "who": None}
    with tierckpt.Checkpointer(store=store, elastic=True) as ck:
        assert ck.restore(state) == 8
        assert ck.restore_source == "local"
        # It goes on saving as a job of one rank.
        ck.save(9, state)
        ck.wait()
    assert w.tolist() == [100.0 + i for i in range(12)]
    assert state["bias"].tolist() == [0.5, 0.5, 0.5]
    assert state["who"] == "saved by rank 0"  # rank r gets saved rank r % N's small objects
    assert isinstance(state["w"], tierckpt.Slice) and state["w"].value is w


def test_an_elastic_checkpoint_of_one_rank_restores_on_two(store, tmp_path):
    w = 100.0 + np.arange(12, dtype=np.float64)
    with tierckpt.Checkpointer(store=store, store_bytes="64M", elastic=True) as ck:
        ck.save(5, {"w": tierckpt.Slice(w, 0, 12), "bias": np.full(3, 0.25), "who": "the one rank"})
        ck.wait()
    lines, out = _run_elastic(store, tmp_path, "restore")
    assert lines == [
        "rank 0 restored 5 w=[100.0, 101.0, 102.0, 103.0, 104.0, 105.0] bias=[0.25, 0.25, 0.25] who=the one rank "
        "source=local",
        "rank 1 restored 5 w=[106.0, 107.0, 108.0, 109.0, 110.0, 111.0] bias=[0.25, 0.25, 0.25] who=the one rank "
        "source=local",
    ], out


def test_an_elastic_restore_refuses_another_state_and_writes_nothing(store):
    w = np.arange(8, dtype=np.float32)
    with tierckpt.Checkpointer(store=store, store_bytes="64M", elastic=True) as ck:
        ck.save(3, {"w": tierckpt.Slice(w, 0, 8), "b": np.ones(2)})
        ck.wait()
    # Another global size.
    w2 = np.full(10, -1.0, dtype=np.float32)
    with tierckpt.Checkpointer(store=store, elastic=True) as ck:
        with pytest.raises(StateMismatchError, match=r"'w' \(a slice of a global array of 40 bytes, dtype float32, "
                                                     r"bytes \[0, 40\)\) differs from the checkpoint's entry at the same "
                                                     r"place \('w', a slice of a global array of 32 bytes"):
            ck.restore({"w": tierckpt.Slice(w2, 0, 10), "b": np.zeros(2)})
    assert (w2 == -1.0).all()
    # A tensor of the checkpoint missing from the state.
    w3 = np.full(8, -1.0, dtype=np.float32)
    with tierckpt.Checkpointer(store=store, elastic=True) as ck:
        with pytest.raises(StateMismatchError, match=r"holds 2 tensors and buffers, this state 1 \(gone: b\)"):
            ck.restore({"w": tierckpt.Slice(w3, 0, 8)})
    assert (w3 == -1.0).all()
    # Saved as a slice, restored as a plain array.
    with tierckpt.Checkpointer(store=store, elastic=True) as ck:
        with pytest.raises(StateMismatchError, match="a slice of a global array of 32 bytes"):
            ck.restore({"w": w3, "b": np.zeros(2)})
    assert (w3 == -1.0).all()
    # Another room for the small objects: the checkpoint's is taken.
    b = np.zeros(2)
    with tierckpt.Checkpointer(store=store, elastic=True, meta_bytes=4096) as ck:
        assert ck.restore({"w": tierckpt.Slice(w3, 0, 8), "b": b}) == 3
        assert ck.meta_bytes == tierckpt.DEFAULT_META_BYTES
    assert w3.tolist() == list(range(8)) and b.tolist() == [1.0, 1.0]


def test_slices_that_do_not_fit_their_array_are_refused_at_save(store):
    with tierckpt.Checkpointer(store=store, store_bytes="64M", elastic=True) as ck:
        with pytest.raises(TierckptError, match=r"'w': a Slice of 8 elements at offset 4 does not lie within a global "
                                                r"array of 10"):
            ck.save(1, {"w": tierckpt.Slice(np.zeros(8), 4, 10)})
        with pytest.raises(TierckptError, match="row-major"):
            ck.save(1, {"w": tierckpt.Slice(np.zeros((4, 2)).T, 0, 8)})
        with pytest.raises(TierckptError, match="Slice: offset=-1"):
            tierckpt.Slice(np.zeros(2), -1, 2)
        # One rank's slice does not cover the array: the library's job-wide check.
        with pytest.raises(TierckptError, match="global array"):
            ck.save(1, {"w": tierckpt.Slice(np.zeros(4), 0, 8)})


def test_an_array_some_new_ranks_hold_no_slice_of_restores_one_no_rank_holds_is_refused(store, tmp_path):
    # One rank saves through the C API: "w" and an expert's array "e" whole, "step" replicated.
    w, e, step = 100.0 + np.arange(12.0), 200.0 + np.arange(4.0), np.array([7], dtype=np.uint64)
    with tierckpt.Checkpointer(store=store, store_bytes="64M") as ck:
        lib, h = _lib.get(), ck._h()
        assert lib.tierckpt_register_slice(h, b"w", w.ctypes.data, w.nbytes, 0, w.nbytes) == 0
        assert lib.tierckpt_register_slice(h, b"e", e.ctypes.data, e.nbytes, 0, e.nbytes) == 0
        assert lib.tierckpt_register_replicated(h, b"step", step.ctypes.data, step.nbytes) == 0
        assert lib.tierckpt_save(h, 7) == 0
        assert lib.tierckpt_wait(h) == 0
    # Two ranks: only rank 0 holds "e" (an expert placed on one rank).
    lines, out = _run_elastic(store, tmp_path, "experts")
    assert lines == [
        "rank 0 rc=0 found=1 version=7 w=[100.0, 101.0, 102.0, 103.0, 104.0, 105.0] e=[200.0, 201.0, 202.0, 203.0] "
        "step=7",
        "rank 1 rc=0 found=1 version=7 w=[106.0, 107.0, 108.0, 109.0, 110.0, 111.0] e=[-1.0, -1.0, -1.0, -1.0] "
        "step=7",
    ], out
    # No rank holds "e": its bytes would be left behind; refused on both, nothing written.
    lines, out = _run_elastic(store, tmp_path, "no-experts")
    refusal = ("restore: version 7 was saved by 1 ranks: the checkpoint holds the slice region 'e', which no rank "
               "of this job registers: register every region the checkpoint was saved with")
    untouched = "w=[-1.0, -1.0, -1.0, -1.0, -1.0, -1.0] e=[-1.0, -1.0, -1.0, -1.0] step=0"
    assert lines == [f"rank {k} rc=1 found=0 version=0 {untouched} {refusal}" for k in (0, 1)], out


def test_a_slice_one_rank_gets_wrong_makes_every_rank_raise_none_waits(store, tmp_path):
    lines, out = _run_elastic(store, tmp_path, "badslice")
    assert len(lines) == 2, out
    assert lines[0] == ("rank 0 refused: tierckpt: save: another rank's state could not be saved (its error says "
                        "why); nothing was saved (TIERCKPT_ERR_INVALID)"), lines
    assert lines[1].startswith("rank 1 refused: tierckpt: 'w': a Slice of 6 elements at offset 10 does not lie within a "
                               "global array of 12"), lines


def test_slice_offsets_may_be_numpy_integers_not_floats_or_bools():
    s = tierckpt.Slice(np.zeros(2), np.int64(4), np.int32(6))
    assert (s.offset, s.global_size) == (4, 6) and type(s.offset) is int
    for bad in (1.0, True, -1, "2"):
        with pytest.raises(TierckptError, match="Slice: offset="):
            tierckpt.Slice(np.zeros(2), bad, 6)


def test_a_damaged_small_object_region_is_a_checkpoint_error_not_a_python_one():
    head = tierckpt._META_HEAD
    def region(payload):
        buf = bytearray(256)
        head.pack_into(buf, 0, tierckpt._META_MAGIC, len(payload))
        buf[head.size:head.size + len(payload)] = payload
        return buf
    for payload, what in ((b"\x80\x04garbage", "cannot be read"), (pickle.dumps([1, 2]), "a list, not a dict"),
                          (pickle.dumps({"format": 2}), "cannot be read")):
        with pytest.raises(TierckptError, match=what) as e:
            tierckpt._parse_meta(region(payload))
        assert e.value.code == 5
    with pytest.raises(TierckptError, match="not one the Python binding wrote"):
        tierckpt._parse_meta(bytearray(4))


def test_an_elastic_checkpointers_small_objects_grow_and_restore(store):
    with tierckpt.Checkpointer(store=store, store_bytes="64M", elastic=True, meta_bytes=256) as ck:
        ck.save(1, {"w": np.zeros(4), "big": "x" * 1000})
        assert ck.meta_bytes == 65536
        ck.wait()
    state = {"w": np.ones(4), "big": None}
    with tierckpt.Checkpointer(store=store, elastic=True, meta_bytes=256) as ck:
        assert ck.restore(state) == 1
    assert state["big"] == "x" * 1000 and state["w"].tolist() == [0.0] * 4
