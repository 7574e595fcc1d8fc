"""The matrix-multiplication tutorial's five kernels, written fresh in the same style.

basic -> tiled -> hoisted loads (lists of tiles) -> blocked free dims -> fully optimised
(sequential_range, 3-D SBUF tiles, memset, PSUM->SBUF accumulation with tensor_tensor, .reshape).
All take lhsT [K, M] and rhs [K, N] in bf16 and are compared with an fp32 NumPy product.
"""
import ml_dtypes
import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl

BF16 = ml_dtypes.bfloat16


@nki.jit
def mm_basic(lhsT, rhs):
    K, M = lhsT.shape
    K2, N = rhs.shape
    assert K == K2 == 128 and M == 64 and N == 512
    out = nl.ndarray((M, N), dtype=lhsT.dtype, buffer=nl.shared_hbm)
    a = nl.ndarray(lhsT.shape, dtype=lhsT.dtype, buffer=nl.sbuf)
    b = nl.ndarray(rhs.shape, dtype=rhs.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=a, src=lhsT)
    nisa.dma_copy(dst=b, src=rhs)
    acc = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.psum)
    nisa.nc_matmul(acc, a, b)
    res = nl.ndarray(acc.shape, dtype=out.dtype, buffer=nl.sbuf)
    nisa.tensor_copy(dst=res, src=acc)
    nisa.dma_copy(dst=out, src=res)
    return out


@nki.jit
def mm_tiled(lhsT, rhs):
    K, M = lhsT.shape
    _, N = rhs.shape
    TM, TK, TN = nl.tile_size.gemm_stationary_fmax, nl.tile_size.pmax, nl.tile_size.gemm_moving_fmax
    assert M % TM == 0 and N % TN == 0 and K % TK == 0
    out = nl.ndarray((M, N), dtype=lhsT.dtype, buffer=nl.shared_hbm)
    for m in nl.affine_range(M // TM):
        for n in nl.affine_range(N // TN):
            acc = nl.ndarray((TM, TN), nl.float32, buffer=nl.psum)
            for k in nl.affine_range(K // TK):
                a = nl.ndarray((TK, TM), dtype=lhsT.dtype, buffer=nl.sbuf)
                b = nl.ndarray((TK, TN), dtype=rhs.dtype, buffer=nl.sbuf)
                nisa.dma_copy(dst=a, src=lhsT[k * TK:(k + 1) * TK, m * TM:(m + 1) * TM])
                nisa.dma_copy(dst=b, src=rhs[k * TK:(k + 1) * TK, n * TN:(n + 1) * TN])
                nisa.nc_matmul(dst=acc, stationary=a, moving=b)      # auto-accumulates over k
            res = nl.ndarray(acc.shape, dtype=out.dtype, buffer=nl.sbuf)
            nisa.tensor_copy(dst=res, src=acc)
            nisa.dma_copy(dst=out[m * TM:(m + 1) * TM, n * TN:(n + 1) * TN], src=res)
    return out


@nki.jit
def mm_hoisted(lhsT, rhs):
    K, M = lhsT.shape
    _, N = rhs.shape
    TM, TK, TN = 128, 128, 512
    out = nl.ndarray((M, N), dtype=lhsT.dtype, buffer=nl.shared_hbm)
    for m in nl.affine_range(M // TM):
        a_tiles = []
        for k in nl.affine_range(K // TK):
            a = nl.ndarray(shape=(TK, TM), dtype=lhsT.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=a, src=lhsT[k * TK:(k + 1) * TK, m * TM:(m + 1) * TM])
            a_tiles.append(a)
        for n in nl.affine_range(N // TN):
            b_tiles = []
            for k in nl.affine_range(K // TK):
                b = nl.ndarray(shape=(TK, TN), dtype=rhs.dtype, buffer=nl.sbuf)
                nisa.dma_copy(dst=b, src=rhs[k * TK:(k + 1) * TK, n * TN:(n + 1) * TN])
                b_tiles.append(b)
            acc = nl.ndarray(shape=(TM, TN), dtype=nl.float32, buffer=nl.psum)
            for k in nl.affine_range(K // TK):
                nisa.nc_matmul(dst=acc, stationary=a_tiles[k], moving=b_tiles[k])
            res = nl.ndarray(shape=(TM, TN), dtype=nl.float32, buffer=nl.sbuf)
            nisa.tensor_copy(dst=res, src=acc)
            nisa.dma_copy(dst=out[m * TM:(m + 1) * TM, n * TN:(n + 1) * TN], src=res)
    return out


@nki.jit
def mm_blocked(lhsT, rhs):
    K, M = lhsT.shape
    _, N = rhs.shape
    TM, TK, TN = 128, 128, 512
    BM, BN = 2, 2
    assert M % (TM * BM) == 0 and N % (TN * BN) == 0
    out = nl.ndarray((M, N), dtype=lhsT.dtype, buffer=nl.shared_hbm)
    for m in nl.affine_range(M // (TM * BM)):
        a_tiles = []
        for bm in nl.affine_range(BM):
            row = []
            for k in nl.affine_range(K // TK):
                a = nl.ndarray(shape=(TK, TM), dtype=lhsT.dtype, buffer=nl.sbuf)
                c0 = (m * BM + bm) * TM
                nisa.dma_copy(dst=a, src=lhsT[k * TK:(k + 1) * TK, c0:c0 + TM])
                row.append(a)
            a_tiles.append(row)
        for n in nl.affine_range(N // (TN * BN)):
            b_tiles = []
            for bn in nl.affine_range(BN):
                row = []
                for k in nl.affine_range(K // TK):
                    b = nl.ndarray(shape=(TK, TN), dtype=rhs.dtype, buffer=nl.sbuf)
                    c0 = (n * BN + bn) * TN
                    nisa.dma_copy(dst=b, src=rhs[k * TK:(k + 1) * TK, c0:c0 + TN])
                    row.append(b)
                b_tiles.append(row)
            for bm in nl.affine_range(BM):
                for bn in nl.affine_range(BN):
                    acc = nl.ndarray(shape=(TM, TN), dtype=nl.float32, buffer=nl.psum)
                    for k in nl.affine_range(K // TK):
                        nisa.nc_matmul(dst=acc, stationary=a_tiles[bm][k], moving=b_tiles[bn][k])
                    res = nl.ndarray(shape=acc.shape, dtype=out.dtype, buffer=nl.sbuf)
                    nisa.tensor_copy(dst=res, src=acc)
                    r0, c0 = (m * BM + bm) * TM, (n * BN + bn) * TN
                    nisa.dma_copy(dst=out[r0:r0 + TM, c0:c0 + TN], src=res)
    return out


@nki.jit
def mm_optimised(lhsT, rhs, BLK_M=2, BLK_N=2, BLK_K=2):
    K, M = lhsT.shape
    _, N = rhs.shape
    TM, TK, TN = nl.tile_size.gemm_stationary_fmax, nl.tile_size.pmax, nl.tile_size.gemm_moving_fmax
    SM, SN, SK = TM * BLK_M, TN * BLK_N, TK * BLK_K
    assert M % SM == 0 and N % SN == 0 and K % SK == 0
    out = nl.ndarray((M, N), dtype=lhsT.dtype, buffer=nl.shared_hbm)
    for n in nl.affine_range(N // SN):
        n0 = n * SN
        acc_tiles = []
        for m in nl.affine_range(M // SM):
            for mt in nl.affine_range(BLK_M):
                t = nl.ndarray(shape=(TM, BLK_N, TN), dtype=out.dtype, buffer=nl.sbuf)
                nisa.memset(dst=t, value=0.0)
                acc_tiles.append(t)
        for k in nl.sequential_range(K // SK):
            b_blk = nl.ndarray(shape=(TK, BLK_K, SN), dtype=rhs.dtype, buffer=nl.sbuf)
            for kt in range(BLK_K):
                k0 = (k * BLK_K + kt) * TK
                nisa.dma_copy(dst=b_blk[0:TK, kt, 0:SN], src=rhs[k0:k0 + TK, n0:n0 + SN])
            for m in nl.affine_range(M // SM):
                a_blk = nl.ndarray(shape=(TK, BLK_K, SM), dtype=lhsT.dtype, buffer=nl.sbuf)
                for kt in nl.affine_range(BLK_K):
                    k0 = (k * BLK_K + kt) * TK
                    nisa.dma_copy(dst=a_blk[0:TK, kt, 0:SM], src=lhsT[k0:k0 + TK, m * SM:(m + 1) * SM])
                for nt in nl.affine_range(BLK_N):
                    for mt in nl.affine_range(BLK_M):
                        ps = nl.ndarray(shape=(TM, TN), dtype=nl.float32, buffer=nl.psum)
                        for kt in nl.affine_range(BLK_K):
                            nisa.nc_matmul(dst=ps,
                                           stationary=a_blk[0:TK, kt, mt * TM:(mt + 1) * TM],
                                           moving=b_blk[0:TK, kt, nt * TN:(nt + 1) * TN])
                        acc = acc_tiles[m * BLK_M + mt]
                        nisa.tensor_tensor(dst=acc[0:TM, nt, 0:TN], data1=acc[0:TM, nt, 0:TN],
                                           data2=ps, op=nl.add)
        for idx, acc in enumerate(acc_tiles):
            flat = acc.reshape((TM, SN))
            nisa.dma_copy(dst=out[idx * TM:(idx + 1) * TM, n0:n0 + SN], src=flat[0:TM, 0:SN])
    return out


def _inputs(M, K, N, seed=0):
    rng = np.random.default_rng(seed)
    lhs = rng.random((M, K)).astype(BF16)
    rhs = rng.random((K, N)).astype(BF16)
    return np.ascontiguousarray(lhs.T), rhs, lhs.astype(np.float32) @ rhs.astype(np.float32)


def test_basic_matmul_64x128x512():
    lhsT, rhs, want = _inputs(64, 128, 512)
    out = mm_basic(lhsT, rhs)
    assert out.dtype == BF16 and out.shape == (64, 512)
    np.testing.assert_allclose(out.astype(np.float32), want, atol=1e-4, rtol=1e-2)


@pytest.mark.parametrize("kernel", [mm_tiled, mm_hoisted, mm_blocked, mm_optimised],
                         ids=lambda k: k.__name__)
def test_tiled_matmul_variants(kernel):
    lhsT, rhs, want = _inputs(256, 256, 1024, seed=3)
    out = kernel(lhsT, rhs)
    assert out.shape == (256, 1024)
    np.testing.assert_allclose(out.astype(np.float32), want, atol=1e-4, rtol=1e-2)


def test_optimised_matmul_meta_parameters_change_blocking_not_result():
    lhsT, rhs, want = _inputs(256, 512, 1024, seed=4)
    a = mm_optimised(lhsT, rhs, 1, 1, 4)
    b = mm_optimised(lhsT, rhs, 2, 2, 2)
    np.testing.assert_allclose(a.astype(np.float32), want, atol=1e-4, rtol=1e-2)
    np.testing.assert_allclose(b.astype(np.float32), want, atol=1e-4, rtol=1e-2)
