"""Tutorial 3: fused softmax and RMSNorm, one row tile at a time.

What you learn
--------------
* Row-wise kernels put the rows on the 128 partitions and the reduced dimension on the free axis, so
  each partition reduces its own row and no data crosses partitions.
* Fusion on the NeuronCore: ScalarE's ``activation`` computes ``op(data * scale + bias)`` *and*
  can sum its output along the row in the same pass (``activation_reduce``), so ``exp(x - max)``
  and its row sum cost one instruction. A ``(P, 1)`` tile is a per-partition scalar operand.
* Which engine does what: reductions and per-row scaling on VectorE, transcendentals on ScalarE.

Run it:  ``python tutorials/03_fused_softmax_rmsnorm.py``
"""
import numpy as np

import nki
import nki.isa as nisa
import nki.language as nl

P = 128


# ## Softmax
#
# ``softmax(x)_j = exp(x_j - max(x)) / sum_k exp(x_k - max(x))``. Subtracting the row max keeps
# ``exp`` in range. Per 128-row tile:
#
# 1. ``tensor_reduce(max, negate=True)`` gives ``-max`` per row (a ``(P, 1)`` tile);
# 2. ``activation_reduce(exp, bias=-max)`` writes ``exp(x - max)`` and its row sum together;
# 3. ``reciprocal`` of the sum, then ``tensor_scalar(multiply)`` scales each row.


@nki.jit
def softmax_rows(x):
    N, D = x.shape
    out = nl.ndarray((N, D), x.dtype, buffer=nl.shared_hbm)
    for i in range(N // P):
        t = nl.ndarray((P, D), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=x[i * P:(i + 1) * P])
        neg_max = nl.ndarray((P, 1), nl.float32, buffer=nl.sbuf)
        nisa.tensor_reduce(dst=neg_max, op=nl.maximum, data=t, axis=1, negate=True)
        e = nl.ndarray((P, D), nl.float32, buffer=nl.sbuf)
        row_sum = nl.ndarray((P, 1), nl.float32, buffer=nl.sbuf)
        nisa.activation_reduce(dst=e, op=nl.exp, data=t, bias=neg_max, reduce_op=nl.add,
                               reduce_res=row_sum)
        inv = nl.ndarray((P, 1), nl.float32, buffer=nl.sbuf)
        nisa.reciprocal(dst=inv, data=row_sum)
        y = nl.ndarray((P, D), x.dtype, buffer=nl.sbuf)
        nisa.tensor_scalar(dst=y, data=e, op0=nl.multiply, operand0=inv)
        nisa.dma_copy(dst=out[i * P:(i + 1) * P], src=y)
    return out


# ## RMSNorm
#
# ``y = x / sqrt(mean(x^2) + eps) * w`` with a weight vector ``w`` of length D. Per tile:
#
# 1. ``activation_reduce(square)`` gives the row sum of squares (the squares themselves are unused);
# 2. one ``tensor_scalar`` with two ALU stages computes ``sum / D + eps``; ScalarE's ``rsqrt`` turns
#    it into ``1 / rms``;
# 3. scale the rows by ``1 / rms`` and multiply by ``w``. ``w`` is loaded once, broadcast over the
#    partitions by the DMA (a stride-0 partition access pattern).


@nki.jit
def rmsnorm_rows(x, w, eps=1e-6):
    N, D = x.shape
    out = nl.ndarray((N, D), x.dtype, buffer=nl.shared_hbm)
    w_tile = nl.ndarray((P, D), nl.float32, buffer=nl.sbuf)
    nisa.dma_copy(dst=w_tile, src=w.reshape((1, D)).broadcast_to((P, D)))
    for i in range(N // P):
        t = nl.ndarray((P, D), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=x[i * P:(i + 1) * P])
        sq = nl.ndarray((P, D), nl.float32, buffer=nl.sbuf)
        ss = nl.ndarray((P, 1), nl.float32, buffer=nl.sbuf)
        nisa.activation_reduce(dst=sq, op=nl.square, data=t, reduce_op=nl.add, reduce_res=ss)
        ms = nl.ndarray((P, 1), nl.float32, buffer=nl.sbuf)
        nisa.tensor_scalar(dst=ms, data=ss, op0=nl.multiply, operand0=1.0 / D, op1=nl.add,
                           operand1=eps)
        rstd = nl.ndarray((P, 1), nl.float32, buffer=nl.sbuf)
        nisa.activation(dst=rstd, op=nl.rsqrt, data=ms)
        y = nl.ndarray((P, D), nl.float32, buffer=nl.sbuf)
        nisa.tensor_scalar(dst=y, data=t, op0=nl.multiply, operand0=rstd)
        res = nl.ndarray((P, D), x.dtype, buffer=nl.sbuf)
        nisa.tensor_tensor(dst=res, data1=y, data2=w_tile, op=nl.multiply)
        nisa.dma_copy(dst=out[i * P:(i + 1) * P], src=res)
    return out


def softmax_ref(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def rmsnorm_ref(x, w, eps=1e-6):
    return x / np.sqrt(np.mean(x * x, axis=1, keepdims=True) + eps) * w


def main():
    rng = np.random.default_rng(3)
    x = (4 * rng.standard_normal((256, 384))).astype(np.float32)
    w = rng.uniform(0.5, 1.5, 384).astype(np.float32)
    sm = softmax_rows(x)
    np.testing.assert_allclose(sm, softmax_ref(x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sm.sum(axis=1), 1.0, rtol=1e-5)
    print(f"softmax_rows: matches NumPy (max |err| = {np.abs(sm - softmax_ref(x)).max():.1e})")
    rn = rmsnorm_rows(x, w)
    np.testing.assert_allclose(rn, rmsnorm_ref(x, w), rtol=1e-5, atol=1e-6)
    print(f"rmsnorm_rows: matches NumPy (max |err| = {np.abs(rn - rmsnorm_ref(x, w)).max():.1e})")
    for k, args in ((softmax_rows, (x,)), (rmsnorm_rows, (x, w))):
        engines = {}
        for ins in k.trace(*args).instrs:
            engines[ins.engine] = engines.get(ins.engine, 0) + 1
        print(f"  {k.__name__} instructions per engine: {dict(sorted(engines.items()))}")
    return sm, rn


if __name__ == "__main__":
    main()
