"""Legacy DMA: ``nisa.dma_copy``/``nisa.dma_transpose`` and tile-indexed (indirect) HBM access.

``t[idx_tile, i_f]`` with an integer SBUF tile ``idx_tile`` of shape (n, 1) gathers (when read) or
scatters (when written) rows ``idx_tile[k]`` of ``t``: it becomes the NKI 0.6 access
``t.ap([[row, n], [1, m]], vector_offset=idx_tile, indirect_dim=0)``. Integer indices may come
before the tile (``t[b, idx_tile, i_f]`` gathers rows of ``t[b]``).

``nisa.dma_copy(dst=, src=, dst_rmw_op=np.add)`` (read-modify-write) is NKI 0.6's
``nisa.dma_compute(dst, [dst, src], reduce_op=nl.add)``.
"""
from __future__ import annotations

import math

from device.errors import UserKernelError, user_loc
from device.tensor import SBUF, View

from .. import isa as isa06
from . import index as legacy_index
from . import language as legacy_nl
from . import report
from .optokens import op_token
from .results import new_result, out_dtype
from . import tile as tile_mod
from .tile import LTile


def indirect(view, key):
    """``view[key]`` where one entry of ``key`` is an index tile (see the module docstring)."""
    report.note("indirect")
    pos = [d for d, k in enumerate(key) if isinstance(k, View)]
    if len(pos) != 1:
        raise UserKernelError(f"indexing {view.name} with {len(pos)} index tiles: the emulator "
                              f"supports one tile-indexed dimension per access", loc=user_loc(3))
    d, idx = pos[0], key[pos[0]]
    if view.on_chip:
        raise UserKernelError(f"indexing on-chip tile {view.name} with index tile {idx.name}: "
                              f"indirect (tile-indexed) access needs an HBM tensor; load the rows "
                              f"with nl.load(hbm_tensor[idx_tile, ...]) instead", loc=user_loc(3))
    if any(not hasattr(k, "__index__") or isinstance(k, (bool, legacy_index.IndexExpr)) for k in key[:d]):
        raise UserKernelError(f"indices before the index tile in an access of {view.name} must be "
                              f"integers, got {key[:d]}", loc=user_loc(3))
    base = view
    for k in key[:d]:
        base = View.__getitem__(base, int(k))
    rest = key[d + 1:]
    n = idx.shape[0]
    if idx.free_size != 1:
        raise UserKernelError(f"index tile {idx.name} has shape {tuple(idx.shape)}; an index "
                              f"tile holds one row index per partition: shape ({n}, 1)",
                              loc=user_loc(3))
    row = math.prod(base.shape[1:])
    if base.ndim < 1 or base.pattern[0][0] != row:
        raise UserKernelError(f"tile-indexed access of {view.name}: the indexed dimension must be "
                              f"a whole row-major dimension of the tensor", loc=user_loc(3))
    width = max([len(key) - d] + [k.ndim for k in rest if isinstance(k, legacy_index.IndexExpr)])
    stand_in = legacy_index.IndexExpr(0, [(n, 0)] + [(1, 0)] * (width - 1))
    off, pat, info = legacy_index.affine_pattern(base, (stand_in,) + tuple(rest))
    pat = [(row, n)] + list(pat[1:])
    v = base.ap(pat, offset=off - base.offset, vector_offset=idx, indirect_dim=0)
    return LTile(v.storage, v.offset, v.pattern, v.dtype, v.dyn, idx=info[1:] or None)


def dma_copy(dst, src, mask=None, dst_rmw_op=None, oob_mode=isa06.oob_mode.error,
             dge_mode=isa06.dge_mode.unknown, **_kw):
    """Legacy ``nisa.dma_copy(dst=, src=, mask=, dst_rmw_op=)``: writes ``dst`` in place."""
    ops = legacy_nl.clip_operands([dst, src], mask, dst.shape)
    if ops is None:
        return None
    d, s = ops
    if dst_rmw_op is not None:
        report.note("dma_rmw")
        return isa06.dma_compute(dst=d, srcs=[d, s], reduce_op=op_token(dst_rmw_op),
                                oob_mode=oob_mode)
    return isa06.dma_copy(dst=d, src=s, oob_mode=oob_mode, dge_mode=dge_mode)


def dma_transpose(src, axes=None, mask=None, dtype=None, dge_mode=isa06.dge_mode.unknown, **_kw):
    """Legacy ``b = nisa.dma_transpose(a)``: a new SBUF tile holding ``a`` with its axes reversed
    (or permuted by ``axes``)."""
    perm = tuple(axes) if axes is not None else tuple(reversed(range(src.ndim)))
    if sorted(perm) != list(range(src.ndim)):
        raise UserKernelError(f"nisa.dma_transpose: axes={axes} is not a permutation of the "
                              f"{src.ndim} axes of the source", loc=user_loc(2))
    if mask is not None:
        raise UserKernelError("nisa.dma_transpose(mask=...) is not supported by the emulator's "
                              "legacy layer: slice the source instead", loc=user_loc(2))
    shape = tuple(src.shape[a] for a in perm)
    return new_result(isa06.dma_transpose, shape, out_dtype(dtype, src.dtype), SBUF, None,
                      src=src, axes=None if axes is None else perm, dge_mode=dge_mode)


tile_mod.bind_indirect(indirect)     # tile-indexed access (tile.py cannot import this module)
