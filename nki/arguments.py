"""Checks on the arguments of a kernel call, before anything is traced.

Array arguments (NumPy, torch, JAX) become HBM tensors, so their dtype must be one NKI has: a
64-bit array (float64, int64, uint64) is refused by name rather than silently computed in fp32 and
handed back as 64-bit; complex, object and extended-precision arrays likewise. Convert explicitly
(``x.astype(np.float32)``) -- that is the documented conversion.

    >>> import numpy as np
    >>> from nki.arguments import check_array_argument
    >>> check_array_argument("k", "a", np.zeros((2, 2), np.float64))   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    device.errors.HardwareRuleError: kernel-argument-dtype: argument 'a' of k has dtype float64; ...
"""
from __future__ import annotations

import numpy as np

from device import dtypes
from device.errors import HardwareRuleError, UserKernelError, is_internal, user_loc

# What an array argument may hold: NKI's data types (nki.api.shared 'Supported Data Types'). The
# 64-bit types exist in device.dtypes for imported graphs, not as kernel tensors.
KERNEL_DTYPES = tuple(d for d in dtypes.ALL if d not in ("int64", "uint64", "float64", "tfloat32")
                      and not dtypes.is_packed(d))
_ADVICE = {"float64": "x.astype(np.float32)", "int64": "x.astype(np.int32)",
           "uint64": "x.astype(np.uint32)"}


def check_array_argument(fn_name: str, name: str, arr) -> str:
    """The NKI dtype of array argument ``name``, or a located error naming it and the choices."""
    npdt = np.dtype(arr.dtype)
    try:
        dt = dtypes.normalize(npdt)
    except TypeError:
        dt = None
    if dt in KERNEL_DTYPES or (dt is not None and dtypes.is_packed(dt)):   # host_x4 MX data
        return dt
    what = dt or str(npdt)
    advice = _ADVICE.get(what)
    how = (f"; convert it explicitly, e.g. {advice} (checking the values fit)" if advice else "")
    raise HardwareRuleError(
        "kernel-argument-dtype", f"argument '{name}' of {fn_name} has dtype {what}; kernel tensors "
        f"hold one of {', '.join(KERNEL_DTYPES)}{how}", operand=name, value=what,
        limit="NKI dtypes", loc=user_loc(2))


def explain_body_error(fn, call_args: dict, exc: BaseException):
    """A kernel body failed with a Python error on a constant argument (``None``, a string...)
    used as a tensor: a ``UserKernelError`` naming the argument and the user's line, or None."""
    if not isinstance(exc, (AttributeError, TypeError)):
        return None
    msg = str(exc)
    suspects = [(n, v) for n, v in call_args.items()
                if (v is None or isinstance(v, (str, bytes, int, float))) and
                f"'{type(v).__name__}' object" in msg]
    if not suspects:
        return None
    tb, loc = exc.__traceback__, None
    while tb is not None:
        if not is_internal(tb.tb_frame.f_code.co_filename):
            from device.errors import SourceLoc
            loc = SourceLoc(tb.tb_frame.f_code.co_filename, tb.tb_lineno, tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    names = ", ".join(f"'{n}' is {v!r}" for n, v in suspects)
    return UserKernelError(
        f"{fn.__name__}: {type(exc).__name__}: {msg} -- argument {names}, a compile-time constant "
        f"rather than a tensor; pass an array (NumPy, torch or JAX) for tensor arguments", loc=loc)


def check_arguments(fn, args, kwargs, to_numpy) -> None:
    """Every array argument of a call of ``fn`` has a kernel dtype (see ``check_array_argument``)."""
    import inspect
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except TypeError:
        return                       # reported by the caller with the kernel's name
    for name, v in bound.arguments.items():
        arr, _ = to_numpy(v)
        if arr is not None:
            check_array_argument(fn.__name__, name, arr)
