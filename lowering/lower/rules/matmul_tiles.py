"""Operand tiles of the matmul rule: lhsT [K, <=128] and rhs [K, <=512] column blocks in SBUF.

Both operands need the contraction K on the partitions. An lhs lying [M, K] gets there by
loading whole rows (long DMA rows) and transposing [<=128, <=128] pieces on the PE (CM rule 11);
one lying [K, M] is lhsT already (``Lhs(aT=...)``, lhs_load='direct'). An rhs lying [K, N] is
loaded as it lies; one lying [N, K] (k of q @ k^T) takes the lhs path (``Rhs(bT=...)``,
rhs_load='pe'). Transposes copy values exactly, so every form gives the same tiles.
"""
from __future__ import annotations


def load_lhsT(lw, a, m0: int, mt: int, cdt: str, chunk: int, into=None):
    """lhsT tiles [kt, mt] for rows m0:m0+mt of ``a``: load whole rows (long contiguous DMA rows),
    then transpose 128-column slices on the PE (CM rule 11: load + PE transpose beats a DMA
    transpose on v2). Exact: a transpose copies values, and they already have dtype ``cdt``.
    ``into``: the k-th tile is copied out of PSUM into ``into[k]`` instead of a fresh tile."""
    K, P = a.shape[1], lw.arch.partitions
    tiles = []
    for c0 in range(0, K, chunk):
        kc = min(chunk, K - c0)
        row = lw.sb((mt, kc), cdt)
        lw.emit("dma_copy", dst=row, src=a[m0:m0 + mt, c0:c0 + kc])
        for k0 in range(0, kc, P):
            kt = min(P, kc - k0)
            pt = lw.psum((kt, mt))
            lw.emit("nc_transpose", dst=pt, data=row[:, k0:k0 + kt])
            st = lw.sb((kt, mt), cdt) if into is None else into[len(tiles)]
            lw.emit("tensor_copy", dst=st, src=pt)
            tiles.append(st)
    return tiles


class Rhs:
    """The rhs of one product as [K, N]: ``b`` as it lies, or ``bT`` = [N, K] (rhs_load='pe')
    whose columns are built by loading rows and transposing them on the PE."""

    def __init__(self, b=None, bT=None, chunk=4096):
        self.b, self.bT, self.chunk = b, bT, chunk
        self.K, self.N = b.shape if b is not None else bT.shape[::-1]

    def columns(self, lw, n0: int, nw: int, cdt: str) -> list:
        """SBUF tiles [kt, nw] (one per K tile of 128) of columns n0:n0+nw."""
        P = lw.arch.partitions
        ks = [(k0, min(P, self.K - k0)) for k0 in range(0, self.K, P)]
        if self.bT is None:
            tiles = []
            for k0, kt in ks:
                t = lw.sb((kt, nw), cdt)
                lw.emit("dma_copy", dst=t, src=self.b[k0:k0 + kt, n0:n0 + nw])
                tiles.append(t)
            return tiles
        tiles = [lw.sb((kt, nw), cdt) for _, kt in ks]
        for j0 in range(0, nw, P):
            jt = min(P, nw - j0)
            load_lhsT(lw, self.bT, n0 + j0, jt, cdt, self.chunk,
                       into=[t[:, j0:j0 + jt] for t in tiles])
        return tiles


class Lhs:
    """The lhs of one product: ``a`` = [M, K] (rows transposed on the PE) or ``aT`` = [K, M]
    (lhs_load='direct': its tiles are lhsT as they lie)."""

    def __init__(self, a=None, aT=None, chunk=4096):
        self.a, self.aT, self.chunk = a, aT, chunk
        self.M, self.K = a.shape if a is not None else aT.shape[::-1]

    def lhsT(self, lw, m0: int, mt: int, cdt: str, into=None) -> list:
        """SBUF tiles [kt, mt] (one per K tile of 128) for rows m0:m0+mt (``into``: where)."""
        if self.aT is None:
            return load_lhsT(lw, self.a, m0, mt, cdt, self.chunk, into)
        P, tiles = lw.arch.partitions, []
        for k0 in range(0, self.K, P):
            kt = min(P, self.K - k0)
            t = lw.sb((kt, mt), cdt) if into is None else into[len(tiles)]
            lw.emit("dma_copy", dst=t, src=self.aT[k0:k0 + kt, m0:m0 + mt])
            tiles.append(t)
        return tiles
