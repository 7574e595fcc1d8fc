"""Legacy op tokens: what an ``op=`` argument of a legacy ISA call may be (an nl op, a NumPy ufunc,
a string) and the NKI 0.6 token it becomes.

    >>> import numpy as np, nki.legacy.language
    >>> op_token(np.add).op_name
    'add'
"""
from __future__ import annotations

import numpy as np

from device.errors import UserKernelError, user_loc

from ..language.ops import TOKENS as OP_TOKENS
from . import report

legacy_nl = None          # the legacy language module, bound by it at import (it imports this module)


def bind_language(module):
    global legacy_nl
    legacy_nl = module

_UFUNCS = {np.add: "add", np.subtract: "subtract", np.multiply: "multiply", np.divide: "divide",
           np.maximum: "maximum", np.minimum: "minimum", np.power: "power", np.equal: "equal",
           np.not_equal: "not_equal", np.less: "less", np.less_equal: "less_equal",
           np.greater: "greater", np.greater_equal: "greater_equal", np.exp: "exp",
           np.log: "log", np.tanh: "tanh", np.sqrt: "sqrt", np.abs: "abs", np.square: "square",
           np.reciprocal: "reciprocal", np.sign: "sign", np.bitwise_and: "bitwise_and",
           np.bitwise_or: "bitwise_or", np.bitwise_xor: "bitwise_xor", np.negative: "negative",
           np.logical_and: "logical_and", np.logical_or: "logical_or", np.sin: "sin",
           # reductions legacy kernels pass as ops (``nisa.tensor_reduce(np.max, ...)``)
           np.max: "maximum", np.min: "minimum", np.sum: "add", np.prod: "multiply",
           np.amax: "maximum", np.amin: "minimum", max: "maximum", min: "minimum"}


def op_token(op):
    if op is None or isinstance(op, str):
        return op
    if op is legacy_nl.copy:                 # legacy nl.copy doubles as the activation 'copy'
        return OP_TOKENS["copy"]
    if op in _UFUNCS:
        report.note("numpy-op", op=getattr(op, "__name__", op), new=_UFUNCS[op])
        return getattr(legacy_nl, _UFUNCS[op])
    if hasattr(op, "op_name"):
        return op
    if getattr(op, "op_token", None):
        return getattr(legacy_nl, op.op_token)
    raise UserKernelError(f"unsupported op {op!r}: use an nl.* op or a NumPy ufunc such as np.add",
                          loc=user_loc())
