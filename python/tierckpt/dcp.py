"""tierckpt.dcp: torch.distributed.checkpoint (DCP) storage in node memory.

    import torch.distributed.checkpoint as dcp
    import tierckpt.dcp
    storage = tierckpt.dcp.Storage(capacity="8G")    # one per process; Checkpointer settings too
    if storage.restore() is not None:                 # collective: the newest checkpoint, or None
        dcp.load(state, storage_reader=storage.reader())
    ...
    dcp.save(state, storage_writer=storage.writer())  # returns once copied into node memory

Needs PyTorch >= 2.2, where dcp.save and dcp.load first appear; written
against the sources of 2.2 and of the current main branch, not yet run
against a real DCP. On 2.2 dcp.save/dcp.load take no checkpoint_id (the
writer saves the next version) and want no_dist=True when torch.distributed
is not initialised; checkpoint_id and dcp.async_save come with 2.3. With an
older PyTorch, or one without torch.distributed.checkpoint, this module still
imports (its layout functions work) and Storage.writer(), Storage.reader(),
Writer and Reader raise ImportError naming the version.

How DCP's calls map onto tierckpt's collective save and restore:

- Each rank owns one staging region of `capacity` bytes, a bytearray
  registered once with a tierckpt.Checkpointer (the same size on every rank
  and at every load: it is part of the checkpoint's layout, like meta_bytes).
- dcp.save calls write_data on every rank: the rank packs its WriteItems
  (tensor bytes, BytesIO blobs) and an index into its staging region, then
  every rank calls the tierckpt save (collective, same version). The global
  Metadata, which DCP gives only to the coordinator's finish(), exists on the
  coordinator earlier: the planner made it in create_global_plan and keeps it
  (DefaultSavePlanner.metadata, the object finish() then receives). The
  coordinator packs it, pickled, into its own index before the save; finish()
  checks that it is the metadata it packed. So the data and the metadata of a
  DCP checkpoint are one tierckpt version: committed together or not at all.
- A rank that cannot stage (capacity too small, an item that cannot be
  resolved, a planner keeping no metadata) says so before the save: after
  packing, the ranks agree (Checkpointer.agree, an allreduce over tierckpt's
  own communicator: always there, and exactly the ranks the save is
  collective over, whereas DCP may run without a process group) and, when
  any rank failed, none saves and every rank raises. The newest good
  checkpoint stays the newest.
- dcp.load calls read_metadata on every rank: the first call restores
  (collective; Storage.restore() may have done it already), then the ranks
  gather over torch.distributed (when it is initialised with more than one
  rank) each shard's item keys and the coordinator's metadata. A rank's
  restore brings back its own shard only, so items another rank saved (DCP
  keeps one copy of a replicated tensor, on one rank) travel at read_data:
  the coordinator's prepare_global_plan tells each rank which of its items
  others need, and every rank then takes part in one all_gather_object. A
  rank that fails before one of these gathers still enters it, carrying its
  error, and every rank raises after it.
- Tensors are copied straight from the staging region into the tensors DCP
  resolves (planner.resolve_tensor, commit_tensor), bytes through
  planner.load_bytes. A saved tensor whose shape differs from the live one is
  refused (StateMismatchError) before anything is written.
- async_save first calls Writer.stage (DCP's AsyncStager protocol), which
  copies every tensor: a tensor changed after async_save returned does not
  reach that checkpoint.
- async_save runs write_data in DCP's executor thread: tierckpt then calls MPI
  there, which needs MPI_THREAD_MULTIPLE (import mpi4py before tierckpt);
  otherwise it is refused. tierckpt's save already returns once the state is
  in node memory (replication goes on in the background): dcp.save is the
  short stall async_save would otherwise buy. A Storage's saves, restores,
  waits and close run one at a time (a lock); collectives still need the same
  order on every rank, so wait for an async_save's future before the next
  save, wait or close.

See tierckpt-python(3).
"""
import ctypes
import dataclasses
import io
import pickle
import re
import struct
import threading
from typing import Any, Optional

try:
    import torch as _torch
except ImportError as e:  # pragma: no cover - depends on the machine
    raise ImportError("tierckpt.dcp needs PyTorch (>= 2.2 for torch.distributed.checkpoint)") from e

import tierckpt as _tck
from tierckpt import StateMismatchError, TierckptError, _lib

__all__ = ["Storage", "Writer", "Reader", "AVAILABLE", "UNAVAILABLE_REASON", "pack", "read_index", "item_tensor",
           "item_bytes", "StateMismatchError", "TierckptError"]

MIN_TORCH = (2, 2)


def _torch_version():
    m = re.match(r"(\d+)\.(\d+)", _torch.__version__)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


UNAVAILABLE_REASON = None
try:
    if _torch_version() < MIN_TORCH:
        raise ImportError("too old")
    import torch.distributed as _dist
    from torch.distributed.checkpoint.metadata import Metadata as _Metadata
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata as _TensorMD
    from torch.distributed.checkpoint.planner import LoadItemType as _LoadItemType
    from torch.distributed.checkpoint.planner import WriteItemType as _WriteItemType
    from torch.distributed.checkpoint.storage import StorageReader as _ReaderBase
    from torch.distributed.checkpoint.storage import StorageWriter as _WriterBase
    from torch.distributed.checkpoint.storage import WriteResult as _WriteResult
    from torch.futures import Future as _Future
except ImportError:
    UNAVAILABLE_REASON = (
        f"torch.distributed.checkpoint not available (torch {_torch.__version__}); needs PyTorch >= "
        f"{MIN_TORCH[0]}.{MIN_TORCH[1]}"
    )
    _ReaderBase = _WriterBase = object
AVAILABLE = UNAVAILABLE_REASON is None


def _need_dcp():
    if not AVAILABLE:
        raise ImportError(f"tierckpt.dcp: {UNAVAILABLE_REASON}")


# ---- the staging layout (plain functions: no DCP needed)
#
# [head][item 0][item 1]...[index]: the head says where the index is; items
# start 64-byte aligned; the index is a pickle of {"entries": [...],
# "extra": {...}}, one entry per item: (key, kind, offset, nbytes, dtype, shape).

_MAGIC = b"TCKDCP01"
_HEAD = struct.Struct("<8sQQ")  # magic, index offset, index length
_ALIGN = 64
TENSOR, BYTES = "tensor", "bytes"


def _align(n):
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def pack(buf, items, extra=None) -> int:
    """Packs items (key, value) into the bytearray buf: a value is a tensor
    (any device, any strides: its elements, in row-major order) or a
    bytes-like object. extra (picklable) travels in the index. Returns the
    bytes used. Raises TierckptError (code 2) naming the size needed, before
    writing anything, when buf is too small."""
    entries = []
    off = _align(_HEAD.size)
    for key, value in items:
        if isinstance(value, _torch.Tensor):
            n = value.numel() * value.element_size()
            entries.append((key, TENSOR, off, n, _tck._dtype_name(value.dtype), tuple(value.shape)))
        else:
            n = memoryview(value).nbytes
            entries.append((key, BYTES, off, n, None, None))
        off = _align(off + n)
    index = pickle.dumps({"entries": entries, "extra": extra}, protocol=4)
    need = off + len(index)
    if need > len(buf):
        raise TierckptError(
            2,
            f"this rank's checkpoint takes {need} bytes, more than the staging capacity ({len(buf)} bytes): "
            f"create the Storage with capacity={_tck._round_up(need, 1 << 20)} or more (the same value to load)",
        )
    for (key, kind, o, n, _, shape), (_, value) in zip(entries, items):
        if not n:
            continue
        if kind == TENSOR:
            dest = _torch.frombuffer(buf, dtype=value.dtype, count=value.numel(), offset=o).view(shape)
            dest.copy_(value.detach())
        else:
            buf[o : o + n] = memoryview(value).cast("B")
    buf[off : off + len(index)] = index
    _HEAD.pack_into(buf, 0, _MAGIC, off, len(index))
    return need


def read_index(buf):
    """(entries by key, extra) of a packed buf."""
    magic, off, n = _HEAD.unpack_from(buf, 0)
    if magic != _MAGIC or off + n > len(buf):
        raise TierckptError(5, "the staging region holds no tierckpt.dcp checkpoint (not written by tierckpt.dcp)")
    d = pickle.loads(bytes(buf[off : off + n]))
    return {e[0]: e for e in d["entries"]}, d["extra"]


def item_tensor(buf, entry):
    """The tensor of entry, a view of buf (no copy)."""
    _, kind, off, n, dtype, shape = entry
    if kind != TENSOR:
        raise TierckptError(1, f"'{entry[0]}' holds bytes, not a tensor")
    dt = getattr(_torch, dtype)
    if not n:
        return _torch.empty(shape, dtype=dt)
    count = n // _torch.empty((), dtype=dt).element_size()
    return _torch.frombuffer(buf, dtype=dt, count=count, offset=off).view(shape)


def item_bytes(buf, entry) -> memoryview:
    _, kind, off, n, _, _ = entry
    return memoryview(buf)[off : off + n]


def _size(v):
    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
        return v
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)i?B?\s*", str(v), re.I)
    if not m or int(m.group(1)) == 0:
        raise TierckptError(1, f"capacity={v!r}: give a number of bytes (an int, or '512M', '8G')")
    return int(m.group(1)) << (10 * " KMGT".index(m.group(2).upper() or " "))


def _key(index):
    """A MetadataIndex as a plain, picklable key: (fqn, chunk offset)."""
    return (index.fqn, None if index.offset is None else tuple(index.offset))


# ---- the storage shared by a process's writer and reader


class Storage:
    """One per process (MPI rank): a tierckpt.Checkpointer (settings as its
    own: store=, store_bytes=, replicas=, comm=, ...) with one staging region
    of capacity bytes ("8G"), the same on every rank and at every load."""

    def __init__(self, capacity, *, checkpointer: Optional[_tck.Checkpointer] = None, **settings):
        self.capacity = _size(capacity)
        self._buf = bytearray(self.capacity)
        self._state = {"tierckpt.dcp": self._buf}
        self._own = checkpointer is None
        self._ck = checkpointer if checkpointer is not None else _tck.Checkpointer(**settings)
        self._last = 0  # newest version saved or restored here
        self._restored = None  # a restore that no load has used yet: its version
        # Every collective call on this storage (save, restore, wait, close)
        # and every use of the staging region runs under this lock, so two
        # threads of one rank (an async_save and the main thread) never
        # interleave their packing or their collective calls.
        self._lock = threading.RLock()

    @property
    def checkpointer(self):
        return self._ck

    @property
    def version(self) -> int:
        """The newest version this process saved or restored (0: none)."""
        return self._last

    def writer(self, **kw) -> "Writer":
        return Writer(self, **kw)

    def reader(self, **kw) -> "Reader":
        return Reader(self, **kw)

    def restore(self) -> Optional[int]:
        """Collective. Restores the newest checkpoint complete across the job
        into the staging regions and returns its version, or None. The next
        dcp.load with this storage's reader uses it."""
        self._check_thread("restore")
        with self._lock:
            v = self._ck.restore(self._state)
            self._restored = v
            if v is not None:
                self._last = v
            return v

    def wait(self) -> None:
        """Collective. Blocks until the newest save has committed."""
        self._check_thread("wait")
        with self._lock:
            self._ck.wait()

    def close(self) -> None:
        """Collective when the storage made its checkpointer."""
        if self._own and not self._ck.closed:
            self._check_thread("close")
            with self._lock:
                self._ck.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- inside

    def _save(self, version):
        with self._lock:
            self._ck.save(version, self._state)
            self._last = version
            self._restored = None

    def _save_agreed(self, version, stage):
        """Collective. stage() packs this rank's part into the staging region
        and may raise. The ranks then agree, over the checkpointer's
        communicator, whether every one of them staged; only then do they all
        save version (None: the next one). Otherwise no rank saves, so the
        newest good checkpoint stays the newest, and every rank raises: its
        own error, or one naming the failure elsewhere. Returns the version
        saved."""
        self._check_thread("save")
        with self._lock:
            version = version or self._last + 1
            self._restored = None  # staging overwrites what a restore brought back
            error = None
            try:
                stage(version)
            except Exception as e:  # noqa: BLE001 - raised once the ranks agree
                error = e
            all_ok = self._ck.agree(error is None)
            outcome = _save_outcome(error, all_ok, version, self._last)
            if outcome is not None:
                raise outcome from error
            self._ck.save(version, self._state)
            self._last = version
            self._restored = None
            return version

    def _check_thread(self, what):
        """MPI may be called from a thread other than MPI's main thread (the
        one that initialised it) only with MPI_THREAD_MULTIPLE."""
        if _is_mpi_main_thread():
            return
        level = _lib_thread_level()
        if level < _lib.MPI_THREAD_MULTIPLE:
            raise TierckptError(
                8,
                f"tierckpt.dcp: {what} from another thread than the one that initialised MPI (async_save runs "
                f"write_data in its executor thread), and MPI was initialised with thread level {level}, not "
                "MPI_THREAD_MULTIPLE: import mpi4py before tierckpt (it asks for MULTIPLE), or use dcp.save, "
                "which returns once the state is in node memory",
            )


def _save_outcome(error, all_ok, version, last):
    """What a rank raises after the ranks agreed on a save (None: save).
    error: this rank's staging failure, or None; all_ok: every rank staged."""
    if error is None and all_ok:
        return None
    kept = f"version {last} stays the newest" if last else "the newest checkpoint is unchanged"
    if error is not None:
        return TierckptError(
            error.code if isinstance(error, TierckptError) else 8,
            f"tierckpt.dcp: this rank could not stage its part of version {version}: {type(error).__name__}: "
            f"{error}; no rank saved it ({kept})",
        )
    return TierckptError(
        8, f"tierckpt.dcp: another rank could not stage its part of version {version} (its error says why); no "
        f"rank saved it ({kept})"
    )


def _stable_copy(obj):
    """obj with every tensor replaced by a copy on the CPU (dicts, lists and
    tuples walked; other values kept: DCP serialises them in the background
    with torch.save, and the application does not change them in place)."""
    if isinstance(obj, _torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _stable_copy(v) for k, v in obj.items()}  # DCP flattens any mapping alike
    if type(obj) in (list, tuple):
        return type(obj)(_stable_copy(v) for v in obj)
    return obj


def _lib_thread_level():
    level = ctypes.c_int(-1)
    _lib.get().MPI_Query_thread(ctypes.byref(level))
    return level.value


def _is_mpi_main_thread():
    flag = ctypes.c_int(0)
    _lib.get().MPI_Is_thread_main(ctypes.byref(flag))
    return bool(flag.value)


def _carry(fn, *args):
    """(fn(*args), None), or (None, "Type: message") when it raises: an
    error carried through a collective so that every rank enters it."""
    try:
        return fn(*args), None
    except Exception as e:  # noqa: BLE001 - re-raised after the collective on every rank
        return None, f"{type(e).__name__}: {e}"


def _first_error(errors):
    """(rank, message) of the first rank whose error is set, or None."""
    return next(((r, e) for r, e in enumerate(errors) if e), None)


def _version_of(checkpoint_id):
    """A checkpoint_id that names a tierckpt version: an int or a string of digits."""
    if isinstance(checkpoint_id, int) and not isinstance(checkpoint_id, bool) and checkpoint_id > 0:
        return checkpoint_id
    if isinstance(checkpoint_id, str) and checkpoint_id.isdigit() and int(checkpoint_id) > 0:
        return int(checkpoint_id)
    return None


def _check_id(checkpoint_id):
    if checkpoint_id is not None and _version_of(checkpoint_id) is None:
        raise TierckptError(
            1,
            f"checkpoint_id={checkpoint_id!r}: tierckpt.dcp takes a version (a positive whole number, larger than "
            "the last saved) or None (the next one)",
        )


def _group_size(group):
    if not (_dist.is_available() and _dist.is_initialized()):
        return 1, 0
    return _dist.get_world_size(group), _dist.get_rank(group)


class _CheckpointId:
    """What Writer and Reader share: a checkpoint_id names a tierckpt
    version, for one save or load."""

    def reset(self, checkpoint_id=None) -> None:
        _check_id(checkpoint_id)
        self.checkpoint_id = checkpoint_id

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id) -> bool:
        return _version_of(checkpoint_id) is not None


class Writer(_CheckpointId, _WriterBase):
    """The StorageWriter of dcp.save / dcp.async_save: Writer(storage)."""

    def __init__(self, storage: Storage):
        _need_dcp()
        self.storage = storage
        self.checkpoint_id = None
        self._coordinator = False
        self._packed_metadata = None

    # The AsyncStager protocol (PyTorch >= 2.3): dcp.async_save asks a writer
    # that has stage() for a staged state before it starts the background
    # save, and saves that. Without it, 2.3 and 2.4 stage with
    # _offload_state_dict_to_cpu, which keeps CPU tensors as they are: a
    # tensor changed after async_save returned could reach the checkpoint.
    # stage() copies every tensor, so the checkpoint holds the state as it
    # was when async_save was called; staging is done before stage()
    # returns, so nothing needs synchronising after.
    _synchronize_after_execute = False

    @property
    def should_synchronize_after_execute(self) -> bool:
        return False

    def stage(self, state_dict):
        """A copy of state_dict whose tensors are new CPU tensors (what
        dcp.async_save saves in the background)."""
        return _stable_copy(state_dict)

    def synchronize_staging(self) -> None:
        pass

    def set_up_storage_writer(self, is_coordinator: bool, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("use_collectives", True) is False:
            raise TierckptError(
                8, "tierckpt.dcp: use_collectives=False is not supported (the metadata is the coordinator's, "
                "and tierckpt's save is collective anyway)"
            )
        self._coordinator = is_coordinator

    def prepare_local_plan(self, plan):
        return plan

    def prepare_global_plan(self, plans):
        return plans

    def write_data(self, plan, planner):
        """Every rank of DCP's group (dcp.save runs it on each): stages this
        rank's items, then the ranks agree and save together, or none saves
        (Storage._save_agreed)."""
        st = self.storage
        # A checkpoint_id holds for one save: DCP calls reset() only when it
        # is given one, so a reused writer would otherwise keep it.
        wanted, self.checkpoint_id = _version_of(self.checkpoint_id), None
        results = []
        self._packed_metadata = None

        def stage(version):
            extra = {"version": version, "coordinator": self._coordinator}
            items = []
            for item in plan.items:
                data = planner.resolve_data(item)
                if item.type == _WriteItemType.BYTE_IO:
                    value = data.getvalue()
                    n = len(value)
                else:
                    value = data
                    n = value.numel() * value.element_size()
                items.append((_key(item.index), value))
                results.append(_WriteResult(index=item.index, size_in_bytes=n, storage_data=None))
            md = None
            if self._coordinator:
                md = getattr(planner, "metadata", None)
                if not isinstance(md, _Metadata):
                    raise TierckptError(
                        8, f"the save planner ({type(planner).__name__}) keeps no global Metadata in .metadata, "
                        "which tierckpt.dcp saves with the data: use DefaultSavePlanner or a subclass")
                extra["metadata"] = pickle.dumps(md, protocol=4)
            pack(st._buf, items, extra)
            self._packed_metadata = md

        st._save_agreed(wanted, stage)  # raises on every rank when any rank could not stage
        fut = _Future()
        fut.set_result(results)
        return fut

    def finish(self, metadata, results) -> None:
        if self._packed_metadata is not metadata and self._packed_metadata != metadata:
            raise TierckptError(
                9, "tierckpt.dcp: the metadata DCP finished with differs from the one the planner held at "
                "write_data, which the checkpoint in node memory holds: it may not load")


class Reader(_CheckpointId, _ReaderBase):
    """The StorageReader of dcp.load: Reader(storage, process_group=None)
    (the process group given to dcp.load, if any)."""

    def __init__(self, storage: Storage, process_group=None):
        _need_dcp()
        self.storage = storage
        self.process_group = process_group
        self.checkpoint_id = None
        self._metadata = None
        self._where = {}  # key -> rank whose shard holds it

    def read_metadata(self, *args: Any):
        """Collective (every rank, as dcp.load calls it): restores unless
        Storage.restore() just did. Takes no keyword arguments on purpose:
        newer DCP retries a failed read_metadata(rank=...) "rank-locally"
        when the reader accepts **kwargs, which would repeat the collectives
        and hide why the first call failed."""
        st = self.storage
        want, self.checkpoint_id = _version_of(self.checkpoint_id), None  # for one load, as in write_data

        def local():
            v = st._restored if st._restored is not None else st.restore()
            return None if v is None else (v, read_index(st._buf))

        with st._lock:
            got, err = _carry(local)
        if got is None and err is None:
            # restore() agrees across the job: every rank found none
            raise TierckptError(4, "tierckpt.dcp: no checkpoint in the job's node stores (nothing to load)")
        if err is None:
            version, (entries, extra) = got
            mine = (extra.get("metadata"), extra.get("error"), sorted(entries, key=repr))
        else:
            version, mine = st._last, (None, err, [])
        size, _ = _group_size(self.process_group)
        if size > 1:  # every rank gets here, failed or not, so the gathers match
            everyone = [None] * size
            _dist.all_gather_object(everyone, mine, group=self.process_group)
        else:
            everyone = [mine]
        bad = _first_error([e for _, e, _ in everyone])
        if bad is not None:
            raise TierckptError(5, f"tierckpt.dcp: the newest checkpoint (version {version}) is unusable: "
                                f"rank {bad[0]}: {bad[1]}")
        if want is not None and want != version:
            raise TierckptError(4, f"tierckpt.dcp: checkpoint_id={want!r}, but the newest checkpoint "
                                f"complete across the job is version {version} (tierckpt restores the newest)")
        blob = next((m for m, _, _ in everyone if m is not None), None)
        if blob is None:
            raise TierckptError(5, f"tierckpt.dcp: no rank's shard of version {version} holds the DCP metadata")
        self._where = {}
        for r, (_, _, keys) in enumerate(everyone):
            for k in keys:
                self._where.setdefault(k, r)
        return pickle.loads(blob)

    def set_up_storage_reader(self, metadata, is_coordinator: bool, *args: Any, **kwargs: Any) -> None:
        self._metadata = metadata

    def prepare_local_plan(self, plan):
        return plan

    def prepare_global_plan(self, plans):
        """Coordinator: which of each rank's items other ranks need."""
        sends = [set() for _ in plans]
        for r, plan in enumerate(plans):
            for item in plan.items:
                owner = self._where.get(_key(item.storage_index))
                if owner is not None and owner != r and owner < len(plans):
                    sends[owner].add(_key(item.storage_index))
        exchange = any(sends)
        return [dataclasses.replace(p, storage_data={"tierckpt.send": sorted(s, key=repr), "tierckpt.exchange": exchange})
                for p, s in zip(plans, sends)]

    def read_data(self, plan, planner):
        with self.storage._lock:
            self._read_data(plan, planner)
        self.storage._restored = None  # used: a later load restores again
        fut = _Future()
        fut.set_result(None)
        return fut

    def _read_data(self, plan, planner):
        buf = self.storage._buf
        sd = plan.storage_data if isinstance(plan.storage_data, dict) else {}

        def local():
            entries, _ = read_index(buf)
            self._check_shapes(plan, planner)
            out = {}
            for k in sd.get("tierckpt.send", []):
                e = entries[k]
                out[k] = (e, bytes(item_bytes(buf, e)))
            return entries, out

        got, err = _carry(local)
        received = {}
        if sd.get("tierckpt.exchange"):  # the same on every rank (the coordinator's plan)
            size, _ = _group_size(self.process_group)
            everyone = [None] * size
            _dist.all_gather_object(everyone, (got[1] if got else {}, err), group=self.process_group)
            for d, _ in everyone:
                received.update(d)
            bad = _first_error([e for _, e in everyone])
        else:
            bad = (None, err) if err else None
        if bad is not None:
            msg = f"tierckpt.dcp: {'' if bad[0] is None else f'rank {bad[0]}: '}{bad[1]}"
            raise StateMismatchError(msg) if bad[1].startswith("StateMismatchError") else TierckptError(5, msg)
        entries = got[0]
        for item in plan.items:
            k = _key(item.storage_index)
            if k in entries:
                src_buf, e = buf, entries[k]
            elif k in received:
                e, data = received[k]
                src_buf = bytearray(data)
                e = (e[0], e[1], 0, e[3], e[4], e[5])
            else:
                raise TierckptError(4, f"tierckpt.dcp: '{k[0]}' (chunk at {k[1]}) is in no rank's shard")
            if item.type == _LoadItemType.BYTE_IO:
                planner.load_bytes(item, io.BytesIO(bytes(item_bytes(src_buf, e))))
                continue
            src = item_tensor(src_buf, e)
            for dim, (o, n) in enumerate(zip(item.storage_offsets, item.lengths)):
                src = src.narrow(dim, o, n)
            target = planner.resolve_tensor(item).detach()
            if target.size() != src.size():
                raise StateMismatchError(f"'{k[0]}': the checkpoint's piece is {list(src.size())}, the tensor to fill "
                                         f"{list(target.size())}")
            target.copy_(src)
            planner.commit_tensor(item, target)

    def _check_shapes(self, plan, planner):
        """Refuses, before writing anything, a plain tensor whose shape is not
        the one saved. It looks at the object in the planner's (flattened)
        state_dict, never at the piece lookup_tensor gives: for a DTensor or
        ShardedTensor that piece is the local shard, smaller than the saved
        global size; those are checked by DCP's own planning (as plain
        tensors are too, in newer PyTorch)."""
        md = self._metadata.state_dict_metadata if self._metadata is not None else {}
        objs = getattr(planner, "state_dict", None)
        if not isinstance(objs, dict):
            return
        for item in plan.items:
            if item.type == _LoadItemType.BYTE_IO:
                continue
            saved = md.get(item.dest_index.fqn)
            if not isinstance(saved, _TensorMD):
                continue
            live = objs.get(item.dest_index.fqn)
            if type(live) not in (_torch.Tensor, _torch.nn.Parameter):
                continue
            if tuple(live.shape) != tuple(saved.size):
                raise StateMismatchError(
                    f"the checkpoint does not match this state: '{item.dest_index.fqn}' is {list(saved.size)} in "
                    f"the checkpoint and {list(live.shape)} here; nothing was loaded"
                )
