"""Layouts the nki-library's newest decode attention kernels rely on.

1. An MX scale operand written compactly, one partition per 8-partition group (``v[0:16]`` for
   128 data partitions), names the same quadrant rows as a full-extent scale view
   (attention_mxfp8_tkg's MM2).
2. A (P, n) vector_offset tile feeds a P*n-row indirect DMA column by column: entry i uses
   ``idx[i % P, i // P]`` (tests/isa/test_vector_offset_columns.py has the plain gathers); here
   attention_tkg's batched block-KV K-load, an indirect 4-D dma_transpose with a [128, folds]
   block-id tile.
References are NumPy, written here independently of device/isa/mx.py and device/dynamic.py.
"""
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from isa_helpers import Line, expect_error, load, run, store

E4 = "float8_e4m3fn_x4"


def _codes(rng, shape):
    """Random e4m3fn values packed four per uint32 container, and their float64 values."""
    vals = (rng.standard_normal(shape + (4,)) * 2).astype(ml_dtypes.float8_e4m3fn)
    codes = vals.view(np.uint8).astype(np.uint32)
    raw = sum(codes[..., j] << (8 * j) for j in range(4)).astype(np.uint32)
    return raw, vals.astype(np.float64)


def _quadrant_rows(K):
    p = np.arange(K)
    return 32 * (p // 32) + (p % 32) // 8


@settings(max_examples=12, deadline=None)
@given(K=st.sampled_from([64, 128]), M=st.integers(1, 8).map(lambda m: 2 * m),
       N=st.integers(1, 40), off=st.sampled_from([0, 4, 8, 12]), seed=st.integers(0, 99))
def test_compact_scale_view_reads_the_quadrant_rows(K, M, N, off, seed):
    rng = np.random.default_rng(seed)
    a, av = _codes(rng, (K, M))
    b, bv = _codes(rng, (K, N))
    # a whole 128-row scale tile; only the quadrant rows hold scales, the rest are NaN bytes so
    # a read of any other row would show in the result
    sa = np.full((128, M), 255, np.uint8)
    sb = np.full((128, N), 255, np.uint8)
    rows = np.unique(_quadrant_rows(K)) + off
    sa[rows] = rng.integers(120, 134, (len(rows), M))
    sb[rows] = rng.integers(120, 134, (len(rows), N))

    def k(a, b, sa, sb):
        ta, tb = load(a.view(E4)), load(b.view(E4))
        ssa, ssb = load(sa), load(sb)
        p = nl.ndarray((M, N), nl.float32, buffer=nl.psum)
        nisa.nc_matmul_mx(dst=p, stationary=ta, moving=tb,
                          stationary_scale=ssa[off:off + K // 8],     # compact: K // 8 rows
                          moving_scale=ssb[off:],                     # full extent
                          accumulate=False)
        out = nl.ndarray((M, N), nl.float32, buffer=nl.sbuf)
        nisa.tensor_copy(dst=out, src=p)
        return store(out)
    got = run(k, a, b, sa, sb, target="trn3")
    A = av * np.exp2(sa[_quadrant_rows(K) + off].astype(np.float64) - 127)[:, :, None]
    B = bv * np.exp2(sb[_quadrant_rows(K) + off].astype(np.float64) - 127)[:, :, None]
    want = np.einsum("kmj,knj->mn", A, B)
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-5,
                               atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("rows", [8, 12, 31])
def test_scale_view_neither_compact_nor_full_is_refused(rows):
    a = np.zeros((128, 2), np.uint32)
    b = np.zeros((128, 4), np.uint32)
    s2, s4 = np.full((128, 2), 127, np.uint8), np.full((128, 4), 127, np.uint8)
    L = Line()

    def k(a, b, s2, s4):
        p = nl.ndarray((2, 4), nl.float32, buffer=nl.psum)
        ss = load(s4)
        L.mark(); nisa.nc_matmul_mx(dst=p, stationary=load(a.view(E4)), moving=load(b.view(E4)), stationary_scale=load(s2), moving_scale=ss[0:rows])  # noqa: E702,E501
        return store(load(np.zeros((2, 4), np.float32)))
    expect_error(k, (a, b, s2, s4), L, "mx-scale-layout", f"'moving_scale' has {rows} partitions",
                 "128 data partitions need 100", "or exactly 16 in the compact", target="trn3")


@settings(max_examples=8, deadline=None)
@given(block_len=st.sampled_from([2, 4, 8]), d=st.sampled_from([16, 64]), n=st.integers(1, 3),
       seed=st.integers(0, 40))
def test_indirect_dma_transpose_gathers_blocks_column_by_column(block_len, d, n, seed):
    """Block KV K-load: K [blocks, block_len * d] -> k_sb [d, block_len * n * 128], where column c of
    the [128, n] id tile lists the 128 blocks of the c-th group, one per partition."""
    P, nblk = 128, 300
    rng = np.random.default_rng(seed)
    K = rng.standard_normal((nblk, block_len * d)).astype(ml_dtypes.bfloat16)
    ids = rng.integers(0, nblk, (P, n)).astype(np.uint32)

    def k(K, ids):
        k4 = K.reshape((nblk, 1, block_len, d))
        k_sb = nl.ndarray((d, n * block_len * P), nl.bfloat16, buffer=nl.sbuf)
        nisa.dma_transpose(
            dst=k_sb.reshape_dim(1, (block_len, n * P)).expand_dim(1),
            src=k4.ap([[block_len * d, P * n], [1, 1], [d, block_len], [1, d]], offset=0,
                      vector_offset=load(ids), indirect_dim=0),
            axes=(3, 1, 2, 0), dge_mode=nisa.dge_mode.swdge)
        return store(k_sb)
    got = np.asarray(run(k, K, ids, target="trn2"), np.float32).reshape(d, block_len, n, P)
    Kf = K.astype(np.float32).reshape(nblk, block_len, d)
    # want[:, t, c, p] = K[ids[p, c]][t, :]
    want = Kf[ids.T].transpose(3, 2, 0, 1)
    np.testing.assert_array_equal(got, want)

