"""Dynamic offsets: views whose address depends on tensor *values* read at run time.

NKI's ``.ap(pattern, offset, scalar_offset=..., vector_offset=..., indirect_dim=k)`` builds such a
view; ``View.dyn = (kind, offset_source, indirect_dim, row_elems)`` records it, where ``row_elems``
is the stride of dim k in the tensor ``.ap`` was called on (prod(shape[k+1:]) for a whole tensor,
SPEC 2.4; see device.access_patterns.offset_unit).

- ``scalar``: one value ``s`` (a 1-element tensor, or a Python int) shifts the whole pattern:
  ``addr = offset + s * row_elems + sum(stride_j * i_j)``.
- ``vector``: a (P, 1) index tensor gives one value per entry of the first pattern dimension
  (a (P, C) tensor gives P*C of them, partition fastest: entry n is ``idx[n % P, n // P]``, as
  NKI's ``dma_transpose`` gather reads ``indices.T.flatten()[:rows]``; only the first ``rows``
  are used), whose stride it replaces:
  ``addr = offset + idx[i_0] * row_elems + sum_{j>0}(stride_j * i_j)``
  (a gather when read, a scatter when written; the first pair's stride is a placeholder).
  (The nki-library's attention_mxfp8_tkg KV gather with a [128, 4] tile and attention_tkg's
  batched K/V loads rely on the same order.)

``Memory.read``/``Memory.write`` call :func:`read`/:func:`write` for such views, so every
instruction supports them. DMA's ``oob_mode=skip`` can use :func:`rows` to drop out-of-range rows.

    >>> import numpy as np
    >>> from device.memory import Memory
    >>> from device.tensor import Storage, View, SBUF, HBM
    >>> m = Memory(); table = View.whole(Storage((4, 3), "float32", HBM))
    >>> m.write(table, np.arange(12).reshape(4, 3))
    >>> idx = View.whole(Storage((2, 1), "int32", SBUF)); m.write(idx, [[3], [1]])
    >>> m.read(table.ap([[3, 2], [1, 3]], vector_offset=idx)).tolist()
    [[9.0, 10.0, 11.0], [3.0, 4.0, 5.0]]
"""
from __future__ import annotations

import numpy as np

from .errors import HardwareRuleError
from .tensor import View


def _values(mem, src, loc) -> np.ndarray:
    """The integer offsets held by ``src`` (a tensor view or a plain int), in the order the
    pattern's entries use them: partition-fastest, column by column."""
    if isinstance(src, View):
        # a (P, C) offset tensor lists its offsets partition-fastest: entry n is [n % P, n // P]
        # (the NKI library's DMA gather-transpose builds 128 x C offsets for 128*C rows so)
        vals = np.asarray(mem.read(src, loc))
        vals = vals.reshape(vals.shape[0], -1) if vals.ndim else vals.reshape(1, 1)
        return vals.reshape(-1, order="F").astype(np.int64)
    hook = getattr(src, "dynamic_value", None)       # e.g. a register object: value(mem)
    if hook is not None:
        return np.asarray(hook(mem)).reshape(-1).astype(np.int64)
    return np.asarray([int(src)], np.int64)


def _in_bounds(v: View) -> bool:
    lo, hi = v.element_span()
    total = mem_elems(v)
    return hi < lo or (lo >= 0 and hi < total)


def mem_elems(v: View) -> int:
    """Elements of ``v.dtype`` that fit in the storage (the bound for a resolved address)."""
    from . import dtypes
    st = v.storage
    return st.size * dtypes.itemsize(st.dtype) // dtypes.itemsize(v.dtype)


def rows(mem, v: View, loc=None, skip_oob: bool = False):
    """Resolve ``v`` into static views: ``[(index, View | None), ...]``.

    Scalar offsets give one entry (index None) covering the whole view. Vector offsets give one
    entry per first-dimension position. An out-of-range address raises ``access-out-of-bound``
    unless ``skip_oob`` (then the entry's view is None and the caller leaves it untouched).
    """
    kind, src, _dim, row = v.dyn
    vals = _values(mem, src, loc)
    if kind == "scalar":
        out = [(None, View(v.storage, v.offset + int(vals[0]) * row, v.pattern, v.dtype))]
    else:
        n = v.pattern[0][1] if v.pattern else 1
        if vals.size < n:
            raise HardwareRuleError("dynamic-offset", f"vector_offset has {vals.size} values but the "
                                    f"access pattern's first dimension has {n}", operand="vector_offset",
                                    value=vals.size, limit=n, loc=loc)
        sub = ((0, 1),) + tuple(v.pattern[1:])
        out = [(i, View(v.storage, v.offset + int(vals[i]) * row, sub, v.dtype)) for i in range(n)]
    res = []
    for i, w in out:
        if not _in_bounds(w):
            if skip_oob:
                res.append((i, None))
                continue
            lo, hi = w.element_span()
            val = int(vals[0] if i is None else vals[i])
            raise HardwareRuleError(
                "access-out-of-bound", f"dynamic offset {val} ({kind}_offset"
                f"{'' if i is None else f'[{i}]'}) makes the access reach elements [{lo}, {hi}] of "
                f"{v.storage.name}, which has {mem_elems(v)}", operand=v.storage.name, value=val,
                limit=mem_elems(v), loc=loc)
        res.append((i, w))
    return res


def gather(mem, v: View, loc=None):
    """A vector-offset view's values in one fancy index, shaped like ``v``, or None when the
    row-by-row path (:func:`rows`) has to decide: a view that reinterprets its storage's dtype,
    fewer offsets than rows, a row out of bounds (an error, or a row ``oob_mode=skip`` drops), or
    a read of never-written elements (which warns). Same values as reading each row's view; a
    DMA gather of many rows (the library's DGT loads) costs one NumPy call instead of one per row.
    """
    if v.dyn is None or v.dyn[0] != "vector" or v.dtype != v.storage.dtype or not v.pattern:
        return None
    _kind, src, _dim, row = v.dyn
    vals = _values(mem, src, loc)
    n = v.pattern[0][1]
    if vals.size < n:
        return None
    rel = np.zeros(1, np.int64)
    for stride, count in v.pattern[1:]:
        rel = (rel[:, None] + stride * np.arange(count, dtype=np.int64)[None, :]).reshape(-1)
    idx = (v.offset + vals[:n] * row)[:, None] + rel[None, :]
    base = mem.flat(v.storage)
    if idx.size == 0 or idx.min() < 0 or idx.max() >= base.size:
        return None
    mask = mem.written.get(v.storage.id) if mem.warn_uninit else None
    if mask is not None and not mask[idx].all():
        return None
    return base[idx].reshape(v.shape)


def _indirect_cells(mem, v: View, loc):
    """Static (partitions g, 1) views for each (group, column) of an ``.indirect`` view."""
    _, index, base, group = v.dyn
    idx = np.asarray(mem.read(index, loc)).astype(np.int64).reshape(index.shape[0], -1)
    p, n = v.shape
    free = base.shape[1:]
    fe = int(np.prod(free)) if free else 1
    out = []
    for g0 in range(0, p, group):
        r0 = 0 if idx.shape[0] == group else g0
        gp = min(group, p - g0)
        for i in range(n):
            off = int(idx[r0 + i % group, i // group])
            if not 0 <= off < fe:
                raise HardwareRuleError(
                    "access-out-of-bound", f"tensor indirection offset {off} (index "
                    f"{index.name}[{r0 + i % group}, {i // group}]) is outside the {fe} free "
                    f"elements of {base.name}", operand="index", value=off, limit=fe, loc=loc)
            pos = np.unravel_index(off, free) if free else ()
            start = base.offset + base.pattern[0][0] * g0 + sum(
                s * int(k) for (s, _), k in zip(base.pattern[1:], pos))
            out.append((g0, gp, i, View(base.storage, start, ((base.pattern[0][0], gp), (1, 1)),
                                        base.dtype)))
    return out


def read(mem, v: View, loc=None) -> np.ndarray:
    """Gather the values a dynamic view addresses, shaped like ``v``."""
    if v.dyn[0] == "indirect":
        res = np.empty(v.shape, mem.storage_dtype(v.dtype))
        for g0, gp, i, w in _indirect_cells(mem, v, loc):
            res[g0:g0 + gp, i:i + 1] = mem.read(w, loc)
        return res
    got = gather(mem, v, loc)
    if got is not None:
        return got
    parts = rows(mem, v, loc)
    if parts[0][0] is None:
        return mem.read(parts[0][1], loc)
    return np.concatenate([mem.read(w, loc) for _, w in parts], axis=0).reshape(v.shape)


def write(mem, v: View, values, rounded: bool = False, loc=None):
    """Scatter ``values`` (shaped like ``v``) to the addresses a dynamic view resolves to."""
    vals = np.broadcast_to(np.asarray(values), v.shape)
    if v.dyn[0] == "indirect":            # in column order: a repeated offset keeps the last
        for g0, gp, i, w in _indirect_cells(mem, v, loc):
            mem.write(w, vals[g0:g0 + gp, i:i + 1], rounded)
        return
    parts = rows(mem, v, loc)
    if parts[0][0] is None:
        mem.write(parts[0][1], vals, rounded)
        return
    for i, w in parts:                    # in order: a repeated index keeps the last row
        mem.write(w, vals[i:i + 1], rounded)
