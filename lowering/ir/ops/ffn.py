"""``ffn``: a feed-forward block ``act(x @ w1) @ w2 [+ residual]``, the op the pattern pass
(:mod:`lowering.lower.ffn_pattern`) forms from the dot / activation / dot [/ add] chains
exporters emit for transformer MLPs, so the hidden activation [S, F] can stay on chip.

Operands: ``x`` [S, D], ``w1`` [D, F], ``w2`` [F, E], then ``residual`` [S, E] when the attr
``residual`` is set, then when ``norm_eps`` is set the f32[D] scale / offset (zero, one or
both) of a layer norm applied to ``x`` first (rounded to ``norm_dtype``). The reference follows
the chain it replaces, rounding where it rounds: the first product to ``h_dtype``, the
activation ``act`` (an element-wise opcode with a ScalarE function) in that dtype, the second
product to ``y_dtype``, then the residual added and rounded to ``out_dtype``.

    >>> from lowering.ir.types import TensorType
    >>> t = lambda *s: TensorType(s, 'bfloat16')
    >>> OPS['ffn'].type_rule([t(8, 4), t(4, 16), t(16, 4)], {'act': 'gelu_tanh',
    ...     'h_dtype': 'bfloat16', 'y_dtype': 'bfloat16', 'out_dtype': 'bfloat16',
    ...     'residual': False, 'norm_eps': None})
    TensorType(shape=(8, 4), dtype='bfloat16')

``norm_dot`` is ``layer_norm(x) @ w``: operands ``x`` [S, D], ``w`` [D, N] and the norm's
scale / offset; attrs ``eps``, ``norm_dtype`` (the norm's result dtype) and ``out_dtype``.
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType
from .attention import layer_norm_reference
from .table import OPS, REQUIRED, RuleError, define, finish


def _norm_vectors(types, first, D, name):
    vecs = types[first:]
    if len(vecs) > 2:
        raise RuleError(f"{name} takes at most a scale and an offset after its operands, got "
                        f"{len(vecs)}", first + 2)
    for i, t in enumerate(vecs, first):
        if t.shape != (D,) or t.dtype != "float32":
            raise RuleError(f"the layer norm scale / offset must be f32[{D}]", i)


def _rule(types, attrs):
    n = 3 + bool(attrs["residual"])
    if len(types) < n or (attrs["norm_eps"] is None and len(types) != n):
        raise RuleError(f"ffn takes x, w1, w2{', residual' if attrs['residual'] else ''}"
                        f"{' and the norm scale / offset' if attrs['norm_eps'] is not None else ''}"
                        f", got {len(types)} operands")
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
    if attrs["residual"] and types[3].shape != out.shape:
        raise RuleError(f"ffn residual {types[3]} must be {list(out.shape)}", 3)
    if attrs["norm_eps"] is not None:
        _norm_vectors(types, n, x.shape[1], "ffn")
    return out


def _normed(xs, first, attrs, dtype_attr):
    x = np.asarray(xs[0]).astype(np.float32)
    if attrs[dtype_attr[0]] is None:
        return x
    y = layer_norm_reference(x, xs[first:], attrs[dtype_attr[0]])
    return finish(y, TensorType(x.shape, attrs[dtype_attr[1]])).astype(np.float32)


def _ref(xs, attrs, out):
    n = 3 + bool(attrs["residual"])
    x = _normed(xs, n, attrs, ("norm_eps", "norm_dtype"))
    w1, w2 = (np.asarray(a).astype(np.float32) for a in xs[1:3])
    h_t = TensorType((x.shape[0], w1.shape[1]), attrs["h_dtype"])
    h = finish(x @ w1, h_t)
    act = OPS[attrs["act"]]
    h = np.asarray(act.reference([h], {}, h_t)).astype(np.float32)
    y = finish(h @ w2, TensorType(out.shape, attrs["y_dtype"]))
    if attrs["residual"]:
        y = y.astype(np.float32) + np.asarray(xs[3]).astype(np.float32)
    return finish(y, out)


define("ffn", None, {"act": REQUIRED, "h_dtype": REQUIRED, "y_dtype": REQUIRED,
                     "out_dtype": REQUIRED, "residual": False, "norm_eps": None,
                     "norm_dtype": None}, _rule, _ref,
       "[layer_norm] act(x @ w1) @ w2 [+ residual], rounding like the chain it replaces "
       "(formed by the pattern pass)")


def _nd_rule(types, attrs):
    if len(types) < 2:
        raise RuleError(f"norm_dot takes x, w and the norm scale / offset, got {len(types)}")
    x, w = types[:2]
    if x.rank != 2 or w.rank != 2 or x.shape[1] != w.shape[0]:
        raise RuleError(f"norm_dot shapes {x} and {w} do not chain as [S, D] @ [D, N]", 1)
    _norm_vectors(types, 2, x.shape[1], "norm_dot")
    return TensorType((x.shape[0], w.shape[1]), attrs["out_dtype"])


def _nd_ref(xs, attrs, out):
    x = _normed(xs, 2, attrs, ("eps", "norm_dtype"))
    return finish(x @ np.asarray(xs[1]).astype(np.float32), out)


define("norm_dot", None, {"eps": REQUIRED, "norm_dtype": REQUIRED, "out_dtype": REQUIRED},
       _nd_rule, _nd_ref, "layer_norm(x) @ w (formed by the pattern pass so the normalised "
       "rows go straight to the PE)")

__all__ = ["OPS"]
