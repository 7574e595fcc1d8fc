"""Legacy Vector/GpSimd select, search and scan instructions on top of their NKI 0.6 forms.

Return-style calls (``r = nisa.max8(src=t)``) allocate ``r`` and forward with ``dst=r``; the
calls that were already in-place in the legacy API (``select_reduce``, ``tensor_scalar_cumulative``,
``tensor_copy_predicated``, ``nc_stream_shuffle``) write the ``dst`` they are given. The one real
translation is ``affine_select``: the legacy predicate (``iy < ix``) is turned into the NKI 0.6
``pattern``/``channel_multiplier``/``offset``/``cmp_op`` form, one select per ``&``-joined atom.
"""
from __future__ import annotations

import numpy as np

from device.errors import UserKernelError, user_loc
from device.tensor import SBUF, View

from .. import isa as isa06
from ..tracing import current
from . import index as legacy_index
from . import language as legacy_nl
from . import report
from .optokens import op_token
from .results import new_result, out_dtype
from .tile import LTile


def _in_place(fn, dst, mask, **args):
    """Clip ``dst`` and every View operand by ``mask`` (over dst's shape), then emit ``fn``."""
    names = ["dst"] + [k for k, v in args.items() if isinstance(v, View)]
    ops = legacy_nl.clip_operands([dst] + [args[k] for k in names[1:]], mask, dst.shape)
    if ops is None:
        return None
    args.update(dict(zip(names, ops)))
    return fn(**args)


def max8(src, dtype=None, mask=None, **_kw):
    """The 8 largest values of each partition, descending: a new (P, 8) tile."""
    return new_result(isa06.max8, (src.shape[0], 8), out_dtype(dtype, src.dtype), SBUF, mask,
                      grid_shape=src.shape, src=src)


def nc_find_index8(data, vals, dtype=None, mask=None, **_kw):
    """The index of each of ``vals`` (8 per partition) in ``data``: a new (P, 8) uint32 tile."""
    return new_result(isa06.nc_find_index8, (data.shape[0], 8), out_dtype(dtype, "uint32"), SBUF,
                      mask, grid_shape=data.shape, data=data, vals=vals)


def nc_match_replace8(data, vals, imm, dst_idx=None, dtype=None, mask=None, **_kw):
    """``data`` with each of ``vals`` replaced by ``imm`` (their indices into ``dst_idx``)."""
    return new_result(isa06.nc_match_replace8, data.shape, out_dtype(dtype, data.dtype), SBUF,
                      mask, data=data, vals=vals, imm=imm, dst_idx=dst_idx)


def nc_stream_shuffle(src, dst, shuffle_mask, dtype=None, mask=None, **_kw):
    """Move partitions within each 32-partition quadrant of ``src`` into ``dst`` (in place)."""
    return _in_place(isa06.nc_stream_shuffle, dst, mask, src=src, shuffle_mask=shuffle_mask)


def tensor_partition_reduce(op, data, mask=None, dtype=None, **_kw):
    """Reduce across partitions: a new (1, *free) tile."""
    return new_result(isa06.tensor_partition_reduce, (1,) + tuple(data.shape[1:]),
                      out_dtype(dtype, data.dtype), SBUF, None, op=op_token(op), data=data)


def range_select(on_true_tile, comp_op0, comp_op1, bound0, bound1,
                 reduce_cmd=isa06.reduce_cmd.reset_reduce, reduce_res=None, reduce_op=np.max,
                 range_start=0, on_false_value=float(np.finfo(np.float32).min), dtype=None,
                 mask=None, **_kw):
    """Keep ``on_true_tile`` where ``comp_op0(i, bound0) & comp_op1(i, bound1)`` for the column
    number ``i = range_start + j``, else ``on_false_value``; optionally reduce into
    ``reduce_res``. A new tile."""
    return new_result(isa06.range_select, on_true_tile.shape,
                      out_dtype(dtype, on_true_tile.dtype), SBUF, mask, on_true_tile=on_true_tile,
                      comp_op0=op_token(comp_op0), comp_op1=op_token(comp_op1), bound0=bound0,
                      bound1=bound1, reduce_cmd=reduce_cmd, reduce_res=reduce_res,
                      reduce_op=op_token(reduce_op), range_start=range_start,
                      on_false_value=on_false_value)


def select_reduce(dst, predicate, on_true, on_false, reduce_res=None,
                  reduce_cmd=isa06.reduce_cmd.idle, reduce_op=np.max, reverse_pred=False,
                  mask=None, dtype=None, **_kw):
    """``dst = predicate ? on_true : on_false`` (in place), optionally reduced into reduce_res."""
    return _in_place(isa06.select_reduce, dst, mask, predicate=predicate, on_true=on_true,
                     on_false=on_false, reduce_res=reduce_res, reduce_cmd=reduce_cmd,
                     reduce_op=op_token(reduce_op), reverse_pred=reverse_pred)


def sequence_bounds(segment_ids, dtype=None, **_kw):
    """[start, end) of each element's run of equal segment ids: a new (1, 2, N) tile."""
    return new_result(isa06.sequence_bounds, (segment_ids.shape[0], 2, segment_ids.free_size),
                      out_dtype(dtype, segment_ids.dtype), SBUF, None, segment_ids=segment_ids)


def tensor_scalar_cumulative(src, dst, op0, op1, imm0, imm1=None,
                             reduce_cmd=isa06.reduce_cmd.reset_reduce, mask=None, dtype=None,
                             **_kw):
    """``dst = scan(op1) of op0(src, imm0)`` along the free axis (in place)."""
    return _in_place(isa06.tensor_scalar_cumulative, dst, mask, src=src, op0=op_token(op0),
                     op1=op_token(op1), imm0=imm0, imm1=imm1, reduce_cmd=reduce_cmd)


def tensor_copy_predicated(src, dst, predicate, mask=None, dtype=None, reverse_pred=False, **_kw):
    """``dst = src`` where ``predicate`` is nonzero (in place)."""
    return _in_place(isa06.tensor_copy_predicated, dst, mask, src=src, predicate=predicate,
                     reverse_pred=reverse_pred)


def dropout(data, prob, mask=None, dtype=None, **_kw):
    """``data`` with elements zeroed at rate ``prob`` (a number or a (P, 1) tile): a new tile."""
    return new_result(isa06.dropout, data.shape, out_dtype(dtype, data.dtype), SBUF, mask,
                      data=data, prob=prob)


def local_gather(src_buffer, index, num_elem_per_idx=1, num_valid_indices=None, mask=None,
                 **_kw):
    """Per 16-partition GpSimd core, gather ``num_elem_per_idx`` elements at each index: a new
    (P, num_valid_indices * num_elem_per_idx) tile."""
    nv = num_valid_indices if num_valid_indices is not None else index.free_size * 16
    return new_result(isa06.local_gather, (src_buffer.shape[0], nv * num_elem_per_idx),
                      src_buffer.dtype, SBUF, None, src_buffer=src_buffer, index=index,
                      num_elem_per_idx=num_elem_per_idx, num_valid_indices=num_valid_indices)


def affine_select(pred, on_true_tile, on_false_value, mask=None, dtype=None, **_kw):
    """Keep ``on_true_tile`` where the affine predicate ``pred`` holds, else ``on_false_value``.

    Each atom ``e < 0`` of ``pred`` (``e = const + c_p * p + sum_j c_j * i_j`` over the tile's
    axes) is one NKI 0.6 ``affine_select(pattern=[[c_j, n_j]...], channel_multiplier=c_p,
    offset=const, cmp_op=less)``.
    """
    tr = current("nisa.affine_select")
    if isinstance(pred, (bool, np.bool_)):
        pred = legacy_index.check_mask(pred) or legacy_index.Predicate([])
    if not isinstance(pred, legacy_index.Predicate):
        raise UserKernelError(f"nisa.affine_select: pred must be comparisons of nl.arange/"
                              f"nl.mgrid expressions (e.g. iy < ix), got {pred!r}",
                              loc=user_loc(2))
    src = legacy_nl.to_sbuf(on_true_tile)     # GpSimd reads SBUF only
    shape = tuple(src.shape)
    out_dt = out_dtype(dtype, src.dtype)
    full = LTile.of(tr.program.alloc(shape, out_dt, SBUF, loc=user_loc(2)))
    ops = legacy_nl.clip_operands([full, src], mask, shape)
    if ops is None:
        full._valid = legacy_nl.masked_off(shape)
        return full
    dst, cur = ops
    if dst.shape != full.shape:
        full._valid = legacy_nl.mask_ranges(mask, shape)
    atoms = pred.atoms or [legacy_index.IndexExpr(-1, ())]          # no atom: always true
    lo = _clip_starts(mask, shape)
    for e in atoms:
        dims = [(1, 0)] * (len(shape) - e.ndim) + list(e.dims)
        if len(dims) > len(shape):
            raise UserKernelError(f"nisa.affine_select: the predicate has {e.ndim} axes but the "
                                  f"tile {tuple(shape)} has {len(shape)}", loc=user_loc(2))
        coef = [k if c > 1 else 0 for c, k in dims]
        # a mask clipped the operands: their axis j starts at lo[j] of the predicate's grid
        const = e.const + sum(k * s for k, s in zip(coef, lo))
        pattern = [[k, n] for k, n in zip(coef[1:], dst.shape[1:])]
        report.note("affine_select", pattern=pattern, cm=coef[0], offset=const)
        isa06.affine_select(dst=dst, pattern=pattern, channel_multiplier=coef[0],
                           on_true_tile=cur, on_false_value=float(on_false_value),
                           cmp_op="less", offset=const)
        cur = dst
    return full


def _clip_starts(mask, shape):
    rng = legacy_index.check_mask(mask)
    if rng is None:
        return [0] * len(shape)
    return [lo for lo, _ in rng.ranges(shape)]
