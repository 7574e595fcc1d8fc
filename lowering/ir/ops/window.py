"""Window and region graph ops: reduce_window, convolution, sort and while (XLA semantics).

Registered into ``lowering.ir.ops.table.OPS``. ``while`` and ``sort`` have several results (their type
rules return tuples). ``while`` holds two sub-graphs as attributes: ``cond`` (carried values ->
one bool scalar) and ``body`` (carried values -> new carried values).

    >>> from lowering.ir.ops.table import OPS
    >>> from lowering.ir.types import TensorType
    >>> a = OPS['reduce_window'].normalize_attrs({'kind': 'max', 'window': [2, 2],
    ...                                            'strides': [2, 2]})
    >>> str(OPS['reduce_window'].type_rule([TensorType((4, 6), 'float32')] * 1, a))
    'f32[2,3]'
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType
from .table import REDUCE_KINDS, REQUIRED, RuleError, define, finish, widen


def _or_ones(v, n):
    return tuple(v) if v else (1,) * n


def _or_zero_pairs(v, n):
    return tuple(tuple(p) for p in v) if v else ((0, 0),) * n


# ---------------------------------------------------------------- reduce_window

def window_out_size(n, w, stride, pad, base_dil, win_dil):
    """Output length of one dim of a window op (XLA's formula)."""
    dn = (n - 1) * base_dil + 1 if n else 0
    padded = dn + pad[0] + pad[1]
    dw = (w - 1) * win_dil + 1
    return 0 if padded < dw else (padded - dw) // stride + 1


def _rw_attrs(attrs, rank):
    return (tuple(attrs["window"]), _or_ones(attrs["strides"], rank),
            _or_zero_pairs(attrs["padding"], rank), _or_ones(attrs["base_dilation"], rank),
            _or_ones(attrs["window_dilation"], rank))


def _reduce_window_rule(types, attrs):
    t = types[0]
    if attrs["kind"] not in REDUCE_KINDS:
        raise RuleError(f"kind {attrs['kind']!r} is not one of {list(REDUCE_KINDS)}")
    w, s, p, bd, wd = _rw_attrs(attrs, t.rank)
    if not len(w) == len(s) == len(p) == len(bd) == len(wd) == t.rank:
        raise RuleError(f"window attributes need one entry per dim ({t.rank})")
    return t.with_shape([window_out_size(*a) for a in zip(t.shape, w, s, p, bd, wd)])


def dilate_and_pad(x, fill, pads, base_dil):
    """Insert base_dil-1 fill values between elements, then pad edges (negative pads crop)."""
    full = np.full([(n - 1) * d + 1 if n else 0 for n, d in zip(x.shape, base_dil)], fill,
                   x.dtype)
    full[tuple(slice(None, None, d) for d in base_dil)] = x
    full = np.pad(full, [(max(a, 0), max(b, 0)) for a, b in pads], constant_values=fill)
    return full[tuple(slice(max(-a, 0), full.shape[k] - max(-b, 0))
                      for k, (a, b) in enumerate(pads))]


def _reduce_window_ref(xs, attrs, out):
    x = widen(xs[0])
    kind = attrs["kind"]
    w, s, p, bd, wd = _rw_attrs(attrs, x.ndim)
    ident = REDUCE_KINDS[kind].identity(x.dtype)
    xp = dilate_and_pad(x, ident, p, bd)
    acc = np.full(out.shape, ident, x.dtype)
    ufunc = REDUCE_KINDS[kind].ufunc
    for off in np.ndindex(*w):
        key = tuple(slice(o * d, o * d + (n - 1) * st + 1, st)
                    for o, d, n, st in zip(off, wd, out.shape, s))
        acc = ufunc(acc, xp[key])
    return finish(acc, out)


define("reduce_window", 1, {"kind": REQUIRED, "window": REQUIRED, "strides": None,
                             "padding": None, "base_dilation": None, "window_dilation": None},
        _reduce_window_rule, _reduce_window_ref,
        "reduce each window (pooling, cumsum); padding uses the reduction identity")


# ---------------------------------------------------------------- convolution

_CONV_ATTRS = {"lhs_layout": REQUIRED, "rhs_layout": REQUIRED, "out_layout": REQUIRED,
               "strides": None, "padding": None, "lhs_dilation": None, "rhs_dilation": None,
               "feature_group_count": 1, "batch_group_count": 1, "out_dtype": None}


def conv_params(lhs: TensorType, rhs: TensorType, attrs):
    """Canonical view of a convolution: sizes in (batch, feature, spatial...) order."""
    ll, rl = attrs["lhs_layout"], attrs["rhs_layout"]
    ns = lhs.rank - 2
    return dict(
        n=lhs.shape[ll[0]], c=lhs.shape[ll[1]], sp=[lhs.shape[d] for d in ll[2:]],
        o=rhs.shape[rl[0]], i=rhs.shape[rl[1]], k=[rhs.shape[d] for d in rl[2:]],
        strides=_or_ones(attrs["strides"], ns), padding=_or_zero_pairs(attrs["padding"], ns),
        lhs_dil=_or_ones(attrs["lhs_dilation"], ns), rhs_dil=_or_ones(attrs["rhs_dilation"], ns),
        groups=attrs["feature_group_count"])


def _conv_rule(types, attrs):
    lhs, rhs = types
    if lhs.rank != rhs.rank or lhs.rank < 3:
        raise RuleError("convolution operands need equal rank >= 3", 1, f"rank {lhs.rank}")
    for key, t in (("lhs_layout", lhs), ("rhs_layout", rhs), ("out_layout", lhs)):
        if sorted(attrs[key]) != list(range(t.rank)):
            raise RuleError(f"{key} {list(attrs[key])} is not a permutation of the dims")
    if attrs["batch_group_count"] != 1:
        raise RuleError("batch_group_count > 1 is not supported")
    if lhs.dtype != rhs.dtype:
        raise RuleError("convolution operands need the same dtype", 1, lhs.dtype)
    p = conv_params(lhs, rhs, attrs)
    g = p["groups"]
    if p["c"] != p["i"] * g or p["o"] % g:
        raise RuleError(f"input features {p['c']} must equal kernel input features {p['i']} x "
                        f"feature_group_count {g} (and output features divisible by it)", 1)
    spatial = [window_out_size(n, k, s, pd, ld, rd) for n, k, s, pd, ld, rd in
               zip(p["sp"], p["k"], p["strides"], p["padding"], p["lhs_dil"], p["rhs_dil"])]
    canon = [p["n"], p["o"]] + spatial
    shape = [0] * lhs.rank
    for pos, d in enumerate(attrs["out_layout"]):
        shape[d] = canon[pos]
    return TensorType(shape, attrs["out_dtype"] or lhs.dtype)


def _conv_ref(xs, attrs, out):
    lhs, rhs = xs
    acc_t = np.float64 if lhs.dtype == np.float64 else (
        np.int64 if lhs.dtype.kind in "iu" else np.float32)
    x = np.transpose(lhs, attrs["lhs_layout"]).astype(acc_t)        # n, c, spatial...
    w = np.transpose(rhs, attrs["rhs_layout"]).astype(acc_t)        # o, i, spatial...
    p = conv_params(TensorType(lhs.shape, "float32"), TensorType(rhs.shape, "float32"), attrs)
    xp = dilate_and_pad(x, 0, ((0, 0), (0, 0)) + tuple(p["padding"]), (1, 1) + tuple(p["lhs_dil"]))
    canon = [out.shape[d] for d in attrs["out_layout"]]
    res = np.zeros(canon, acc_t)
    g, og = p["groups"], p["o"] // p["groups"]
    for off in np.ndindex(*p["k"]):
        key = (slice(None), slice(None)) + tuple(
            slice(o * d, o * d + (n - 1) * s + 1, s)
            for o, d, n, s in zip(off, p["rhs_dil"], canon[2:], p["strides"]))
        patch = xp[key]                                            # n, c, out spatial...
        for gi in range(g):
            xs_g = patch[:, gi * p["i"]:(gi + 1) * p["i"]]
            w_g = w[(slice(gi * og, (gi + 1) * og), slice(None)) + off]   # og, i
            res[:, gi * og:(gi + 1) * og] += np.einsum("nc...,oc->no...", xs_g, w_g)
    inv = np.argsort(attrs["out_layout"])
    return finish(np.transpose(res, inv), out)


define("convolution", 2, _CONV_ATTRS, _conv_rule, _conv_ref,
        "N-d convolution (XLA conv_general_dilated; layouts list batch, feature, spatial dims)")


# ---------------------------------------------------------------- sort

def _sort_rule(types, attrs):
    first = types[0]
    if not 0 <= attrs["dim"] < max(first.rank, 1):
        raise RuleError(f"dim {attrs['dim']} is out of range for rank {first.rank}")
    for i, t in enumerate(types):
        if t.shape != first.shape:
            raise RuleError("sort operands need equal shapes", i, str(first.shape))
    if attrs["num_keys"] != 1:
        raise RuleError("only one sort key is supported")
    return tuple(types)


def _sort_ref(xs, attrs, out):
    key = widen(xs[0])
    # total order: -NaN < -inf < ... < -0 == 0 < ... < inf < NaN ; stable
    k = np.where(np.isnan(key), np.inf, key) if key.dtype.kind == "f" else key
    order = np.argsort(-k if attrs["descending"] else k, axis=attrs["dim"], kind="stable")
    if key.dtype.kind == "f":
        nan_last = np.take_along_axis(np.isnan(key), order, attrs["dim"])
        order = np.take_along_axis(order, np.argsort(nan_last, axis=attrs["dim"],
                                                     kind="stable"), attrs["dim"])
    return tuple(finish(np.take_along_axis(x, order, attrs["dim"]), t)
                 for x, t in zip(xs, out))


define("sort", None, {"dim": REQUIRED, "descending": False, "num_keys": 1}, _sort_rule,
        _sort_ref, "stable sort of operands along dim by the first (NaN last)", multi=True)


# ---------------------------------------------------------------- while

def _while_rule(types, attrs):
    cond, body = attrs["cond"], attrs["body"]
    want = [t for t in types]
    for name, g in (("cond", cond), ("body", body)):
        got = [p.type for p in g.params]
        if got != want:
            raise RuleError(f"{name} takes {', '.join(map(str, got))} but the loop carries "
                            f"{', '.join(map(str, want))}")
    if [o.type for o in cond.outputs] != [TensorType((), "bool")]:
        raise RuleError("cond must return one bool scalar")
    if [o.type for o in body.outputs] != want:
        raise RuleError("body must return the carried types "
                        f"{', '.join(map(str, want))}")
    return tuple(types)


MAX_TRIPS = 1 << 24


def _while_ref(xs, attrs, out):
    state, trips = list(xs), 0                 # cond and body are Graphs: they evaluate
    while bool(attrs["cond"].evaluate(*state)[0]):
        state = attrs["body"].evaluate(*state)
        trips += 1
        if trips > MAX_TRIPS:
            raise RuntimeError(f"while loop ran {MAX_TRIPS} iterations without ending")
    return tuple(state)


define("while", None, {"cond": REQUIRED, "body": REQUIRED}, _while_rule, _while_ref,
        "while cond(state): state = body(state); results = the final state", multi=True)

