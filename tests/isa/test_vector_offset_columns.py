"""A (P, C) vector_offset tile lists P*C row offsets partition-fastest: gathered row n reads
``idx[n % P, n // P]`` -- the order the NKI library's DMA gather-transpose (mxfp8 load_tile_dgt)
builds its 128 x C offset tiles in. A (P, 1) tile is the ordinary one-offset-per-row case."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from isa_helpers import assert_same, load, rand, run, store


@given(P=st.integers(1, 8), C=st.integers(1, 8), F=st.integers(1, 9), seed=st.integers(0, 40))
def test_gather_rows_from_a_multi_column_offset_tile(P, C, F, seed):
    R = 50
    table = rand((R, F), "float32", seed)
    idx = np.random.default_rng(seed).integers(0, R, (P, C)).astype(np.int32)
    N = P * C

    def k(table, idx):
        d = nl.ndarray((N, F), "float32", buffer=nl.sbuf)
        nisa.dma_copy(dst=d, src=table.ap([[F, N], [1, F]], vector_offset=load(idx), indirect_dim=0))
        return store(d)
    want = table[idx.reshape(-1, order="F")]
    assert_same(run(k, table, idx, target="trn2"), want)


def test_gather_transpose_interleaves_like_the_mxfp8_loader():
    # [F, K] bf16 rows of K/4-element chunks, gathered with a (128, C) offset tile and transposed:
    # SBUF partition e, free n = 4 f + s holds src[f, s * K/4 + e] (the MX "swizzled" layout)
    F, K = 64, 512
    vs = K // 4
    src = rand((F, K), "float32", 3)
    rows = F * 4
    C = rows // 128
    n = np.arange(rows)
    offs = np.zeros((128, C), np.int32)
    offs[n % 128, n // 128] = n                     # identity gather, partition fastest

    def k(src, offs):
        flat = src.reshape((F * K // vs, 1, 1, vs))
        dst = nl.ndarray((vs, 1, 1, rows), "float32", buffer=nl.sbuf)
        nisa.dma_transpose(dst=dst, src=flat.ap([[vs, rows], [1, 1], [1, 1], [1, vs]],
                                                vector_offset=load(offs)), axes=(3, 1, 2, 0))
        return store(dst.reshape((vs, rows)))
    want = src.reshape(F, 4, vs).transpose(2, 0, 1).reshape(vs, rows)
    assert_same(run(k, src, offs, target="trn3"), want)


def test_an_offset_tile_rounded_up_to_whole_columns_uses_its_first_offsets():
    # 40 rows gathered with a (16, 3) tile (48 offsets): rows 0..39 read idx in partition-fastest
    # order; the last 8 offsets are not used
    R, F, P, C, N = 30, 5, 16, 3, 40
    table = rand((R, F), "float32", 4)
    idx = np.random.default_rng(4).integers(0, R, (P, C)).astype(np.int32)

    def k(table, idx):
        d = nl.ndarray((N, F), "float32", buffer=nl.sbuf)
        nisa.dma_copy(dst=d, src=table.ap([[F, N], [1, F]], vector_offset=load(idx), indirect_dim=0))
        return store(d)
    want = table[idx.reshape(-1, order="F")[:N]]
    assert_same(run(k, table, idx, target="trn2"), want)
