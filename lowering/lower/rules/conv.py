"""Convolution on the PE without im2col: kernel taps accumulate in PSUM as shifted matmuls.

For a 2-D convolution (any layouts, strides, padding, kernel dilation and feature groups, float
operands) the input features sit on the partitions. Per image and block of output rows, the
input row band those rows need is loaded into SBUF once per 128 input features ([C, rows, W +
padding], zero-filled where the padding is); the weights are loaded once as [C, KH, KW, O] (each
tap a [C, O] stationary operand). Each tap is then one matmul whose moving operand is a strided
window of the band ([C, rows, OW], stride = the conv stride): all taps and feature chunks
accumulate in one PSUM bank [O, rows * OW] in f32, which is evicted once and stored. Nothing
goes through HBM between taps (the decomposition in :mod:`.window` writes every tap's partial
product to HBM and adds them there).

A depthwise convolution (one input feature per group) would contract over a single partition
per matmul; it runs on the VectorE instead, channels on the partitions, one multiply-add per
tap over a whole block of output rows (:func:`lower_depthwise`).

:class:`ConvSchedule` holds the knobs: ``rows`` (output rows per PSUM bank; 0 fills the bank),
``o_tile`` (output features per stationary operand), ``band_rows`` (output rows whose input
band loads at once: the whole image while it is small), ``vector`` (the depthwise form) and
``direct`` (False: the decomposition, for comparison; also what non-2-D, integer, base-dilated
or negatively padded convolutions use).

    >>> from device.arch import get_arch
    >>> prob = ConvProblem(n=1, c=64, h=32, w=32, o=64, kh=3, kw=3, oh=32, ow=32, groups=1,
    ...                    itemsize=2)
    >>> ConvSchedule.default(prob, get_arch("trn1"))
    ConvSchedule(rows=16, o_tile=64, direct=True, pos_major=False, vector=False, band_rows=32)
    >>> ConvSchedule(rows=32).check(prob, get_arch("trn1"))
    'rows=32 x 32 output columns = 1024 exceed 512 (f32 in one PSUM bank)'
"""
from __future__ import annotations

import dataclasses

from ...ir.ops.window import conv_params
from ...ir.types import is_float
from ..builder import device_dtype, graph_type
from ..schedule import Schedule


@dataclasses.dataclass(frozen=True)
class ConvProblem:
    """The canonical sizes of a 2-D convolution (per group: ``c`` and ``o`` are totals)."""

    n: int
    c: int
    h: int
    w: int
    o: int
    kh: int
    kw: int
    oh: int
    ow: int
    groups: int = 1
    itemsize: int = 4
    direct_ok: bool = True       # 2-D, float, no base dilation, padding >= 0
    o_inner: bool = False        # the output features are the innermost dim (NHWC)

    @classmethod
    def of(cls, op):
        lt, rt = op.inputs[0].type, op.inputs[1].type
        p = conv_params(lt, rt, op.attrs)
        out = op.result.type.shape
        ol = op.attrs["out_layout"]
        ok = (lt.rank == 4 and is_float(lt.dtype) and lt.dtype != "float64"
              and all(d == 1 for d in p["lhs_dil"]) and all(a >= 0 and b >= 0
                                                            for a, b in p["padding"]))
        sp = [out[ol[2]], out[ol[3]]] if lt.rank == 4 else [1, 1]
        k = p["k"] + [1] * (2 - len(p["k"]))
        s = p["sp"] + [1] * (2 - len(p["sp"]))
        return cls(p["n"], p["c"], s[0], s[1], p["o"], k[0], k[1], sp[0], sp[1], p["groups"],
                   lt.np_dtype.itemsize, ok, ol[1] == lt.rank - 1)


@dataclasses.dataclass(frozen=True)
class ConvSchedule(Schedule):
    """``rows``: output rows per PSUM tile (0: as many as fill one 2 KiB bank); ``o_tile``:
    output features per stationary operand (0: min(128, features per group)); ``direct``:
    shifted matmuls accumulating in PSUM (True) or the per-tap decomposition through HBM;
    ``pos_major``: output positions on the partitions (the input window is the stationary
    operand, the weights move; stored as rows of output features, right for NHWC) instead of
    output features on the partitions (right for NCHW); ``vector``: a depthwise convolution
    (one input feature per group) as per-tap multiply-adds on the VectorE, channels on the
    partitions and ``rows`` output rows per instruction (the PE would contract over one
    partition per matmul: a K=1 outer product per tap and group); ``band_rows``: output rows
    whose input rows are loaded into SBUF as one band (0 or <= rows: one band per PSUM tile)."""

    kind = "conv"
    rows: int = 0
    o_tile: int = 0
    direct: bool = True
    pos_major: bool = False
    vector: bool = False
    band_rows: int = 0

    problem_of = staticmethod(ConvProblem.of)

    @classmethod
    def default(cls, problem, arch):
        if problem is not None and problem.direct_ok and problem.c == problem.groups > 1:
            rows = problem.oh                            # depthwise: the VectorE path
            while rows > 1 and cls(rows=rows, vector=True).check(problem, arch) is not None:
                rows = (rows + 1) // 2
            if cls(rows=rows, vector=True).check(problem, arch) is None:
                return cls(rows=rows, direct=True, vector=True)
        if problem is None or not problem.direct_ok or \
                cls(direct=True).check(problem, arch) is not None:
            return cls(direct=False)
        bank, P = arch.psum_bank_bytes // 4, arch.partitions
        og = problem.o // problem.groups
        if problem.o_inner and problem.ow <= P:
            s = cls(rows=max(1, min(problem.oh, P // problem.ow)), o_tile=min(bank, og),
                    direct=True, pos_major=True)
        else:
            s = cls(rows=max(1, min(problem.oh, bank // problem.ow)), o_tile=min(P, og),
                    direct=True)
        return s.whole_band(problem, arch)

    def whole_band(self, problem, arch):
        """This schedule with the whole image's input rows loaded as one band, when they take
        at most an eighth of SBUF: small images load once, with no halo rows loaded twice,
        and every PSUM tile's operands are ready together (the fast path then runs the
        tiles as one GEMM); larger ones keep a band per tile to overlap loads with matmuls."""
        if self.rows and self.rows >= problem.oh:
            return self
        whole = dataclasses.replace(self, band_rows=problem.oh)
        band = (problem.h + problem.kh) * (problem.w + problem.kw) * problem.itemsize
        if band > arch.sbuf_usable_bytes_per_partition // 8 or \
                whole.check(problem, arch) is not None:
            return self
        return whole

    @classmethod
    def candidates(cls, problem, arch):
        default = cls.default(problem, arch)
        out = [default, cls(direct=False), dataclasses.replace(default, band_rows=0)]
        og = problem.o // problem.groups
        if problem.c == problem.groups:
            out += [cls(rows=r, vector=True) for r in (1, 2, 4, 8, 16, 32, 64, 128)
                    if r < problem.oh]
        for rows in (1, 2, 4, 8, 16, 32, 64):
            for o_tile in sorted({min(og, 32), min(og, 64), min(og, 128)}):
                for pm in (False, True):
                    c = cls(rows=rows, o_tile=o_tile, pos_major=pm)
                    out += [c, c.whole_band(problem, arch)]
        return out

    def check(self, problem, arch):
        if not self.direct:
            return None
        if problem is None or not problem.direct_ok:
            return "the direct form needs a 2-D float convolution without base dilation"
        if self.vector:
            return _check_vector(self, problem, arch)
        bank, P = arch.psum_bank_bytes // 4, arch.partitions
        pos_lim, o_lim = (P, bank) if self.pos_major else (bank, P)
        rows = self.rows or max(1, pos_lim // max(problem.ow, 1))
        if rows * problem.ow > pos_lim:
            what = "partitions" if self.pos_major else "f32 in one PSUM bank"
            return (f"rows={rows} x {problem.ow} output columns = {rows * problem.ow} exceed "
                    f"{pos_lim} ({what})")
        if not 0 <= self.o_tile <= o_lim:
            return f"o_tile={self.o_tile} is outside 0..{o_lim}"
        B = max(rows, self.band_rows)
        step = -(-problem.h // max(problem.oh, 1)) if B > rows else 1  # >= the row stride
        band = min((B - 1) * step + problem.kh, problem.h + problem.kh) * \
            (problem.w + problem.kw) * problem.itemsize
        chunks = -(-(problem.c // problem.groups) // arch.partitions)
        weights = problem.kh * problem.kw * problem.o * problem.itemsize * chunks
        need = 2 * chunks * band + weights + 2 * rows * problem.ow * 4
        if need > arch.sbuf_usable_bytes_per_partition:
            return (f"input bands and weights need {need} B of SBUF per partition, more than "
                    f"{arch.sbuf_usable_bytes_per_partition}")
        return None


def _check_vector(sched, problem, arch):
    if problem.c != problem.groups:
        return (f"vector=True needs a depthwise convolution (one input feature per group); "
                f"this one has {problem.c // problem.groups}")
    if sched.pos_major or sched.o_tile:
        return "vector=True takes neither pos_major nor o_tile (channels are on the partitions)"
    rows = sched.rows or problem.oh
    step = -(-problem.h // max(problem.oh, 1))                 # >= the row stride
    band = min((rows - 1) * step + problem.kh, problem.h + problem.kh) * \
        (problem.w + problem.kw) * problem.itemsize
    need = 2 * band + 2 * rows * problem.ow * 4 + problem.kh * problem.kw * problem.o * 4
    if need > arch.sbuf_usable_bytes_per_partition // 4:
        return (f"rows={rows}: input band and accumulator need {need} B of SBUF per partition, "
                f"more than a quarter of {arch.sbuf_usable_bytes_per_partition}")
    return None


def conv_views(lw, op, inputs):
    """The convolution's parameters, its operands seen as [n, c, h, w] and [o, i, kh, kw], and
    its new HBM output with that output seen as [n, o, oh, ow]."""
    (x, w), a = inputs, op.attrs
    p = conv_params(graph_type(x), graph_type(w), a)
    xv, wv = x.permute(tuple(a["lhs_layout"])), w.permute(tuple(a["rhs_layout"]))
    out = lw.hbm(op.result.type.shape, op.result.type.dtype)
    return p, xv, wv, out, out.permute(tuple(a["out_layout"]))


def lower_direct(lw, op, inputs, sched):
    """The shifted-matmul convolution (see the module docstring); ``sched.direct`` is True."""
    if sched.vector:
        return lower_depthwise(lw, op, inputs, sched)
    p, xv, wv, out, ov = conv_views(lw, op, inputs)
    P = lw.arch.partitions
    N, _, H, W = xv.shape
    KH, KW = p["k"]
    (sh, sw), (dh, dw) = p["strides"], p["rhs_dil"]
    (plh, phh), (plw, phw) = p["padding"]
    OH, OW = ov.shape[2], ov.shape[3]
    G, ci, og = p["groups"], p["i"], p["o"] // p["groups"]
    bank = lw.arch.psum_bank_bytes // 4
    pos_lim, o_lim = (P, bank) if sched.pos_major else (bank, P)
    R = sched.rows or max(1, min(OH, pos_lim // OW))
    OT = sched.o_tile or min(o_lim, og)
    cdt = xv.dtype
    c_chunks = [(c0, min(P, ci - c0)) for c0 in range(0, ci, P)]
    # weights once: per group and input chunk a [cc, KH, KW, og] tile (taps are [cc, o] views)
    wts = {(g, c0): _weights(lw, wv[g * og:(g + 1) * og, c0:c0 + cc], P)
           for g in range(G) for c0, cc in c_chunks}
    Wp = plw + W + phw
    B = max(R, sched.band_rows)          # output rows whose input rows load as one band
    taps = [(j, kh, kw) for j in range(len(c_chunks)) for kh in range(KH) for kw in range(KW)]
    turn = 0
    for n in range(N):
        for b0 in range(0, OH, B):
            bb = min(B, OH - b0)
            top = b0 * sh - plh                               # first padded-input row used
            band_h = (bb - 1) * sh + (KH - 1) * dh + 1
            for g in range(G):
                bands = [_band(lw, xv[n, g * ci + c0:g * ci + c0 + cc], cc, top, band_h, H,
                               plw, Wp, cdt) for c0, cc in c_chunks]
                for oh0 in range(b0, b0 + bb, R):
                    rr, off = min(R, b0 + bb - oh0), (oh0 - b0) * sh
                    for o0 in range(0, og, OT):
                        ot = min(OT, og - o0)
                        shape = (rr * OW, ot) if sched.pos_major else (ot, rr * OW)
                        ps = lw.psum(shape)
                        for t, (j, kh, kw) in enumerate(taps):
                            r0 = off + kh * dh
                            win = bands[j][:, r0:r0 + (rr - 1) * sh + 1:sh,
                                           kw * dw:kw * dw + (OW - 1) * sw + 1:sw]
                            tap = wts[g, c_chunks[j][0]][:, kh, kw, o0:o0 + ot]
                            st, mv = (win, tap) if sched.pos_major else (tap, win)
                            lw.emit("nc_matmul", dst=ps, stationary=st, moving=mv,
                                    accumulate=t > 0)
                        res = lw.sb(shape, device_dtype(op.result.type.dtype))
                        if turn % 2:
                            lw.emit("activation", dst=res, op="copy", data=ps)
                        else:
                            lw.emit("tensor_copy", dst=res, src=ps)
                        turn += 1
                        dst = ov[n, g * og + o0:g * og + o0 + ot, oh0:oh0 + rr, :]
                        if sched.pos_major:     # rows of output features, one per position
                            dst = dst.permute((1, 2, 0))
                        else:
                            res = res.reshape((ot, rr, OW))
                        lw.emit("dma_copy", dst=dst, src=res)
    return out


def _weights(lw, w, P):
    """The kernel ``w`` [O, cc, KH, KW] (an HBM view) as an SBUF tile [cc, KH, KW, O]: one DMA
    when O is the innermost dim in HBM (HWIO), else rows of O loaded contiguously ([O, cc, KH,
    KW], 128 features at a time) and each tap transposed on the PE (OIHW: a direct DMA would
    move one element per descriptor)."""
    O, cc, KH, KW = w.shape
    t = lw.sb((cc, KH, KW, O), w.dtype)
    if w.pattern[0][0] == 1 or O == 1:
        lw.emit("dma_copy", dst=t, src=w.permute((1, 2, 3, 0)))
        return t
    turn = 0
    for o0 in range(0, O, P):
        ot = min(P, O - o0)
        rows = lw.sb((ot, cc, KH, KW), w.dtype)
        lw.emit("dma_copy", dst=rows, src=w[o0:o0 + ot])
        for kh in range(KH):
            for kw in range(KW):
                ps = lw.psum((cc, ot))
                lw.emit("nc_transpose", dst=ps, data=rows[:, :, kh, kw])
                if turn % 2:
                    lw.emit("activation", dst=t[:, kh, kw, o0:o0 + ot], op="copy", data=ps)
                else:
                    lw.emit("tensor_copy", dst=t[:, kh, kw, o0:o0 + ot], src=ps)
                turn += 1
    return t


def _band(lw, xc, cc, top, band_h, H, plw, Wp, cdt):
    """Rows ``top .. top + band_h`` of the zero-padded input features ``xc`` [cc, H, W] as an
    SBUF tile [cc, band_h, Wp] (memset where the padding or the image edge is)."""
    W = xc.shape[2]
    t = lw.sb((cc, band_h, Wp), cdt)
    r0, r1 = max(top, 0), min(top + band_h, H)
    if r0 > top or r1 < top + band_h or Wp != W:
        lw.emit("memset", dst=t, value=0.0)
    if r1 <= r0:
        return t
    if xc.pattern[0][0] != 1 or cc == 1:
        lw.emit("dma_copy", dst=t[:, r0 - top:r1 - top, plw:plw + W], src=xc[:, r0:r1, :])
        return t
    # NHWC: rows of features, transposed on the PE; whole rows are contiguous positions in
    # HBM, so as many as fill the partitions move per DMA and per transpose
    P = lw.arch.partitions
    k = max(1, P // W)
    for j, r in enumerate(range(r0, r1, k)):
        kk = min(k, r1 - r)
        for w0 in range(0, W, P):
            wn = min(P, W - w0)
            n = kk * wn
            rows = lw.sb((n, cc), cdt)
            lw.emit("dma_copy", dst=rows, src=xc[:, r:r + kk, w0:w0 + wn].permute((1, 2, 0)))
            ps = lw.psum((cc, n))
            lw.emit("nc_transpose", dst=ps, data=rows)
            dst, src = t[:, r - top:r - top + kk, plw + w0:plw + w0 + wn], ps.reshape((cc, kk, wn))
            lw.emit("activation" if j % 2 else "tensor_copy", dst=dst,
                    **({"op": "copy", "data": src} if j % 2 else {"src": src}))
    return t


def lower_depthwise(lw, op, inputs, sched):
    """A depthwise convolution (one input feature per group) on the VectorE. Per block of 128
    channels (on the partitions), image and ``sched.rows`` output rows: the input band as in the
    PE form and an fp32 accumulator [channels, rows, OW]; each tap is one instruction over the
    whole block, ``acc = window * w[channel, kh, kw] + acc`` (the first adds 0.0). Per
    element that is the PE form's arithmetic: each product rounded to fp32, then added in fp32
    in tap order."""
    p, xv, wv, out, ov = conv_views(lw, op, inputs)
    P = lw.arch.partitions
    N, C, H, W = xv.shape
    KH, KW = p["k"]
    (sh, sw), (dh, dw) = p["strides"], p["rhs_dil"]
    (plh, phh), (plw, phw) = p["padding"]
    OH, OW = ov.shape[2], ov.shape[3]
    M = p["o"] // C                # depth multiplier: output g * M + j reads input feature g
    R = min(sched.rows or OH, OH)
    Wp = plw + W + phw
    taps = [(kh, kw) for kh in range(KH) for kw in range(KW)]
    for c0 in range(0, C, P):
        cc = min(P, C - c0)
        wts = []                   # per multiplier j: [cc, KH, KW], a (P, 1) column per tap
        for j in range(M):
            wt = lw.sb((cc, KH, KW), wv.dtype)
            lw.emit("dma_copy", dst=wt, src=wv[c0 * M + j:(c0 + cc) * M:M, 0])
            wts.append(wt)
        for n in range(N):
            for oh0 in range(0, OH, R):
                rr = min(R, OH - oh0)
                top = oh0 * sh - plh
                band_h = (rr - 1) * sh + (KH - 1) * dh + 1
                band = _band(lw, xv[n, c0:c0 + cc], cc, top, band_h, H, plw, Wp, xv.dtype)
                for j in range(M):
                    acc = lw.sb((cc, rr, OW), "float32")
                    for t, (kh, kw) in enumerate(taps):
                        win = band[:, kh * dh:kh * dh + (rr - 1) * sh + 1:sh,
                                   kw * dw:kw * dw + (OW - 1) * sw + 1:sw]
                        col = wts[j][:, kh, kw:kw + 1]
                        if t == 0:           # + 0.0: a -0.0 product sums to +0.0, as on the PE
                            lw.emit("tensor_scalar", dst=acc, data=win, op0="multiply",
                                    operand0=col, op1="add", operand1=0.0)
                        else:
                            lw.emit("scalar_tensor_tensor", dst=acc, data=win, op0="multiply",
                                    operand0=col, op1="add", operand1=acc)
                    _store_features(lw, ov[n, c0 * M + j:(c0 + cc) * M:M, oh0:oh0 + rr, :], acc,
                                    device_dtype(op.result.type.dtype))
    return out


def _store_features(lw, dst, acc, odt):
    """The fp32 tile ``acc`` [c, rows, OW] (features on the partitions) into the HBM view
    ``dst`` of the same shape, rounded to ``odt``. Where the features are the innermost dim in
    HBM (NHWC), blocks of output positions are transposed on the PE and stored as rows of
    features (a direct DMA would move one element per descriptor)."""
    cc, rr, OW = acc.shape
    if dst.pattern[0][0] != 1 or cc == 1:
        if odt != "float32":
            res = lw.sb((cc, rr, OW), odt)
            lw.emit("tensor_copy", dst=res, src=acc)
            acc = res
        lw.emit("dma_copy", dst=dst, src=acc)
        return
    P = lw.arch.partitions
    k = max(1, P // OW)
    for j, r in enumerate(range(0, rr, k)):
        kk = min(k, rr - r)
        for w0 in range(0, OW, P):
            wn = min(P, OW - w0)
            ps = lw.psum((kk * wn, cc))
            lw.emit("nc_transpose", dst=ps, data=acc[:, r:r + kk, w0:w0 + wn])
            res = lw.sb((kk * wn, cc), odt)
            lw.emit("activation" if j % 2 else "tensor_copy", dst=res,
                    **({"op": "copy", "data": ps} if j % 2 else {"src": ps}))
            lw.emit("dma_copy", dst=dst[:, r:r + kk, w0:w0 + wn].permute((1, 2, 0)), src=res)
