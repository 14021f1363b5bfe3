"""tierckpt: checkpoint a training state into the node memory that the tierckpt
SPANK plugin reserves for a Slurm job, with copies on other nodes.

    import tierckpt
    ck = tierckpt.Checkpointer()          # under srun --mpi=pmix --ckpt-mem=SIZE
    state = {"weights": numpy_array, "epoch": 0}
    step = ck.restore(state)              # None, or the step; fills the arrays in place
    ck.save(step, state)                  # returns once copied into node memory

See tierckpt-python(3); PyTorch: tierckpt.torch.
"""
import atexit
import collections
import ctypes
import hashlib
import os
import pickle
import re
import struct
import sys
import weakref
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from . import _lib

__all__ = [
    "Checkpointer",
    "Stats",
    "TierckptError",
    "StateMismatchError",
    "features",
    "library_version",
    "DEFAULT_META_BYTES",
]

try:
    from ._config import VERSION as __version__
except ImportError:  # an unbuilt source tree
    __version__ = "unknown"

DEFAULT_META_BYTES = 1 << 20
META_REGION = "tierckpt.meta"
_META_MAGIC = b"TCKPYMT1"
_META_HEAD = struct.Struct("<8sQ")  # magic, length of the pickle that follows
_REGION_NAME_MAX = 55  # tierckpt_register: 1 to 55 characters


class TierckptError(Exception):
    """A failure of libtierckpt or of the binding. code is the
    tierckpt_status_t value (1 invalid, 2 no memory, 3 I/O, 4 not found,
    5 corrupt, 6 peer, 7 timeout, 8 unsupported, 9 internal), status its
    name, message the runtime's message."""

    def __init__(self, code: int, message: str):
        self.code = int(code)
        self.status = _lib.STATUS_NAMES.get(self.code, f"status {self.code}")
        self.message = message
        super().__init__(f"tierckpt: {message} ({self.status})")

    def __reduce__(self):
        # torch.distributed.checkpoint gathers a rank's exception with
        # pickle, which would call cls(str(self)): rebuild from the fields.
        return (_rebuild_error, (type(self), self.code, self.message))


def _rebuild_error(cls, code, message):
    e = cls.__new__(cls)
    TierckptError.__init__(e, code, message)
    return e


class StateMismatchError(TierckptError):
    """The checkpoint's tensors and buffers (names, shapes, dtypes, sizes) are
    not those of the state given to restore. Nothing was written into it."""

    def __init__(self, message: str):
        super().__init__(1, message)


@dataclass(frozen=True)
class Stats:
    """The newest save's figures (tierckpt_get_stats)."""

    version: int
    bytes: int
    wait_ms: float
    stall_ms: float
    checksum_ms: float
    commit_ms: float
    committed: bool
    persist_version: int = 0    # newest version this job made complete in the persistent tier
    persist_ms: float = 0.0     # this rank's newest finished flush
    persist_failures: int = 0   # flushes of the job that failed
    persist_status: int = 0     # tierckpt_status_t of the newest finished flush
    persist_skipped: int = 0    # versions due for a flush while the previous one still ran


def library_version() -> str:
    """libtierckpt's version ("0.1.0")."""
    return _lib.get().tierckpt_version().decode()


def features() -> list:
    """The optional parts libtierckpt was built with (e.g. ["ucx", "ofi"])."""
    return _lib.get().tierckpt_features().decode().split()


def _check(rc: int) -> None:
    if rc != 0:
        lib = _lib.get()
        msg = lib.tierckpt_last_error().decode(errors="replace") or lib.tierckpt_status_string(rc).decode()
        raise TierckptError(rc, msg)


# ---- MPI: initialised here when the program has not (no mpi4py), so that
# closing one checkpointer does not finalise MPI under the next, and
# finalised at exit after every checkpointer is closed.
_open_checkpointers = weakref.WeakSet()
_mpi_ours = False
_exit_hook = False


def _at_exit():
    for ck in list(_open_checkpointers):
        try:
            ck.close()
        except TierckptError as e:
            print(f"tierckpt: closing at exit: {e}", file=sys.stderr)
    if _mpi_ours:
        lib = _lib.get()
        done = ctypes.c_int(0)
        lib.MPI_Finalized(ctypes.byref(done))
        if not done.value:
            lib.MPI_Finalize()


def _ensure_mpi():
    global _mpi_ours, _exit_hook
    lib = _lib.get()
    if not _exit_hook:
        atexit.register(_at_exit)
        _exit_hook = True
    inited = ctypes.c_int(0)
    lib.MPI_Initialized(ctypes.byref(inited))
    if inited.value:
        return
    provided = ctypes.c_int(0)
    rc = lib.MPI_Init_thread(None, None, _lib.MPI_THREAD_FUNNELED, ctypes.byref(provided))
    if rc != 0:
        raise TierckptError(6, f"MPI_Init_thread failed (MPI error {rc}): run the program under srun --mpi=pmix or mpirun")
    _mpi_ours = True


# ---- the state: what becomes a region, what is pickled


class _Ref:
    """Stands for region number index in the pickled skeleton of a state."""

    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index

    def __reduce__(self):
        return (_Ref, (self.index,))


@dataclass
class _Region:
    path: str  # where it is in the state: "model.fc1.weight"
    ptr: Optional[int]
    nbytes: int
    shape: tuple
    dtype: str
    holder: Any  # keeps the memory alive (and a bytearray from resizing)
    obj: Any  # the live object (tensor, array, buffer)
    name: str = ""  # the region's name in the checkpoint

    def describe(self):
        return f"'{self.path}' (shape {list(self.shape)}, dtype {self.dtype}, {self.nbytes} bytes)"


def _region_name(index: int, r: _Region) -> str:
    """index.digest.tail: the digest of path, shape and dtype makes the library
    refuse a checkpoint whose entry differs before it writes anything; the
    tail of the path makes its message readable."""
    digest = hashlib.sha1(f"{r.path}\0{r.shape}\0{r.dtype}\0{r.nbytes}".encode()).hexdigest()[:8]
    prefix = f"{index}.{digest}."
    room = _REGION_NAME_MAX - len(prefix)
    return prefix + (r.path[-room:] if len(r.path) > room else r.path)


def _torch_tensor_type():
    t = sys.modules.get("torch")
    return getattr(t, "Tensor", None) if t is not None else None


def _tensor_region(t, path, cuda: bool) -> _Region:
    """cuda: the library has its CUDA tier and looks for device regions."""
    if t.layout != sys.modules["torch"].strided:
        raise TierckptError(1, f"'{path}': a {t.layout} tensor; only dense (strided) tensors can be checkpointed")
    if t.device.type == "cuda" and not cuda:
        why = ("TIERCKPT_CUDA=0 turns its CUDA tier off" if "cuda" in features()
               else "this libtierckpt was built without its CUDA tier (configure --with-cuda)")
        raise TierckptError(8, f"'{path}' is a cuda tensor: {why}; checkpoint a CPU copy of it")
    if t.device.type not in ("cpu", "cuda"):
        raise TierckptError(
            8,
            f"'{path}' is a {t.device.type} tensor: libtierckpt checkpoints host memory and, with its CUDA tier, "
            "CUDA memory only; checkpoint a CPU copy of it",
        )
    if not t.is_contiguous():
        raise TierckptError(1, f"'{path}': the tensor is not contiguous; checkpoint a contiguous one (tensor.contiguous())")
    nbytes = t.numel() * t.element_size()
    return _Region(path, t.data_ptr() if nbytes else None, nbytes, tuple(t.shape), str(t.dtype).replace("torch.", ""), t, t)


def _buffer_region(value, mv: memoryview, path) -> _Region:
    if not mv.c_contiguous:
        raise TierckptError(
            1, f"'{path}': the buffer is not C-contiguous; checkpoint a contiguous one (numpy.ascontiguousarray)"
        )
    flat = mv.cast("B") if mv.ndim != 1 or mv.format != "B" else mv
    nbytes = flat.nbytes
    holder = (ctypes.c_char * nbytes).from_buffer(flat) if nbytes else value
    dtype = str(value.dtype) if hasattr(value, "dtype") else f"format {mv.format}"  # numpy: with the fields
    return _Region(path, ctypes.addressof(holder) if nbytes else None, nbytes, tuple(mv.shape), dtype, holder, value)


class _Walk:
    """Splits a state into regions (tensors, writable buffers: saved and
    restored in place) and a skeleton (everything else, with _Ref where a
    region was), which is pickled into the small-object region."""

    def __init__(self, checkpointer):
        self.ck = checkpointer
        self.regions = []

    def region(self, r: _Region) -> _Ref:
        self.regions.append(r)
        return _Ref(len(self.regions) - 1)

    def value(self, v, path):
        special = self.ck._walk_special(self, v, path)
        if special is not NotImplemented:
            return special
        tensor = _torch_tensor_type()
        if tensor is not None and isinstance(v, tensor):
            return self.region(_tensor_region(v, path, self.ck._cuda))
        if isinstance(v, Mapping):
            out = type(v)() if type(v) in (dict,) or _is_ordered_dict(v) else {}
            for k, x in v.items():
                out[k] = self.value(x, f"{path}.{k}" if path else str(k))
            return out
        if isinstance(v, (list, tuple)) and type(v) in (list, tuple):
            items = [self.value(x, f"{path}.{i}") for i, x in enumerate(v)]
            return items if isinstance(v, list) else tuple(items)
        if not isinstance(v, (bytes, str, int, float, complex, bool, type(None))):
            try:
                mv = memoryview(v)
            except (TypeError, ValueError, NotImplementedError):  # no buffer, or one memoryview cannot describe
                mv = None
            if mv is not None and not mv.readonly:
                return self.region(_buffer_region(v, mv, path))
        return v  # a small object: pickled


def _is_ordered_dict(v):
    return isinstance(v, collections.OrderedDict)


class Checkpointer:
    """One per process (MPI rank). Collective: creating it, save, restore,
    wait and close are called by every rank in the same order.

    Settings: none given: the node store the SPANK plugin set up
    (TIERCKPT_STORE and friends). Otherwise they replace the environment:
    store (absolute path on a tmpfs), store_bytes ("1G"), prefault (bool),
    job_id, replicas, transport ("ucx", "ofi", "auto"), replica_timeout_ms.
    comm: an mpi4py communicator (default: MPI_COMM_WORLD). meta_bytes: room
    for the state's small objects, pickled (see tierckpt-python(3)).
    """

    def __init__(
        self,
        *,
        store: Optional[str] = None,
        store_bytes=None,
        prefault: Optional[bool] = None,
        job_id=None,
        replicas=None,
        transport: Optional[str] = None,
        replica_timeout_ms=None,
        cuda: Optional[bool] = None,
        comm=None,
        meta_bytes: int = DEFAULT_META_BYTES,
    ):
        if not isinstance(meta_bytes, int) or isinstance(meta_bytes, bool) or meta_bytes < 64:
            raise TierckptError(1, f"meta_bytes={meta_bytes!r}: give a whole number of bytes, at least 64")
        self._handle = None
        self._meta_bytes = meta_bytes
        self._meta = bytearray(_META_HEAD.size + meta_bytes)
        self._meta_registered = False
        self._regions = None  # the registered regions, once the state is known
        self._broken = None  # why the registered regions are not the state's
        settings = {
            "store": store,
            "store_bytes": store_bytes,
            "prefault": None if prefault is None else ("yes" if prefault else "no"),
            "job_id": job_id,
            "replicas": replicas,
            "transport": transport,
            "replica_timeout_ms": replica_timeout_ms,
            "cuda": None if cuda is None else ("yes" if cuda else "no"),
        }
        settings = {k: str(v) for k, v in settings.items() if v is not None}
        # Whether the library looks for device regions: with its CUDA tier,
        # unless told not to (TIERCKPT_CUDA is read only when the settings
        # come from the environment).
        if cuda is None:
            cuda = bool(settings) or os.environ.get("TIERCKPT_CUDA", "1") != "0"
        self._cuda = cuda and "cuda" in features()
        if not settings and not os.environ.get("TIERCKPT_STORE"):
            raise TierckptError(
                1,
                "no node store: run the program under srun --ckpt-mem=SIZE (the tierckpt SPANK plugin sets "
                "TIERCKPT_STORE), or give one: Checkpointer(store='/dev/shm/NAME', store_bytes='1G')",
            )
        lib = _lib.get()
        _ensure_mpi()
        opts = None
        try:
            if settings:
                opts = lib.tierckpt_options_new()
                if not opts:
                    raise TierckptError(2, "out of memory")
                for k, v in settings.items():
                    _check(lib.tierckpt_options_set(opts, k.encode(), v.encode()))
            handle = ctypes.c_void_p()
            if comm is None:
                _check(lib.tierckpt_open(opts, ctypes.byref(handle)))
            else:
                _check(lib.tierckpt_open_comm(_comm_handle(comm), opts, ctypes.byref(handle)))
            self._handle = handle
        finally:
            if opts:
                lib.tierckpt_options_free(opts)
        _open_checkpointers.add(self)

    # ---- the Python-shaped API

    def save(self, step: int, state: Mapping) -> None:
        """Collective. Saves state as version step (larger than the last). The
        first save (or restore) fixes which tensors and buffers make up the
        state; later saves must hold the same ones, updated in place."""
        version = _version(step)
        walk = self._walk(state)
        self._register(walk)
        self._put_meta(walk)
        _check(_lib.get().tierckpt_save(self._h(), version))

    def restore(self, state: Mapping) -> Optional[int]:
        """Collective. Fills state with the newest checkpoint complete across
        the job: tensors and buffers in place, small objects put back into
        the mappings of state. Returns its step, or None when there is none
        (state untouched). Raises StateMismatchError, writing nothing, when
        the checkpoint's tensors and buffers differ from state's."""
        walk = self._walk(state)
        self._register(walk)
        found, version = self._restore_call()
        if not found:
            return None
        self._apply(state, self._get_meta(), walk)
        return version

    def wait(self) -> None:
        """Collective. Blocks until the newest save has committed."""
        _check(_lib.get().tierckpt_wait(self._h()))

    def agree(self, ok: bool) -> bool:
        """Collective. True when every rank passed a true ok: over this
        checkpointer's communicator, the one its saves are collective over
        (tierckpt.dcp agrees with it before a save, and skips one that a
        rank could not prepare)."""
        all_ok = ctypes.c_int(0)
        _check(_lib.get().tierckpt_agree(self._h(), 1 if ok else 0, ctypes.byref(all_ok)))
        return bool(all_ok.value)

    def test(self) -> bool:
        """True once the newest save has committed (or none is in flight);
        never blocks."""
        done = ctypes.c_int(0)
        _check(_lib.get().tierckpt_test(self._h(), ctypes.byref(done)))
        return bool(done.value)

    @property
    def stats(self) -> Stats:
        s = _lib.CStats()
        _check(_lib.get().tierckpt_get_stats(self._h(), ctypes.byref(s)))
        return Stats(s.version, s.bytes, s.wait_ms, s.stall_ms, s.checksum_ms, s.commit_ms, bool(s.committed),
                     s.persist_version, s.persist_ms, s.persist_failures, s.persist_status, s.persist_skipped)

    @property
    def restore_source(self) -> str:
        """Where this rank's restored state came from: "local", "peer", "persistent" or "none"."""
        return _lib.get().tierckpt_restore_source(self._h()).decode()

    @property
    def stage_path(self) -> str:
        """How regions reach the node store: "host", "cuda-direct" or "cuda-bounce"."""
        return _lib.get().tierckpt_stage_path(self._h()).decode()

    @property
    def meta_bytes(self) -> int:
        return self._meta_bytes

    @property
    def closed(self) -> bool:
        return self._handle is None

    def close(self) -> None:
        """Collective. Waits for a save in flight and releases everything.
        A second close does nothing."""
        if self._handle is None:
            return
        h, self._handle = self._handle, None
        _open_checkpointers.discard(self)
        _check(_lib.get().tierckpt_close(h))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- inside

    def _h(self):
        if self._handle is None:
            raise TierckptError(1, "the checkpointer is closed")
        return self._handle

    def _walk_special(self, walk, value, path):
        """Hook for tierckpt.torch: a skeleton for value, or NotImplemented."""
        return NotImplemented

    def _walk(self, state) -> _Walk:
        if not isinstance(state, Mapping):
            raise TierckptError(1, f"the state must be a mapping of names to values (a dict), not {type(state).__name__}")
        for k in state:
            if not isinstance(k, str):
                raise TierckptError(1, f"state key {k!r}: the top-level names must be strings")
        w = _Walk(self)
        w.skeleton = w.value(state, "")
        return w

    def _register_meta(self):
        if not self._meta_registered:
            holder = (ctypes.c_char * len(self._meta)).from_buffer(self._meta)
            _check(_lib.get().tierckpt_register(self._h(), META_REGION.encode(), ctypes.addressof(holder), len(self._meta)))
            self._meta_holder = holder
            self._meta_registered = True

    def _register(self, walk: _Walk):
        """Registers the state's regions the first time; later checks that the
        state still holds the same memory."""
        self._h()
        if self._broken:
            raise TierckptError(1, f"this checkpointer could not register its state ({self._broken}): use a new one")
        if self._regions is None:
            self._register_meta()
            lib = _lib.get()
            for i, r in enumerate(walk.regions, start=1):
                r.name = _region_name(i, r)
                try:
                    _check(lib.tierckpt_register(self._h(), r.name.encode(), r.ptr, r.nbytes))
                except TierckptError as e:
                    self._broken = f"{r.path}: {e.message}"  # the regions before it stay registered
                    raise
            self._regions = walk.regions
            return
        old = self._regions
        if len(old) != len(walk.regions):
            raise TierckptError(
                1,
                f"the state now holds {len(walk.regions)} tensors and buffers, {len(old)} when it was first saved or "
                f"restored ({_first_difference(old, walk.regions)}): the state must keep the same tensors and "
                "buffers for the checkpointer's life",
            )
        for a, b in zip(old, walk.regions):
            if (a.path, a.ptr, a.nbytes, a.shape, a.dtype) != (b.path, b.ptr, b.nbytes, b.shape, b.dtype):
                raise TierckptError(
                    1,
                    f"{b.describe()} is other memory than the one registered as {a.describe()} at the first save or "
                    "restore: "
                    "tierckpt saves registered memory in place, so update tensors and buffers in place "
                    "(tensor.copy_(), array[...] = ...) instead of replacing them",
                )

    def _put_meta(self, walk: _Walk):
        schema = [(r.path, r.shape, r.dtype, r.nbytes) for r in walk.regions]
        try:
            blob = pickle.dumps({"format": 1, "schema": schema, "skeleton": walk.skeleton}, protocol=4)
        except Exception as e:
            raise TierckptError(1, f"the state's small objects cannot be pickled: {e}") from e
        if len(blob) > self._meta_bytes:
            raise TierckptError(
                1,
                f"the state's small objects take {len(blob)} bytes pickled, more than meta_bytes={self._meta_bytes}: "
                f"create the Checkpointer with meta_bytes={_round_up(2 * len(blob))} or more (the same value to "
                "restore); nothing was saved",
            )
        _META_HEAD.pack_into(self._meta, 0, _META_MAGIC, len(blob))
        self._meta[_META_HEAD.size : _META_HEAD.size + len(blob)] = blob

    def _get_meta(self):
        magic, n = _META_HEAD.unpack_from(self._meta, 0)
        if magic != _META_MAGIC or n > self._meta_bytes:
            raise TierckptError(5, "the checkpoint's small-object region is not one the Python binding wrote")
        return pickle.loads(bytes(self._meta[_META_HEAD.size : _META_HEAD.size + n]))

    def _restore_call(self):
        found = ctypes.c_int(0)
        version = ctypes.c_uint64(0)
        try:
            _check(_lib.get().tierckpt_restore(self._h(), ctypes.byref(found), ctypes.byref(version)))
        except TierckptError as e:
            raise self._explain(e) from None
        return bool(found.value), version.value

    def _explain(self, e: TierckptError) -> TierckptError:
        """Turns the library's refusal of a checkpoint whose regions differ
        into a message about the state's own names."""
        if e.code != 1:
            return e
        regions = self._regions or []
        by_name = {r.name: r for r in regions}
        m = re.search(r"the checkpoint's region '([^']*)' \((\d+) bytes\) does not match the registered region '([^']*)'", e.message)
        fix = (
            "restore needs the model, optimizer and state layout the checkpoint was saved from "
            "(a new job starts from nothing)"
        )
        if m:
            theirs, their_bytes, ours = m.group(1), int(m.group(2)), m.group(3)
            if ours == META_REGION or theirs == META_REGION:
                cap = their_bytes - _META_HEAD.size
                return StateMismatchError(
                    f"the checkpoint was saved with meta_bytes={cap}, this checkpointer has meta_bytes="
                    f"{self._meta_bytes}: create it with meta_bytes={cap}"
                )
            r = by_name.get(ours)
            tail = theirs.split(".", 2)[-1]
            what = r.describe() if r else f"'{ours}'"
            return StateMismatchError(
                f"the checkpoint does not match this state: {what} differs from the checkpoint's entry at the same "
                f"place ('...{tail}', {their_bytes} bytes) in name, shape or dtype; {fix}"
            )
        m = re.search(r"the checkpoint has (\d+) regions, (\d+) are registered", e.message)
        if m:
            return StateMismatchError(
                f"the checkpoint holds {int(m.group(1)) - 1} tensors and buffers, this state {int(m.group(2)) - 1}; {fix}"
            )
        if "another rank's regions do not match" in e.message:
            return StateMismatchError(f"another rank's state does not match the checkpoint (see its message); {fix}")
        return e

    def _apply(self, state, meta, walk: _Walk):
        """Puts the checkpoint's small objects back into state (its regions
        are filled already)."""
        schema = [(r.path, r.shape, r.dtype, r.nbytes) for r in walk.regions]
        if [tuple(x) for x in meta["schema"]] != [(p, tuple(s), d, n) for p, s, d, n in schema]:
            raise TierckptError(9, "the checkpoint's schema differs from the registered regions after a restore")
        _merge(state, meta["skeleton"], walk.regions, self._apply_special)

    def _apply_special(self, live, saved, regions):
        """Hook for tierckpt.torch: applies saved to live and returns True, or
        returns False."""
        return False


def _merge(live, saved, regions, special):
    """Puts saved (a skeleton) into the mapping or list live, in place."""
    for key in saved.keys() if isinstance(saved, Mapping) else range(len(saved)):
        s = saved[key]
        if isinstance(s, _Ref):
            continue  # filled in place
        cur = live[key] if (isinstance(live, Mapping) and key in live) or (isinstance(live, list) and key < len(live)) else None
        if cur is not None and special(cur, s, regions):
            continue
        if isinstance(s, Mapping) and isinstance(cur, dict):
            _merge(cur, s, regions, special)
        elif isinstance(s, list) and isinstance(cur, list) and len(cur) == len(s):
            _merge(cur, s, regions, special)
        else:
            live[key] = _rebuild(s, regions)


def _rebuild(s, regions):
    """The skeleton s with its _Ref replaced by the live objects."""
    if isinstance(s, _Ref):
        return regions[s.index].obj
    if isinstance(s, Mapping):
        out = type(s)()
        for k, v in s.items():
            out[k] = _rebuild(v, regions)
        return out
    if type(s) in (list, tuple):
        items = [_rebuild(v, regions) for v in s]
        return items if isinstance(s, list) else tuple(items)
    return s


def _first_difference(old, new):
    a = [r.path for r in old]
    b = [r.path for r in new]
    gone = [p for p in a if p not in b]
    added = [p for p in b if p not in a]
    parts = []
    if gone:
        parts.append("gone: " + ", ".join(gone[:3]) + (" ..." if len(gone) > 3 else ""))
    if added:
        parts.append("new: " + ", ".join(added[:3]) + (" ..." if len(added) > 3 else ""))
    return "; ".join(parts) or "reordered"


def _round_up(n, m=1 << 16):
    """The smallest power of two from m up that is at least n (sizes to suggest in messages)."""
    while m < n:
        m <<= 1
    return m


def _version(step):
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < 2**64:
        raise TierckptError(1, f"step={step!r}: give a whole number from 0 to 2**64-1, larger than the last saved")
    return step


def _comm_handle(comm):
    """The MPI_Comm of an mpi4py communicator, as an integer."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise TierckptError(1, "comm= takes an mpi4py communicator, and mpi4py is not importable") from e
    if not isinstance(comm, MPI.Comm):
        raise TierckptError(1, f"comm= takes an mpi4py communicator, not {type(comm).__name__}")
    return MPI._handleof(comm)
