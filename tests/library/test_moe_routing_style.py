"""Token routing in the style of the NKI library's newest all-expert MoE kernel ("dynamic loop on
chip"): the routed tokens of an expert are found on chip with nonzero_with_count, a register holds
the number of non-empty token blocks, and a dynamic loop gathers each block by indirect DMA
(padding index -1 skipped with oob_mode.skip), computes, and scatters the rows back -- overwrite
for the first expert, dma_compute read-modify-write for the others. Compared with NumPy.

The kernel is ours, written from the library's published algorithm; what it pins down is the
semantics those kernels depend on: the (index, padding, count) layout of nonzero_with_count, int32
indices carried through a PE transpose as float32 bits, scalar_offset block selection, and
out-of-bound skipping on both gather and scatter.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from nki.isa import oob_mode

P_MAX = 128
# the library still writes nl.dynamic_range (deprecated in NKI 0.6 for nl.fori_loop)
pytestmark = pytest.mark.filterwarnings("ignore:nl.dynamic_range is deprecated")
PAD = -1  # nonzero_with_count padding: an out-of-bound row index, so DMA skips it


def _routed_rows(aff_hbm, e, T):
    """[128, T + 1] int32: partition 0 holds the routed token indices of expert e, then PAD, then
    the count (the other partitions are not written by the GpSimd cores)."""
    aff_sb = nl.ndarray((P_MAX, T), dtype=nl.float32, buffer=nl.sbuf)
    nisa.memset(dst=aff_sb, value=0.0)
    nisa.dma_copy(dst=aff_sb[0:1, 0:T], src=aff_hbm.ap([[1, 1], [aff_hbm.shape[1], T]], offset=e))
    idx = nl.ndarray((P_MAX, T + 1), dtype=nl.int32, buffer=nl.sbuf)
    nisa.nonzero_with_count(dst=idx, src=aff_sb, padding_val=PAD)
    return idx


def _live_blocks(aff_hbm, e, T, block):
    """Expert e's routed token indices in HBM as [n_blocks, block], a register holding how many
    blocks hold at least one routed token (iota(0, block, 2 * block, ...) < count), and a [1, 1]
    block cursor at 0: what the dynamic loop over an expert's blocks starts from."""
    n_blocks = T // block
    idx = _routed_rows(aff_hbm, e, T)
    count = nl.ndarray((1, 1), dtype=nl.float32, buffer=nl.sbuf)
    nisa.tensor_copy(dst=count, src=idx[0:1, T:T + 1])
    live = nl.ndarray((1, n_blocks), dtype=nl.int32, buffer=nl.sbuf)
    nisa.iota(dst=live, pattern=[[block, n_blocks]], offset=0)
    nisa.tensor_scalar(dst=live, data=live, op0=nl.less, operand0=count)
    n_live = nl.ndarray((1, 1), dtype=nl.int32, buffer=nl.sbuf)
    nisa.tensor_reduce(dst=n_live, data=live, op=nl.add, axis=1)
    reg = nisa.register_alloc()
    nisa.register_load(dst=reg, src=n_live)
    # the index list goes to HBM as [n_blocks, block] so a block can be picked at run time
    idx_hbm = nl.ndarray((1, T), dtype=nl.int32, buffer=nl.private_hbm)
    nisa.dma_copy(dst=idx_hbm, src=idx[0:1, 0:T])
    blk = nl.ndarray((1, 1), dtype=nl.int32, buffer=nl.sbuf)
    nisa.memset(dst=blk, value=0)
    return reg, idx_hbm.reshape((n_blocks, block)), blk


@nki.jit(target="trn2")  # nonzero_with_count and register loops are NeuronCore-v3+
def routed_expert_scale(hidden, affinities, block):
    """out[t] = sum_e (e + 2) * hidden[t] over the experts e that token t is routed to."""
    T, H = hidden.shape
    E = affinities.shape[1]
    n_blocks = T // block
    out = nl.ndarray((T, H), dtype=hidden.dtype, buffer=nl.shared_hbm)
    zeros = nl.ndarray((block, H), dtype=hidden.dtype, buffer=nl.sbuf)
    nisa.memset(dst=zeros, value=0.0)
    for b in range(n_blocks):  # unrouted rows read back as zero, as the library zero-fills first
        nisa.dma_copy(dst=out[b * block:(b + 1) * block, :], src=zeros)
    for e in range(E):
        reg, idx_hbm, blk = _live_blocks(affinities, e, T, block)
        for _ in nl.dynamic_range(reg):
            row = nl.ndarray((1, block), dtype=nl.int32, buffer=nl.sbuf)
            pick = idx_hbm.ap([[block, 1], [1, block]], offset=0, scalar_offset=blk, indirect_dim=0)
            nisa.dma_copy(dst=row, src=pick)
            # int32 indices ride a PE transpose as float32 bit patterns
            col_ps = nl.ndarray((block, 1), dtype=nl.float32, buffer=nl.psum)
            nisa.nc_transpose(dst=col_ps, data=row.view(nl.float32))
            col = nl.ndarray((block, 1), dtype=nl.float32, buffer=nl.sbuf)
            nisa.tensor_copy(dst=col, src=col_ps)
            col = col.view(nl.int32)
            rows = nl.ndarray((block, H), dtype=hidden.dtype, buffer=nl.sbuf)
            nisa.memset(dst=rows, value=0.0)
            src = hidden.ap([[H, block], [1, H]], offset=0, vector_offset=col, indirect_dim=0)
            nisa.dma_copy(dst=rows, src=src, oob_mode=oob_mode.skip, dge_mode=nisa.dge_mode.swdge)
            nisa.tensor_scalar(dst=rows, data=rows, op0=nl.multiply, operand0=float(e + 2))
            dst = out.ap([[H, block], [1, H]], offset=0, vector_offset=col, indirect_dim=0)
            if e == 0:  # first expert overwrites, the others read-modify-write
                nisa.dma_copy(dst=dst, src=rows, oob_mode=oob_mode.skip,
                              dge_mode=nisa.dge_mode.swdge)
            else:
                nisa.dma_compute(dst=dst, srcs=[dst, rows], scales=[1.0, 1.0], reduce_op=nl.add,
                                 oob_mode=oob_mode.skip)
            nisa.tensor_scalar(dst=blk, data=blk, op0=nl.add, operand0=1)
    return out


def reference(hidden, affinities):
    out = np.zeros_like(hidden, dtype=np.float64)
    for e in range(affinities.shape[1]):
        routed = affinities[:, e] != 0
        out[routed] += (e + 2) * hidden[routed].astype(np.float64)
    return out


def _inputs(T, H, E, ratio, seed):
    rng = np.random.default_rng(seed)
    hidden = rng.standard_normal((T, H)).astype(np.float32)
    routed = rng.random((T, E)) < ratio
    aff = np.where(routed, rng.uniform(0.1, 1.0, (T, E)), 0.0).astype(np.float32)
    return hidden, aff


@settings(max_examples=6, deadline=None)
@given(blocks=st.integers(1, 4), block=st.sampled_from([8, 16, 32]), E=st.integers(1, 3),
       ratio=st.sampled_from([0.0, 0.2, 0.6, 1.0]), seed=st.integers(0, 99))
def test_routed_blocks_match_numpy(blocks, block, E, ratio, seed):
    T, H = blocks * block, 64
    hidden, aff = _inputs(T, H, E, ratio, seed)
    out = np.asarray(routed_expert_scale(hidden, aff, block))
    np.testing.assert_allclose(out, reference(hidden, aff), rtol=1e-6)


def test_padding_index_is_never_written():
    """All tokens unrouted except one: the dynamic loop runs one block, whose other slots carry
    the -1 padding; every padded slot must be skipped on gather and scatter alike."""
    T, H, block = 32, 16, 8
    hidden = np.arange(T * H, dtype=np.float32).reshape(T, H)
    aff = np.zeros((T, 2), np.float32)
    aff[13, :] = 0.5
    out = np.asarray(routed_expert_scale(hidden, aff, block))
    want = np.zeros_like(hidden)
    want[13] = 5 * hidden[13]  # (0 + 2) + (1 + 2)
    np.testing.assert_array_equal(out, want)


@nki.jit(target="trn2")
def packed_rows(hidden, affinities, block):
    """PACK_OUTPUT_ROWS style for one expert: the routed rows, scaled by 2, stored one block after
    another at a write offset kept on chip ([1, 1] int32, advanced by the block size)."""
    T, H = hidden.shape
    n_blocks = T // block
    out = nl.ndarray((T, H), dtype=hidden.dtype, buffer=nl.shared_hbm)
    zeros = nl.ndarray((block, H), dtype=hidden.dtype, buffer=nl.sbuf)
    nisa.memset(dst=zeros, value=0.0)
    for b in range(n_blocks):
        nisa.dma_copy(dst=out[b * block:(b + 1) * block, :], src=zeros)
    reg, idx_hbm, blk = _live_blocks(affinities, 0, T, block)
    write_at = nl.ndarray((1, 1), dtype=nl.int32, buffer=nl.sbuf)
    nisa.memset(dst=write_at, value=0)
    for _ in nl.dynamic_range(reg):
        row = nl.ndarray((1, block), dtype=nl.int32, buffer=nl.sbuf)
        pick = idx_hbm.ap([[block, 1], [1, block]], offset=0, scalar_offset=blk, indirect_dim=0)
        nisa.dma_copy(dst=row, src=pick)
        col_ps = nl.ndarray((block, 1), dtype=nl.float32, buffer=nl.psum)
        nisa.nc_transpose(dst=col_ps, data=row.view(nl.float32))
        col = nl.ndarray((block, 1), dtype=nl.float32, buffer=nl.sbuf)
        nisa.tensor_copy(dst=col, src=col_ps)
        rows = nl.ndarray((block, H), dtype=hidden.dtype, buffer=nl.sbuf)
        nisa.memset(dst=rows, value=0.0)
        src = hidden.ap([[H, block], [1, H]], offset=0, vector_offset=col.view(nl.int32),
                        indirect_dim=0)
        nisa.dma_copy(dst=rows, src=src, oob_mode=oob_mode.skip, dge_mode=nisa.dge_mode.swdge)
        nisa.tensor_scalar(dst=rows, data=rows, op0=nl.multiply, operand0=2.0)
        at = out.ap([[H, block], [1, H]], offset=0, scalar_offset=write_at, indirect_dim=0)
        nisa.dma_copy(dst=at, src=rows, dge_mode=nisa.dge_mode.swdge)
        nisa.tensor_scalar(dst=write_at, data=write_at, op0=nl.add, operand0=block)
        nisa.tensor_scalar(dst=blk, data=blk, op0=nl.add, operand0=1)
    return out


@settings(max_examples=5, deadline=None)
@given(blocks=st.integers(1, 4), block=st.sampled_from([8, 16]),
       ratio=st.sampled_from([0.1, 0.5, 1.0]), seed=st.integers(0, 99))
def test_packed_rows_follow_the_on_chip_write_offset(blocks, block, ratio, seed):
    T, H = blocks * block, 32
    hidden, aff = _inputs(T, H, 1, ratio, seed)
    out = np.asarray(packed_rows(hidden, aff, block))
    routed = np.flatnonzero(aff[:, 0])
    want = np.zeros_like(hidden)
    want[:len(routed)] = 2 * hidden[routed]  # padded slots of the last block were gathered as zeros
    np.testing.assert_array_equal(out, want)
