"""Adaptive 2-D average pooling (our own kernel; cost model anchors: the nki-samples unit-test
latency budgets of adaptive_avg_pool2d on trn2).

``x [N, C, H, W] -> [N, C, OH, OW]``, window ``i`` along a side of ``L`` spans
``floor(i*L/O) .. ceil((i+1)*L/O)``. (N, C) rows go to partitions in tiles of 128, the H*W
plane to the free dimension. Uniform windows take two VectorE reductions per tile (over each
window's columns, then its rows) and one ScalarE scale; uneven ones one reduction per window.
"""
import nki
import nki.isa as nisa
import nki.language as nl


def _windows(L, O):
    return [(i * L // O, -(-(i + 1) * L // O)) for i in range(O)]


@nki.jit
def adaptive_avg_pool2d(x, OH=7, OW=7):
    N, C, H, W = x.shape
    P = nl.tile_size.pmax
    R = N * C
    out = nl.ndarray((N, C, OH, OW), dtype=x.dtype, buffer=nl.shared_hbm)
    xf = x.reshape((R, H * W))
    of = out.reshape((R, OH * OW))
    uniform = H % OH == 0 and W % OW == 0
    isz = 2 if x.dtype in (nl.float16, nl.bfloat16) else 4
    HC = max(1, min(H, (64 * 1024) // (W * isz)))       # rows per load of a plane too big for SBUF
    for r in nl.affine_range(-(-R // P)):
        p = min(P, R - r * P)
        rows = slice(r * P, r * P + p)
        if (OH, OW) == (1, 1) and HC < H:                # global pooling of a big plane, in chunks
            acc = nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.sbuf)
            nisa.memset(dst=acc[0:p, 0:1], value=0.0)
            for h0 in range(0, H, HC):
                h1 = min(H, h0 + HC)
                xc = nl.ndarray((P, HC * W), dtype=x.dtype, buffer=nl.sbuf)
                nisa.dma_copy(dst=xc[0:p, 0:(h1 - h0) * W], src=xf[rows, h0 * W:h1 * W])
                part = nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.sbuf)
                nisa.tensor_reduce(dst=part[0:p, 0:1], op=nl.add, data=xc[0:p, 0:(h1 - h0) * W],
                                   axis=1)
                nisa.tensor_tensor(dst=acc[0:p, 0:1], data1=acc[0:p, 0:1], data2=part[0:p, 0:1],
                                   op=nl.add)
            res = nl.ndarray((P, 1), dtype=x.dtype, buffer=nl.sbuf)
            nisa.activation(dst=res[0:p, 0:1], op=nl.copy, data=acc[0:p, 0:1], scale=1.0 / (H * W))
            nisa.dma_copy(dst=of[rows, 0:1], src=res[0:p, 0:1])
            continue
        xt = nl.ndarray((P, H * W), dtype=x.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=xt[0:p, 0:H * W], src=xf[rows, 0:H * W])
        acc = nl.ndarray((P, OH * OW), dtype=nl.float32, buffer=nl.sbuf)
        if uniform:
            kh, kw = H // OH, W // OW
            colsum = nl.ndarray((P, H * OW), dtype=nl.float32, buffer=nl.sbuf)
            nisa.tensor_reduce(dst=colsum[0:p, 0:H * OW].reshape((p, H * OW)), op=nl.add,
                               data=xt[0:p, 0:H * W].reshape((p, H * OW, kw)), axis=2)
            cs = colsum[0:p, 0:H * OW].reshape((p, OH, kh, OW))
            nisa.tensor_reduce(dst=acc[0:p, 0:OH * OW].reshape((p, OH, OW)), op=nl.add,
                               data=cs.transpose(0, 1, 3, 2), axis=3)
            scale = 1.0 / (kh * kw)
            res = nl.ndarray((P, OH * OW), dtype=x.dtype, buffer=nl.sbuf)
            nisa.activation(dst=res[0:p, 0:OH * OW], op=nl.copy, data=acc[0:p, 0:OH * OW],
                            scale=scale)
        else:
            plane = xt[0:p, 0:H * W].reshape((p, H, W))
            res = nl.ndarray((P, OH * OW), dtype=x.dtype, buffer=nl.sbuf)
            for i, (h0, h1) in enumerate(_windows(H, OH)):
                for j, (w0, w1) in enumerate(_windows(W, OW)):
                    k = i * OW + j
                    nisa.tensor_reduce(dst=acc[0:p, k:k + 1], op=nl.add,
                                       data=plane[0:p, h0:h1, w0:w1], axis=(1, 2))
                    nisa.activation(dst=res[0:p, k:k + 1], op=nl.copy, data=acc[0:p, k:k + 1],
                                    scale=1.0 / ((h1 - h0) * (w1 - w0)))
        nisa.dma_copy(dst=of[rows, 0:OH * OW], src=res[0:p, 0:OH * OW])
    return out
