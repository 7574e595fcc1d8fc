"""Layout and indexing graph ops: slice, concatenate, pad, reverse, dynamic_slice,
dynamic_update_slice, gather and scatter (XLA HLO semantics).

Registered into ``lowering.ir.ops.table.OPS``; lowering rules are in :mod:`lowering.lower.rules.layout`.
Start indices of the dynamic ops are clamped so the slice stays in bounds (as XLA does);
scatter skips an update whose window would leave the operand (as XLA does).

    >>> from lowering.ir.ops.table import OPS
    >>> from lowering.ir.types import TensorType
    >>> t = TensorType((4, 6), 'float32')
    >>> str(OPS['slice'].type_rule([t], OPS['slice'].normalize_attrs(
    ...     {'start': [1, 0], 'limit': [3, 6], 'stride': [1, 2]})))
    'f32[2,3]'
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType, is_int
from .table import REDUCE_KINDS, REQUIRED, RuleError, check_dims, define, finish


# ---------------------------------------------------------------- static layout

def _slice_rule(types, attrs):
    t = types[0]
    start, limit = attrs["start"], attrs["limit"]
    stride = attrs["stride"] or (1,) * t.rank
    if not len(start) == len(limit) == len(stride) == t.rank:
        raise RuleError(f"start/limit/stride need one entry per dim ({t.rank})")
    shape = []
    for d, (a, b, s) in enumerate(zip(start, limit, stride)):
        if not (0 <= a <= b <= t.shape[d]) or s < 1:
            raise RuleError(f"slice [{a}:{b}:{s}] is out of range for dim {d} of size "
                            f"{t.shape[d]}", 0)
        shape.append(len(range(a, b, s)))
    return t.with_shape(shape)


def _slice_ref(xs, attrs, out):
    stride = attrs["stride"] or (1,) * xs[0].ndim
    key = tuple(slice(a, b, s) for a, b, s in zip(attrs["start"], attrs["limit"], stride))
    return finish(xs[0][key], out)


define("slice", 1, {"start": REQUIRED, "limit": REQUIRED, "stride": None}, _slice_rule,
        _slice_ref, "static strided slice x[start:limit:stride]")


def _concat_rule(types, attrs):
    if not types:
        raise RuleError("concatenate needs at least one operand")
    first, dim = types[0], attrs["dim"]
    check_dims((dim,), first.rank, "dim")
    total = 0
    for i, t in enumerate(types):
        if t.dtype != first.dtype or t.rank != first.rank or any(
                a != b for d, (a, b) in enumerate(zip(t.shape, first.shape)) if d != dim):
            raise RuleError("operands must agree in dtype and in every dim but dim "
                            f"{dim}", i, str(first))
        total += t.shape[dim]
    shape = list(first.shape)
    shape[dim] = total
    return first.with_shape(shape)


define("concatenate", None, {"dim": REQUIRED}, _concat_rule,
        lambda xs, a, out: finish(np.concatenate(xs, axis=a["dim"]), out),
        "join operands along dim")


def _pad_rule(types, attrs):
    t, v = types
    if v.shape != () or v.dtype != t.dtype:
        raise RuleError("the padding value must be a scalar of the operand dtype", 1,
                        f"{t.dtype}[]")
    lo, hi, interior = attrs["low"], attrs["high"], attrs["interior"] or (0,) * t.rank
    if not len(lo) == len(hi) == len(interior) == t.rank:
        raise RuleError(f"low/high/interior need one entry per dim ({t.rank})")
    shape = []
    for d, n in enumerate(t.shape):
        if interior[d] < 0:
            raise RuleError(f"interior padding {interior[d]} of dim {d} is negative")
        size = lo[d] + hi[d] + n + max(n - 1, 0) * interior[d]
        if size < 0:
            raise RuleError(f"padding of dim {d} leaves a negative size")
        shape.append(size)
    return t.with_shape(shape)


def _pad_ref(xs, attrs, out):
    x, v = xs
    interior = attrs["interior"] or (0,) * x.ndim
    # interior padding first (into a grid), then edge padding which may be negative (= crop)
    full = np.full([n + max(n - 1, 0) * i for n, i in zip(x.shape, interior)], v, x.dtype)
    full[tuple(slice(None, None, i + 1) for i in interior)] = x
    lo, hi = attrs["low"], attrs["high"]
    full = np.pad(full, [(max(a, 0), max(b, 0)) for a, b in zip(lo, hi)], constant_values=v)
    key = tuple(slice(max(-a, 0), full.shape[d] - max(-b, 0)) for d, (a, b) in
                enumerate(zip(lo, hi)))
    return finish(full[key], out)


define("pad", 2, {"low": REQUIRED, "high": REQUIRED, "interior": None}, _pad_rule, _pad_ref,
        "pad with a scalar: low/high edges (negative crops) and interior gaps")


def _reverse_rule(types, attrs):
    check_dims(attrs["dims"], types[0].rank, "dims")
    return types[0]


define("reverse", 1, {"dims": REQUIRED}, _reverse_rule,
        lambda xs, a, out: finish(np.flip(xs[0], axis=tuple(a["dims"])), out),
        "reverse the order of elements along dims")


# ---------------------------------------------------------------- dynamic slices

def _check_starts(types, first_index, rank):
    starts = types[first_index:]
    if len(starts) != rank:
        raise RuleError(f"needs {rank} start indices (one per dim), got {len(starts)}")
    for i, t in enumerate(starts, first_index):
        if t.shape != () or not is_int(t.dtype):
            raise RuleError("start indices must be integer scalars", i, "an int scalar")


def _dyn_slice_rule(types, attrs):
    t, sizes = types[0], attrs["sizes"]
    _check_starts(types, 1, t.rank)
    if len(sizes) != t.rank or any(not 0 <= s <= n for s, n in zip(sizes, t.shape)):
        raise RuleError(f"sizes {list(sizes)} must fit the operand shape {list(t.shape)}", 0)
    return t.with_shape(sizes)


def clamp_starts(starts, shape, sizes):
    """XLA clamps each start to [0, dim - size] so the window stays inside the operand."""
    return [int(min(max(int(np.asarray(s)), 0), n - k)) for s, n, k in zip(starts, shape, sizes)]


def _dyn_slice_ref(xs, attrs, out):
    x, sizes = xs[0], attrs["sizes"]
    st = clamp_starts(xs[1:], x.shape, sizes)
    return finish(x[tuple(slice(a, a + k) for a, k in zip(st, sizes))], out)


define("dynamic_slice", None, {"sizes": REQUIRED}, _dyn_slice_rule, _dyn_slice_ref,
        "x[s0:s0+size0, ...] with run-time starts (operands: x, s0, s1, ...; clamped)")


def _dyn_update_rule(types, attrs):
    t, u = types[0], types[1]
    _check_starts(types, 2, t.rank)
    if u.dtype != t.dtype or u.rank != t.rank or any(a > b for a, b in zip(u.shape, t.shape)):
        raise RuleError("the update must have the operand's dtype and fit inside it", 1,
                        f"{t.dtype} with dims <= {list(t.shape)}")
    return t


def _dyn_update_ref(xs, attrs, out):
    x, u = xs[0].copy(), xs[1]
    st = clamp_starts(xs[2:], x.shape, u.shape)
    x[tuple(slice(a, a + k) for a, k in zip(st, u.shape))] = u
    return finish(x, out)


define("dynamic_update_slice", None, {}, _dyn_update_rule, _dyn_update_ref,
        "x with x[s0:s0+u0, ...] = update (operands: x, update, s0, s1, ...; clamped)")


# ---------------------------------------------------------------- gather / scatter

_GATHER_ATTRS = {"offset_dims": REQUIRED, "collapsed_slice_dims": REQUIRED,
                 "start_index_map": REQUIRED, "index_vector_dim": REQUIRED,
                 "slice_sizes": REQUIRED, "operand_batching_dims": (),
                 "start_indices_batching_dims": ()}


def index_batch_dims(idx_rank, index_vector_dim):
    """Dims of the start-indices tensor that enumerate lookups (all but the index vector)."""
    return [d for d in range(idx_rank) if d != index_vector_dim]


def _gather_rule(types, attrs):
    t, idx = types
    if not is_int(idx.dtype):
        raise RuleError("gather indices must be integers", 1, "an integer dtype")
    ss = attrs["slice_sizes"]
    if len(ss) != t.rank or any(not 0 <= s <= n for s, n in zip(ss, t.shape)):
        raise RuleError(f"slice_sizes {list(ss)} must fit the operand {list(t.shape)}", 0)
    check_dims(attrs["start_index_map"], t.rank, "start_index_map")
    check_dims(attrs["collapsed_slice_dims"], t.rank, "collapsed_slice_dims")
    check_dims(attrs["operand_batching_dims"], t.rank, "operand_batching_dims")
    removed = set(attrs["collapsed_slice_dims"]) | set(attrs["operand_batching_dims"])
    if any(ss[d] != 1 for d in removed):
        raise RuleError("collapsed and batching dims need slice size 1", 0)
    ivd = attrs["index_vector_dim"]
    if not 0 <= ivd <= idx.rank:
        raise RuleError(f"index_vector_dim {ivd} must be in [0, {idx.rank}]", 1)
    nvec = idx.shape[ivd] if ivd < idx.rank else 1
    if nvec != len(attrs["start_index_map"]):
        raise RuleError(f"the index vector has {nvec} entries but start_index_map has "
                        f"{len(attrs['start_index_map'])}", 1)
    batch = [idx.shape[d] for d in index_batch_dims(idx.rank, ivd)]
    offsets = [s for d, s in enumerate(ss) if d not in removed]
    rank = len(batch) + len(offsets)
    if len(attrs["offset_dims"]) != len(offsets):
        raise RuleError(f"offset_dims {list(attrs['offset_dims'])} must name {len(offsets)} dims")
    check_dims(attrs["offset_dims"], rank, "offset_dims")
    shape, bi, oi = [], iter(batch), iter(offsets)
    for d in range(rank):
        shape.append(next(oi) if d in attrs["offset_dims"] else next(bi))
    return TensorType(shape, t.dtype)


def _starts_for(idx_vec, batch_pos, attrs, shape, sizes, batching_key, batching_dims):
    """The operand start of one lookup: mapped index entries + batching coordinates."""
    start = [0] * len(shape)
    for k, d in enumerate(attrs["start_index_map" if "start_index_map" in attrs
                                else "scatter_dims_to_operand_dims"]):
        start[d] = int(idx_vec[k])
    for od, idim in zip(attrs[batching_key], attrs[batching_dims]):
        start[od] = batch_pos[idim]
    return start


def _lookups(idx, ivd):
    """Yield (position in the index tensor (with a placeholder at ivd), index vector)."""
    if ivd == idx.ndim:
        idx = idx[..., None]
    moved = np.moveaxis(idx, ivd, -1)
    for pos in np.ndindex(moved.shape[:-1]):
        full = list(pos)
        full.insert(ivd, 0)
        yield pos, full, moved[pos]


def _gather_ref(xs, attrs, out):
    x, idx = xs
    ss, ivd = attrs["slice_sizes"], attrs["index_vector_dim"]
    removed = set(attrs["collapsed_slice_dims"]) | set(attrs["operand_batching_dims"])
    blocks = []
    for pos, full, vec in _lookups(idx, ivd):
        start = _starts_for(vec, full, attrs, x.shape, ss, "operand_batching_dims",
                            "start_indices_batching_dims")
        st = clamp_starts(start, x.shape, ss)
        block = x[tuple(slice(a, a + k) for a, k in zip(st, ss))]
        blocks.append(block.reshape([k for d, k in enumerate(ss) if d not in removed]))
    batch_shape = [idx.shape[d] for d in index_batch_dims(idx.ndim, ivd)]
    offs = [k for d, k in enumerate(ss) if d not in removed]
    arr = np.array(blocks, dtype=x.dtype).reshape(batch_shape + offs)
    nb = len(batch_shape)
    rank = nb + len(offs)
    od = list(attrs["offset_dims"])
    batch_out = [d for d in range(rank) if d not in od]
    # arr axes are [batch..., offsets...]; place them at batch_out / offset_dims positions
    perm = [0] * rank
    for i, d in enumerate(batch_out):
        perm[d] = i
    for i, d in enumerate(od):
        perm[d] = nb + i
    return finish(np.transpose(arr, perm), out)


define("gather", 2, _GATHER_ATTRS, _gather_rule, _gather_ref,
        "XLA gather: a slice of slice_sizes at each index vector (starts clamped)")


# how scatter combines: any numeric reduce kind (from the one table), or plain replacement
_SCATTER_KINDS = {**{k.name: k.ufunc for k in REDUCE_KINDS.values() if not k.bool_only},
                  "replace": lambda old, new: new}
_SCATTER_ATTRS = {"update_window_dims": REQUIRED, "inserted_window_dims": REQUIRED,
                  "scatter_dims_to_operand_dims": REQUIRED, "index_vector_dim": REQUIRED,
                  "input_batching_dims": (), "scatter_indices_batching_dims": (),
                  "kind": REQUIRED}


def _scatter_rule(types, attrs):
    t, idx, upd = types
    if attrs["kind"] not in _SCATTER_KINDS:
        raise RuleError(f"kind {attrs['kind']!r} is not one of {list(_SCATTER_KINDS)}")
    if not is_int(idx.dtype):
        raise RuleError("scatter indices must be integers", 1, "an integer dtype")
    if upd.dtype != t.dtype:
        raise RuleError("updates must have the operand dtype", 2, t.dtype)
    for key in ("inserted_window_dims", "input_batching_dims", "scatter_dims_to_operand_dims"):
        check_dims(attrs[key], t.rank, key)
    check_dims(attrs["update_window_dims"], upd.rank, "update_window_dims", 2)
    if not 0 <= attrs["index_vector_dim"] <= idx.rank:
        raise RuleError(f"index_vector_dim {attrs['index_vector_dim']} must be in "
                        f"[0, {idx.rank}]", 1)
    removed = set(attrs["inserted_window_dims"]) | set(attrs["input_batching_dims"])
    if len(attrs["update_window_dims"]) + len(removed) != t.rank:
        raise RuleError("update_window_dims + inserted + batching dims must cover the operand")
    return t


def _scatter_ref(xs, attrs, out):
    x, idx, upd = xs
    x = x.copy()
    ivd, uwd = attrs["index_vector_dim"], list(attrs["update_window_dims"])
    removed = set(attrs["inserted_window_dims"]) | set(attrs["input_batching_dims"])
    win_dims = [d for d in range(x.ndim) if d not in removed]
    scatter_dims = [d for d in range(upd.ndim) if d not in uwd]
    combine = _SCATTER_KINDS[attrs["kind"]]
    for pos, full, vec in _lookups(idx, ivd):
        start = _starts_for(vec, full, attrs, x.shape, None, "input_batching_dims",
                            "scatter_indices_batching_dims")
        key = [slice(None)] * upd.ndim
        for d, p in zip(scatter_dims, pos):
            key[d] = p
        window = upd[tuple(key)]                      # dims = update_window_dims in order
        sizes = [1] * x.ndim
        for d, n in zip(win_dims, window.shape):
            sizes[d] = n
        if any(s < 0 or s + k > n for s, k, n in zip(start, sizes, x.shape)):
            continue                                  # XLA skips out-of-bounds windows
        region = tuple(slice(s, s + k) for s, k in zip(start, sizes))
        x[region] = combine(x[region], window.reshape(sizes))
    return finish(x, out)


define("scatter", 3, _SCATTER_ATTRS, _scatter_rule, _scatter_ref,
        "XLA scatter (operand, indices, updates) combining with add/mul/max/min/replace")

__all__ = ["clamp_starts", "index_batch_dims"]
