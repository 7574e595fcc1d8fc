"""Hand-written part of the ``nki.isa`` docstrings: a one-line summary and a runnable example.

Everything else in a docstring (engine, operands, meaning, limits) comes from the instruction and
hardware tables (see ``nki.docs``). Fixture tiles (``a``, ``b``, ``out``, ``col``, ``ps``, ``w``,
``x``, ``n``, ``hbm_in``, ``hbm_out``) are described in ``nki.docs.FIXTURES``.

name -> (summary, example, minimum NeuronCore generation[, instruction table name])
"""
from __future__ import annotations

ISA = {
    "nc_matmul": (
        "Matrix multiply on TensorE: ``dst += stationary.T @ moving``, accumulated in fp32 in PSUM.",
        """
>>> nisa.nc_matmul(dst=ps, stationary=w, moving=x)     # ps[128, 512] = w.T @ x
<nisa.nc_matmul on PE>
""", 2),
    "nc_matmul_mx": (
        "MXFP8/MXFP4 matmul with per-block scales, dequantised on TensorE.",
        """
>>> q = nl.ndarray((128, 128), nl.float8_e4m3fn_x4, buffer=nl.sbuf)
>>> s = nl.ndarray((128, 128), nl.uint8, buffer=nl.sbuf)
>>> nisa.memset(dst=s, value=0)
<nisa.memset on ...>
>>> nisa.quantize_mx(dst=q, src=x, dst_scale=s)
<nisa.quantize_mx on DVE>
>>> p = nl.ndarray((32, 128), nl.float32, buffer=nl.psum)
>>> nisa.nc_matmul_mx(dst=p, stationary=q[:, 0:32], moving=q, stationary_scale=s[:, 0:32],
...                   moving_scale=s)
<nisa.nc_matmul_mx on PE>
""", 4),
    "quantize_mx": (
        "Quantise fp16/bf16 data to x4-packed MXFP8 plus one e8m0 scale per 32-element block.",
        """
>>> q = nl.ndarray((128, 128), nl.float8_e4m3fn_x4, buffer=nl.sbuf)
>>> s = nl.ndarray((128, 128), nl.uint8, buffer=nl.sbuf)
>>> nisa.memset(dst=s, value=0)
<nisa.memset on ...>
>>> nisa.quantize_mx(dst=q, src=x, dst_scale=s)
<nisa.quantize_mx on DVE>
""", 4),
    "nc_transpose": (
        "Transpose a tile (partition <-> free): on TensorE into PSUM, or 32x32 blocks on VectorE.",
        """
>>> t = nl.ndarray((128, 128), nl.bfloat16, buffer=nl.psum)
>>> nisa.nc_transpose(dst=t, data=w)
<nisa.nc_transpose on PE>
""", 2),
    "tensor_tensor": (
        "Element-wise ``dst = data1 <op> data2`` of two tiles of the same shape.",
        """
>>> nisa.tensor_tensor(dst=out, data1=a, data2=b, op=nl.add)
<nisa.tensor_tensor on DVE>
""", 2),
    "tensor_scalar": (
        "``dst = (data <op0> operand0) <op1> operand1`` with scalars or per-partition [P, 1] columns.",
        """
>>> nisa.tensor_scalar(dst=out, data=a, op0=nl.multiply, operand0=2.0, op1=nl.add, operand1=col)
<nisa.tensor_scalar on DVE>
""", 2),
    "activation": (
        "ScalarE ``dst = op(data * scale + bias)``, optionally reducing each row into a register.",
        """
>>> nisa.activation(dst=out, op=nl.exp, data=a, bias=col, scale=0.5)
<nisa.activation on ACT>
>>> s = nl.ndarray((128, 1), nl.float32, buffer=nl.sbuf)
>>> nisa.activation(dst=out, op=nl.square, data=a, reduce_op=nl.add, reduce_res=s,
...                 reduce_cmd=nisa.reduce_cmd.reset_reduce)    # s = sum of squares per row
<nisa.activation on ACT>
""", 2),
    "activation_reduce": (
        "``activation`` plus a fresh per-row reduction of the result into ``reduce_res``.",
        """
>>> s = nl.ndarray((128, 1), nl.float32, buffer=nl.sbuf)
>>> nisa.activation_reduce(dst=out, op=nl.square, data=a, reduce_op=nl.add, reduce_res=s)
<nisa.activation on ACT>
""", 2, "activation"),
    "activate2": (
        "ScalarE ``dst = op((data <op0> imm0) <op1> imm1)`` with a PReLU slope and optional reduce.",
        """
>>> nisa.activate2(dst=out, op=nl.exp, data=a, imm0=2.0, imm1=1.0, op0=nl.multiply,
...                op1=nl.subtract)             # out = exp(2a - 1)
<nisa.activate2 on ACT>
""", 4),
    "tensor_copy": (
        "Copy (and convert the dtype of) a tile on VectorE, ScalarE or GpSimd.",
        """
>>> nisa.tensor_copy(dst=out, src=a)
<nisa.tensor_copy on ...>
""", 2),
    "memset": (
        "Fill a tile with one value.",
        """
>>> nisa.memset(dst=out, value=0.0)
<nisa.memset on ...>
""", 2),
    "tensor_reduce": (
        "Reduce a tile along free axes with an ALU op (``negate`` flips the sign of the result).",
        """
>>> s = nl.ndarray((128, 1), nl.float32, buffer=nl.sbuf)
>>> nisa.tensor_reduce(dst=s, op=nl.add, data=a, axis=1, keepdims=True)
<nisa.tensor_reduce on DVE>
""", 2),
    "iota": (
        "Fill a tile with an affine index pattern: ``offset + channel_multiplier * p + sum(step * j)``.",
        """
>>> i = nl.ndarray((128, 512), nl.int32, buffer=nl.sbuf)
>>> nisa.iota(dst=i, pattern=[[1, 512]], offset=0, channel_multiplier=512)   # i[p, j] = 512p + j
<nisa.iota on POOL>
""", 2),
    "dma_copy": (
        "Copy between HBM, SBUF and PSUM on a DMA queue (shapes must have equal element counts).",
        """
>>> nisa.dma_copy(dst=out, src=hbm_in)          # HBM -> SBUF
<nisa.dma_copy on DMA>
>>> nisa.dma_copy(dst=hbm_out, src=out)         # SBUF -> HBM
<nisa.dma_copy on DMA>
""", 2),
    "scalar_tensor_tensor": (
        "VectorE ``dst = (data <op0> operand0) <op1> operand1`` with a scalar and a tile operand.",
        """
>>> nisa.scalar_tensor_tensor(dst=out, data=a, op0=nl.multiply, operand0=col, op1=nl.add,
...                           operand1=b)       # out = a * col + b
<nisa.scalar_tensor_tensor on DVE>
""", 2),
    "tensor_tensor_scan": (
        "Running scan along the free axis: ``dst[:, j] = (dst[:, j-1] <op0> data0[:, j]) <op1> data1[:, j]``.",
        """
>>> nisa.tensor_tensor_scan(dst=out, data0=a, data1=b, initial=0.0, op0=nl.multiply,
...                         op1=nl.add)
<nisa.tensor_tensor_scan on DVE>
""", 2),
    "tensor_scalar_reduce": (
        "``dst = data <op0> operand0`` and, per row, a reduction of the result into ``reduce_res``.",
        """
>>> s = nl.ndarray((128, 1), nl.float32, buffer=nl.sbuf)
>>> nisa.tensor_scalar_reduce(dst=out, data=a, op0=nl.multiply, operand0=2.0,
...                           reduce_op=nl.add, reduce_res=s)
<nisa.tensor_scalar_reduce on DVE>
""", 2),
    "tensor_scalar_cumulative": (
        "Cumulative scan of ``src <op0> imm0`` along the free axis, combined with ``op1``.",
        """
>>> nisa.tensor_scalar_cumulative(dst=out, src=a, op0=nl.multiply, op1=nl.add, imm0=1.0,
...                               imm1=0.0)     # out = running sum of a along each row
<nisa.tensor_scalar_cumulative on DVE>
""", 2),
    "tensor_copy_predicated": (
        "Copy ``src`` into ``dst`` where ``predicate`` is non-zero; elsewhere ``dst`` keeps its values.",
        """
>>> m = nl.greater(a, 1.0, dtype=nl.uint8)      # 1 where a > 1, else 0
>>> nisa.tensor_copy(dst=out, src=b)
<nisa.tensor_copy on ...>
>>> nisa.tensor_copy_predicated(dst=out, src=a, predicate=m)
<nisa.tensor_copy_predicated on DVE>
""", 2),
    "select_reduce": (
        "``dst = predicate ? on_true : on_false`` with an optional per-row reduction.",
        """
>>> m = nl.greater(a, 1.0, dtype=nl.uint8)
>>> s = nl.ndarray((128, 1), nl.float32, buffer=nl.sbuf)
>>> nisa.select_reduce(dst=out, predicate=m, on_true=a, on_false=0.0, reduce_res=s,
...                    reduce_cmd=nisa.reduce_cmd.reset_reduce)   # s = row max of kept values
<nisa.select_reduce on DVE>
""", 2),
    "range_select": (
        "Keep ``on_true_tile`` where ``bound0 <comp_op0> index`` and ``index <comp_op1> bound1``.",
        """
>>> lo = nl.full((128, 1), 10.0, nl.float32)
>>> hi = nl.full((128, 1), 20.0, nl.float32)
>>> s = nl.ndarray((128, 1), nl.float32, buffer=nl.sbuf)
>>> nisa.range_select(dst=out, on_true_tile=a, comp_op0=nl.greater_equal, comp_op1=nl.less,
...                   bound0=lo, bound1=hi, reduce_res=s)
<nisa.range_select on DVE>
""", 3),
    "exponential": (
        "``dst = exp(src - max_value)`` (softmax's numerator), optionally summing each row.",
        """
>>> s = nl.ndarray((128, 1), nl.float32, buffer=nl.sbuf)
>>> nisa.exponential(dst=out, src=a, max_value=col, reduce_res=s,
...                  reduce_cmd=nisa.reduce_cmd.reset_reduce)
<nisa.exponential on ...>
""", 4),
    "reciprocal": (
        "Element-wise ``dst = 1 / data`` on VectorE.",
        """
>>> nisa.reciprocal(dst=out, data=a)
<nisa.reciprocal on DVE>
""", 2),
    "bn_stats": (
        "Per-row mean/variance statistics (count, mean, M2 for even and odd elements) for layer norm.",
        """
>>> st = nl.ndarray((128, 6), nl.float32, buffer=nl.sbuf)
>>> nisa.bn_stats(dst=st, data=a)
<nisa.bn_stats on DVE>
""", 2),
    "bn_aggr": (
        "Combine ``bn_stats`` groups into per-row ``[mean, variance]``.",
        """
>>> st = nl.ndarray((128, 6), nl.float32, buffer=nl.sbuf)
>>> nisa.bn_stats(dst=st, data=a)
<nisa.bn_stats on DVE>
>>> mv = nl.ndarray((128, 2), nl.float32, buffer=nl.sbuf)
>>> nisa.bn_aggr(dst=mv, data=st)               # mv[:, 0] = mean, mv[:, 1] = variance
<nisa.bn_aggr on DVE>
""", 2),
    "max8": (
        "The 8 largest values of each row, in descending order.",
        """
>>> m8 = nl.ndarray((128, 8), nl.float32, buffer=nl.sbuf)
>>> nisa.max8(dst=m8, src=a)
<nisa.max8 on DVE>
""", 2),
    "nc_find_index8": (
        "Per row, the index of the first element equal to each of 8 values (all ones when absent).",
        """
>>> m8 = nl.ndarray((128, 8), nl.float32, buffer=nl.sbuf)
>>> nisa.max8(dst=m8, src=a)
<nisa.max8 on DVE>
>>> ix = nl.ndarray((128, 8), nl.uint32, buffer=nl.sbuf)
>>> nisa.nc_find_index8(dst=ix, data=a, vals=m8)   # argmax-8
<nisa.nc_find_index8 on DVE>
""", 2),
    "nc_match_replace8": (
        "Replace the first occurrence of each of 8 values in every row by ``imm`` (optionally their indices).",
        """
>>> m8 = nl.ndarray((128, 8), nl.float32, buffer=nl.sbuf)
>>> nisa.max8(dst=m8, src=a)
<nisa.max8 on DVE>
>>> nisa.nc_match_replace8(dst=out, data=a, vals=m8, imm=0.0)   # drop each row's top 8
<nisa.nc_match_replace8 on DVE>
""", 2),
    "nc_stream_shuffle": (
        "Move partitions within each group of 32: ``dst[p] = src[shuffle_mask[p % 32]]``.",
        """
>>> nisa.nc_stream_shuffle(dst=out[0:32], src=a[0:32], shuffle_mask=list(range(31, -1, -1)))
<nisa.nc_stream_shuffle on DVE>
""", 2),
    "dropout": (
        "Zero each element with probability ``prob`` (the kept ones are not rescaled).",
        """
>>> nisa.dropout(dst=out, data=a, prob=0.1)
<nisa.dropout on DVE>
""", 2),
    "rng": (
        "32 random bits per element from the engine's generator, truncated to dst's integer dtype.",
        """
>>> r = nl.ndarray((128, 512), nl.uint32, buffer=nl.sbuf)
>>> nisa.rng(dst=r)
<nisa.rng on DVE>
""", 2),
    "set_rng_seed": (
        "Seed VectorE's random generator from a [1, 1] 32-bit value.",
        """
>>> seed = nl.full((1, 1), 42, nl.uint32)
>>> nisa.set_rng_seed(src_seeds=seed)
<nisa.set_rng_seed on DVE>
""", 2),
    "rand_set_state": (
        "Load each lane's XORWOW generator state (uint32 words: 6 on GpSimd, 24 on VectorE).",
        """
>>> st = nl.ndarray((128, 6), nl.uint32, buffer=nl.sbuf)
>>> nisa.iota(dst=st, pattern=[[1, 6]], offset=1, channel_multiplier=6)
<nisa.iota on POOL>
>>> nisa.rand_set_state(src_seeds=st)
<nisa.rand_set_state on POOL>
""", 3),
    "rand_get_state": (
        "Store each lane's XORWOW generator state into ``dst`` (uint32).",
        """
>>> st = nl.ndarray((128, 6), nl.uint32, buffer=nl.sbuf)
>>> nisa.iota(dst=st, pattern=[[1, 6]], offset=1, channel_multiplier=6)
<nisa.iota on POOL>
>>> nisa.rand_set_state(src_seeds=st)
<nisa.rand_set_state on POOL>
>>> nisa.rand_get_state(dst=st)
<nisa.rand_get_state on POOL>
""", 3),
    "rand2": (
        "Uniform random values in ``[min, max]`` on VectorE.",
        """
>>> nisa.rand2(dst=out, min=-1.0, max=1.0)
<nisa.rand2 on DVE>
""", 4),
    "nonzero_with_count": (
        "Per row, the indices of non-zero elements, then padding, then their count in the last column.",
        """
>>> m = nl.greater(a, 1.0)
>>> r = nl.ndarray((128, 513), nl.int32, buffer=nl.sbuf)
>>> nisa.nonzero_with_count(dst=r, src=m)
<nisa.nonzero_with_count on POOL>
""", 3),
    "sequence_bounds": (
        "For each element, ``[start, end)`` of its run of equal segment ids (id 0 is padding).",
        """
>>> seg = nl.full((1, 512), 1, nl.int32)
>>> r = nl.ndarray((1, 2, 512), nl.int32, buffer=nl.sbuf)
>>> nisa.sequence_bounds(dst=r, segment_ids=seg)
<nisa.sequence_bounds on POOL>
""", 2),
    "tensor_partition_reduce": (
        "Reduce across partitions (GpSimd): ``dst[0, j] = op over p of data[p, j]``.",
        """
>>> row = nl.ndarray((1, 512), nl.float32, buffer=nl.sbuf)
>>> nisa.tensor_partition_reduce(dst=row, op=nl.add, data=a)
<nisa.tensor_partition_reduce on POOL>
""", 2),
    "affine_select": (
        "Keep ``on_true_tile`` where an affine expression of (partition, index) compares true to 0.",
        """
>>> nisa.affine_select(dst=out, pattern=[[-1, 512]], channel_multiplier=1, on_true_tile=a,
...                    on_false_value=0.0, cmp_op=nl.greater_equal)   # keep j <= p (causal)
<nisa.affine_select on POOL>
""", 2),
    "local_gather": (
        "Gather elements within each group of 16 partitions by per-partition indices (GpSimd).",
        """
>>> idx = nl.ndarray((128, 4), nl.uint16, buffer=nl.sbuf)
>>> nisa.memset(dst=idx, value=3)
<nisa.memset on ...>
>>> g = nl.ndarray((128, 64), nl.float32, buffer=nl.sbuf)   # 16 partitions x 4 indices
>>> nisa.local_gather(dst=g, src_buffer=a, index=idx)
<nisa.local_gather on POOL>
""", 2),
    "nc_n_gather": (
        "Per row, gather ``data[p, indices[p, j]]``.",
        """
>>> idx = nl.ndarray((128, 16), nl.uint32, buffer=nl.sbuf)
>>> nisa.memset(dst=idx, value=7)
<nisa.memset on ...>
>>> g = nl.ndarray((128, 16), nl.float32, buffer=nl.sbuf)
>>> nisa.nc_n_gather(dst=g, data=a, indices=idx)
<nisa.nc_n_gather on POOL>
""", 2),
    "topk": (
        "Per 16-partition group, the k largest of an ``n``-element snake and their indices, "
        "written in the same snake layout (k = val_dst's free size).",
        """
>>> v = nl.ndarray((128, 16), nl.bfloat16, buffer=nl.sbuf)
>>> ix = nl.ndarray((128, 16), nl.uint32, buffer=nl.sbuf)
>>> nisa.topk(val_dst=v, idx_dst=ix, src=x, n=16)
<nisa.topk on ...>
""", 2),
    "dma_transpose": (
        "Transpose while copying on a DMA queue (2-D swap, or a permutation given by ``axes``).",
        """
>>> t = nl.ndarray((128, 128), nl.float32, buffer=nl.sbuf)
>>> nisa.dma_transpose(dst=t, src=hbm_in[:, 0:128])
<nisa.dma_transpose on DMA>
""", 2),
    "dma_compute": (
        "Element-wise reduction of several same-shaped sources (optionally scaled) into dst by DMA.",
        """
>>> nisa.dma_compute(dst=hbm_out, srcs=[hbm_in, hbm_in], reduce_op=nl.add)
<nisa.dma_compute on DMA>
""", 2),
    "sendrecv": (
        "Send ``src`` to core ``send_to_rank`` while receiving the peer's data into ``dst`` (LNC=2).",
        """
>>> peer = 1 - nl.program_id(0)                 # kernel launched as kernel[2]
>>> got = nl.ndarray((128, 512), nl.float32, buffer=nl.sbuf)
>>> nisa.sendrecv(src=a, dst=got, send_to_rank=peer, recv_from_rank=peer, pipe_id=0)
<nisa.sendrecv on ...>
""", 3),
    "core_barrier": (
        "Every core in ``cores`` waits until all of them reach the barrier (LNC=2).",
        """
>>> nisa.dma_copy(dst=hbm_out, src=a)           # kernel launched as kernel[2]
<nisa.dma_copy on DMA>
>>> nisa.core_barrier(hbm_out, (0, 1))
<nisa.core_barrier on POOL>
""", 3),
    "register_load": (
        "Load a [1, 1] int32 SBUF value into a virtual register (for dynamic loop bounds, offsets).",
        """
>>> t = nl.full((1, 1), 7, nl.int32)
>>> r = nisa.register_alloc()
>>> nisa.register_load(r, t)
""", 2),
    "register_store": (
        "Store a virtual register into a [1, 1] int32 SBUF tile.",
        """
>>> r = nisa.register_alloc(3)
>>> t = nl.ndarray((1, 1), nl.int32, buffer=nl.sbuf)
>>> nisa.register_store(t, r)
""", 2),
    "register_move": (
        "Copy a register or an integer immediate into a register.",
        """
>>> r = nisa.register_alloc()
>>> nisa.register_move(r, 5)
""", 2),
    "register_alloc": (
        "A new virtual register, optionally initialised to an integer or another register.",
        """
>>> r = nisa.register_alloc(0)
>>> nisa.register_move(r, 5)
""", 2, ""),
    "get_nc_version": (
        "The NeuronCore generation of the current target (``nisa.nc_version.gen2`` / gen3 / gen4).",
        """
>>> nisa.get_nc_version()
<nc_version.gen2: 2>
""", 2, ""),
    "get_nc_sub_version": (
        "The NeuronCore sub-version of the current target (always 0 in the emulator).",
        """
>>> nisa.get_nc_sub_version()
0
""", 2, ""),
}

# enums and classes: a docstring only (their members are documented in NKI's ISA reference)
CLASSES = {
    "engine": "Engine selector for ``engine=`` arguments: tensor (PE), scalar (ACT), vector (DVE), "
              "gpsimd (POOL), sync (SP), dma; ``unknown`` lets the emulator choose.",
    "reduce_cmd": "What an instruction does with its reduce register: ``idle`` (leave it), "
                  "``reset`` (clear it), ``reduce`` (accumulate into it), ``reset_reduce`` "
                  "(clear, then accumulate: the usual choice), ``load_reduce``.",
    "dge_mode": "Descriptor generation for DMA: ``swdge`` (software), ``hwdge`` (hardware), "
                "``none``, ``unknown`` (let the compiler choose).",
    "oob_mode": "Out-of-bounds handling of indirect DMA: ``error`` or ``skip``.",
    "matmul_perf_mode": "TensorE performance mode: ``none`` or ``double_row`` (fp8, NeuronCore-v3+).",
    "nc_version": "NeuronCore generation: gen2 (inf2/trn1), gen3 (trn2), gen4 (trn3).",
    "dma_engine": "Which DMA engine ``sendrecv`` uses: ``dma`` or ``gpsimd_dma``.",
}
