"""The three kernels of the NKI fused-Mamba tutorial (selective scan), written for our emulator.

Shapes: delta, u [batch, channels, seq]; A [channels, state]; B, C [batch, state, seq]; the output
is [batch, channels, seq] with ``out[b, c, t] = sum_s C[b,s,t] * h_s[t]`` where
``h_s[t] = exp(delta * A[c,s]) * h_s[t-1] + delta * u * B[b,s,t]``. Channels map to partitions.

* ``mamba_v1``: for every (channel tile, state) the delta/u tiles are loaded again.
* ``mamba_v2``: delta/u are loaded once per channel tile and reused over the states.
* ``mamba_v3``: v2 with the sequence tiled by 512; the scan carries its last column between tiles.

All three produce identical results; the tutorial's trn1 latencies are in cost model 4.3.
"""
import nki
import nki.isa as nisa
import nki.language as nl


def _per_state(delta_i, u_i, A_i, B_row, C_row, accum, P, L, dtype, init):
    """Steps 1-6 of the tutorial for one (channel tile, state, sequence span); returns the scan."""
    dA = nl.ndarray((P, L), dtype=dtype, buffer=nl.sbuf)
    nisa.activation(dst=dA, op=nl.exp, data=delta_i, scale=A_i)        # exp(delta * A)
    B_i = nl.ndarray((1, L), dtype=dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=B_i, src=B_row)
    dU = nl.ndarray((P, L), dtype=dtype, buffer=nl.sbuf)
    nisa.tensor_tensor(dst=dU, data1=delta_i, data2=u_i, op=nl.multiply)
    dBu = nl.ndarray((P, L), dtype=dtype, buffer=nl.sbuf)
    nisa.tensor_tensor(dst=dBu, data1=dU, data2=nl.broadcast_to(B_i, (P, L)), op=nl.multiply)
    h = nl.ndarray((P, L), dtype=dtype, buffer=nl.sbuf)
    nisa.tensor_tensor_scan(dst=h, data0=dA, data1=dBu, initial=init, op0=nl.multiply, op1=nl.add)
    C_i = nl.ndarray((1, L), dtype=dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=C_i, src=C_row)
    hC = nl.ndarray((P, L), dtype=dtype, buffer=nl.sbuf)
    nisa.tensor_tensor(dst=hC, data1=h, data2=nl.broadcast_to(C_i, (P, L)), op=nl.multiply)
    nisa.tensor_tensor(dst=accum, data1=accum, data2=hC, op=nl.add)
    return h


@nki.jit
def mamba_v1(delta, u, A, B, C):
    batch, channels, seq = delta.shape
    _, state = A.shape
    P = nl.tile_size.pmax
    assert channels % P == 0
    out = nl.ndarray((batch, channels, seq), dtype=delta.dtype, buffer=nl.shared_hbm)
    for b in nl.affine_range(batch):
        for ct in nl.affine_range(channels // P):
            c0 = ct * P
            accum = nl.zeros((P, seq), dtype=delta.dtype)
            for s in nl.affine_range(state):
                delta_i = nl.ndarray((P, seq), dtype=delta.dtype, buffer=nl.sbuf)
                nisa.dma_copy(dst=delta_i, src=delta[b, c0:c0 + P, 0:seq])
                u_i = nl.ndarray((P, seq), dtype=u.dtype, buffer=nl.sbuf)
                nisa.dma_copy(dst=u_i, src=u[b, c0:c0 + P, 0:seq])
                A_i = nl.ndarray((P, 1), dtype=A.dtype, buffer=nl.sbuf)
                nisa.dma_copy(dst=A_i, src=A[c0:c0 + P, s:s + 1])
                _per_state(delta_i, u_i, A_i, B[b, s:s + 1, 0:seq], C[b, s:s + 1, 0:seq], accum,
                           P, seq, delta.dtype, 0.0)
            nisa.dma_copy(dst=out[b, c0:c0 + P, 0:seq], src=accum)
    return out


@nki.jit
def mamba_v2(delta, u, A, B, C):
    batch, channels, seq = delta.shape
    _, state = A.shape
    P = nl.tile_size.pmax
    assert channels % P == 0
    out = nl.ndarray((batch, channels, seq), dtype=delta.dtype, buffer=nl.shared_hbm)
    for b in nl.affine_range(batch):
        for ct in nl.affine_range(channels // P):
            c0 = ct * P
            accum = nl.zeros((P, seq), dtype=delta.dtype)
            delta_i = nl.ndarray((P, seq), dtype=delta.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=delta_i, src=delta[b, c0:c0 + P, 0:seq])
            u_i = nl.ndarray((P, seq), dtype=u.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=u_i, src=u[b, c0:c0 + P, 0:seq])
            for s in nl.affine_range(state):
                A_i = nl.ndarray((P, 1), dtype=A.dtype, buffer=nl.sbuf)
                nisa.dma_copy(dst=A_i, src=A[c0:c0 + P, s:s + 1])
                _per_state(delta_i, u_i, A_i, B[b, s:s + 1, 0:seq], C[b, s:s + 1, 0:seq], accum,
                           P, seq, delta.dtype, 0.0)
            nisa.dma_copy(dst=out[b, c0:c0 + P, 0:seq], src=accum)
    return out


@nki.jit
def mamba_v3(delta, u, A, B, C, SEQ_TILE=512):
    batch, channels, seq = delta.shape
    _, state = A.shape
    P = nl.tile_size.pmax
    assert channels % P == 0 and seq % SEQ_TILE == 0
    out = nl.ndarray((batch, channels, seq), dtype=delta.dtype, buffer=nl.shared_hbm)
    for b in nl.affine_range(batch):
        for ct in nl.affine_range(channels // P):
            c0 = ct * P
            accum = nl.zeros((P, seq), dtype=delta.dtype)
            delta_i = nl.ndarray((P, seq), dtype=delta.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=delta_i, src=delta[b, c0:c0 + P, 0:seq])
            u_i = nl.ndarray((P, seq), dtype=u.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=u_i, src=u[b, c0:c0 + P, 0:seq])
            for s in nl.affine_range(state):
                A_i = nl.ndarray((P, 1), dtype=A.dtype, buffer=nl.sbuf)
                nisa.dma_copy(dst=A_i, src=A[c0:c0 + P, s:s + 1])
                carry = nl.zeros((P, 1), dtype=delta.dtype)
                for t in nl.static_range(seq // SEQ_TILE):
                    t0, t1 = t * SEQ_TILE, (t + 1) * SEQ_TILE
                    h = _per_state(delta_i[0:P, t0:t1], u_i[0:P, t0:t1], A_i, B[b, s:s + 1, t0:t1],
                                   C[b, s:s + 1, t0:t1], accum[0:P, t0:t1], P, SEQ_TILE,
                                   delta.dtype, carry)
                    nisa.tensor_copy(dst=carry, src=h[0:P, SEQ_TILE - 1:SEQ_TILE])
            nisa.dma_copy(dst=out[b, c0:c0 + P, 0:seq], src=accum)
    return out


VERSIONS = {"v1": mamba_v1, "v2": mamba_v2, "v3": mamba_v3}
