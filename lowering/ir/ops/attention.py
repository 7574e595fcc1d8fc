"""``attention``: softmax(q k^T / divide [masked]) v, the op the attention pattern pass
(:mod:`lowering.lower.patterns`) forms from the dot / softmax / dot chains exporters emit.

Operands: ``q`` [B, Sq, D], ``k_t`` [B, D, Sk], ``v`` [B, Sk, D] and optionally a bool ``mask``
[Sq, Sk] (False -> ``fill``). The reference follows the chain it replaces: scores rounded to
``score_dtype`` (the first dot's result type), divided, masked, softmax in f32, probabilities
rounded to ``prob_dtype``, then the second dot accumulated in f32.

    >>> from lowering.ir.types import TensorType
    >>> q, kt = TensorType((2, 8, 4), 'float32'), TensorType((2, 4, 16), 'float32')
    >>> v = TensorType((2, 16, 4), 'float32')
    >>> OPS['attention'].type_rule([q, kt, v], {'divide': 2.0, 'fill': -1e9, 'score_dtype':
    ...     'float32', 'prob_dtype': 'float32', 'out_dtype': 'float32'})
    TensorType(shape=(2, 8, 4), dtype='float32')

``mh_attention`` is the same per head, with q, k and v as [S, C] row-major tensors whose
columns ``offsets[i] + h * head_dim ...`` hold head ``h`` (the fused QKV projection's result
as it is), and the result [Sq, heads * head_dim]:

    >>> qkv = TensorType((16, 24), 'bfloat16')
    >>> OPS['mh_attention'].type_rule([qkv] * 3, {'heads': 2, 'head_dim': 4, 'offsets':
    ...     (0, 8, 16), 'out_dtype': 'bfloat16'})
    TensorType(shape=(16, 8), dtype='bfloat16')
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType, numpy_dtype
from .table import OPS, REQUIRED, RuleError, define, finish


def _rule(types, attrs):
    if len(types) not in (3, 4):
        raise RuleError(f"attention takes q, k_t, v and an optional mask, got {len(types)}")
    q, kt, v = types[:3]
    if q.rank != 3 or kt.rank != 3 or v.rank != 3:
        raise RuleError("attention operands are [B, Sq, D], [B, D, Sk], [B, Sk, D]")
    B, Sq, D = q.shape
    if kt.shape[:2] != (B, D) or v.shape[0] != B or v.shape[1] != kt.shape[2]:
        raise RuleError(f"attention shapes {q}, {kt}, {v} do not agree", 1)
    if len(types) == 4 and (types[3].shape != (Sq, kt.shape[2]) or types[3].dtype != "bool"):
        raise RuleError(f"attention mask must be bool[{Sq},{kt.shape[2]}]", 3)
    return v.with_shape((B, Sq, v.shape[2])).with_dtype(attrs["out_dtype"])


def _ref(xs, attrs, out):
    q, kt, v = (np.asarray(x).astype(np.float32) for x in xs[:3])
    s = np.matmul(q, kt).astype(numpy_dtype(attrs["score_dtype"])).astype(np.float32)
    s = s / np.float32(attrs["divide"])
    if len(xs) == 4:
        s = np.where(np.asarray(xs[3])[None], s, np.float32(attrs["fill"]))
    with np.errstate(all="ignore"):
        e = np.exp(s - s.max(-1, keepdims=True))
        p = e / e.sum(-1, keepdims=True)
    p = p.astype(numpy_dtype(attrs["prob_dtype"])).astype(np.float32)
    return finish(np.matmul(p, v), out)


define("attention", None, {"divide": REQUIRED, "fill": -1e9, "score_dtype": REQUIRED,
                           "prob_dtype": REQUIRED, "out_dtype": REQUIRED}, _rule, _ref,
       "softmax(q @ k_t / divide, masked) @ v over batch dim 0 (formed by the pattern pass)")



# ---------------------------------------------------------------- multi-head, row layout

def _mh_rule(types, attrs):
    if len(types) not in (3, 4):
        raise RuleError(f"takes q, k, v and an optional mask, got {len(types)} operands")
    H, D = int(attrs["heads"]), int(attrs["head_dim"])
    if H < 1 or D < 1:
        raise RuleError(f"heads and head_dim must be >= 1, got {H} and {D}")
    for i, (t, off) in enumerate(zip(types[:3], attrs["offsets"])):
        if t.rank != 2 or not 0 <= off or off + H * D > t.shape[1]:
            raise RuleError(f"a 2-D operand with columns [{off}, {off + H * D}) for {H} heads x "
                            f"{D} is needed, got {t}", i)
    q, k, v = types[:3]
    if k.shape[0] != v.shape[0]:
        raise RuleError(f"keys {k} and values {v} differ in length", 2)
    if len(types) == 4 and (types[3].shape != (q.shape[0], k.shape[0]) or
                            types[3].dtype != "bool"):
        raise RuleError(f"the mask must be bool[{q.shape[0]},{k.shape[0]}]", 3)
    return v.with_shape((q.shape[0], H * D)).with_dtype(attrs["out_dtype"])


def _heads(x, off, H, D):
    x = np.asarray(x)
    return x[:, off:off + H * D].reshape(x.shape[0], H, D).transpose(1, 0, 2)


def _mh_ref(xs, attrs, out):
    H, D = int(attrs["heads"]), int(attrs["head_dim"])
    q, k, v = (_heads(x, o, H, D) for x, o in zip(xs[:3], attrs["offsets"]))
    per_head = TensorType((H, q.shape[1], D), "float32")
    o = _ref([q, k.transpose(0, 2, 1), v] + list(xs[3:]), attrs, per_head)
    return finish(o.transpose(1, 0, 2).reshape(q.shape[1], H * D), out)


define("mh_attention", None, {"heads": REQUIRED, "head_dim": REQUIRED, "offsets": (0, 0, 0),
                              "divide": REQUIRED, "fill": -1e9, "score_dtype": REQUIRED,
                              "prob_dtype": REQUIRED, "out_dtype": REQUIRED}, _mh_rule, _mh_ref,
       "attention of ``heads`` heads read from and written to the [S, heads * head_dim] row "
       "layout (columns ``offsets[i]`` onward of q, k, v): what the exporters' head-split "
       "reshape / transpose chains around an attention mean, without the transposes (formed "
       "by the pattern pass)")

__all__ = ["OPS"]


# ---------------------------------------------------------------- layer norm

def _ln_rule(types, attrs):
    x = types[0]
    if x.rank < 1 or x.dtype not in ("float32", "bfloat16", "float16"):
        raise RuleError(f"layer_norm needs a float operand, got {x}", 0)
    for i, t in enumerate(types[1:], 1):
        if t.shape != (x.shape[-1],) or t.dtype != "float32":
            raise RuleError(f"layer_norm scale/offset must be f32[{x.shape[-1]}]", i)
    return x.with_dtype(attrs["out_dtype"])


def layer_norm_reference(x, vecs, eps):
    """(x - mean) / sqrt(var + eps) [* scale [+ offset]] over the last dim, in f32."""
    x = np.asarray(x).astype(np.float32)
    n = np.float32(x.shape[-1])
    mean = x.sum(-1, keepdims=True, dtype=np.float32) / n
    d = x - mean
    var = (d * d).sum(-1, keepdims=True, dtype=np.float32) / n
    y = d * (np.float32(1) / np.sqrt(var + np.float32(eps)))
    if len(vecs) > 0:
        y = y * np.asarray(vecs[0], np.float32)
    if len(vecs) > 1:
        y = y + np.asarray(vecs[1], np.float32)
    return y


def _ln_ref(xs, attrs, out):
    return finish(layer_norm_reference(xs[0], xs[1:], attrs["eps"]), out)


define("layer_norm", None, {"eps": REQUIRED, "out_dtype": REQUIRED}, _ln_rule, _ln_ref,
       "(x - mean) / sqrt(var + eps) [* scale [+ offset]] over the last dim, in f32 (formed by "
       "the pattern pass from exported mean/variance chains)")
