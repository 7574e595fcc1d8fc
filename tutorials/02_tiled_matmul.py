"""Tutorial 2: a tiled matrix multiplication, and three steps that make it faster.

What you learn
--------------
* How TensorE multiplies: ``nisa.nc_matmul(dst, stationary, moving)`` computes
  ``stationary.T @ moving``. The contraction dimension K is the partition dimension of both operands
  (at most 128), the stationary free size M is at most 128, the moving free size N at most 512, and
  the fp32 result lands in one 2 KiB PSUM bank.
* Accumulating over K in PSUM: the first matmul into a fresh PSUM tile overwrites it, later ones add.
* Reading the cost model: each version is priced by the emulator's timing model (no hardware), so
  you can see what hoisting loads and blocking buy before you ever touch a device.

We compute ``C[M, N] = A[M, K] @ B[K, N]``. Like the NKI tutorials, the kernel takes A already
transposed (``lhsT`` = A.T, shape [K, M]) so that K sits on the partitions of both operands.

Run it:  ``python tutorials/02_tiled_matmul.py``
"""
import ml_dtypes
import numpy as np

import nki
import nki.isa as nisa
import nki.language as nl

TK, TM, TN = 128, 128, 512      # contraction, stationary and moving tile sizes (hardware maxima)


# ## Version 1: tiled
#
# Three nested loops over the output tiles (m, n) and the contraction (k). Every (m, n, k) step
# loads one lhsT tile and one rhs tile, so the same data is fetched from HBM many times.


@nki.jit
def matmul_tiled(lhsT, rhs):
    K, M = lhsT.shape
    _, N = rhs.shape
    out = nl.ndarray((M, N), nl.float32, buffer=nl.shared_hbm)
    for m in range(M // TM):
        for n in range(N // TN):
            acc = nl.ndarray((TM, TN), nl.float32, buffer=nl.psum)
            for k in range(K // TK):
                a = nl.ndarray((TK, TM), lhsT.dtype, buffer=nl.sbuf)
                b = nl.ndarray((TK, TN), rhs.dtype, buffer=nl.sbuf)
                nisa.dma_copy(dst=a, src=lhsT[k * TK:(k + 1) * TK, m * TM:(m + 1) * TM])
                nisa.dma_copy(dst=b, src=rhs[k * TK:(k + 1) * TK, n * TN:(n + 1) * TN])
                nisa.nc_matmul(dst=acc, stationary=a, moving=b)    # k = 0 overwrites, then adds
            res = nl.ndarray((TM, TN), nl.float32, buffer=nl.sbuf)
            nisa.tensor_copy(dst=res, src=acc)                      # PSUM -> SBUF
            nisa.dma_copy(dst=out[m * TM:(m + 1) * TM, n * TN:(n + 1) * TN], src=res)
    return out


# ## Version 2: hoisted loads
#
# The lhsT tiles of one row block m do not depend on n, so load them once per m, before the n loop.
# The loads now happen M/TM * K/TK times instead of M/TM * N/TN * K/TK times.


@nki.jit
def matmul_hoisted(lhsT, rhs):
    K, M = lhsT.shape
    _, N = rhs.shape
    out = nl.ndarray((M, N), nl.float32, buffer=nl.shared_hbm)
    for m in range(M // TM):
        a_tiles = []
        for k in range(K // TK):
            a = nl.ndarray((TK, TM), lhsT.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=a, src=lhsT[k * TK:(k + 1) * TK, m * TM:(m + 1) * TM])
            a_tiles.append(a)
        for n in range(N // TN):
            acc = nl.ndarray((TM, TN), nl.float32, buffer=nl.psum)
            for k in range(K // TK):
                b = nl.ndarray((TK, TN), rhs.dtype, buffer=nl.sbuf)
                nisa.dma_copy(dst=b, src=rhs[k * TK:(k + 1) * TK, n * TN:(n + 1) * TN])
                nisa.nc_matmul(dst=acc, stationary=a_tiles[k], moving=b)
            res = nl.ndarray((TM, TN), nl.float32, buffer=nl.sbuf)
            nisa.tensor_copy(dst=res, src=acc)
            nisa.dma_copy(dst=out[m * TM:(m + 1) * TM, n * TN:(n + 1) * TN], src=res)
    return out


# ## Version 3: blocked
#
# Now every rhs tile is still loaded once per m. Blocking fixes that: load a whole block of rhs
# (``BLOCK_N`` columns, all of K) into SBUF once, with one large DMA per K tile, and reuse it for
# every row block. Large DMAs are also more efficient than small ones (the DMA engines pay a fixed
# cost per transfer). The block must fit in SBUF: here K x BLOCK_N bf16 = 8 KiB per partition of the
# 176 KiB available on a NeuronCore-v2; the emulator checks this capacity for you.


@nki.jit
def matmul_blocked(lhsT, rhs, BLOCK_N=1024):
    K, M = lhsT.shape
    _, N = rhs.shape
    out = nl.ndarray((M, N), nl.float32, buffer=nl.shared_hbm)
    a_tiles = []                                        # all of lhsT, loaded once
    for m in range(M // TM):
        row = []
        for k in range(K // TK):
            a = nl.ndarray((TK, TM), lhsT.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=a, src=lhsT[k * TK:(k + 1) * TK, m * TM:(m + 1) * TM])
            row.append(a)
        a_tiles.append(row)
    for nb in range(N // BLOCK_N):
        b_block = []                                    # one rhs block, loaded once
        for k in range(K // TK):
            b = nl.ndarray((TK, BLOCK_N), rhs.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=b, src=rhs[k * TK:(k + 1) * TK, nb * BLOCK_N:(nb + 1) * BLOCK_N])
            b_block.append(b)
        for m in range(M // TM):
            res = nl.ndarray((TM, BLOCK_N), nl.float32, buffer=nl.sbuf)
            for n in range(BLOCK_N // TN):
                acc = nl.ndarray((TM, TN), nl.float32, buffer=nl.psum)
                for k in range(K // TK):
                    nisa.nc_matmul(dst=acc, stationary=a_tiles[m][k],
                                   moving=b_block[k][:, n * TN:(n + 1) * TN])
                nisa.tensor_copy(dst=res[:, n * TN:(n + 1) * TN], src=acc)
            nisa.dma_copy(dst=out[m * TM:(m + 1) * TM, nb * BLOCK_N:(nb + 1) * BLOCK_N], src=res)
    return out


def estimate(kernel, *args):
    """(estimated microseconds, DMA transfers) from the timing model, without running the math.

    Uses ``kernel.profile`` when the kernel has one; otherwise prices the traced program directly.
    """
    from device.timing import schedule
    program = kernel.trace(*args)
    dmas = sum(1 for ins in program.instrs if ins.op.name == "dma_copy")
    if hasattr(kernel, "profile"):
        report = kernel.profile(*args)
        total_ns = getattr(report, "total_ns", None)
        if total_ns is not None:
            return total_ns / 1000, dmas
    return schedule(program).total_ns / 1000, dmas


def main():
    rng = np.random.default_rng(2)
    M, K, N = 256, 512, 1024
    a = rng.standard_normal((M, K)).astype(ml_dtypes.bfloat16)
    b = rng.standard_normal((K, N)).astype(ml_dtypes.bfloat16)
    lhsT = np.ascontiguousarray(a.T)
    want = a.astype(np.float32) @ b.astype(np.float32)
    results = {}
    for kernel in (matmul_tiled, matmul_hoisted, matmul_blocked):
        got = kernel(lhsT, b)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
        us, dmas = estimate(kernel, lhsT, b)
        results[kernel.__name__] = (got, us)
        print(f"{kernel.__name__:>15}: matches NumPy; {dmas:3d} DMA transfers, "
              f"estimated {us:7.2f} us on {kernel.trace(lhsT, b).arch.name}")
    return results


if __name__ == "__main__":
    main()
