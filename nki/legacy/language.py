"""Legacy ``neuronxcc.nki.language`` (NKI 0.1) on top of the NKI 0.6 ``nki.language``.

Differences from the new module (nki-spec 1.6): dtypes are NumPy dtypes, ``nl.arange``/``nl.mgrid``
index expressions, ``mask=`` on every call, ``nl.par_dim``, ``program_id(axis)`` over an N-D launch
grid, reductions over any free axes, and every result is an ``LTile`` (tile operators).
"""
from __future__ import annotations

import builtins

import numpy as np

from device import dtypes as device_dtypes
from device.errors import HardwareRuleError, UserKernelError, user_loc
from device.tensor import PSUM, SBUF, SHARED_HBM, View, as_buffer

from .. import language as nl06
from ..language import ops as ops06
from ..language.core import (affine_range, device_print, ds, hbm, no_reorder,  # noqa: F401
                             private_hbm, psum, sbuf, sequential_range, shared_hbm, static_range,
                             tile_size)
from ..tracing import current
from . import index as legacy_index
from .index import arange, mgrid  # noqa: F401
from .dtypes import (bf16, bfloat16, bool_, finfo, float8_e4m3,  # noqa: F401
                     float8_e4m3fn, float8_e5m2, float16, float32, fp16, fp32, int8, int16,
                     int32, int64, tfloat32, uint8, uint16, uint32, uint64)
from . import optokens, tile as tile_mod
from .optokens import op_token
from .tile import BlockTile, LTile


# ---- clipping operands by a mask ------------------------------------------------------------------
def _clip(v, ranges, grid=None):
    """``v`` restricted to the mask's per-axis ranges (right-aligned), bounds-checked.

    A size-1 axis of ``v`` is a broadcast operand's and is left alone, unless the ``grid`` the
    mask was evaluated over is also 1 there. Returns None when the mask leaves nothing to do.
    """
    if not isinstance(v, View):
        return v
    n, m = v.ndim, len(ranges or ())
    mine = [(0, c) for c in v.shape]
    for i in range(n):
        a = i - (n - m)
        if a >= 0 and (v.shape[i] != 1 or (grid is not None and grid[a] == 1)):
            lo, hi = ranges[a]
            mine[i] = (lo, builtins.min(hi, v.shape[i]))
    if any(hi <= lo for lo, hi in mine):
        return None
    idx = getattr(v, "_idx", None)
    if idx:
        legacy_index.check_bounds(v.name, idx, mine)
    if all(r == (0, c) for r, c in zip(mine, v.shape)):
        return LTile.of(v) if not idx else LTile(v.storage, v.offset, v.pattern, v.dtype, v.dyn)
    off = v.offset + builtins.sum(s * lo for (s, _), (lo, _) in zip(v.pattern, mine))
    pat = [(s, hi - lo) for (s, _), (lo, hi) in zip(v.pattern, mine)]
    dyn = v.dyn
    if dyn is not None and dyn[0] == "vector":
        # a gathered axis 0: its placeholder stride moved nothing; clip the index tile instead
        off = v.offset + builtins.sum(s * lo for (s, _), (lo, _) in
                                       list(zip(v.pattern, mine))[1:])
        lo0, hi0 = mine[0]
        dyn = (dyn[0], dyn[1][lo0:hi0], dyn[2], dyn[3])
    return LTile(v.storage, off, pat, v.dtype, dyn)


def _ranges(mask, shape):
    mask = legacy_index.check_mask(mask)
    if mask is not None:
        from . import report
        report.note("mask")
    return None if mask is None else mask.ranges(shape)


def clip_operands(views, mask, shape):
    """Clip every View in ``views`` by ``mask`` over the grid ``shape``; None if nothing to do."""
    rng = _ranges(mask, shape)
    out = []
    for v in views:
        c = _clip(v, rng, shape)
        if c is None and isinstance(v, View):
            return None
        out.append(c)
    return out


def _embed(tr, r, full_shape, rng):
    """A masked result ``r`` placed in a full-shape tile (the unmasked part stays unwritten)."""
    if rng is None or tuple(r.shape) == tuple(full_shape):
        return LTile.of(r)
    full = LTile.of(tr.program.alloc(tuple(full_shape), r.dtype, r.buffer, loc=user_loc()))
    dst = _clip(full, rng, full_shape)
    tr.program.emit("tensor_copy", dst=dst, src=r, loc=user_loc())
    full._valid = list(rng)
    return full


def mask_ranges(mask, shape):
    """Per-axis ``[lo, hi)`` where ``mask`` holds over a grid of ``shape`` (None: no mask)."""
    return _ranges(mask, shape)


def masked_off(shape):
    """The ``_valid`` ranges of a result whose mask left nothing to do."""
    return [(0, 0)] * len(shape)


def _call(fn, api, args, kwargs, mask):
    """Run a new-API nl function on mask-clipped operands and wrap the result as an LTile."""
    tr = current(f"nl.{api}")
    views = [a for a in list(args) + list(kwargs.values()) if isinstance(a, View)]
    full = views[0].shape if views else ()
    rng = _ranges(mask, full)
    a2 = [_clip(a, rng, full) for a in args]
    k2 = {k: _clip(v, rng, full) for k, v in kwargs.items()}
    if any(x is None and isinstance(o, View) for x, o in zip(a2, args)) or any(
            k2[k] is None and isinstance(v, View) for k, v in kwargs.items()):
        t = LTile.of(tr.program.alloc(tuple(full), views[0].dtype, SBUF, loc=user_loc()))
        t._valid = masked_off(full)
        return t
    r = fn(*a2, **k2)
    if isinstance(r, View):
        return _embed(tr, r, full, rng) if rng and views and r.shape == a2[0].shape else LTile.of(r)
    return r


class LegacyOp(ops06.OpToken):
    """An nl math function (and ISA op token) that accepts ``mask=`` and returns LTiles."""

    def __call__(self, *args, mask=None, dtype=None, **kwargs):
        kw = dict(kwargs)
        if dtype is not None:
            kw["dtype"] = device_dtypes.normalize(dtype)
        args = broadcast_partitions(args)
        if (self.op_name == "divide" and "dtype" not in kw
                and all(device_dtypes.normalize(a.dtype) in device_dtypes.INTS for a in args if isinstance(a, View))):
            kw["dtype"] = "float32"        # '/' of integer tiles is true division, as in NumPy
        return _call(lambda *a, **k: self._impl(self.op_name, *a, **k), self.op_name, args, kw,
                     mask)


def broadcast_partitions(args):
    """Legacy nl binary ops broadcast with NumPy rules, the partition axis included: a
    1-partition operand is first copied to every partition of the other's (``nl.broadcast_to``)."""
    views = [a for a in args if isinstance(a, View)]
    if len(views) < 2:
        return args
    parts = {v.shape[0] for v in views}
    if len(parts) == 1 or 1 not in parts:
        return args
    p = builtins.max(parts)
    return tuple(LTile.of(ops06.broadcast_to(a, (p,) + tuple(a.shape[1:])))
                 if isinstance(a, View) and a.shape[0] == 1 else a for a in args)


for _n, _t in ops06.TOKENS.items():
    if _n != "copy":
        globals()[_n] = LegacyOp(_n, _t._impl)
del _n, _t


# ---- creation --------------------------------------------------------------------------------
class par_dim(int):
    """``nl.par_dim(128)``: marks the partition dimension inside a block-dimension shape."""


def _alloc(make, shape, dtype, buffer, name, *args):
    """Allocate through the new API; a par_dim after position 0 makes a ``BlockTile``."""
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    pos = [i for i, d in enumerate(shape) if isinstance(d, par_dim)]
    p = pos[0] if pos else 0
    buf = as_buffer(buffer)
    if buf.kind == "hbm" and buf != SHARED_HBM:
        # neuronxcc let a kernel return (and the simulator read back) an nl.hbm tensor; on the
        # emulator kernel outputs live in shared HBM, which is also what a 1-core kernel sees
        buf = SHARED_HBM
    if pos:
        from . import report
        report.note("par_dim")
    if p == 0 or not buf.on_chip:
        return LTile.of(make(tuple(int(d) for d in shape), *args, device_dtypes.normalize(dtype), buffer=buf,
                             name=name))
    tile_shape = tuple(int(d) for d in shape[p:])
    bshape = tuple(int(d) for d in shape[:p])
    blocks = [LTile.of(make(tile_shape, *args, device_dtypes.normalize(dtype), buffer=buf,
                            name=f"{name or 'blk'}{n}")) for n in range(int(np.prod(bshape)))]
    return BlockTile(blocks, bshape, tile_shape, p)


def ndarray(shape, dtype, buffer=sbuf, name="", **_kw):
    return _alloc(nl06.ndarray, shape, dtype, buffer, name)


def zeros(shape, dtype, buffer=sbuf, name="", **_kw):
    return _alloc(nl06.zeros, shape, dtype, buffer, name)


def number(v):
    """A fill value as a Python number (NumPy and ml_dtypes scalars such as ``nl.fp32.min``)."""
    if isinstance(v, (np.generic, np.ndarray)) and np.size(v) == 1:
        return np.asarray(v).astype(np.float64).item() if not isinstance(v, np.integer) else int(v)
    return v


def full(shape, fill_value, dtype, buffer=sbuf, name="", **_kw):
    return _alloc(nl06.full, shape, dtype, buffer, name, number(fill_value))


def ones(shape, dtype, buffer=sbuf, name="", **_kw):
    return full(shape, 1, dtype, buffer, name)


def empty_like(x, dtype=None, buffer=None, name="", **_kw):
    return ndarray(x.shape, dtype or x.dtype, buffer or x.buffer, name)


def zeros_like(x, dtype=None, buffer=None, name="", **_kw):
    return zeros(x.shape, dtype or x.dtype, buffer or x.buffer, name)


def ones_like(x, dtype=None, buffer=None, name="", **_kw):
    return ones(x.shape, dtype or x.dtype, buffer or x.buffer, name)


# ---- data movement ------------------------------------------------------------------------------
def load(src, mask=None, dtype=None, **_kw):
    """HBM -> a new SBUF tile of the access's full shape; a mask clips the DMA."""
    tr = current("nl.load")
    if src.buffer.kind != "hbm":
        raise HardwareRuleError("buffer", f"Expected operand 'src' of 'load' to be in address space "
                                f"'hbm', but got a tile in '{src.buffer.name}' instead",
                                operand="src", value=src.buffer.name, limit="hbm", loc=user_loc())
    shape = src.shape if src.ndim >= 2 else (src.shape + (1,) if src.ndim == 1 else (1, 1))
    dst = LTile.of(tr.program.alloc(shape, device_dtypes.normalize(dtype) if dtype else src.dtype, SBUF,
                                    loc=user_loc()))
    ops = clip_operands([dst, src.reshape(shape) if src.ndim < 2 and not getattr(src, "_idx", None)
                 else src], mask, shape)
    if ops is not None:
        tr.program.emit("dma_copy", dst=ops[0], src=ops[1], loc=user_loc())
    return dst


def store(dst, value, mask=None, **_kw):
    """A tile -> HBM; a mask clips the DMA."""
    tr = current("nl.store")
    if dst.buffer.kind != "hbm":
        raise HardwareRuleError("buffer", f"Expected operand 'dst' of 'store' to be in address space "
                                f"'hbm', but got a tile in '{dst.buffer.name}' instead",
                                operand="dst", value=dst.buffer.name, limit="hbm", loc=user_loc())
    if not isinstance(value, View):
        t = ndarray(dst.shape if dst.ndim >= 2 else (1, dst.size), dst.dtype)
        tr.program.emit("memset", dst=t, value=value, loc=user_loc())
        value = t
    if value.buffer.kind == "psum":         # legacy store accepted PSUM tiles: stage through SBUF
        value = copy(value)
    ops = clip_operands([dst, value], mask, dst.shape)
    if ops is not None:
        d, v = ops
        if d.shape != v.shape and d.size == v.size:
            v = v.reshape(d.shape) if not d.on_chip else v
        tr.program.emit("dma_copy", dst=d, src=v, loc=user_loc())


def copy(x, dtype=None, mask=None, **_kw):
    return _call(lambda a, **k: ops06.copy(a, **k), "copy", (x,),
                 {"dtype": device_dtypes.normalize(dtype)} if dtype else {}, mask)


def _assign(dst, value):
    """``tile[key] = value``: copy a tile (or memset a scalar) into the indexed region."""
    tr = current("tile assignment")
    ops = clip_operands([dst], None, dst.shape)
    dst = ops[0]
    if isinstance(value, LoopReduce):
        _update(dst, value.op, value.x)
        return
    if not isinstance(value, View):
        start, n = dst.partition_range() if dst.on_chip else (0, 0)
        if dst.on_chip and not _engine_start_ok(start, n):
            # compute engines start at a quadrant; neuronxcc moved such writes by DMA
            t = LTile.of(tr.program.alloc(dst.shape, dst.dtype, SBUF, loc=user_loc()))
            tr.program.emit("memset", dst=t, value=value, loc=user_loc())
            tr.program.emit("dma_copy", dst=dst, src=t, loc=user_loc())
            return
        tr.program.emit("memset", dst=dst, value=value, loc=user_loc())
        return
    if (value.storage is dst.storage and value.offset == dst.offset
            and value.pattern == dst.pattern):
        return                                  # the write-back half of `t[...] += x`
    valid = getattr(value, "_valid", None)
    if valid is not None and tuple(value.shape) == tuple(dst.shape):
        # `t[...] = nisa.op(..., mask=m)`: neuronx-cc wrote the result straight into t, so the
        # masked-off part of t keeps its contents
        if any(hi <= lo for lo, hi in valid):
            return
        dst, value = _clip(dst, valid, dst.shape), _clip(value, valid, dst.shape)
    mm = getattr(value, "_mm", None)
    if (mm is not None and dst.buffer.kind == "psum" and tr.program.instrs
            and tr.program.instrs[-1] is mm and value.shape == dst.shape):
        mm.args["dst"] = dst                    # `psum[...] = nc_matmul(...)` writes in place
        mm.args["accumulate"] = False
        return
    value = clip_operands([value], None, value.shape)[0]
    if value.shape != dst.shape:
        if value.size == dst.size and value.shape[0] == dst.shape[0]:
            value = value.reshape(dst.shape) if value.is_contiguous() else value
        else:
            value = value.broadcast_to(dst.shape) if value.ndim == dst.ndim else value
    op = "dma_copy" if not (dst.on_chip and value.on_chip) else "tensor_copy"
    tr.program.emit(op, dst=dst, src=value, loc=user_loc())


class LoopReduce:
    """What ``nl.loop_reduce(x, op, loop_indices)`` returns: assigned into a tile declared outside
    the loop (``acc[...] = nl.loop_reduce(x, np.add, (i,))``) it combines ``x`` into that tile
    (``acc[...] op= x``), so over the loop's iterations ``acc`` reduces every ``x``."""

    def __init__(self, x, op):
        self.x, self.op = x, op


def loop_reduce(x, op, loop_indices, dtype=None, mask=None, **_kw):
    """Legacy ``nl.loop_reduce``: see ``LoopReduce``. ``mask=`` clips ``x``."""
    tok = op_token(op)
    name = getattr(tok, "op_name", tok)
    if mask is not None:
        x = copy(x, mask=mask)
    return LoopReduce(x, name)


def _engine_start_ok(start, n):
    """The compute engines' start-partition rule (device.isa.rules.check_partitions)."""
    return start == 0 or (n <= 64 and start == 64) or (n <= 32 and start % 32 == 0)


def _update(t, name, o):
    """``t += o`` (and -=, *=, /=) in place; ``psum += nc_matmul(...)`` accumulates on TensorE."""
    tr = current("tile update")
    mm = getattr(o, "_mm", None)
    if (name == "add" and mm is not None and t.buffer.kind == "psum" and tr.program.instrs
            and tr.program.instrs[-1] is mm and mm.args["dst"].shape == t.shape):
        mm.args["dst"] = clip_operands([t], None, t.shape)[0]     # retarget: accumulate in place
        mm.args["accumulate"] = None          # PSUM flags: first write of a group overwrites
        return
    d = clip_operands([t], None, t.shape)[0]
    valid = getattr(o, "_valid", None)
    if valid is not None and tuple(o.shape) == tuple(d.shape):
        if any(hi <= lo for lo, hi in valid):       # a fully masked-off update changes nothing
            return
        d, o = _clip(d, valid, d.shape), _clip(o, valid, d.shape)
    if isinstance(o, View):
        o = clip_operands([o], None, o.shape)[0]
        if o.buffer.kind == "psum" and d.buffer.kind == "psum":
            o = copy(o)                        # VectorE reads at most one PSUM operand
        if o.shape != d.shape and o.shape[0] == d.shape[0] and o.free_size == 1:
            col = o.reshape((o.shape[0], 1)) if o.ndim != 2 else o     # a per-partition scalar
            tr.program.emit("tensor_scalar", dst=d, data=d, op0=name, operand0=col, loc=user_loc())
            return
        if o.shape != d.shape and o.ndim == d.ndim:
            o = o.broadcast_to(d.shape)
        tr.program.emit("tensor_tensor", dst=d, data1=d, data2=o, op=name, loc=user_loc())
    else:
        tr.program.emit("tensor_scalar", dst=d, data=d, op0=name, operand0=o, loc=user_loc())


# ---- compute ------------------------------------------------------------------------------------
def _legacy_reduce(api, fn):
    def reduce(x, axis, dtype=None, keepdims=False, mask=None, **_kw):
        axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
        axes = sorted(a + x.ndim if a < 0 else a for a in axes)
        keep = [d for d in range(x.ndim) if d not in axes]
        if keep and keep[0] == 0 and axes != list(range(len(keep), x.ndim)):
            x = x.permute(keep + axes)           # free: reduce over trailing axes of a view
            new_axes = list(range(len(keep), x.ndim))
        else:
            new_axes = axes
        kw = {"dtype": device_dtypes.normalize(dtype)} if dtype else {}
        r = _call(lambda a, **k: fn(a, new_axes, keepdims=keepdims, **k), api, (x,), kw, mask)
        if keepdims and new_axes != axes:
            r = r.reshape(tuple(1 if d in axes else x.shape[keep.index(d)] if d in keep else 1
                                for d in range(len(keep) + len(axes))))
        return r
    reduce.__name__ = api
    # legacy kernels pass nl.max/nl.sum as the op of nisa.tensor_reduce (op=nl.max)
    reduce.op_token = {"sum": "add", "max": "maximum", "min": "minimum", "prod": "multiply"}.get(api)
    return reduce


sum = _legacy_reduce("sum", ops06.sum)     # noqa: A001
max = _legacy_reduce("max", ops06.max)     # noqa: A001
min = _legacy_reduce("min", ops06.min)     # noqa: A001
prod = _legacy_reduce("prod", ops06.prod)
mean = _legacy_reduce("mean", ops06.mean)


def to_sbuf(v):
    """Legacy nl.matmul staged PSUM operands through SBUF itself (TensorE reads SBUF only)."""
    return copy(v) if isinstance(v, View) and v.buffer.kind == "psum" else v


def matmul(x, y, transpose_x=False, mask=None, **_kw):
    x, y = to_sbuf(x), to_sbuf(y)
    return _call(lambda a, b: ops06.matmul(a, b, transpose_x=transpose_x), "matmul", (x, y), {}, None)


def transpose(x, dtype=None, mask=None, **_kw):
    x = to_sbuf(x)
    return _call(lambda a: ops06.transpose(a, dtype=dtype and device_dtypes.normalize(dtype)), "transpose",
                 (x,), {}, mask)


def broadcast_to(x, shape, dtype=None, **_kw):
    return LTile.of(ops06.broadcast_to(x, shape, dtype=dtype and device_dtypes.normalize(dtype)))


def shared_identity_matrix(n, dtype=uint8, **_kw):
    """Legacy ``nl.shared_identity_matrix(n, dtype)``: an n x n identity constant in shared HBM
    (kernels ``nl.load`` it; the NKI 0.6 one is already an SBUF tile)."""
    tr = current("nl.shared_identity_matrix")
    dt = device_dtypes.normalize(dtype)
    return LTile.of(tr.program.alloc((n, n), dt, SHARED_HBM, name=f"identity{n}", loc=user_loc(),
                                     kind="const", const=np.eye(n)))


def static_cast(x, dtype):
    from . import report
    report.note("static_cast")
    return np.asarray(x).astype(device_dtypes.to_numpy(device_dtypes.normalize(dtype)))


# ---- SPMD over an N-D launch grid --------------------------------------------------------------
def _grid():
    tr = current("nl.program_id")
    return getattr(tr, "legacy_grid", ((), ()))


def program_id(axis):
    coords, grid = _grid()
    if not 0 <= axis < builtins.max(len(grid), 1):
        raise UserKernelError(f"nl.program_id({axis}): the launch grid has {len(grid)} axes",
                              loc=user_loc())
    return coords[axis] if grid else 0


def num_programs(axes=None):
    _, grid = _grid()
    if axes is None:
        return int(np.prod(grid)) if grid else 1
    axes = [axes] if isinstance(axes, (int, np.integer)) else list(axes)
    return int(np.prod([grid[a] if a < len(grid) else 1 for a in axes]))


class nc:
    """``nl.nc(2)``: physical NeuronCores for a grid axis. The emulator runs the grid serially on
    one core, so ``nl.spmd_dim(g, nl.nc(2))`` (or ``nl.nc(2) * g``) is just an axis of g*2."""

    def __init__(self, n):
        self.n = int(n)

    def __mul__(self, g):
        return spmd_dim(g, self)

    __rmul__ = __mul__


def spmd_dim(*dims):
    return int(np.prod([d.n if isinstance(d, nc) else int(d) for d in dims]))


def program_ndim():
    return len(_grid()[1])



def __getattr__(name):
    """Anything not redefined here (``nl.tile_size``, ``nl.NKIObject``...) is the new API's."""
    try:
        return getattr(nl06, name)
    except AttributeError:
        raise AttributeError(f"module 'neuronxcc.nki.language' (emulated) has no attribute "
                             f"{name!r}") from None


# public names the tile operators call (tile.py cannot import this module: it is imported by it)
assign_into = _assign
update_inplace = _update
tile_mod.bind_language(__import__(__name__, fromlist=["_"]))
optokens.bind_language(__import__(__name__, fromlist=["_"]))
