"""Fast kernels for instructions with a run-time scalar offset (``.ap(scalar_offset=reg)``).

A loop that walks a sequence (``x[t]`` of an imported ``while`` loop, a K-tile loaded at a register
offset) reads one window per iteration. The entry's own ``run`` resolves such a view through
``device.dynamic`` every time: it builds a new ``View``, checks it, gathers the values into a fresh
array and writes them back through ``Memory`` (about 45 us for an 8x64 tile). Here everything but
the offset is decoded once: per execution the kernel reads the offset (a register, an int, or the
one value of a tensor), checks the shifted element span against the storage (two integer
compares) and copies through a NumPy view cut at the shifted offset.

An address out of bounds runs the entry's own ``run`` instead, which raises the reference's
error (``oob_mode=error``) or, with ``oob_mode=skip``, transfers nothing -- so both executors
behave the same there too. Views the kernel does not decode (vector offsets, negative strides,
reinterpreted dtypes) keep the entry's ``run``.

    >>> # fn = DYNAMIC_KERNELS["dma_copy"](ins, ctx)  -> a callable, or None for the generic run
"""
from __future__ import annotations

import numpy as np

from ..tensor import View
from .kernels import F32, storer


def _offset_reader(src, ctx):
    """A callable giving the offset value, as ``device.dynamic`` reads it."""
    if isinstance(src, View):
        return lambda: int(np.asarray(ctx.mem.read(src)).reshape(-1)[0].astype(np.int64))
    hook = getattr(src, "dynamic_value", None)
    if hook is not None:
        return lambda: int(hook(ctx.mem))
    val = int(src)
    return lambda: val


def dynamic_view(v: View, ctx):
    """``(get, static)`` for an operand: ``get()`` gives its NumPy array at this execution's
    offset, or None when the shifted access leaves the storage; ``static`` tells whether the
    view has a fixed address. None when the kernel cannot decode the view."""
    if v.dyn is None:
        g = ctx.get(v)
        return g, True
    kind, src, _dim, row = v.dyn
    st = v.storage
    if kind != "scalar" or v.dtype != st.dtype or v.size == 0 or \
            any(s < 0 for s, _ in v.pattern):
        return None
    dt = ctx.np_dtype(v)
    it = dt.itemsize
    lo, hi = v.element_span()
    total, shape, sid = st.size, v.shape, st.id
    strides = tuple(s * it for s, _ in v.pattern)
    value = _offset_reader(src, ctx)
    fixed = ctx.plan.onchip.get(sid)

    def get():
        d = value() * row
        if lo + d < 0 or hi + d >= total:
            return None
        base = fixed
        if base is None:
            mem = ctx.mem
            base = mem.arrays.get(sid)
            if base is None:
                base = mem.flat(st)
        return np.ndarray(shape, dt, buffer=base, offset=(v.offset + d) * it, strides=strides)
    return get, False


def dma_copy(ins, ctx):
    """``dma_copy`` with a scalar run-time offset on src and/or dst (see the module doc)."""
    dst, src = ins.args["dst"], ins.args["src"]
    d, s = dynamic_view(dst, ctx), dynamic_view(src, ctx)
    if d is None or s is None:
        return None
    (D, _), (S, _) = d, s
    shape = dst.shape
    generic = ins.op.run
    same = src.dtype == dst.dtype
    store = None if same else storer(dst.dtype, ctx.precise)

    def run():
        a, b = D(), S()
        if a is None or b is None:            # out of bounds: the reference's error or skip
            generic(ins, ctx.mem)
            return
        if same:
            a[...] = b.reshape(shape)
        else:
            store(a, np.asarray(b, F32).reshape(shape))
    return run


DYNAMIC_KERNELS = {"dma_copy": dma_copy}
