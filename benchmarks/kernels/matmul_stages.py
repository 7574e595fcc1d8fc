"""The four stages of the NKI matrix-multiplication tutorial, written for our emulator.

Each kernel computes ``result[M, N] = lhsT[K, M].T @ rhs[K, N]`` with bf16 inputs and is written the
way the tutorial writes it (same loop structure and tile shapes, our own code), so the timing model
can be checked against the latencies the tutorial once published for trn1 (cost model 4.1):

* ``nki_matmul_tiled_``: every matmul loads its own 128x128 lhsT tile and 128x512 rhs tile.
* ``nki_matmul_hoist_load_``: the lhsT strip of an M tile is loaded once and reused for all N tiles.
* ``nki_matmul_block_free_dimension_``: 2x2 blocks of (M, N) tiles share their loads.
* ``nki_matmul_fully_optimized_``: blocks over M, N and K (16x2x8 tiles by default); K blocks are
  accumulated in SBUF by VectorE and the loads move multi-KiB rows per partition.
"""
import nki
import nki.isa as nisa
import nki.language as nl


def _dims(lhsT, rhs):
    K, M = lhsT.shape
    K2, N = rhs.shape
    assert K == K2, f"contraction sizes differ: lhsT has K={K}, rhs has K={K2}"
    return K, M, N


@nki.jit
def nki_matmul_tiled_(lhsT, rhs):
    """One load of each operand per matmul; PSUM accumulates over K, VectorE evicts."""
    K, M, N = _dims(lhsT, rhs)
    TM = nl.tile_size.gemm_stationary_fmax     # 128
    TK = nl.tile_size.pmax                     # 128
    TN = nl.tile_size.gemm_moving_fmax         # 512
    assert M % TM == 0 and N % TN == 0 and K % TK == 0
    result = nl.ndarray((M, N), dtype=lhsT.dtype, buffer=nl.shared_hbm)
    for m in nl.affine_range(M // TM):
        for n in nl.affine_range(N // TN):
            acc = nl.ndarray((TM, TN), nl.float32, buffer=nl.psum)
            for k in nl.affine_range(K // TK):
                a = nl.ndarray((TK, TM), dtype=lhsT.dtype, buffer=nl.sbuf)
                b = nl.ndarray((TK, TN), dtype=rhs.dtype, buffer=nl.sbuf)
                nisa.dma_copy(dst=a, src=lhsT[k * TK:(k + 1) * TK, m * TM:(m + 1) * TM])
                nisa.dma_copy(dst=b, src=rhs[k * TK:(k + 1) * TK, n * TN:(n + 1) * TN])
                nisa.nc_matmul(dst=acc, stationary=a, moving=b)
            out = nl.ndarray((TM, TN), dtype=result.dtype, buffer=nl.sbuf)
            nisa.tensor_copy(dst=out, src=acc)
            nisa.dma_copy(dst=result[m * TM:(m + 1) * TM, n * TN:(n + 1) * TN], src=out)
    return result


@nki.jit
def nki_matmul_hoist_load_(lhsT, rhs):
    """The lhsT column strip of an M tile is loaded once (a list of K tiles) and reused over N."""
    K, M, N = _dims(lhsT, rhs)
    TM, TK, TN = (nl.tile_size.gemm_stationary_fmax, nl.tile_size.pmax,
                  nl.tile_size.gemm_moving_fmax)
    assert M % TM == 0 and N % TN == 0 and K % TK == 0
    result = nl.ndarray((M, N), dtype=lhsT.dtype, buffer=nl.shared_hbm)
    for m in nl.affine_range(M // TM):
        a_strip = []
        for k in nl.affine_range(K // TK):
            a = nl.ndarray((TK, TM), dtype=lhsT.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=a, src=lhsT[k * TK:(k + 1) * TK, m * TM:(m + 1) * TM])
            a_strip.append(a)
        for n in nl.affine_range(N // TN):
            b_strip = []
            for k in nl.affine_range(K // TK):
                b = nl.ndarray((TK, TN), dtype=rhs.dtype, buffer=nl.sbuf)
                nisa.dma_copy(dst=b, src=rhs[k * TK:(k + 1) * TK, n * TN:(n + 1) * TN])
                b_strip.append(b)
            acc = nl.ndarray((TM, TN), nl.float32, buffer=nl.psum)
            for k in nl.affine_range(K // TK):
                nisa.nc_matmul(dst=acc, stationary=a_strip[k], moving=b_strip[k])
            out = nl.ndarray((TM, TN), dtype=nl.float32, buffer=nl.sbuf)
            nisa.tensor_copy(dst=out, src=acc)
            nisa.dma_copy(dst=result[m * TM:(m + 1) * TM, n * TN:(n + 1) * TN], src=out)
    return result


@nki.jit
def nki_matmul_block_free_dimension_(lhsT, rhs, TILES_M=2, TILES_N=2):
    """Blocks of TILES_M x TILES_N output tiles share their lhsT and rhs strips."""
    K, M, N = _dims(lhsT, rhs)
    TM, TK, TN = (nl.tile_size.gemm_stationary_fmax, nl.tile_size.pmax,
                  nl.tile_size.gemm_moving_fmax)
    BM, BN = TM * TILES_M, TN * TILES_N
    assert M % BM == 0 and N % BN == 0 and K % TK == 0
    result = nl.ndarray((M, N), dtype=lhsT.dtype, buffer=nl.shared_hbm)
    for m in nl.affine_range(M // BM):
        a_strips = []
        for bm in nl.affine_range(TILES_M):
            row = []
            m0 = (m * TILES_M + bm) * TM
            for k in nl.affine_range(K // TK):
                a = nl.ndarray((TK, TM), dtype=lhsT.dtype, buffer=nl.sbuf)
                nisa.dma_copy(dst=a, src=lhsT[k * TK:(k + 1) * TK, m0:m0 + TM])
                row.append(a)
            a_strips.append(row)
        for n in nl.affine_range(N // BN):
            b_strips = []
            for bn in nl.affine_range(TILES_N):
                row = []
                n0 = (n * TILES_N + bn) * TN
                for k in nl.affine_range(K // TK):
                    b = nl.ndarray((TK, TN), dtype=rhs.dtype, buffer=nl.sbuf)
                    nisa.dma_copy(dst=b, src=rhs[k * TK:(k + 1) * TK, n0:n0 + TN])
                    row.append(b)
                b_strips.append(row)
            for bm in nl.affine_range(TILES_M):
                for bn in nl.affine_range(TILES_N):
                    acc = nl.ndarray((TM, TN), nl.float32, buffer=nl.psum)
                    for k in nl.affine_range(K // TK):
                        nisa.nc_matmul(dst=acc, stationary=a_strips[bm][k],
                                       moving=b_strips[bn][k])
                    out = nl.ndarray((TM, TN), dtype=result.dtype, buffer=nl.sbuf)
                    nisa.tensor_copy(dst=out, src=acc)
                    m0 = (m * TILES_M + bm) * TM
                    n0 = (n * TILES_N + bn) * TN
                    nisa.dma_copy(dst=result[m0:m0 + TM, n0:n0 + TN], src=out)
    return result


@nki.jit
def nki_matmul_fully_optimized_(lhsT, rhs, TILES_M=16, TILES_N=2, TILES_K=8):
    """Blocks over M, N and K; each K block's partial sums are added into SBUF result rows."""
    K, M, N = _dims(lhsT, rhs)
    TM, TK, TN = (nl.tile_size.gemm_stationary_fmax, nl.tile_size.pmax,
                  nl.tile_size.gemm_moving_fmax)
    BM, BN, BK = TM * TILES_M, TN * TILES_N, TK * TILES_K
    assert M % BM == 0 and N % BN == 0 and K % BK == 0
    result = nl.ndarray((M, N), dtype=lhsT.dtype, buffer=nl.shared_hbm)
    for n in nl.affine_range(N // BN):
        n0 = n * BN
        # one SBUF row block per M tile, laid out (TM, TILES_N, TN) so it stores as one wide DMA
        rows = []
        for t in nl.affine_range(M // TM):
            r = nl.ndarray((TM, TILES_N, TN), dtype=result.dtype, buffer=nl.sbuf)
            nisa.memset(dst=r, value=0.0)
            rows.append(r)
        for kb in nl.sequential_range(K // BK):
            b_blk = nl.ndarray((TK, TILES_K, BN), dtype=rhs.dtype, buffer=nl.sbuf)
            for kt in range(TILES_K):
                k0 = (kb * TILES_K + kt) * TK
                nisa.dma_copy(dst=b_blk[0:TK, kt, 0:BN], src=rhs[k0:k0 + TK, n0:n0 + BN])
            for mb in nl.affine_range(M // BM):
                a_blk = nl.ndarray((TK, TILES_K, BM), dtype=lhsT.dtype, buffer=nl.sbuf)
                for kt in nl.affine_range(TILES_K):
                    k0 = (kb * TILES_K + kt) * TK
                    nisa.dma_copy(dst=a_blk[0:TK, kt, 0:BM],
                                  src=lhsT[k0:k0 + TK, mb * BM:(mb + 1) * BM])
                for nt in nl.affine_range(TILES_N):
                    for mt in nl.affine_range(TILES_M):
                        acc = nl.ndarray((TM, TN), dtype=nl.float32, buffer=nl.psum)
                        for kt in nl.affine_range(TILES_K):
                            nisa.nc_matmul(dst=acc,
                                           stationary=a_blk[0:TK, kt, mt * TM:(mt + 1) * TM],
                                           moving=b_blk[0:TK, kt, nt * TN:(nt + 1) * TN])
                        r = rows[mb * TILES_M + mt]
                        nisa.tensor_tensor(dst=r[0:TM, nt, 0:TN], data1=r[0:TM, nt, 0:TN],
                                           data2=acc, op=nl.add)
        for t in nl.affine_range(M // TM):
            flat = rows[t].reshape((TM, BN))
            nisa.dma_copy(dst=result[t * TM:(t + 1) * TM, n0:n0 + BN], src=flat[0:TM, 0:BN])
    return result


STAGES = {
    "tiled": nki_matmul_tiled_,
    "hoist_load": nki_matmul_hoist_load_,
    "block_free_dimension": nki_matmul_block_free_dimension_,
    "fully_optimized": nki_matmul_fully_optimized_,
}
