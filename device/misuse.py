"""Clear errors for plain Python / NumPy used on tiles while a kernel is traced.

A tile (``View``) has no values at trace time: the kernel body runs once to record instructions,
and the data exists only when the program runs. NumPy functions applied to a tile and Python
comparisons on tile values would otherwise fail deep inside NumPy (``np.exp(t)`` walks the tile
as a sequence and hits an index error) or with a bare ``TypeError``. These errors say what
happened and what to write instead:

    >>> from device.tensor import Storage, View, SBUF
    >>> t = View.whole(Storage((128, 4), "float32", SBUF, name="x"))
    >>> import numpy as np
    >>> np.exp(t)
    Traceback (most recent call last):
    device.errors.UserKernelError: np.exp was applied to tile 'x' (float32[128, 4] in sbuf) ...
"""
from __future__ import annotations

from .alu import ACT, ALU
from .errors import UserKernelError, user_loc

# NumPy function name -> the nl / nisa spelling, where it differs from "nl.<same name>"
_NUMPY_TO_NL = {
    "absolute": "nl.abs", "fabs": "nl.abs", "true_divide": "nl.divide", "amax": "nl.max",
    "amin": "nl.min", "max": "nl.max (a reduction) or nl.maximum (element-wise)",
    "min": "nl.min (a reduction) or nl.minimum (element-wise)", "sum": "nl.sum", "mean": "nl.mean",
    "prod": "nl.prod", "all": "nl.all", "var": "nl.var", "where": "nl.where",
    "matmul": "nl.matmul or nisa.nc_matmul", "dot": "nl.matmul or nisa.nc_matmul",
    "einsum": "nl.matmul or nisa.nc_matmul", "transpose": "nl.transpose or nisa.nc_transpose",
    "copy": "nl.copy or nisa.tensor_copy", "zeros_like": "nl.zeros_like",
    "ones_like": "nl.ones_like", "empty_like": "nl.empty_like", "full_like": "nl.full",
    "broadcast_to": "nl.broadcast_to", "expand_dims": "nl.expand_dims",
    "clip": "nl.minimum(nl.maximum(x, lo), hi)", "square": "nl.square", "sqrt": "nl.sqrt",
    "remainder": "nl.mod", "logaddexp": "nl.softplus-based code (nl.log, nl.exp)",
    "maximum": "nl.maximum", "minimum": "nl.minimum", "exp2": "nl.power(2.0, x)",
    "concatenate": "writes into slices of one nl.ndarray",
    "stack": "writes into slices of one nl.ndarray", "reshape": "the tile's .reshape(...)",
    "asarray": "", "array": "",
}


def _describe(t) -> str:
    return f"tile '{t.storage.name}' ({t.dtype}{list(t.shape)} in {t.buffer.name})"


def _equivalent(name: str) -> str:
    if name in _NUMPY_TO_NL:
        return _NUMPY_TO_NL[name]
    if name in ALU or name in ACT:
        return f"nl.{name}"
    return ""


def numpy_on_tile(fn_name: str, tile) -> UserKernelError:
    """The error for ``np.<fn_name>(tile)`` inside a kernel."""
    eq = _equivalent(fn_name)
    hint = (f"; use {eq} on tiles" if eq else
            "; compute on tiles with nl.* functions or nisa.* instructions")
    return UserKernelError(
        f"np.{fn_name} was applied to {_describe(tile)} inside a kernel. A tile holds no values "
        f"while the kernel is traced (NumPy cannot compute on it){hint}; NumPy works on the "
        f"arrays you pass to and get back from the kernel", loc=user_loc(3))


def control_flow_on_tile(what: str, tile) -> UserKernelError:
    """The error for Python comparisons / conversions of tile values (``if t[0, 0] > 0:``)."""
    return UserKernelError(
        f"{what} needs the value of {_describe(tile)}, which is not known while the kernel is "
        f"traced: Python `if`/`while`/`float()` run once, at trace time, before any data exists. "
        f"To select element-wise use nl.where(nl.greater(t, 0.0), x, y) or nisa.affine_select "
        f"/ nisa.select_reduce; to compare element-wise use nl.greater, nl.less, nl.equal, ...; "
        f"to branch or loop on a run-time value load it into a register (nisa.register_load) "
        f"and use nl.fori_loop / nl.while_loop", loc=user_loc(3))
