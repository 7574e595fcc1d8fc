"""``attention`` as a flash-style kernel: per batch entry and block of 128 queries, the scores of
up to 512 keys at a time sit in one PSUM bank, the softmax runs on chip with a running max and
a running sum (rescaling the partial output when the max grows), and P @ V accumulates in SBUF.
The [Sq, Sk] score matrix never goes to HBM.

Layout: q rows are loaded contiguously and transposed on the PE ([D, 128] stationary); k_t
[D, Sk] is the moving operand as it is; the probabilities are transposed on the PE in
128-key blocks to be the stationary operand of P @ V. Budgets, by construction: PSUM holds the
scores (one 2 KiB bank), one transpose and one P @ V tile at a time (3 of 8 banks); SBUF holds
k_t and v of one batch entry plus a few [128, 512] fp32 tiles (checked: Sk * (D + D) elements
of the compute dtype per partition at most, refused above the SBUF budget).
"""
from __future__ import annotations

from device.errors import UserKernelError

from ..builder import device_dtype
from ..registry import lowers

_BIG_NEG = -3.0e38          # the running max starts here (not -inf: -inf - -inf is NaN)


@lowers("attention")
def lower_attention(lw, op, inputs, sched):
    q, kt, v = (lw.contiguous(x) for x in inputs[:3])
    mask = lw.contiguous(inputs[3]) if len(inputs) == 4 else None
    a = op.attrs
    B, Sq, D = q.shape
    Sk = kt.shape[2]
    P = lw.arch.partitions
    cdt = q.dtype
    W = min(512, Sk)                                  # keys per PSUM bank of fp32 scores
    need = (Sk * 2 * D) * 4 // P + 6 * W * 4
    if D > P or need > lw.arch.sbuf_usable_bytes_per_partition:
        raise UserKernelError(f"attention: head dim {D} > {P} or {Sk} keys exceed the SBUF budget",
                              loc=lw.loc)
    out = lw.hbm(op.result.type.shape, op.result.type.dtype)
    inv = 1.0 / float(a["divide"])
    for b in range(B):
        kt_t = lw.sb((D, Sk), cdt)
        lw.emit("dma_copy", dst=kt_t, src=kt[b])
        v_t = []
        for k0 in range(0, Sk, P):
            kk = min(P, Sk - k0)
            t = lw.sb((kk, D), v.dtype)
            lw.emit("dma_copy", dst=t, src=v[b, k0:k0 + kk, :])
            v_t.append(t)
        for q0 in range(0, Sq, P):
            qn = min(P, Sq - q0)
            q_rows = lw.sb((qn, D), cdt)
            lw.emit("dma_copy", dst=q_rows, src=q[b, q0:q0 + qn, :])
            qt_ps = lw.psum((D, qn))
            lw.emit("nc_transpose", dst=qt_ps, data=q_rows)
            qt = lw.sb((D, qn), cdt)
            lw.emit("tensor_copy", dst=qt, src=qt_ps)
            run_max, run_sum = lw.sb((qn, 1), "float32"), lw.sb((qn, 1), "float32")
            acc = lw.sb((qn, D), "float32")
            lw.emit("memset", dst=run_max, value=_BIG_NEG)
            lw.emit("memset", dst=run_sum, value=0.0)
            lw.emit("memset", dst=acc, value=0.0)
            for c0 in range(0, Sk, W):
                w = min(W, Sk - c0)
                _key_chunk(lw, a, qt, kt_t, v_t, mask, q0, qn, c0, w, inv, run_max, run_sum,
                           acc, D, P)
            res = lw.sb((qn, D), "float32")
            lw.emit("tensor_scalar", dst=res, data=acc, op0="divide", operand0=run_sum)
            o = lw.sb((qn, D), device_dtype(op.result.type.dtype))
            lw.emit("tensor_copy", dst=o, src=res)
            lw.emit("dma_copy", dst=out[b, q0:q0 + qn, :], src=o)
    return out


def _key_chunk(lw, a, qt, kt_t, v_t, mask, q0, qn, c0, w, inv, run_max, run_sum, acc, D, P):
    ps = lw.psum((qn, w))
    lw.emit("nc_matmul", dst=ps, stationary=qt, moving=kt_t[:, c0:c0 + w])
    s = lw.sb((qn, w), "float32")
    if a["score_dtype"] != "float32":                  # the exported dot rounds its scores
        r = lw.sb((qn, w), device_dtype(a["score_dtype"]))
        lw.emit("tensor_copy", dst=r, src=ps)
        lw.emit("tensor_scalar", dst=s, data=r, op0="multiply", operand0=inv)
    else:
        lw.emit("tensor_scalar", dst=s, data=ps, op0="multiply", operand0=inv)
    if mask is not None:
        m = lw.sb((qn, w), "bool")
        lw.emit("dma_copy", dst=m, src=mask[q0:q0 + qn, c0:c0 + w])
        filled = lw.sb((qn, w), "float32")
        lw.emit("memset", dst=filled, value=float(a["fill"]))
        lw.emit("tensor_copy_predicated", dst=filled, src=s, predicate=m)
        s = filled
    cmax, new_max, neg = (lw.sb((qn, 1), "float32") for _ in range(3))
    lw.emit("tensor_reduce", dst=cmax, op="maximum", data=s, axis=(1,))
    lw.emit("tensor_tensor", dst=new_max, data1=run_max, data2=cmax, op="maximum")
    lw.emit("tensor_scalar", dst=neg, data=new_max, op0="multiply", operand0=-1.0)
    p = lw.sb((qn, w), "float32")
    lw.emit("activation", dst=p, op="exp", data=s, bias=neg)          # exp(s - max) on ScalarE
    alpha, csum = lw.sb((qn, 1), "float32"), lw.sb((qn, 1), "float32")
    lw.emit("activation", dst=alpha, op="exp", data=run_max, bias=neg)
    lw.emit("tensor_reduce", dst=csum, op="add", data=p, axis=(1,))
    lw.emit("tensor_scalar", dst=run_sum, data=run_sum, op0="multiply", operand0=alpha)
    lw.emit("tensor_tensor", dst=run_sum, data1=run_sum, data2=csum, op="add")
    lw.emit("tensor_copy", dst=run_max, src=new_max)
    # P @ V over 128-key blocks: P^T blocks are the stationary operand
    pdt = device_dtype(a["prob_dtype"]) if a["prob_dtype"] != "float32" else "float32"
    pr = lw.sb((qn, w), pdt)
    lw.emit("tensor_copy", dst=pr, src=p)
    pv = lw.psum((qn, D))
    for j, k0 in enumerate(range(0, w, P)):
        kk = min(P, w - k0)
        pt_ps = lw.psum((kk, qn))
        lw.emit("nc_transpose", dst=pt_ps, data=pr[:, k0:k0 + kk])
        pt = lw.sb((kk, qn), v_t[(c0 + k0) // P].dtype)
        lw.emit("tensor_copy", dst=pt, src=pt_ps)
        lw.emit("nc_matmul", dst=pv, stationary=pt, moving=v_t[(c0 + k0) // P],
                accumulate=j > 0)
    lw.emit("tensor_scalar", dst=acc, data=acc, op0="multiply", operand0=alpha)
    lw.emit("tensor_tensor", dst=acc, data1=acc, data2=pv, op="add")
