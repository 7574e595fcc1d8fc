"""``mh_attention`` as one flash-style kernel over all heads, in the row layout the projections
produce (:mod:`lowering.lower.head_layout` forms the op).

Loads, each once and with long contiguous rows: the keys and values in 128-row blocks of all
heads' columns ([128, H*D]: 1.5 KiB rows for GPT-2's 768 bf16 columns), every head's K^T piece
transposed on the PE into one SBUF tile [D, H*Sk] (the moving operand of Q K^T), then per block
of 128 queries the query rows and the mask rows once for all heads. Per head the query piece is
transposed on the PE ([D, 128] stationary), the scores of up to 512 keys land in one PSUM bank,
the softmax runs on chip (ScalarE's exp with the row sum accumulated in the same instruction; a
running max and sum rescale the partial result when more than one 512-key chunk is needed), the
probabilities are transposed on the PE in 128-key blocks to be the stationary operand of P V, and
the normalised head result is written into its columns of one [128, H*D] output tile, stored
with one DMA per query block. Nothing of size [Sq, Sk] or [H, S, D] goes to HBM.

Budgets, by construction: PSUM holds one score bank, one transpose and one P V tile at a time;
SBUF per partition holds K^T (H*Sk elements), the value blocks (ceil(Sk/128) * H*D elements),
the query / output / mask rows of one block and a few [128, 512] f32 tiles -- checked before
anything is emitted (the error names the sizes; the pattern pass leaves bigger problems as
separate ops).
"""
from __future__ import annotations

import math

import numpy as np

from device.errors import UserKernelError

from ..builder import device_dtype
from ..registry import lowers

_BIG_NEG = -3.0e38          # the running max starts here (not -inf: -inf - -inf is NaN)
_ITEM = {"float32": 4, "bfloat16": 2, "float16": 2}


def sbuf_bytes(Sq, Sk, H, D, dtype, masked, P=128) -> int:
    """SBUF bytes per partition the kernel keeps live (the budget it is checked against)."""
    isz, E, W = _ITEM.get(dtype, 4), H * D, min(512, Sk)
    kv = H * Sk * isz + -(-Sk // P) * E * isz
    rows = 2 * E * isz + (Sk if masked else 0) + E * 4
    return kv + rows + 4 * W * 4 + 2 * P * 4


@lowers("mh_attention")
def lower_mh_attention(lw, op, inputs, sched):
    a = op.attrs
    H, D = int(a["heads"]), int(a["head_dim"])
    E = H * D
    qo, ko, vo = (int(o) for o in a["offsets"])
    q, k, v = inputs[:3]
    mask = inputs[3] if len(inputs) == 4 else None
    Sq, Sk = q.shape[0], k.shape[0]
    P = lw.arch.partitions
    cdt = q.dtype
    need = sbuf_bytes(Sq, Sk, H, D, cdt, mask is not None, P)
    if D > P or need > lw.arch.sbuf_usable_bytes_per_partition:
        raise UserKernelError(
            f"mh_attention: head dim {D} (at most {P}) or {H} heads x {Sk} keys need {need} B of "
            f"SBUF per partition, more than the {lw.arch.sbuf_usable_bytes_per_partition} B "
            f"usable", loc=lw.loc)
    out = lw.hbm(op.result.type.shape, op.result.type.dtype)
    kt, v_blocks = _load_keys(lw, k[:, ko:ko + E], v[:, vo:vo + E], H, D, P, cdt)
    ctx = _Ctx(a, H, D, Sk, kt, v_blocks, P)
    known = _constant_mask(mask)
    for q0 in range(0, Sq, P):
        qn = min(P, Sq - q0)
        span, masked = _key_span(known, q0, qn, Sk, P) if known is not None else ((0, Sk), True)
        q_rows = lw.sb((qn, E), cdt)
        lw.emit("dma_copy", dst=q_rows, src=q[q0:q0 + qn, qo:qo + E])
        m = None
        if mask is not None and any(masked if isinstance(masked, list) else [masked]):
            m = lw.sb((qn, Sk), "bool")
            lw.emit("dma_copy", dst=m[:, span[0]:span[1]], src=mask[q0:q0 + qn, span[0]:span[1]])
        o = lw.sb((qn, E), device_dtype(op.result.type.dtype))
        _pipeline([ctx.head(lw, h, q_rows, qn, m, masked, span, o[:, h * D:(h + 1) * D])
                   for h in range(H)])
        lw.emit("dma_copy", dst=out[q0:q0 + qn, :], src=o)
    return out


def _constant_mask(mask):
    """The mask's values when it is a compile-time constant (folded by the pattern pass)."""
    st = getattr(mask, "storage", None)
    if st is None or st.kind != "const" or st.const is None or mask.offset or \
            not mask.is_contiguous() or mask.size != st.const.size:
        return None
    return np.asarray(st.const).reshape(mask.shape).astype(bool)


def _key_span(known, q0, qn, Sk, P):
    """For a constant mask: the 128-aligned key span [lo, hi) this query block needs, and per
    128-key block of it whether any score is masked. Key blocks masked out for every query are
    skipped -- exact, because their probabilities are exp(fill - max) = 0 in f32 -- but only
    when every query keeps some key (a fully masked row is a uniform softmax over all keys)."""
    blk = known[q0:q0 + qn]
    lo, hi = 0, Sk
    if blk.any(axis=1).all():
        cols = np.nonzero(blk.any(axis=0))[0]
        lo, hi = int(cols[0]) // P * P, min(Sk, (int(cols[-1]) // P + 1) * P)
    return (lo, hi), [not blk[:, k0:k0 + P].all() for k0 in range(lo, hi, P)]


def _pipeline(heads):
    """Software-pipeline the heads: each is a generator that emits one stage per step; at
    every step the older heads' later stages are emitted before the newer heads' earlier ones,
    so each in-order engine finds another head's work between two dependent instructions."""
    live = []
    for g in list(heads) + [None] * 8:
        if g is not None:
            live.append(g)
        for h in list(live):
            if next(h, StopIteration) is StopIteration:
                live.remove(h)
        if not live and g is None:
            return


def _evict(lw, dst, src, turn):
    """Copy a PSUM tile to SBUF, alternating VectorE and ScalarE so neither queue backs up."""
    if turn % 2:
        lw.emit("activation", dst=dst, op="copy", data=src)
    else:
        lw.emit("tensor_copy", dst=dst, src=src)


def _load_keys(lw, k, v, H, D, P, cdt):
    """K^T of every head in one [D, H*Sk] tile, and the value row blocks [128, H*D]."""
    Sk, E = k.shape[0], H * D
    kt = lw.sb((D, H * Sk), cdt)
    v_blocks = []
    for j, k0 in enumerate(range(0, Sk, P)):
        kk = min(P, Sk - k0)
        rows = lw.sb((kk, E), cdt)
        lw.emit("dma_copy", dst=rows, src=k[k0:k0 + kk, :])
        vb = lw.sb((kk, E), v.dtype)
        lw.emit("dma_copy", dst=vb, src=v[k0:k0 + kk, :])
        v_blocks.append(vb)
        for h in range(H):
            ps = lw.psum((D, kk))
            lw.emit("nc_transpose", dst=ps, data=rows[:, h * D:(h + 1) * D])
            _evict(lw, kt[:, h * Sk + k0:h * Sk + k0 + kk], ps, h + j)
    return kt, v_blocks


class _Ctx:
    """What every (query block, head) step shares: the attrs, K^T and the value blocks."""

    def __init__(self, a, H, D, Sk, kt, v_blocks, P):
        self.a, self.H, self.D, self.Sk, self.kt, self.v, self.P = a, H, D, Sk, kt, v_blocks, P
        self.inv = 1.0 / float(a["divide"])
        self.W = min(512, Sk)                      # keys per PSUM bank of f32 scores

    def scores(self, lw, h, qt, qn, m, masked, c0, w):
        """Scaled, masked scores of keys c0..c0+w for head h (a generator: two stages)."""
        ps = lw.psum((qn, w))
        lw.emit("nc_matmul", dst=ps, stationary=qt, moving=self.kt[:, h * self.Sk + c0:
                                                                    h * self.Sk + c0 + w])
        sdt = self.a["score_dtype"]
        if sdt == "float32":
            s = lw.sb((qn, w), "float32")
            lw.emit("activation", dst=s, op="copy", data=ps, scale=self.inv)
        elif _power_of_two(self.inv):               # rounding commutes with the scaling
            s = lw.sb((qn, w), device_dtype(sdt))
            lw.emit("activation", dst=s, op="copy", data=ps, scale=self.inv)
        else:                                       # the exported dot rounds its scores first
            r, s = lw.sb((qn, w), device_dtype(sdt)), lw.sb((qn, w), "float32")
            lw.emit("activation", dst=r, op="copy", data=ps)
            lw.emit("tensor_scalar", dst=s, data=r, op0="multiply", operand0=self.inv)
        yield s
        if m is None:
            return
        for k0 in range(0, w, self.P):               # masked-out scores become the fill value
            kk = min(self.P, w - k0)
            if masked[(c0 + k0 - self.lo) // self.P]:
                lw.emit("tensor_copy_predicated", dst=s[:, k0:k0 + kk],
                        src=float(self.a["fill"]), predicate=m[:, c0 + k0:c0 + k0 + kk],
                        reverse_pred=True)

    def probs_times_v(self, lw, h, p, qn, c0, w):
        """P V for keys c0..c0+w: P^T blocks (PE transposes) are the stationary operand."""
        D, P = self.D, self.P
        pv = lw.psum((qn, D))
        for j, k0 in enumerate(range(0, w, P)):
            kk = min(P, w - k0)
            vb = self.v[(c0 + k0) // P]
            pt_ps = lw.psum((kk, qn))
            lw.emit("nc_transpose", dst=pt_ps, data=p[:, k0:k0 + kk])
            pt = lw.sb((kk, qn), vb.dtype)
            _evict(lw, pt, pt_ps, j + h)
            lw.emit("nc_matmul", dst=pv, stationary=pt, moving=vb[:, h * D:(h + 1) * D],
                    accumulate=j > 0)
        return pv

    def head(self, lw, h, q_rows, qn, m, masked, span, dst):
        """Head h of one query block as a generator of pipeline stages."""
        D = self.D
        qt_ps = lw.psum((D, qn))
        lw.emit("nc_transpose", dst=qt_ps, data=q_rows[:, h * D:(h + 1) * D])
        qt = lw.sb((D, qn), q_rows.dtype)
        _evict(lw, qt, qt_ps, h)
        yield
        if not isinstance(masked, list):
            masked = [masked] * -(-(span[1] - span[0]) // self.P)
        self.lo = span[0]
        pdt = device_dtype(self.a["prob_dtype"]) if self.a["prob_dtype"] != "float32" \
            else "float32"
        chunks = [(c0, min(self.W, span[1] - c0)) for c0 in range(span[0], span[1], self.W)]
        if len(chunks) == 1:                         # one chunk: plain softmax, no rescaling
            c0, w = chunks[0]
            stages = self.scores(lw, h, qt, qn, m, masked, c0, w)
            s = next(stages)
            yield
            for _ in stages:
                pass
            mx, total = lw.sb((qn, 1), "float32"), lw.sb((qn, 1), "float32")
            lw.emit("tensor_reduce", dst=mx, op="maximum", data=s, axis=(1,), negate=True)
            p = lw.sb((qn, w), pdt)
            lw.emit("activation", dst=p, op="exp", data=s, bias=mx, reduce_cmd="reset_reduce",
                    reduce_op="add", reduce_res=total)
            yield
            pv = self.probs_times_v(lw, h, p, qn, c0, w)
            yield
            lw.emit("tensor_scalar", dst=dst, data=pv, op0="divide", operand0=total)
            return
        run_max, run_sum = lw.sb((qn, 1), "float32"), lw.sb((qn, 1), "float32")
        acc = lw.sb((qn, self.D), "float32")
        lw.emit("memset", dst=run_max, value=_BIG_NEG)
        lw.emit("memset", dst=run_sum, value=0.0)
        lw.emit("memset", dst=acc, value=0.0)
        for c0, w in chunks:
            stages = self.scores(lw, h, qt, qn, m, masked, c0, w)
            s = next(stages)
            yield
            for _ in stages:
                pass
            cmax, neg = lw.sb((qn, 1), "float32"), lw.sb((qn, 1), "float32")
            lw.emit("tensor_reduce", dst=cmax, op="maximum", data=s, axis=(1,))
            lw.emit("tensor_tensor", dst=cmax, data1=run_max, data2=cmax, op="maximum")
            lw.emit("tensor_scalar", dst=neg, data=cmax, op0="multiply", operand0=-1.0)
            p, csum, alpha = lw.sb((qn, w), pdt), lw.sb((qn, 1), "float32"), \
                lw.sb((qn, 1), "float32")
            lw.emit("activation", dst=p, op="exp", data=s, bias=neg, reduce_cmd="reset_reduce",
                    reduce_op="add", reduce_res=csum)
            lw.emit("activation", dst=alpha, op="exp", data=run_max, bias=neg)
            lw.emit("tensor_copy", dst=run_max, src=cmax)
            lw.emit("tensor_scalar", dst=run_sum, data=run_sum, op0="multiply", operand0=alpha,
                    op1="add", operand1=csum)
            yield
            pv = self.probs_times_v(lw, h, p, qn, c0, w)
            yield
            lw.emit("tensor_scalar", dst=acc, data=acc, op0="multiply", operand0=alpha)
            lw.emit("tensor_tensor", dst=acc, data1=acc, data2=pv, op="add")
        lw.emit("tensor_scalar", dst=dst, data=acc, op0="divide", operand0=run_sum)


def _power_of_two(x: float) -> bool:
    m, _ = math.frexp(x)
    return x > 0 and m == 0.5
