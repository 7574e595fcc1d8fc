"""NKI 0.6 instruction signatures, each forwarding to the device instruction table."""
from __future__ import annotations

from device.errors import UserKernelError

from . import dge_mode, engine, oob_mode, reduce_cmd
from . import emitting
from . import oob_mode as _OOB
from . import reduce_cmd as _RC

FP32_MIN = -3.4028234663852886e38


def _enum(api, param, value, cls):
    """NKI 0.3+: enum parameters take enum members, not raw integers."""
    if value is not None and not isinstance(value, cls):
        raise UserKernelError(f"nisa.{api}: {param} must be an nisa.{cls.__name__} value, got "
                              f"{value!r}")
    return value


def nc_matmul(dst, stationary, moving, is_stationary_onezero=False, is_moving_onezero=False,
              is_transpose=False, accumulate=None, tile_position=(), tile_size=(), perf_mode=None,
              name=None, **_legacy):
    return emitting.emit("nc_matmul", None, name, dst=dst, stationary=stationary, moving=moving,
                 accumulate=accumulate, is_transpose=is_transpose,
                 tile_position=tuple(tile_position or ()), tile_size=tuple(tile_size or ()),
                 perf_mode=getattr(perf_mode, "value", perf_mode))


def nc_matmul_mx(dst, stationary, moving, stationary_scale, moving_scale, tile_position=None,
                 tile_size=None, accumulate=None, name=None):
    """MXFP8/MXFP4 matmul with integrated dequantization on TensorE (NeuronCore-v4)."""
    return emitting.emit("nc_matmul_mx", None, name, dst=dst, stationary=stationary, moving=moving,
                 stationary_scale=stationary_scale, moving_scale=moving_scale,
                 tile_position=tuple(tile_position or ()), tile_size=tuple(tile_size or ()),
                 accumulate=accumulate)


def quantize_mx(dst, src, dst_scale, name=None):
    """fp16/bf16 -> x4-packed MXFP8 data plus e8m0 scales on VectorE (NeuronCore-v4)."""
    return emitting.emit("quantize_mx", None, name, dst=dst, src=src, dst_scale=dst_scale)


def nc_transpose(dst, data, engine=engine.unknown, name=None):
    return emitting.emit("nc_transpose", engine, name, dst=dst, data=data)


def tensor_tensor(dst, data1, data2, op, engine=engine.unknown, name=None, dtype=None, **_legacy):
    emitting.drop_legacy_dtype(dst, dtype)
    return emitting.emit("tensor_tensor", engine, name, dst=dst, data1=data1, data2=data2, op=op)


def tensor_scalar(dst, data, op0, operand0, reverse0=False, op1=None, operand1=None,
                  reverse1=False, engine=engine.unknown, name=None, dtype=None, **_legacy):
    emitting.drop_legacy_dtype(dst, dtype)
    return emitting.emit("tensor_scalar", engine, name, dst=dst, data=data, op0=op0, operand0=operand0,
                 reverse0=reverse0, op1=op1, operand1=operand1, reverse1=reverse1)


def activation(dst, op, data, bias=None, scale=1.0, reduce_op=None, reduce_res=None,
               reduce_cmd=reduce_cmd.idle, name=None, dtype=None, **_legacy):
    """With the default ``reduce_cmd=idle`` the registers are left alone and ``reduce_res``
    receives them as they were (zeros, or an earlier instruction's sums), not this instruction's
    reduction: pass ``reduce_cmd=nisa.reduce_cmd.reset_reduce`` for that (the emulator warns with
    ``ReduceRegisterWarning`` when nothing reduced into the registers before)."""
    emitting.drop_legacy_dtype(dst, dtype)
    _no_relu_param("activation", _legacy)
    return emitting.emit("activation", None, name, dst=dst, op=op, data=data, bias=bias, scale=scale,
                 reduce_op=reduce_op, reduce_res=reduce_res,
                 reduce_cmd=_enum("activation", "reduce_cmd", reduce_cmd, _RC))


def activation_reduce(dst, op, data, reduce_op, reduce_res, bias=None, scale=1.0, name=None,
                      dtype=None, **_legacy):
    """activation with reduce_cmd=reset_reduce and a readout into reduce_res."""
    emitting.drop_legacy_dtype(dst, dtype)
    _no_relu_param("activation_reduce", _legacy)
    return emitting.emit("activation", None, name, dst=dst, op=op, data=data, bias=bias, scale=scale,
                 reduce_op=reduce_op, reduce_res=reduce_res, reduce_cmd=_RC.reset_reduce)


def _no_relu_param(api, extra):
    """NKI 0.6 activation has no relu_param (prelu runs with slope 0); activate2 has one."""
    if "relu_param" in extra:
        raise UserKernelError(f"nisa.{api} takes no relu_param; use nisa.activate2(..., "
                              f"relu_param=...) (NeuronCore-v4) to set the PReLU slope")


def activate2(dst, op, data, imm0, imm1, op0, op1, relu_param=0.0, reverse0=False,
              reverse1=False, reduce_op=None, reduce_res=None, reduce_cmd=reduce_cmd.idle,
              name=None):
    """dst = op((data op0 imm0) op1 imm1, relu_param) on ScalarE (NeuronCore-v4)."""
    return emitting.emit("activate2", None, name, dst=dst, op=op, data=data, imm0=imm0, imm1=imm1,
                 op0=op0, op1=op1, relu_param=relu_param, reverse0=reverse0, reverse1=reverse1,
                 reduce_op=reduce_op, reduce_res=reduce_res,
                 reduce_cmd=_enum("activate2", "reduce_cmd", reduce_cmd, _RC))


def tensor_copy(dst, src, engine=engine.unknown, name=None, dtype=None, **_legacy):
    # older tutorial revisions pass dtype= (the dst dtype); accept it when it agrees
    emitting.drop_legacy_dtype(dst, dtype)
    return emitting.emit("tensor_copy", engine, name, dst=dst, src=src)


def memset(dst, value, engine=engine.unknown, name=None, **_legacy):
    return emitting.emit("memset", engine, name, dst=dst, value=value)


def tensor_reduce(dst, op, data, axis, negate=False, keepdims=False, name=None, dtype=None,
                  **_legacy):
    emitting.drop_legacy_dtype(dst, dtype)
    return emitting.emit("tensor_reduce", None, name, dst=dst, op=op, data=data, axis=axis, negate=negate,
                 keepdims=keepdims)


def iota(dst, pattern, offset=0, channel_multiplier=0, name=None, **_legacy):
    return emitting.emit("iota", None, name, dst=dst, pattern=[list(p) for p in pattern], offset=offset,
                 channel_multiplier=channel_multiplier)


def dma_copy(dst, src, priority=None, oob_mode=oob_mode.error, dge_mode=dge_mode.unknown,
             engine=engine.unknown, name=None, **_legacy):
    return emitting.emit("dma_copy", None, name, dst=dst, src=src, oob_mode=oob_mode,
                 dge_mode=getattr(dge_mode, "name", dge_mode), priority=priority)


# ---- Vector engine ------------------------------------------------------------------------------
def scalar_tensor_tensor(dst, data, op0, operand0, op1, operand1, reverse0=False, reverse1=False,
                         name=None, **_legacy):
    return emitting.emit("scalar_tensor_tensor", None, name, dst=dst, data=data, op0=op0,
                 operand0=operand0, op1=op1, operand1=operand1, reverse0=reverse0,
                 reverse1=reverse1)


def tensor_tensor_scan(dst, data0, data1, initial, op0, op1, reverse0=False, reverse1=False,
                       name=None, **_legacy):
    return emitting.emit("tensor_tensor_scan", None, name, dst=dst, data0=data0, data1=data1,
                 initial=initial, op0=op0, op1=op1, reverse0=reverse0, reverse1=reverse1)


def tensor_scalar_reduce(dst, data, op0, operand0, reduce_op, reduce_res=None, reverse0=False,
                         reduce_cmd=reduce_cmd.reset_reduce, reduce_init=None,
                         reduce_res_negate=False, name=None, **_legacy):
    return emitting.emit("tensor_scalar_reduce", None, name, dst=dst, data=data, op0=op0,
                 operand0=operand0, reduce_op=reduce_op, reduce_res=reduce_res, reverse0=reverse0,
                 reduce_cmd=_enum("tensor_scalar_reduce", "reduce_cmd", reduce_cmd, _RC),
                 reduce_init=reduce_init, reduce_res_negate=reduce_res_negate)


def tensor_scalar_cumulative(dst, src, op0, op1, imm0, imm1=None,
                             reduce_cmd=reduce_cmd.reset_reduce, name=None, **_legacy):
    return emitting.emit("tensor_scalar_cumulative", None, name, dst=dst, src=src, op0=op0, op1=op1,
                 imm0=imm0, imm1=imm1,
                 reduce_cmd=_enum("tensor_scalar_cumulative", "reduce_cmd", reduce_cmd, _RC))


def tensor_copy_predicated(dst, src, predicate, reverse_pred=False, name=None, **_legacy):
    return emitting.emit("tensor_copy_predicated", None, name, dst=dst, src=src, predicate=predicate,
                 reverse_pred=reverse_pred)


def select_reduce(dst, predicate, on_true, on_false, reduce_res=None, reduce_cmd=reduce_cmd.idle,
                  reduce_op="maximum", reverse_pred=False, name=None, **_legacy):
    return emitting.emit("select_reduce", None, name, dst=dst, predicate=predicate, on_true=on_true,
                 on_false=on_false, reduce_res=reduce_res,
                 reduce_cmd=_enum("select_reduce", "reduce_cmd", reduce_cmd, _RC),
                 reduce_op=reduce_op, reverse_pred=reverse_pred)


def range_select(dst, on_true_tile, comp_op0, comp_op1, bound0, bound1,
                 reduce_cmd=reduce_cmd.reset_reduce, reduce_res=None, reduce_op="maximum",
                 range_start=0, on_false_value=FP32_MIN, name=None, **_legacy):
    return emitting.emit("range_select", None, name, dst=dst, on_true_tile=on_true_tile,
                 comp_op0=comp_op0, comp_op1=comp_op1, bound0=bound0, bound1=bound1,
                 reduce_cmd=_enum("range_select", "reduce_cmd", reduce_cmd, _RC),
                 reduce_res=reduce_res, reduce_op=reduce_op, range_start=range_start,
                 on_false_value=on_false_value)


def exponential(dst, src, max_value=0.0, reduce_res=None, reduce_cmd=reduce_cmd.idle,
                reduce_init=0.0, name=None, **_legacy):
    """With the default ``reduce_cmd=idle`` nothing is summed and ``reduce_res`` is not written:
    pass ``reduce_cmd=nisa.reduce_cmd.reset_reduce`` to get the row sums (the emulator warns with
    ``ReduceRegisterWarning``)."""
    return emitting.emit("exponential", None, name, dst=dst, src=src, max_value=max_value,
                 reduce_res=reduce_res,
                 reduce_cmd=_enum("exponential", "reduce_cmd", reduce_cmd, _RC),
                 reduce_init=reduce_init)


def reciprocal(dst, data, name=None, **_legacy):
    return emitting.emit("reciprocal", None, name, dst=dst, data=data)


def bn_stats(dst, data, name=None, **_legacy):
    return emitting.emit("bn_stats", None, name, dst=dst, data=data)


def bn_aggr(dst, data, name=None, **_legacy):
    return emitting.emit("bn_aggr", None, name, dst=dst, data=data)


def max8(dst, src, name=None, **_legacy):
    return emitting.emit("max8", None, name, dst=dst, src=src)


def nc_find_index8(dst, data, vals, name=None, **_legacy):
    return emitting.emit("nc_find_index8", None, name, dst=dst, data=data, vals=vals)


def nc_match_replace8(dst, data, vals, imm, dst_idx=None, name=None, **_legacy):
    return emitting.emit("nc_match_replace8", None, name, dst=dst, data=data, vals=vals, imm=imm,
                 dst_idx=dst_idx)


def nc_stream_shuffle(dst, src, shuffle_mask, name=None, **_legacy):
    mask = tuple(shuffle_mask) if isinstance(shuffle_mask, (list, tuple)) else shuffle_mask
    return emitting.emit("nc_stream_shuffle", None, name, dst=dst, src=src, shuffle_mask=mask)


def dropout(dst, data, prob, name=None, **_legacy):
    return emitting.emit("dropout", None, name, dst=dst, data=data, prob=prob)


# ---- random numbers -----------------------------------------------------------------------------
def rng(dst, engine=engine.vector, name=None):
    """32 random bits per element, truncated to dst's integer dtype (Vector; GpSimd on v3+)."""
    return emitting.emit("rng", engine, name, dst=dst)


def set_rng_seed(src_seeds, name=None):
    """Seed the Vector engine generator from a [1, 1] 32-bit SBUF/PSUM value."""
    return emitting.emit("set_rng_seed", None, name, src_seeds=src_seeds)


def rand_set_state(src_seeds, engine=engine.gpsimd, name=None):
    """Load per-lane XORWOW state (uint32; 6 words GpSimd, 24 Vector) (NeuronCore-v3+)."""
    return emitting.emit("rand_set_state", engine, name, src_seeds=src_seeds)


def rand_get_state(dst, engine=engine.gpsimd, name=None):
    """Store per-lane XORWOW state to dst (uint32) (NeuronCore-v3+)."""
    return emitting.emit("rand_get_state", engine, name, dst=dst)


def rand2(dst, min, max, name=None):  # noqa: A002 (NKI parameter names)
    """Uniform random values in [min, max] on the Vector engine (NeuronCore-v4)."""
    return emitting.emit("rand2", None, name, dst=dst, min=min, max=max)


# ---- GpSimd engine ------------------------------------------------------------------------------
def nonzero_with_count(dst, src, index_offset=0, padding_val=-1, name=None):
    """Indices of nonzero elements, padding, then the count (GpSimd, NeuronCore-v3+)."""
    return emitting.emit("nonzero_with_count", None, name, dst=dst, src=src, index_offset=index_offset,
                 padding_val=padding_val)


def sequence_bounds(dst, segment_ids, name=None):
    """[start, end) of each element's run of equal segment ids; id 0 is padding (GpSimd)."""
    return emitting.emit("sequence_bounds", None, name, dst=dst, segment_ids=segment_ids)


def tensor_partition_reduce(dst, op, data, name=None, **_legacy):
    return emitting.emit("tensor_partition_reduce", None, name, dst=dst, op=op, data=data)


def affine_select(dst, pattern, channel_multiplier, on_true_tile, on_false_value, cmp_op="equal",
                  offset=0, name=None, **_legacy):
    return emitting.emit("affine_select", None, name, dst=dst, pattern=[list(p) for p in pattern],
                 channel_multiplier=channel_multiplier, on_true_tile=on_true_tile,
                 on_false_value=on_false_value, cmp_op=cmp_op, offset=offset)


def local_gather(dst, src_buffer, index, num_elem_per_idx=1, num_valid_indices=None, name=None,
                 **_legacy):
    return emitting.emit("local_gather", None, name, dst=dst, src_buffer=src_buffer, index=index,
                 num_elem_per_idx=num_elem_per_idx, num_valid_indices=num_valid_indices)


def nc_n_gather(dst, data, indices, name=None, **_legacy):
    return emitting.emit("nc_n_gather", None, name, dst=dst, data=data, indices=indices)


def topk(val_dst, idx_dst, src, n, sorted=False, name=None, **_legacy):
    return emitting.emit("topk", None, name, val_dst=val_dst, idx_dst=idx_dst, src=src, n=n,
                         sorted=bool(sorted))


# ---- DMA ----------------------------------------------------------------------------------------
def dma_transpose(dst, src, axes=None, priority=None, dge_mode=dge_mode.unknown,
                  oob_mode=oob_mode.error, name=None, **_legacy):
    return emitting.emit("dma_transpose", None, name, dst=dst, src=src,
                 axes=tuple(axes) if axes is not None else None, priority=priority,
                 dge_mode=getattr(dge_mode, "name", dge_mode),
                 oob_mode=_enum("dma_transpose", "oob_mode", oob_mode, _OOB))


def dma_compute(dst, srcs, reduce_op, scales=None, unique_indices=True, oob_mode=oob_mode.error,
                name=None, **_legacy):
    return emitting.emit("dma_compute", None, name, dst=dst, srcs=list(srcs), reduce_op=reduce_op,
                 scales=None if scales is None else list(scales), unique_indices=unique_indices,
                 oob_mode=_enum("dma_compute", "oob_mode", oob_mode, _OOB))


# ---- Multi-core (LNC=2, NeuronCore-v3+) ---------------------------------------------------------
def sendrecv(src, dst, send_to_rank, recv_from_rank, pipe_id, dma_engine=None, name=None,
             use_gpsimd_dma=None, **_legacy):
    """Send ``src`` to core ``send_to_rank`` while receiving core ``recv_from_rank``'s data into dst.

    ``use_gpsimd_dma=True`` is the legacy spelling of ``dma_engine=nisa.dma_engine.gpsimd_dma``.
    """
    from . import dma_engine as _DE
    from ..tracing import current
    if dma_engine is None:
        dma_engine = _DE.gpsimd_dma if use_gpsimd_dma else _DE.dma
    _enum("sendrecv", "dma_engine", dma_engine, _DE)
    tr = current("nisa.sendrecv")
    return emitting.emit("sendrecv", None, name, src=src, dst=dst, send_to_rank=_rank(send_to_rank),
                 recv_from_rank=_rank(recv_from_rank), pipe_id=pipe_id,
                 dma_engine=dma_engine.name, _lnc=tr.lnc, _rank=tr.program_id)


def core_barrier(data, cores=(0, 1), engine=engine.gpsimd, name=None, **_legacy):
    """Every core in ``cores`` waits until all of them reach this barrier (on ``engine``)."""
    from ..tracing import current
    tr = current("nisa.core_barrier")
    # ``cores=(0)`` is the int 0 in Python: the library's LNC=1 branches write it for "core 0 only"
    cores = (tuple(_rank(c) for c in cores) if isinstance(cores, (tuple, list)) else
             (_rank(cores),) if isinstance(_rank(cores), int) and not isinstance(cores, bool) else cores)
    return emitting.emit("core_barrier", engine, name, data=data, cores=cores, _lnc=tr.lnc,
                 _rank=tr.program_id)


def _rank(r):
    """Core indices arrive as Python or NumPy ints (program_id arithmetic); keep them plain ints."""
    import numpy as np
    return int(r) if isinstance(r, np.integer) else r


from ..strictness import strict_module  # noqa: E402

strict_module(globals(), "nisa.", __name__)
del strict_module
