"""RMS normalisation fused with a projection, ``rmsnorm(x) @ W`` (our own kernel; cost model
anchors: the nki-samples rmsnorm_qkv unit-test latency budgets on trn2).

``x [S, D]`` and ``W [D, E]`` (16-bit, E <= 512) -> ``[S, E]``. Per 128-row tile: ScalarE squares
and sums each row (activation_reduce), VectorE scales the rows by 1/rms, TensorE transposes the
normalised tile 128 columns at a time (into PSUM; VectorE copies each back to SBUF) and
accumulates the projection over D in one PSUM bank; ScalarE evicts the result.
"""
import nki
import nki.isa as nisa
import nki.language as nl


@nki.jit
def rmsnorm_qkv(x, w, eps=1e-6):
    S, D = x.shape
    D2, E = w.shape
    P = nl.tile_size.pmax
    assert D == D2 and S % P == 0 and D % P == 0 and E <= nl.tile_size.gemm_moving_fmax
    out = nl.ndarray((S, E), dtype=x.dtype, buffer=nl.shared_hbm)
    wt = []
    for k in nl.affine_range(D // P):                    # the weights stay in SBUF
        t = nl.ndarray((P, E), dtype=w.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=w[k * P:(k + 1) * P, 0:E])
        wt.append(t)
    for r in nl.affine_range(S // P):
        rows = slice(r * P, (r + 1) * P)
        xt = nl.ndarray((P, D), dtype=x.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=xt, src=x[rows, 0:D])
        sq = nl.ndarray((P, D), dtype=nl.float32, buffer=nl.sbuf)
        ss = nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.sbuf)
        nisa.activation_reduce(dst=sq, op=nl.square, data=xt, reduce_op=nl.add, reduce_res=ss)
        inv = nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.sbuf)
        nisa.tensor_scalar(dst=inv, data=ss, op0=nl.multiply, operand0=1.0 / D, op1=nl.add,
                           operand1=eps)
        nisa.activation(dst=inv, op=nl.rsqrt, data=inv)
        xn = nl.ndarray((P, D), dtype=x.dtype, buffer=nl.sbuf)
        nisa.tensor_scalar(dst=xn, data=xt, op0=nl.multiply, operand0=inv)
        acc = nl.ndarray((P, E), dtype=nl.float32, buffer=nl.psum)
        for k in nl.affine_range(D // P):
            tp = nl.ndarray((P, P), dtype=x.dtype, buffer=nl.psum)
            nisa.nc_transpose(dst=tp, data=xn[0:P, k * P:(k + 1) * P])
            xk = nl.ndarray((P, P), dtype=x.dtype, buffer=nl.sbuf)
            nisa.tensor_copy(dst=xk, src=tp)
            nisa.nc_matmul(dst=acc, stationary=xk, moving=wt[k])
        res = nl.ndarray((P, E), dtype=x.dtype, buffer=nl.sbuf)
        nisa.activation(dst=res, op=nl.copy, data=acc)
        nisa.dma_copy(dst=out[rows, 0:E], src=res)
    return out
