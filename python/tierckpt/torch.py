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
import random

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
    """Skeleton marker: kind is module, optimizer or stateful."""

    __slots__ = ("kind", "skeleton")

    def __init__(self, kind, skeleton):
        self.kind = kind
        self.skeleton = skeleton

    def __reduce__(self):
        return (_Stateful, (self.kind, self.skeleton))


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

    def restore(self, state=None):
        """Collective. Restores the newest checkpoint into the state (default:
        the constructor's) and returns its step, or None when there is none.
        Tensors are filled in place; a checkpoint whose tensor names, shapes
        or dtypes differ is refused (StateMismatchError) before anything is
        written. Optimizers whose state is still empty (no step taken yet)
        get it created first, as torch.distributed.checkpoint does."""
        state = self._default(state)
        lazy = [v for v in state.values() if isinstance(v, _torch.optim.Optimizer) and not v.state]
        if lazy and self._regions is None:
            # Whether a checkpoint exists decides whether the optimizers'
            # state must exist now. Ask with the small-object region alone:
            # no checkpoint gives "none"; one gives a refusal (it has more
            # regions), and nothing is written either way.
            self._register_meta()
            try:
                found, _ = self._restore_call()
            except StateMismatchError:
                found = None
            if found is False:
                return None  # registered at the first save, when the state exists
            for opt in lazy:
                _init_optimizer_state(opt)
        return super().restore(state)

    # ---- hooks of tierckpt.Checkpointer

    def _walk_special(self, walk, value, path):
        if isinstance(value, _torch.nn.Module):
            sd = value.state_dict()
            return _Stateful("module", walk.value(sd, path))
        if isinstance(value, _torch.optim.Optimizer):
            return _Stateful("optimizer", walk.value(value.state_dict(), path))
        if _is_stateful(value) and not isinstance(value, _torch.Tensor):
            # Schedulers, scalers, RNGState: small, and their state_dict()
            # makes new objects every time: pickled whole.
            return _Stateful("stateful", value.state_dict())
        return NotImplemented

    def _apply_special(self, live, saved, regions):
        if not isinstance(saved, _Stateful):
            return False
        sd = _tck._rebuild(saved.skeleton, regions)
        if saved.kind == "module":
            if not isinstance(live, _torch.nn.Module):
                raise StateMismatchError(f"the checkpoint holds a module where this state has a {type(live).__name__}")
            # The tensors are in place; only extra state (get_extra_state)
            # needs load_state_dict.
            if any(not isinstance(v, _torch.Tensor) for v in sd.values()):
                live.load_state_dict(sd)
        elif saved.kind == "optimizer":
            if not isinstance(live, _torch.optim.Optimizer):
                raise StateMismatchError(f"the checkpoint holds an optimizer where this state has a {type(live).__name__}")
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


def _init_optimizer_state(opt):
    """Creates an optimizer's state without changing the parameters: one
    step on zero gradients with the learning rates at 0 (as
    torch.distributed.checkpoint's _init_optim_state). The values are
    overwritten by the restore."""
    made = []
    for group in opt.param_groups:
        for p in group["params"]:
            if p.requires_grad and p.grad is None:
                p.grad = _torch.zeros_like(p)
                made.append(p)
    lrs = [g.get("lr") for g in opt.param_groups]
    for g in opt.param_groups:
        if "lr" in g:
            g["lr"] = 0.0
    try:
        opt.step()
    finally:
        for g, lr in zip(opt.param_groups, lrs):
            if lr is not None:
                g["lr"] = lr
        for p in made:
            p.grad = None


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
