"""What crosses a kernel's boundary on the host: caller arrays (NumPy, torch, JAX) in and out,
compile-time constants as trace-cache keys, in-place writes copied back, returned views.

    >>> import numpy as np
    >>> to_numpy(np.zeros(3))[1]
    'numpy'
"""
from __future__ import annotations

import inspect

import numpy as np

from device import dtypes
from device.errors import UserKernelError, user_loc
from device.tensor import View


def to_numpy(x):
    """numpy arrays pass through; torch tensors and jax arrays become numpy (kind remembered)."""
    if isinstance(x, np.ndarray):
        return x, "numpy"
    mod = type(x).__module__
    if mod.startswith("torch"):
        t = x.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":
            import ml_dtypes
            return t.view(__import__("torch").int16).numpy().view(ml_dtypes.bfloat16), "torch"
        return t.numpy(), "torch"
    if mod.startswith("jax") or mod.startswith("jaxlib"):
        return np.asarray(x), "jax"
    if isinstance(x, np.generic):
        return None, None
    return None, None


def from_numpy(a, kind):
    if kind == "torch":
        import torch
        if a.dtype.name == "bfloat16":
            return torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
        return torch.from_numpy(a.copy())
    if kind == "jax":
        import jax.numpy as jnp
        return jnp.asarray(a)
    return a


def const_key(v, _depth=0):
    """Cache-key part for a compile-time constant argument.

    Configuration objects (``nl.NKIObject`` subclasses, dataclasses, any object with a
    ``__dict__``) are keyed by their type and field values, recursively, not by identity: a new
    but equal config reuses the traced program, and a config mutated between calls retraces.
    NumPy arrays held in fields are keyed by shape, dtype and content digest.
    """
    if isinstance(v, list):
        if _depth == 0:
            raise UserKernelError("list arguments are not accepted by NKI kernels (0.3+); pass a "
                                  "tuple", loc=None)
        return ("list", tuple(const_key(x, _depth + 1) for x in v))
    if _depth > 8:                                    # deep or cyclic structures: identity
        return (type(v).__qualname__, id(v))
    if isinstance(v, tuple):
        return ("tuple", tuple(const_key(x, _depth + 1) for x in v))
    if isinstance(v, dict):
        return ("dict", tuple((repr(k), const_key(x, _depth + 1))
                              for k, x in sorted(v.items(), key=lambda kv: repr(kv[0]))))
    if isinstance(v, np.ndarray):
        import hashlib
        return ("ndarray", v.shape, str(v.dtype), hashlib.sha1(np.ascontiguousarray(v).view(
            np.uint8)).hexdigest())
    if isinstance(v, View):
        return ("tensor", v.storage.id, v.offset, v.pattern, v.dtype)
    if isinstance(v, type) or callable(v) and not hasattr(v, "__dataclass_fields__"):
        try:
            hash(v)
            return (type(v).__qualname__, v)
        except TypeError:
            return (type(v).__qualname__, id(v))
    fields = config_fields(v)
    if fields is not None:
        return (type(v).__module__, type(v).__qualname__,
                tuple((k, const_key(x, _depth + 1)) for k, x in fields))
    try:
        hash(v)
        return (type(v).__qualname__, v)
    except TypeError:
        return (type(v).__qualname__, repr(v))


def config_fields(v):
    """(name, value) pairs of a configuration object, or None for plain values and enums."""
    import enum
    if isinstance(v, (enum.Enum, str, bytes, int, float, complex, bool)) or v is None:
        return None
    d = getattr(v, "__dict__", None)
    if d is None:
        slots = getattr(type(v), "__slots__", None)
        if not slots:
            return None
        return [(k, getattr(v, k)) for k in sorted(slots) if hasattr(v, k)]
    return sorted(d.items(), key=lambda kv: kv[0])


def host_arrays(fn, args, kwargs) -> list:
    """The NumPy arrays among a call's arguments, in signature order (what the program binds)."""
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    return [arr for arr, _ in (to_numpy(v) for v in bound.arguments.values()) if arr is not None]


def refuse_lists(fn, args, kwargs):
    """NKI 0.3+ refuses list arguments (they are mutable, so they cannot key the trace cache)."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except TypeError as e:
        raise UserKernelError(f"{fn.__name__}(): {e}") from None
    for name, v in bound.arguments.items():
        if isinstance(v, list):
            from device.errors import HardwareRuleError
            raise HardwareRuleError(
                "list-argument", f"argument '{name}' of {fn.__name__} is a list; NKI kernels do "
                f"not accept list arguments (0.3+): pass a tuple", operand=name, value="list",
                limit="tuple", loc=user_loc())


def as_returned(mem, view, whole):
    """The array for a returned tensor, shaped like the view the kernel returned.

    Kernels often return ``out.reshape(...)`` (cascaded_max) or a slice of an output; the
    storage's full contents are only right when the view covers it in order.
    """
    if view.shape == whole.shape and view.offset == 0 and view.is_contiguous():
        return dtypes.as_host(whole, view.dtype)
    if view.size == whole.size and view.offset == 0 and view.is_contiguous():
        return dtypes.as_host(whole.reshape(view.shape), view.dtype)
    a = mem.array(view).copy()
    want = dtypes.to_numpy(view.dtype)
    return dtypes.as_host(a.astype(want) if a.dtype != want else a, view.dtype)


def write_back(prog, mem, originals, arrays):
    """Inputs the kernel modified in place are copied back to the caller's arrays."""
    from device.executor import read_storage
    written = {v.storage.id for ins in prog.instrs for v in ins.writes()}
    for st, orig, arr in zip(prog.inputs, originals, arrays):
        if st.id in written:
            new = read_storage(mem, st).reshape(arr.shape)
            if isinstance(orig, np.ndarray):
                raw = dtypes.raw_bits(orig)               # host x4 arrays take the containers
                raw[...] = new.astype(raw.dtype, copy=False)
            elif type(orig).__module__.startswith("torch"):
                orig.copy_(from_numpy(new, "torch"))
