"""``ffn``: a feed-forward block ``act(x @ w1) @ w2 [+ residual]``, the op the pattern pass
(:mod:`lowering.lower.ffn_pattern`) forms from the dot / activation / dot [/ add] chains
exporters emit for transformer MLPs, so the hidden activation [S, F] can stay on chip.

Operands: ``x`` [S, D], ``w1`` [D, F], ``w2`` [F, E] and optionally ``residual`` [S, E].
The reference follows the chain it replaces, rounding where it rounds: the first product to
``h_dtype``, the activation ``act`` (an element-wise opcode with a ScalarE function) in that
dtype, the second product to ``y_dtype``, then the residual added and rounded to ``out_dtype``.

    >>> from lowering.ir.types import TensorType
    >>> t = lambda *s: TensorType(s, 'bfloat16')
    >>> OPS['ffn'].type_rule([t(8, 4), t(4, 16), t(16, 4)], {'act': 'gelu_tanh',
    ...     'h_dtype': 'bfloat16', 'y_dtype': 'bfloat16', 'out_dtype': 'bfloat16'})
    TensorType(shape=(8, 4), dtype='bfloat16')
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType
from .table import OPS, REQUIRED, RuleError, define, finish


def _rule(types, attrs):
    if len(types) not in (3, 4):
        raise RuleError(f"ffn takes x, w1, w2 and an optional residual, got {len(types)}")
    x, w1, w2 = types[:3]
    if x.rank != 2 or w1.rank != 2 or w2.rank != 2 or x.shape[1] != w1.shape[0] or \
            w1.shape[1] != w2.shape[0]:
        raise RuleError(f"ffn shapes {x}, {w1}, {w2} do not chain as [S, D] @ [D, F] @ [F, E]",
                        1)
    act = OPS.get(attrs["act"])
    if act is None or act.act is None or act.arity != 1:
        raise RuleError(f"ffn activation {attrs['act']!r} is not a one-operand ScalarE "
                        f"function of the op table")
    out = TensorType((x.shape[0], w2.shape[1]), attrs["out_dtype"])
    if len(types) == 4 and types[3].shape != out.shape:
        raise RuleError(f"ffn residual {types[3]} must be {list(out.shape)}", 3)
    return out


def _ref(xs, attrs, out):
    x, w1, w2 = (np.asarray(a).astype(np.float32) for a in xs[:3])
    h_t = TensorType((x.shape[0], w1.shape[1]), attrs["h_dtype"])
    h = finish(x @ w1, h_t)
    act = OPS[attrs["act"]]
    h = np.asarray(act.reference([h], {}, h_t)).astype(np.float32)
    y = finish(h @ w2, TensorType(out.shape, attrs["y_dtype"]))
    if len(xs) == 4:
        y = y.astype(np.float32) + np.asarray(xs[3]).astype(np.float32)
    return finish(y, out)


define("ffn", None, {"act": REQUIRED, "h_dtype": REQUIRED, "y_dtype": REQUIRED,
                     "out_dtype": REQUIRED}, _rule, _ref,
       "act(x @ w1) @ w2 [+ residual], rounding like the chain it replaces (formed by the "
       "pattern pass)")

__all__ = ["OPS"]
