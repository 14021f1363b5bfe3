"""tierckpt.torch: checkpoint a PyTorch training state into node memory.

    ck = tierckpt.torch.Checkpointer(model=model, optimizer=opt, scheduler=sched)
    start = ck.restore() or 0            # fills the existing tensors in place
    for step in range(start + 1, steps + 1):
        train_one_step()
        if step % 100 == 0:
            ck.save(step)                # returns once copied into node memory

The state is a mapping of names to nn.Modules, optimizers, LR schedulers and
any object with state_dict()/load_state_dict(), tensors, and small Python
objects. Tensors (parameters, buffers, optimizer state) are saved and
restored in place; everything else (hyperparameters, scheduler state, the
RNG states, plain values) is pickled into the small-object region. See
tierckpt-python(3).
"""
import itertools as _itertools
import random
from collections.abc import Mapping

try:
    import torch as _torch
except ImportError as e:  # pragma: no cover - depends on the machine
    raise ImportError("tierckpt.torch needs PyTorch (on Debian: apt-get install python3-torch)") from e

import tierckpt as _tck
from tierckpt import DEFAULT_META_BYTES, StateMismatchError, TierckptError

__all__ = ["Checkpointer", "RNGState", "StateMismatchError", "TierckptError"]


class RNGState:
    """The random number generators' states as one stateful object: Python's
    random, PyTorch's CPU generator, CUDA's when initialised, and numpy's
    global one when numpy is imported. Saved as small objects (not in place)."""

    def state_dict(self):
        sd = {"python": random.getstate(), "torch": _torch.get_rng_state().numpy().tobytes()}
        if _torch.cuda.is_available() and _torch.cuda.is_initialized():
            sd["cuda"] = [s.numpy().tobytes() for s in _torch.cuda.get_rng_state_all()]
        import sys

        np = sys.modules.get("numpy")
        if np is not None:
            sd["numpy"] = np.random.get_state()
        return sd

    def load_state_dict(self, sd):
        random.setstate(sd["python"])
        _torch.set_rng_state(_torch.frombuffer(bytearray(sd["torch"]), dtype=_torch.uint8))
        if "cuda" in sd and _torch.cuda.is_available():
            _torch.cuda.set_rng_state_all([_torch.frombuffer(bytearray(b), dtype=_torch.uint8) for b in sd["cuda"]])
        if "numpy" in sd:
            import numpy as np

            np.random.set_state(sd["numpy"])


class _Stateful:
    """Skeleton marker: kind is module, optimizer or stateful; cls the
    object's class (checkpoints saved before it was recorded have None)."""

    __slots__ = ("kind", "skeleton", "cls")

    def __init__(self, kind, skeleton, cls=None):
        self.kind = kind
        self.skeleton = skeleton
        self.cls = cls

    def __reduce__(self):
        return (_Stateful, (self.kind, self.skeleton, self.cls))


def _class_name(v):
    return f"{type(v).__module__}.{type(v).__qualname__}"


def _is_stateful(v):
    return callable(getattr(v, "state_dict", None)) and callable(getattr(v, "load_state_dict", None))


class Checkpointer(_tck.Checkpointer):
    """A tierckpt.Checkpointer that understands PyTorch objects. model,
    optimizer, scheduler (any of them) and, with rng=True, an RNGState make
    the default state that save() and restore() use when given none; state
    adds more entries (other modules, optimizers, stateful objects, small
    values; restore puts values back into that dict). Settings as for
    tierckpt.Checkpointer (store=..., replicas=..., comm=..., meta_bytes=...)."""

    def __init__(self, model=None, optimizer=None, scheduler=None, *, state=None, rng=True,
                 meta_bytes=DEFAULT_META_BYTES, **settings):
        default = {}
        for k, v in (("model", model), ("optimizer", optimizer), ("scheduler", scheduler)):
            if v is not None:
                default[k] = v
        if rng:
            default["rng"] = RNGState()
        if state is not None:
            for k in state:
                if k in default:
                    raise TierckptError(1, f"state has an entry '{k}', which the {k}= argument names already")
        self._state = default
        self._extra = state
        super().__init__(meta_bytes=meta_bytes, **settings)

    def _default(self, state):
        if state is not None:
            return state
        if self._extra is None:
            return self._state
        return _Joined(self._state, self._extra)

    def save(self, step, state=None):
        """Collective. Saves the state (default: the constructor's) as
        version step."""
        super().save(step, self._default(state))

    def save_if_due(self, step, state=None):
        """Saves the state (default: the constructor's) as version step when
        due(step) says so (see tierckpt.Checkpointer.due); True when it did.
        Every rank calls it at every step."""
        return super().save_if_due(step, state)

    def restore(self, state=None):
        """Collective. Restores the newest checkpoint into the state (default:
        the constructor's) and returns its step, or None when there is none.
        Tensors are filled in place. Optimizers get exactly the state the
        checkpoint holds (state for the parameters that had it, created where
        missing, dropped where the checkpoint has none), as torch's
        load_state_dict would. A checkpoint whose tensor names, shapes, dtypes
        or memory layouts differ is refused (StateMismatchError) and nothing
        in the model or optimizers is changed."""
        return super().restore(self._default(state))

    # ---- hooks of tierckpt.Checkpointer

    def _walk_special(self, walk, value, path):
        if isinstance(value, _torch.nn.Module):
            sd = value.state_dict()
            return _Stateful("module", walk.value(sd, path))
        if isinstance(value, _torch.optim.Optimizer):
            sd = value.state_dict()
            # By parameter index: the order of opt.state is the order in
            # which parameters first got state, which a restore cannot know.
            if all(isinstance(k, int) for k in sd["state"]):
                sd["state"] = dict(sorted(sd["state"].items()))
            return _Stateful("optimizer", walk.value(sd, path))
        if _is_stateful(value) and not isinstance(value, _torch.Tensor):
            # Schedulers, scalers, RNGState: small, and their state_dict()
            # makes new objects every time: pickled whole.
            return _Stateful("stateful", value.state_dict(), _class_name(value))
        return NotImplemented

    def _prepare_restore(self, state, meta):
        pairs = list(_paired(state, meta["skeleton"], ""))
        for live, saved, path in pairs:
            _check_kind(live, saved, path)
        undos = []

        def undo():
            for u in reversed(undos):
                u()

        try:
            for live, saved, _path in pairs:
                if isinstance(saved, _Stateful) and saved.kind == "optimizer":
                    _prepare_optimizer(live, saved.skeleton, meta["schema"], undos)
        except BaseException:
            undo()
            raise
        return undo

    def _apply_special(self, live, saved, regions):
        if not isinstance(saved, _Stateful):
            return False
        sd = _tck._rebuild(saved.skeleton, regions)
        # The kinds were checked before anything was written (_check_kind).
        if saved.kind == "module":
            # The tensors are in place, unless the module's state_dict()
            # handed out copies (a state-dict hook, packed parameters): then,
            # as for extra state (get_extra_state), load_state_dict puts them
            # where the module keeps them.
            own = {t.data_ptr() for t in _itertools.chain(live.parameters(), live.buffers())}
            if any(not isinstance(v, _torch.Tensor) or (v.numel() and v.data_ptr() not in own) for v in sd.values()):
                live.load_state_dict(sd)
        elif saved.kind == "optimizer":
            _apply_optimizer(live, sd)
        else:
            live.load_state_dict(sd)
        return True


class _Joined(dict):
    """The constructor's objects plus the user's extra dict, written back to
    the extra dict on restore."""

    def __init__(self, base, extra):
        super().__init__(base)
        super().update(extra)
        self._base = set(base)
        self._extra = extra

    def __setitem__(self, k, v):
        super().__setitem__(k, v)
        if k not in self._base:
            self._extra[k] = v


def _kind(v):
    if isinstance(v, _torch.nn.Module):
        return "module"
    if isinstance(v, _torch.optim.Optimizer):
        return "optimizer"
    if _is_stateful(v) and not isinstance(v, _torch.Tensor):
        return "stateful"
    return None


def _paired(live, saved, path):
    """The places where the live state and the checkpoint's skeleton hold a
    module, optimizer or stateful object (either side), as (live, saved,
    path), walking the dicts and lists they share."""
    if isinstance(saved, _Stateful) or _kind(live) is not None:
        yield live, saved, path
    elif isinstance(saved, Mapping) and isinstance(live, Mapping):
        for k, s in saved.items():
            if k in live:
                yield from _paired(live[k], s, f"{path}.{k}" if path else str(k))
    elif isinstance(saved, (list, tuple)) and isinstance(live, (list, tuple)) and len(saved) == len(live):
        for i, (x, s) in enumerate(zip(live, saved)):
            yield from _paired(x, s, f"{path}.{i}")


def _check_kind(live, saved, path):
    """Refuses, before anything is written, a module, optimizer or stateful
    object where the checkpoint has something else, or the reverse (restore
    could fill the tensors and then fail to put the rest back)."""
    where = path or "the state"
    if isinstance(saved, _Stateful):
        if _kind(live) != saved.kind:
            raise StateMismatchError(
                f"the checkpoint holds {'an' if saved.kind == 'optimizer' else 'a'} {saved.kind} at '{where}', this "
                f"state {type(live).__name__}: restore into the kind of object it was saved from"
            )
        if saved.kind == "stateful" and saved.cls is not None and saved.cls != _class_name(live):
            raise StateMismatchError(
                f"the checkpoint holds a {saved.cls} at '{where}', this state a {_class_name(live)}: its "
                "load_state_dict could not take that state; build the same kind of object before restoring"
            )
    elif isinstance(saved, (Mapping, list, tuple)):
        raise StateMismatchError(
            f"the checkpoint holds plain values at '{where}', this state a {_kind(live)} "
            f"({type(live).__name__}): restore into the kind of object it was saved from"
        )


_MISSING = object()


def _prepare_optimizer(opt, sd, schema, undos):
    """Makes opt.state hold, for each parameter, exactly the entries the
    checkpoint's optimizer state has (sd: its skeleton, tensors as _Ref into
    schema): tensors it lacks are created empty (the restore fills them),
    state the checkpoint lacks is taken out. Appends to undos a function
    that puts back what was there; raises StateMismatchError, changing
    nothing, when the parameter groups differ."""
    params = [p for g in opt.param_groups for p in g["params"]]
    groups = sd.get("param_groups", [])
    sizes = [len(g["params"]) for g in groups]
    if sizes != [len(g["params"]) for g in opt.param_groups]:
        raise StateMismatchError(
            f"the checkpoint's optimizer has {len(groups)} parameter group(s) of {sizes} parameters, this one "
            f"{len(opt.param_groups)} of {[len(g['params']) for g in opt.param_groups]}: build the optimizer with "
            "the same parameter groups (optimizer.add_param_group) before restoring"
        )
    saved_state = sd.get("state", {})
    changed = []
    try:
        for idx, p in enumerate(params):
            want = saved_state.get(idx)
            have = opt.state[p] if p in opt.state else _MISSING
            if want is None:
                if have is not _MISSING:
                    changed.append((p, have))
                    del opt.state[p]
                continue
            if have is not _MISSING and _state_fits(have, want, schema):
                continue  # filled in place
            changed.append((p, have))
            opt.state[p] = {k: _fresh(v, schema, p) for k, v in want.items()}
    except BaseException:
        _put_back(opt, changed)
        raise
    undos.append(lambda: _put_back(opt, changed))


def _put_back(opt, changed):
    for p, old in reversed(changed):
        if old is _MISSING:
            opt.state.pop(p, None)
        else:
            opt.state[p] = old


def _fresh(v, schema, param):
    """The checkpoint's value v (a skeleton) with every tensor made anew,
    empty (the restore fills it): lists, tuples and dicts of tensors too
    (LBFGS keeps its history in lists)."""
    if isinstance(v, _tck._Ref):
        return _empty_like_entry(schema[v.index], param)
    if isinstance(v, Mapping):
        return {k: _fresh(x, schema, param) for k, x in v.items()}
    if type(v) in (list, tuple):
        return type(v)(_fresh(x, schema, param) for x in v)
    return v


def _state_fits(have, want, schema):
    """Whether a parameter's live optimizer state has the checkpoint's
    structure (keys, list lengths), its tensors of the same shape, dtype and
    layout: then it is filled in place."""
    if isinstance(want, _tck._Ref):
        _path, shape, dtype, _nbytes, layout, _device = schema[want.index]
        return isinstance(have, _torch.Tensor) and tuple(have.shape) == tuple(shape) and \
            _tck._dtype_name(have.dtype) == dtype and \
            _tck._dense_layout(tuple(have.shape), tuple(have.stride())) == layout
    if isinstance(want, Mapping):
        return isinstance(have, Mapping) and list(have) == list(want) and \
            all(_state_fits(have[k], x, schema) for k, x in want.items())
    if type(want) in (list, tuple):
        return type(have) is type(want) and len(have) == len(want) and \
            all(_state_fits(h, x, schema) for h, x in zip(have, want))
    return not isinstance(have, _torch.Tensor)  # a plain value: put back after the restore


def _empty_like_entry(entry, param):
    """An uninitialised tensor for a schema entry of a parameter's optimizer
    state, in the saved dtype and memory layout."""
    path, shape, dtype, _nbytes, layout, device = entry
    dt = getattr(_torch, dtype, None)
    if not isinstance(dt, _torch.dtype):
        raise StateMismatchError(f"'{path}': the checkpoint holds dtype {dtype}, which this PyTorch does not know")
    # A scalar saved from the CPU (Adam's step without capturable=True) stays
    # there; everything else follows its parameter, wherever the model now is.
    dev = "cpu" if len(shape) == 0 and device in ("cpu", None) else param.device
    if layout is None:
        return _torch.empty(tuple(shape), dtype=dt, device=dev)
    return _torch.empty_strided(tuple(shape), tuple(st if st else 1 for st in layout), dtype=dt, device=dev)


def _apply_optimizer(opt, sd):
    """Tensors of the optimizer state are filled in place already; this puts
    back the hyperparameters and the state's non-tensor entries."""
    groups = sd["param_groups"]
    if len(groups) != len(opt.param_groups):
        raise StateMismatchError(
            f"the checkpoint's optimizer has {len(groups)} parameter groups, this one {len(opt.param_groups)}"
        )
    params = []
    for live, saved in zip(opt.param_groups, groups):
        if len(live["params"]) != len(saved["params"]):
            raise StateMismatchError("the checkpoint's optimizer groups hold other numbers of parameters than this one")
        for k, v in saved.items():
            if k != "params":
                live[k] = v
        params.extend(live["params"])
    for idx, entries in sd["state"].items():
        st = opt.state[params[idx]]
        for k, v in entries.items():
            if not isinstance(v, _torch.Tensor):
                st[k] = v
