"""What framework exporters emit beyond the basics, decoded once for both importers.

- ``batch-norm-inference`` / ``stablehlo.batch_norm_inference`` (TF BatchNorm, torch_xla
  BatchNorm) and ``batch-norm-training`` / ``stablehlo.batch_norm_training`` (torch_xla's
  LayerNorm): decomposed into graph ops exactly as XLA's BatchNormExpander does (statistics
  over every dim but ``feature_index``, biased variance, computed in the operand's dtype), so
  they fuse and lower like any element-wise chain.
- ``dot ... algorithm=dot_bf16_bf16_f32`` (HLO) and the StableHLO ``algorithm`` attribute
  (``#stablehlo.dot_algorithm<lhs_precision_type = bf16, ...>``, mixed-precision Keras/JAX):
  the operands are rounded to the precision type, multiplied with f32 accumulation (what the
  PE does) and the result converted to the declared type. Multi-pass algorithms (``_x3``,
  ``_x6``, component counts above 1) and tf32/fp8 precision types are refused by name.
- Variadic ``reduce`` computing argmax/argmin in any form (JAX's select pair, TensorFlow's
  ``Ge``/``Eq``/``Min`` tie-breaking reducer from XLA's ArgMinMax, torch_xla's): recognised by
  what the reducer computes, by evaluating it on probe values, not by its spelling.
- ``custom_call`` targets with a graph meaning (:data:`CUSTOM_CALLS`): ``mhlo.erf``.

Every decoder takes ``emit(opcode, inputs, **attrs) -> Value`` from the calling importer, so
locations and error wrapping stay the importer's.

    >>> parse_hlo_algorithm("dot_bf16_bf16_f32")
    ('bfloat16', 'bfloat16', 'float32')
"""
from __future__ import annotations

import itertools
import re

import numpy as np

from ..ir.types import TensorType
from .hlo_syntax import HloImportError
from .regions import Region, evaluate_region

_ALG_DTYPES = {"bf16": "bfloat16", "f16": "float16", "f32": "float32", "f64": "float64"}


# ---------------------------------------------------------------- batch norm

def _feature_vec(emit, v, x_type: TensorType, feature: int):
    return emit("broadcast", [v], shape=x_type.shape, dims=(feature,))


def _eps(emit, epsilon: float, like: TensorType):
    c = emit("constant", [], value=np.array(epsilon, dtype=like.np_dtype))
    return emit("broadcast", [c], shape=like.shape, dims=())


def batch_norm_inference(emit, x, scale, offset, mean, var, epsilon: float, feature: int):
    """(x - mean) * scale / sqrt(var + eps) + offset, the vectors along ``feature``."""
    check_feature(x.type, feature, (scale, offset, mean, var))
    vt = scale.type
    k = emit("multiply", [scale, emit("rsqrt", [emit("add", [var, _eps(emit, epsilon, vt)])])])
    b = emit("subtract", [offset, emit("multiply", [mean, k])])
    y = emit("multiply", [x, _feature_vec(emit, k, x.type, feature)])
    return emit("add", [y, _feature_vec(emit, b, x.type, feature)])


def batch_norm_training(emit, x, scale, offset, epsilon: float, feature: int):
    """(normalised x, batch mean, batch variance): statistics over every dim but ``feature``."""
    check_feature(x.type, feature, (scale, offset))
    dims = tuple(d for d in range(x.type.rank) if d != feature)
    count = x.type.size // max(x.type.shape[feature], 1)
    vt = scale.type
    inv_n = emit("broadcast", [emit("constant", [], value=np.array(1.0 / max(count, 1),
                                                                    dtype=vt.np_dtype))],
                 shape=vt.shape, dims=())
    mean = emit("multiply", [emit("reduce", [x], dims=dims, kind="add"), inv_n])
    centred = emit("subtract", [x, _feature_vec(emit, mean, x.type, feature)])
    sq = emit("multiply", [centred, centred])
    var = emit("multiply", [emit("reduce", [sq], dims=dims, kind="add"), inv_n])
    k = emit("multiply", [scale, emit("rsqrt", [emit("add", [var, _eps(emit, epsilon, vt)])])])
    y = emit("add", [emit("multiply", [centred, _feature_vec(emit, k, x.type, feature)]),
                     _feature_vec(emit, offset, x.type, feature)])
    return y, mean, var


def check_feature(xt: TensorType, feature: int, vectors):
    if not 0 <= feature < xt.rank:
        raise ValueError(f"feature_index {feature} is out of range for operand {xt}")
    for v in vectors:
        if v.type.shape != (xt.shape[feature],) or v.type.dtype != xt.dtype:
            want = xt.with_shape((xt.shape[feature],))
            raise ValueError(f"batch-norm vector {v.type} must be {want} (the size of the "
                             f"operand's feature dim {feature})")


# ---------------------------------------------------------------- dot algorithm

def parse_hlo_algorithm(name: str):
    """``dot_bf16_bf16_f32`` -> (lhs dtype, rhs dtype, accumulation dtype) or HloImportError."""
    m = re.fullmatch(r"dot_([a-z0-9]+)_([a-z0-9]+)_([a-z0-9]+)", name)
    if not m or not all(g in _ALG_DTYPES for g in m.groups()):
        raise HloImportError(f"dot algorithm={name} is not supported (supported: one-pass "
                             f"dot_<a>_<b>_<acc> with a, b, acc in {sorted(_ALG_DTYPES)}; "
                             f"multi-pass _x3/_x6/_x9, tf32 and fp8 algorithms are not)")
    return tuple(_ALG_DTYPES[g] for g in m.groups())


def parse_stablehlo_algorithm(text: str):
    """The ``#stablehlo.dot_algorithm<...>`` attribute as (lhs, rhs, acc) dtypes."""
    fields = dict(re.findall(r"(\w+)\s*=\s*([\w.]+)", text))
    try:
        lhs, rhs, acc = (fields[k] for k in ("lhs_precision_type", "rhs_precision_type",
                                              "accumulation_type"))
        counts = [int(fields.get(k, "1")) for k in ("lhs_component_count",
                                                    "rhs_component_count",
                                                    "num_primitive_operations")]
    except (KeyError, ValueError):
        raise HloImportError(f"cannot read dot algorithm {text}") from None
    if counts != [1, 1, 1] or not all(t in _ALG_DTYPES for t in (lhs, rhs, acc)):
        raise HloImportError(f"dot algorithm {text} is not supported (supported: one primitive "
                             f"operation of one component, precision types in "
                             f"{sorted(_ALG_DTYPES)})")
    return _ALG_DTYPES[lhs], _ALG_DTYPES[rhs], _ALG_DTYPES[acc]


def dot_with_algorithm(emit, lhs, rhs, algorithm, out_dtype: str, **dims):
    """The dot of ``lhs``/``rhs`` computed the way ``algorithm`` says, as ``out_dtype``."""
    lp, rp, acc = algorithm
    if acc not in ("float32", "float64"):
        raise HloImportError(f"dot algorithm accumulation type {acc} is not supported "
                             f"(f32 accumulation is what the PE does)")
    if lp != rp:
        raise HloImportError(f"dot algorithm with different operand precisions ({lp}, {rp}) "
                             f"is not supported")
    a = lhs if lhs.type.dtype == lp else emit("convert", [lhs], dtype=lp)
    b = rhs if rhs.type.dtype == rp else emit("convert", [rhs], dtype=rp)
    extra = {"out_dtype": acc} if acc != lp else {}
    r = emit("dot", [a, b], **dims, **extra)
    return r if r.type.dtype == out_dtype else emit("convert", [r], dtype=out_dtype)


# ---------------------------------------------------------------- argmax by meaning

# Ordinary values only (no NaN): TensorFlow's tie-breaking reducer (``Ge``/``Eq``/``Min``) and
# JAX's differ only on NaN, which :func:`lowering.importers.regions.arg_reducer` checks. On NaN,
# TF's reducer is not associative, so XLA's answer depends on its reduction order, which XLA
# leaves unspecified (its CPU backend goes left to right and skips NaNs: [1, nan, 3] -> 3 at 2).
# The argmax op we lower to gives JAX's meaning (the first NaN wins), which is the answer of one
# such order (that NaN combined last, on the right).
_PROBE_VALUES = (-2.0, 0.0, 1.5)
_PROBE_INDEX = ((0, 3), (3, 0), (2, 2))


def probe_arg_reducer(r: Region) -> str | None:
    """'argmax'/'argmin' when the 4-parameter reducer (v0, i0, v1, i1) keeps the larger
    (smaller) value and, on ties, the smaller index, on every probe; else None. The region is
    run by :func:`~lowering.importers.regions.evaluate_region`, so a malformed one (wrong operand
    counts, undefined or repeated names, unknown ops) is simply not recognised and the importer
    refuses it by name."""
    if len(r.params) != 4 or len(r.roots) != 2:
        return None
    rows = [(a, b, i, j) for (a, b) in itertools.product(_PROBE_VALUES, repeat=2)
            for (i, j) in _PROBE_INDEX]
    outs = []
    for a, b, i, j in rows:
        got = evaluate_region(r, [a, i, b, j])
        if got is None or not all(isinstance(g, (int, float, np.integer, np.floating))
                                  and not isinstance(g, (bool, np.bool_)) for g in got):
            return None
        outs.append(got)
    for kind, better in (("argmax", np.greater), ("argmin", np.less)):
        if all(float(g[0]) == w[0] and float(g[1]) == w[1] for g, w in zip(
                outs, (((a, min(i, j)) if a == b else ((a, i) if better(a, b) else (b, j)))
                       for a, b, i, j in rows))):
            return kind
    return None


# ---------------------------------------------------------------- custom calls

def _erf(emit, xs, out_types):
    if len(xs) != 1:
        raise HloImportError(f"custom_call mhlo.erf takes one operand, got {len(xs)}")
    return [emit("erf", xs)]


# target -> fn(emit, operands, result types) -> list of result values
CUSTOM_CALLS = {"mhlo.erf": _erf}


def custom_call(target: str, emit, xs, out_types, frontend_attrs: dict):
    """The graph values of a custom call we understand, or None. Targets of registered NKI
    kernels are looked up through ``frontend_attrs['neuron_kernel']`` (see
    :mod:`lowering.ir.ops.kernel_call`)."""
    from ..ir.ops.kernel_call import import_kernel_call
    key = frontend_attrs.get("neuron_kernel")
    if key is not None:
        return import_kernel_call(key, emit, xs, out_types)
    fn = CUSTOM_CALLS.get(target)
    return None if fn is None else fn(emit, xs, out_types)
