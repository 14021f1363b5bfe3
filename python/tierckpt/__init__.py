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
import contextlib
import ctypes
import gc
import hashlib
import operator
import os
import pickle
import struct
import sys
import weakref
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from . import _lib

__all__ = [
    "Checkpointer",
    "Schedule",
    "Slice",
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
_REGION_NAME_MAX = 55  # tierckpt_register: 1 to 55 bytes
_META_FORMAT = 2  # 2: the schema carries each tensor's layout and device


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
    committed_version: int = 0  # the newest committed version (0: none yet)
    superseded: int = 0         # versions superseded before their copies began, since open
    room_waits: int = 0         # saves that waited for the previous verdict: a store had no room, since open


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


class Slice:
    """Marks value, in a state given to save or restore, as this rank's part
    of one global array cut over the ranks (a tensor sharded along its first
    dimension, ZeRO's partition of a flat buffer): elements [offset, offset
    + value's element count) of a row-major array of global_size elements,
    both counted in value's elements (not bytes). value is a tensor, numpy
    array or writable buffer whose elements lie in row-major order back to
    back. Every rank gives its part of the array at the same place of its
    state, with the same global_size; together the parts cover the array
    once (a rank may hold none of it: an empty value). A checkpointer with
    elastic=True restores such a state on another number of ranks: each new
    rank gets exactly the elements of its new part, wherever the saved parts
    lie. Restore fills value in place and leaves the Slice in the state."""

    __slots__ = ("value", "offset", "global_size")

    def __init__(self, value, offset: int, global_size: int):
        whole = []
        for what, n in (("offset", offset), ("global_size", global_size)):
            try:  # any integer type: int, numpy.int64, a 0-d integer tensor
                i = None if isinstance(n, bool) else operator.index(n)
            except TypeError:
                i = None
            if i is None or i < 0:
                raise TierckptError(1, f"Slice: {what}={n!r}: give a whole number of elements, 0 or more")
            whole.append(i)
        self.value = value
        self.offset, self.global_size = whole

    def __repr__(self):
        return f"tierckpt.Slice(<{type(self.value).__name__}>, offset={self.offset}, global_size={self.global_size})"


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
    layout: Optional[tuple] = None  # None: row-major (C order); else the strides, 0 for dimensions of size 1
    device: str = "cpu"  # where the memory is: "cpu", "cuda" (informative: a restore may cross devices)
    name: bytes = b""  # the region's name in the checkpoint
    cut: Optional[tuple] = None  # a Slice: (offset, global size) in bytes of its global array

    def key(self):
        """What must stay the same for the registration to stay valid."""
        return (self.path, self.ptr, self.nbytes, self.shape, self.dtype, self.layout, self.cut)

    def schema(self):
        """What the checkpoint records of it (and restore compares). A
        Slice's own shape and size change with the number of ranks: its
        entry records the global array's size in their place."""
        if self.cut is not None:
            return (self.path, ("slice",), self.dtype, self.cut[1], None, self.device)
        return (self.path, self.shape, self.dtype, self.nbytes, self.layout, self.device)

    def describe(self):
        if self.cut is not None:
            return (f"'{self.path}' (a slice of a global array of {self.cut[1]} bytes, dtype {self.dtype}, "
                    f"bytes [{self.cut[0]}, {self.cut[0] + self.nbytes}))")
        where = f", strides {list(self.layout)}" if self.layout is not None else ""
        return f"'{self.path}' (shape {list(self.shape)}, dtype {self.dtype}{where}, {self.nbytes} bytes)"


def _region_name(index: int, r: _Region) -> bytes:
    """index.digest.tail, at most 55 bytes: the index makes it unique, the
    digest of path, shape, dtype and layout makes the library refuse a
    checkpoint whose entry differs before it writes anything, and the tail of
    the path (cut at a character boundary of its UTF-8) keeps it readable in
    the logs. The state's own names travel in the small-object region."""
    if r.cut is not None:  # the same on every rank, whatever their number
        ident = f"{r.path}\0slice\0{r.dtype}\0{r.cut[1]}"
    else:
        ident = f"{r.path}\0{r.shape}\0{r.dtype}\0{r.nbytes}"
    if r.layout is not None:
        ident += f"\0{r.layout}"
    digest = hashlib.sha1(ident.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    prefix = f"{index}.{digest}.".encode()
    tail = r.path.encode("utf-8", "surrogatepass").replace(b"\0", b"?")
    room = _REGION_NAME_MAX - len(prefix)
    if len(tail) > room:
        tail = tail[-room:]
        while tail and (tail[0] & 0xC0) == 0x80:  # a continuation byte: not the start of a character
            tail = tail[1:]
    return prefix + tail


def _torch_tensor_type():
    t = sys.modules.get("torch")
    return getattr(t, "Tensor", None) if t is not None else None


def _dense_layout(shape, strides):
    """For a view of shape and strides (in elements): None when its elements
    lie in row-major order back to back, the strides (0 for dimensions of
    size 1, whose stride means nothing) when they fill one dense block in
    another order (channels_last, a transpose, Fortran order), or False when
    they overlap or leave gaps."""
    norm = tuple(st if n != 1 else 0 for n, st in zip(shape, strides))
    if any(n == 0 for n in shape):
        return None
    expect = 1
    for st, n in sorted((abs(st), n) for n, st in zip(shape, strides) if n != 1):
        if st != expect:
            return False
        expect *= n
    row_major, acc = [], 1
    for n in reversed(shape):
        row_major.append(acc if n != 1 else 0)
        acc *= n
    return None if norm == tuple(reversed(row_major)) else norm


_DTYPE_NAMES = {}


def _dtype_name(dtype):
    """torch.float32 -> "float32" (cached: str() of a dtype is slow, and a
    save asks for every tensor)."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).replace("torch.", "")
    return name


def _tensor_region(t, path, cuda: bool) -> _Region:
    """cuda: the library has its CUDA tier and looks for device regions.
    Called for every tensor of every save: the common case (a contiguous
    CPU tensor) takes the fewest calls into torch."""
    torch = sys.modules["torch"]
    device = t.device.type
    if t.layout is not torch.strided:
        raise TierckptError(
            1,
            f"'{path}' is a {t.layout} tensor: tierckpt saves dense tensors in place; keep its parts as dense "
            "tensors in the state instead (for sparse COO: t.coalesce().indices() and .values())",
        )
    if device != "cpu":
        if device == "meta":
            raise TierckptError(
                1,
                f"'{path}' is a meta tensor: it has no data (a model built on the meta device); materialise it "
                "(module.to_empty(device=...)) and load or initialise its values before saving or restoring",
            )
        if device == "cuda" and not cuda:
            why = ("TIERCKPT_CUDA=0 turns its CUDA tier off" if "cuda" in features()
                   else "this libtierckpt was built without its CUDA tier (configure --with-cuda)")
            raise TierckptError(8, f"'{path}' is a cuda tensor: {why}; checkpoint a CPU copy of it")
        if device != "cuda":
            raise TierckptError(
                8,
                f"'{path}' is a {device} tensor: libtierckpt checkpoints host memory and, with its CUDA tier, "
                "CUDA memory only; checkpoint a CPU copy of it",
            )
    if t.is_conj() or t.is_neg():
        raise TierckptError(
            1, f"'{path}' is a lazily conjugated or negated view: resolve it (t.resolve_conj(), t.resolve_neg())"
        )
    shape = tuple(t.shape)
    layout = None if t.is_contiguous() else _dense_layout(shape, t.stride())
    if layout is False:
        raise TierckptError(
            1,
            f"'{path}': the tensor's elements overlap or leave gaps in memory (shape {list(t.shape)}, strides "
            f"{list(t.stride())}: an expanded or sliced view); tierckpt saves tensors in place, so checkpoint the "
            "tensor it is a view of, or keep a dense tensor (t.clone()) and update it in place",
        )
    nbytes = t.numel() * t.element_size()
    return _Region(path, t.data_ptr() if nbytes else None, nbytes, shape, _dtype_name(t.dtype), t, t, layout, device)


def _ndarray_region(a, path) -> _Region:
    """A writable numpy array whose elements fill one dense block, in any
    order of its axes (C or Fortran order, a transpose, reversed strides)."""
    item = a.itemsize
    if any(st % item for st in a.strides):
        raise TierckptError(1, f"'{path}': the array's strides {a.strides} are not whole elements; checkpoint a "
                               "copy (numpy.ascontiguousarray) kept and updated in place")
    layout = _dense_layout(a.shape, tuple(st // item for st in a.strides))
    if layout is False:
        raise TierckptError(
            1,
            f"'{path}': the array's elements overlap or leave gaps in memory (shape {list(a.shape)}, strides "
            f"{list(a.strides)}); checkpoint the array it is a view of, or a dense array updated in place",
        )
    nbytes = a.size * item
    low = a.ctypes.data + sum(st * (n - 1) for n, st in zip(a.shape, a.strides) if st < 0) if nbytes else None
    return _Region(path, low, nbytes, tuple(a.shape), str(a.dtype), a, a, layout, "cpu")


def _buffer_region(value, mv: memoryview, path) -> _Region:
    """A writable buffer other than a numpy array (bytearray, array.array,
    mmap, ctypes arrays): C-contiguous ones only, as memoryview describes
    them."""
    if not mv.c_contiguous:
        raise TierckptError(
            1, f"'{path}': the buffer is not C-contiguous; checkpoint a contiguous one (numpy.ascontiguousarray)"
        )
    flat = mv.cast("B") if mv.ndim != 1 or mv.format != "B" else mv
    nbytes = flat.nbytes
    holder = (ctypes.c_char * nbytes).from_buffer(flat) if nbytes else value
    dtype = f"format {mv.format}"
    return _Region(path, ctypes.addressof(holder) if nbytes else None, nbytes, tuple(mv.shape), dtype, holder, value)


def _slice_region(s: Slice, path, walk) -> _Region:
    """The region of a Slice's value, with its place in the global array."""
    v = s.value
    np = sys.modules.get("numpy")
    if walk.tensor is not None and isinstance(v, walk.tensor) and not v.is_quantized:
        r = _tensor_region(v, path, walk.cuda)
        item, count = v.element_size(), v.numel()
    elif np is not None and isinstance(v, np.ndarray) and v.flags.writeable and not v.dtype.hasobject:
        r = _ndarray_region(v, path)
        item, count = v.itemsize, v.size
    else:
        try:
            mv = memoryview(v)
        except (TypeError, ValueError, NotImplementedError):
            mv = None
        if mv is None or mv.readonly:
            raise TierckptError(1, f"'{path}': a Slice holds a {type(v).__name__}; give it a tensor, a writable "
                                   "numpy array or a writable buffer (restore fills it in place)")
        r = _buffer_region(v, mv, path)
        item, count = mv.itemsize, mv.nbytes // mv.itemsize
    if r.layout is not None:
        raise TierckptError(1, f"'{path}': a Slice's elements must lie in row-major order (its place in the "
                               f"global array is counted in that order), not strides {list(r.layout)}; give it a "
                               "contiguous tensor or array")
    if s.global_size == 0 or s.offset + count > s.global_size:
        raise TierckptError(1, f"'{path}': a Slice of {count} elements at offset {s.offset} does not lie within a "
                               f"global array of {s.global_size}; give offset and global_size in elements of the "
                               "array, global_size the whole array's element count")
    r.cut = (s.offset * item, s.global_size * item)
    return r


class _Walk:
    """Splits a state into regions (tensors, writable buffers: saved and
    restored in place) and a skeleton (everything else, with _Ref where a
    region was), which is pickled into the small-object region."""

    def __init__(self, checkpointer):
        self.ck = checkpointer
        self.regions = []
        self.seen = {}
        self.tensor = _torch_tensor_type()
        self.cuda = checkpointer._cuda

    def region(self, r: _Region) -> _Ref:
        # The same memory reached twice (tied weights: one tensor under two
        # names) is one region.
        if r.nbytes:
            k = (r.ptr, r.nbytes, r.shape, r.dtype, r.layout, r.cut)
            same = self.seen.get(k)
            if same is not None:
                return _Ref(same)
            self.seen[k] = len(self.regions)
        self.regions.append(r)
        return _Ref(len(self.regions) - 1)

    def value(self, v, path):
        if isinstance(v, Slice):
            return self.region(_slice_region(v, path, self))
        if self.tensor is not None and isinstance(v, self.tensor):
            if v.is_quantized:
                # Its scale and zero point are not in its memory: the whole
                # tensor is a small object (pickled), restored through the
                # owner's load_state_dict.
                return v
            return self.region(_tensor_region(v, path, self.cuda))
        special = self.ck._walk_special(self, v, path)
        if special is not NotImplemented:
            return special
        if isinstance(v, Mapping):
            out = type(v)() if type(v) in (dict,) or _is_ordered_dict(v) else {}
            for k, x in v.items():
                out[k] = self.value(x, f"{path}.{k}" if path else str(k))
            _keep_metadata(v, out)
            return out
        if isinstance(v, (list, tuple)) and type(v) in (list, tuple):
            items = [self.value(x, f"{path}.{i}") for i, x in enumerate(v)]
            return items if isinstance(v, list) else tuple(items)
        np = sys.modules.get("numpy")
        if np is not None and isinstance(v, np.ndarray) and v.flags.writeable and not v.dtype.hasobject:
            return self.region(_ndarray_region(v, path))
        if not isinstance(v, (bytes, str, int, float, complex, bool, type(None))):
            try:
                mv = memoryview(v)
            except (TypeError, ValueError, NotImplementedError):  # no buffer, or one memoryview cannot describe
                mv = None
            if mv is not None and not mv.readonly:
                return self.region(_buffer_region(v, mv, path))
        return v  # a small object: pickled


@contextlib.contextmanager
def _no_gc():
    """The cyclic garbage collector off: a save or restore makes a few
    objects per tensor and frees none, and with the collector on a state of
    10^5 tensors triggered collections that scanned the growing heap again
    and again (half the time of a save)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _keep_metadata(src, dst):
    """A module's state_dict carries its modules' versions in _metadata
    (an attribute of the OrderedDict); load_state_dict reads them, and
    version-aware loaders (quantized modules) fail without them."""
    md = getattr(src, "_metadata", None)
    if md is not None:
        try:
            dst._metadata = md
        except AttributeError:  # a plain dict takes no attributes
            pass


def _is_ordered_dict(v):
    return isinstance(v, collections.OrderedDict)


@dataclass(frozen=True)
class Schedule:
    """The newest decision of the save schedule (tierckpt_get_schedule):
    what due() follows. Times in seconds; inputs are the largest over the
    job's ranks. decisions == 0: none yet (the rest is then zero)."""

    mode: str                  # "auto", "steps" or "duration" (TIERCKPT_CKPT_INTERVAL)
    bound: str                 # what set steps: optimum, commit, overhead-cap, no-failures, given,
                               # no-step-time
    decisions: int
    steps: int                 # steps between saves (0: never)
    next_due_step: Optional[int]  # None: never
    interval_s: float
    step_s: float
    stall_s: float
    commit_s: float
    flush_s: float
    job_mtbf_s: float
    optimum_s: float
    overhead: float            # expected share of time lost: saving, recomputation, restarts
    save_overhead: float       # the share spent saving
    lost_per_failure_s: float
    persist_every: int = 0     # flush every this many committed versions (0: no persistent tier)
    persist_bound: str = ""    # given, optimum, flush-time or none


class Checkpointer:
    """One per process (MPI rank). Collective: creating it, save, restore,
    wait and close are called by every rank in the same order.

    Settings: none given: the node store the SPANK plugin set up
    (TIERCKPT_STORE and friends). Otherwise they replace the environment:
    store (absolute path on a tmpfs), store_bytes ("1G"), prefault (bool),
    job_id, replicas, transport ("ucx", "ofi", "auto"), replica_timeout_ms,
    ckpt_interval ("auto", steps, or a duration such as "10m": see due()),
    node_mtbf (a duration, "264d"), max_overhead (a percentage, 2).
    comm: an mpi4py communicator (default: MPI_COMM_WORLD). meta_bytes: the
    room the state's small objects (pickled) start with; it grows as they
    do, and a restore takes the checkpoint's (see tierckpt-python(3)).

    elastic=True: checkpoints restore on another number of ranks too. Every
    tensor and buffer of the state is then the same on every rank (as in
    data-parallel training) unless it is given as a tierckpt.Slice of a
    global array; a restore on M ranks of what N ranks saved gives each
    rank its part of every Slice and, for everything else, rank r gets what
    saved rank r % N held (its small objects too). The small objects' room
    then grows on every rank alike (an elastic save makes two agreements,
    one more for each doubling of the room). elastic is the
    same on every rank.
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
        ckpt_interval=None,
        node_mtbf=None,
        max_overhead=None,
        comm=None,
        meta_bytes: int = DEFAULT_META_BYTES,
        elastic: bool = False,
    ):
        if not isinstance(meta_bytes, int) or isinstance(meta_bytes, bool) or meta_bytes < 64:
            raise TierckptError(1, f"meta_bytes={meta_bytes!r}: give a whole number of bytes, at least 64")
        if not isinstance(elastic, bool):
            raise TierckptError(1, f"elastic={elastic!r}: give True or False")
        self._handle = None
        self._elastic = elastic
        self._meta_bytes = meta_bytes
        self._meta = bytearray(_META_HEAD.size + meta_bytes)
        self._meta_holder = None  # the small-object region, while registered
        self._regions = None  # the registered regions, once the state is known
        self._keys = None  # their key()s: a save whose state has others registers anew
        self._schema_blob = None  # their schema, pickled once per registration
        settings = {
            "store": store,
            "store_bytes": store_bytes,
            "prefault": None if prefault is None else ("yes" if prefault else "no"),
            "job_id": job_id,
            "replicas": replicas,
            "transport": transport,
            "replica_timeout_ms": replica_timeout_ms,
            "cuda": None if cuda is None else ("yes" if cuda else "no"),
            "ckpt_interval": ckpt_interval,
            "node_mtbf": node_mtbf,
            "max_overhead": max_overhead,
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
        """Collective. Saves state as version step (larger than the last).
        Tensors and buffers are saved from their memory, in place; when the
        state holds other ones than at the previous save (optimizer state
        created lazily, a parameter group added, a tensor replaced), they are
        registered anew first. The small objects' room grows as needed."""
        version = _version(step)
        failed = None
        try:
            with _no_gc():
                walk = self._walk(state)
                if self._regions is None or self._keys != [r.key() for r in walk.regions]:
                    self._register(walk.regions, schema=None)
                blob = self._meta_blob(walk)
        except Exception as e:  # pylint: disable=broad-except
            if not self._elastic:
                raise
            failed = e
        if self._elastic:
            # The agreements below are collective: a rank whose state could
            # not be taken (a Slice out of bounds) says so to the others
            # first, and every rank raises.
            if not self.agree(failed is None):
                raise failed or TierckptError(1, "save: another rank's state could not be saved (its error says "
                                                 "why); nothing was saved")
            # The region is replicated: its room is the same on every rank,
            # so it grows on every rank alike, doubling until every rank's
            # small objects fit (each round one agreement).
            room = self._meta_bytes
            while not self.agree(len(blob) <= room):
                room = _round_up(2 * room)
            if room != self._meta_bytes:
                self._register(walk.regions, schema=self._schema_blob, meta_bytes=room)
        elif len(blob) > self._meta_bytes:
            self._register(walk.regions, schema=self._schema_blob, meta_bytes=_round_up(2 * len(blob)))
        _META_HEAD.pack_into(self._meta, 0, _META_MAGIC, len(blob))
        self._meta[_META_HEAD.size : _META_HEAD.size + len(blob)] = blob
        _check(_lib.get().tierckpt_save(self._h(), version))

    def due(self, step: int) -> bool:
        """True when a save is due at this step (tierckpt_due): call it once
        per training step, on every rank. Not collective and never
        communicates: the schedule (TIERCKPT_CKPT_INTERVAL, srun
        --ckpt-interval: "auto" by default, a number of steps, or a
        duration) is decided inside save(), from values reduced over the
        job, so every rank gets the same answer at the same step."""
        d = ctypes.c_int(0)
        _check(_lib.get().tierckpt_due(self._h(), _version(step), ctypes.byref(d)))
        return bool(d.value)

    def save_if_due(self, step: int, state: Mapping) -> bool:
        """Collective in effect (every rank calls it at every step): saves
        state as version step when due(step) says so. True when it saved."""
        if not self.due(step):
            return False
        self.save(step, state)
        return True

    @property
    def schedule(self) -> Schedule:
        """The newest schedule decision, with its inputs (see Schedule)."""
        s = _lib.CSchedule()
        _check(_lib.get().tierckpt_get_schedule(self._h(), ctypes.byref(s)))
        never = s.next_due_step == (1 << 64) - 1
        return Schedule(s.mode.decode(), s.bound.decode(), s.decisions, s.steps,
                        None if never else s.next_due_step, s.interval_s, s.step_s, s.stall_s, s.commit_s,
                        s.flush_s, s.job_mtbf_s, s.optimum_s, s.overhead, s.save_overhead, s.lost_per_failure_s,
                        s.persist_every, s.persist_bound.decode())

    def restore(self, state: Mapping) -> Optional[int]:
        """Collective. Fills state with the newest checkpoint complete across
        the job: tensors and buffers in place, small objects put back into
        the mappings of state. Returns its step, or None when there is none
        (state untouched). Raises StateMismatchError, changing nothing in
        state, when the checkpoint's tensors and buffers differ from state's
        (on every rank when one rank's differ). An elastic checkpointer
        restores what any number of ranks saved (see Checkpointer)."""
        self._h()
        self.wait()  # a save still in flight commits first (collective, as restore is)
        found, version = self._fetch()
        if not found:
            return None
        # Until the regions are filled every rank must reach the same
        # collectives (agree, then tierckpt_restore) whatever fails on it, so
        # any exception (an interrupt too) is held and raised after them.
        err, undo, walk, meta = None, None, None, None
        try:
            with _no_gc():
                meta, meta_bytes, names = self._fetched_meta()
                undo = self._prepare_restore(state, meta)
                walk = self._walk(state)
                _check_schema(walk.regions, meta["schema"])
        except BaseException as e:  # every rank learns below that this one cannot go on
            err = e
        try:
            all_ok = self.agree(err is None)
        except BaseException:
            all_ok = None
            raise
        finally:
            if not all_ok:
                if undo is not None:
                    undo()
                _lib.get().tierckpt_fetch_drop(self._h())
        if not all_ok:
            if err is not None:
                raise err
            raise StateMismatchError(
                "another rank's state does not match the checkpoint (its error says how); nothing was restored"
            )
        reg_err = None
        try:
            # The checkpoint's names; the schema from the live state (its
            # devices, where a restore moved the state to another one).
            self._register(walk.regions, schema=None, meta_bytes=meta_bytes, names=names)
        except BaseException as e:
            # This rank still takes part in the collective restore, which
            # then fails on every rank, writing nothing: it has no regions.
            reg_err = e
            self._forget()
        try:
            found, got = self._restore_call()
        except BaseException:
            undo()
            self._forget()
            if reg_err is not None:
                raise reg_err from None
            raise
        if reg_err is not None:  # (the restore cannot have succeeded without regions)
            undo()
            raise reg_err
        if not found or got != version:
            undo()
            self._forget()
            raise TierckptError(9, f"restore found version {got} after fetching version {version}")
        self._apply(state, meta, walk)
        return version

    def wait(self) -> None:
        """Collective. Blocks until the newest save (and the one in flight
        before it) is decided; raises when the newest did not commit."""
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
                     s.persist_version, s.persist_ms, s.persist_failures, s.persist_status, s.persist_skipped,
                     s.committed_version, s.superseded, s.room_waits)

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

    def _register(self, regions, schema, meta_bytes=None, names=None):
        """Registers the small-object region and regions, replacing what was
        registered. schema: the regions' pickled schema when known; names:
        the checkpoint's region names (a restore registers under them, so
        the library matches what the Python side checked)."""
        lib = _lib.get()
        h = self._h()
        self._forget()
        if meta_bytes is not None and meta_bytes != self._meta_bytes:
            self._meta_bytes = meta_bytes
        if len(self._meta) != _META_HEAD.size + self._meta_bytes:
            self._meta = bytearray(_META_HEAD.size + self._meta_bytes)
        holder = (ctypes.c_char * len(self._meta)).from_buffer(self._meta)
        meta_register = lib.tierckpt_register_replicated if self._elastic else lib.tierckpt_register
        _check(meta_register(h, META_REGION.encode(), ctypes.addressof(holder), len(self._meta)))
        self._meta_holder = holder
        for i, r in enumerate(regions, start=1):
            r.name = names[i - 1] if names is not None else _region_name(i, r)
            if r.cut is not None:
                rc = lib.tierckpt_register_slice(h, r.name, r.ptr, r.nbytes, r.cut[0], r.cut[1])
            elif self._elastic:
                rc = lib.tierckpt_register_replicated(h, r.name, r.ptr, r.nbytes)
            else:
                rc = lib.tierckpt_register(h, r.name, r.ptr, r.nbytes)
            if rc != 0:
                try:
                    _check(rc)
                except TierckptError as e:
                    self._forget()
                    raise TierckptError(e.code, f"{r.path}: {e.message}") from None
        self._regions = regions
        self._keys = [r.key() for r in regions]
        self._schema_blob = schema if schema is not None else pickle.dumps([r.schema() for r in regions], protocol=4)

    def _forget(self):
        """Unregisters everything (the library reads regions only inside save
        and restore)."""
        if self._handle is not None and (self._regions is not None or self._meta_holder is not None):
            _check(_lib.get().tierckpt_unregister_all(self._handle))
        self._regions = None
        self._keys = None
        self._schema_blob = None
        self._meta_holder = None

    def _meta_blob(self, walk: _Walk) -> bytes:
        try:
            return pickle.dumps({"format": _META_FORMAT, "schema": self._schema_blob, "skeleton": walk.skeleton},
                                protocol=4)
        except Exception as e:
            raise TierckptError(1, f"the state's small objects cannot be pickled: {e}") from e

    def _fetch(self):
        """The newest checkpoint's version, its shard held by the library (an
        elastic checkpointer's: of any number of ranks, then saved rank
        rank % N's shard, whose small objects and names this rank takes)."""
        found = ctypes.c_int(0)
        version = ctypes.c_uint64(0)
        if self._elastic:
            saved = ctypes.c_uint32(0)
            _check(_lib.get().tierckpt_fetch_any(self._h(), ctypes.byref(found), ctypes.byref(version),
                                                 ctypes.byref(saved)))
        else:
            _check(_lib.get().tierckpt_fetch(self._h(), ctypes.byref(found), ctypes.byref(version)))
        return bool(found.value), version.value

    def _fetched_meta(self):
        """The fetched checkpoint's small objects (with its schema unpacked),
        the room they had, and the names of its other regions in order."""
        lib = _lib.get()
        h = self._h()
        count = ctypes.c_size_t(0)
        _check(lib.tierckpt_fetched_count(h, ctypes.byref(count)))
        names, meta_size = [], None
        name = ctypes.c_char_p()
        size = ctypes.c_uint64(0)
        for i in range(count.value):
            _check(lib.tierckpt_fetched_region(h, i, ctypes.byref(name), ctypes.byref(size)))
            if name.value == META_REGION.encode():
                meta_size = size.value
            else:
                names.append(name.value)
        if meta_size is None or meta_size < _META_HEAD.size:
            raise TierckptError(5, "the checkpoint has no small-object region: it was not written by the Python "
                                   "binding (restore it with the API that wrote it)")
        buf = bytearray(meta_size)
        holder = (ctypes.c_char * meta_size).from_buffer(buf)
        _check(lib.tierckpt_fetched_read(h, META_REGION.encode(), 0, ctypes.addressof(holder), meta_size))
        del holder
        meta = _parse_meta(buf)
        if len(names) != len(meta["schema"]):
            raise TierckptError(5, f"the checkpoint has {len(names)} regions besides its small objects, which list "
                                   f"{len(meta['schema'])}")
        return meta, meta_size - _META_HEAD.size, names

    def _prepare_restore(self, state, meta):
        """Hook for tierckpt.torch: makes state hold the tensors the
        checkpoint has (optimizer state) and returns a function that undoes
        it."""
        return lambda: None

    def _restore_call(self):
        found = ctypes.c_int(0)
        version = ctypes.c_uint64(0)
        try:
            _check(_lib.get().tierckpt_restore(self._h(), ctypes.byref(found), ctypes.byref(version)))
        except TierckptError as e:
            raise self._explain(e) from None
        return bool(found.value), version.value

    def _explain(self, e: TierckptError) -> TierckptError:
        """The library's refusal after the Python side checked the state
        (another rank could not register its regions) as a mismatch."""
        if e.code == 1 and "another rank's regions do not match" in e.message:
            return StateMismatchError(f"another rank's state does not match the checkpoint (see its message); {_FIX}")
        return e

    def _apply(self, state, meta, walk: _Walk):
        """Puts the checkpoint's small objects back into state (its regions
        are filled already)."""
        _merge(state, meta["skeleton"], walk.regions, self._apply_special)

    def _apply_special(self, live, saved, regions):
        """Hook for tierckpt.torch: applies saved to live and returns True, or
        returns False."""
        return False


def _parse_meta(buf) -> dict:
    """The small objects of a checkpoint from its small-object region (the
    head, then the pickle), with its schema unpacked."""
    meta_size = len(buf)
    magic, n = _META_HEAD.unpack_from(buf, 0) if meta_size >= _META_HEAD.size else (None, 0)
    if magic != _META_MAGIC or n > meta_size - _META_HEAD.size:
        raise TierckptError(5, "the checkpoint's small-object region is not one the Python binding wrote")
    try:
        meta = pickle.loads(bytes(buf[_META_HEAD.size : _META_HEAD.size + n]))
        if not isinstance(meta, dict):
            raise TypeError(f"it holds a {type(meta).__name__}, not a dict")
        fmt = meta.get("format")
        if fmt == 1:  # schema entries (path, shape, dtype, nbytes): row-major, device unknown
            meta["schema"] = [(p, tuple(sh), d, nb, None, None) for p, sh, d, nb in meta["schema"]]
            meta["schema_blob"] = pickle.dumps(meta["schema"], protocol=4)
        elif fmt == _META_FORMAT:
            meta["schema_blob"] = meta["schema"]
            meta["schema"] = pickle.loads(meta["schema"])
    except Exception as e:  # pylint: disable=broad-except  # damaged bytes raise anything
        raise TierckptError(5, f"the checkpoint's small-object region cannot be read: {e!r}") from e
    if fmt not in (1, _META_FORMAT):
        raise TierckptError(8, f"the checkpoint's small objects are in format {fmt}, which this "
                               f"binding ({__version__}) does not read: restore with the version that saved it")
    return meta


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
        _keep_metadata(s, out)
        return out
    if type(s) in (list, tuple):
        items = [_rebuild(v, regions) for v in s]
        return items if isinstance(s, list) else tuple(items)
    return s


_FIX = ("restore needs the model, optimizer and state layout the checkpoint was saved from "
        "(a new job starts from nothing)")


def _check_schema(regions, schema):
    """Raises StateMismatchError naming the first tensor or buffer of the
    state that differs from the checkpoint's entry at the same place (path,
    shape, dtype, size, memory layout). Nothing is written before this."""
    if len(regions) != len(schema):
        raise StateMismatchError(
            f"the checkpoint holds {len(schema)} tensors and buffers, this state {len(regions)} "
            f"({_first_difference([e[0] for e in schema], [r.path for r in regions])}); {_FIX}"
        )
    for r, (path, shape, dtype, nbytes, layout, _device) in zip(regions, schema):
        if r.schema()[:4] != (path, tuple(shape), dtype, nbytes):
            theirs = (f"a slice of a global array of {nbytes} bytes, dtype {dtype}" if tuple(shape) == ("slice",)
                      else f"shape {list(shape)}, dtype {dtype}, {nbytes} bytes")
            raise StateMismatchError(
                f"the checkpoint does not match this state: {r.describe()} differs from the checkpoint's entry at "
                f"the same place ('{path}', {theirs}); {_FIX}"
            )
        if r.layout != (tuple(layout) if layout is not None else None):
            raise StateMismatchError(
                f"{r.describe()}: the checkpoint holds it in another memory layout ("
                f"{'row-major' if layout is None else 'strides ' + str(list(layout))}); give the tensor the "
                "checkpoint's layout before restoring (a model saved in channels_last: "
                "model.to(memory_format=torch.channels_last)), since restore fills memory in place"
            )


def _first_difference(a, b):
    """What differs between two lists of paths, for a message."""
    sa, sb = set(a), set(b)
    gone = [p for p in a if p not in sb]
    added = [p for p in b if p not in sa]
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
