"""Kernels written in the style of the NKI library (cumsum, rope_hf, cascaded_max), run on the
emulator and compared with NumPy ports of the library's torch references.

The comparison rule is the library's ``maxAllClose``: |a - b| <= atol + rtol * max|golden|.
"""
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

import nki
import nki.isa as nisa
import nki.language as nl

P_MAX = 128


def max_allclose(out, golden, rtol, atol):
    out, golden = np.asarray(out, np.float32), np.asarray(golden, np.float32)
    assert out.shape == golden.shape
    err = np.abs(out - golden).max() if out.size else 0.0
    assert err <= atol + rtol * np.abs(golden).max(), f"max error {err}"


# ---- cumsum style: tensor_tensor_scan with a carried column ------------------------------------
F_TILE = 64


@nki.jit
def cumsum_kernel(x):
    rows, cols = x.shape
    y = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    n_f = (cols + F_TILE - 1) // F_TILE
    for p0 in range(0, rows, P_MAX):
        p = min(P_MAX, rows - p0)
        carry = nl.ndarray((P_MAX, 1), dtype=nl.float32, buffer=nl.sbuf)
        nisa.memset(dst=carry, value=0.0)
        ones = nl.ndarray((P_MAX, F_TILE), dtype=nl.float32, buffer=nl.sbuf)
        nisa.memset(dst=ones, value=1.0)
        for f in nl.sequential_range(n_f):
            f0 = f * F_TILE
            fs = min(F_TILE, cols - f0)
            data = nl.ndarray((P_MAX, F_TILE), dtype=x.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=data[0:p, 0:fs], src=x[p0:p0 + p, f0:f0 + fs])
            res = nl.ndarray((P_MAX, F_TILE), dtype=x.dtype, buffer=nl.sbuf)
            nisa.tensor_tensor_scan(dst=res[0:p, 0:fs], data0=ones[0:p, 0:fs],
                                    data1=data[0:p, 0:fs], initial=carry[0:p, 0:1],
                                    op0=nl.multiply, op1=nl.add)
            nisa.dma_copy(dst=y[p0:p0 + p, f0:f0 + fs], src=res[0:p, 0:fs])
            if f + 1 < n_f:
                nisa.tensor_copy(dst=carry[0:p, 0:1], src=res[0:p, fs - 1:fs])
    return y


@given(rows=st.integers(1, 140), cols=st.integers(1, 150))
def test_cumsum_style_fp32(rows, cols):
    x = np.random.default_rng(rows * 1000 + cols).standard_normal((rows, cols)).astype(np.float32)
    max_allclose(cumsum_kernel(x), np.cumsum(x, axis=-1), 1e-3, 1e-3)


def test_cumsum_style_bf16_rounds_each_step():
    x = np.random.default_rng(3).standard_normal((8, 100)).astype(ml_dtypes.bfloat16)
    out = cumsum_kernel(x)
    assert out.dtype == ml_dtypes.bfloat16
    max_allclose(out, np.cumsum(x.astype(np.float32), axis=-1), 1e-2, 1e-2)


# ---- rope_hf style: strided .ap DMA into [seq, tiles, d] tiles, half-dim slicing ----------------
@nki.jit
def rope_kernel(q, cos, sin):
    b, h, s, d = q.shape
    out = nl.ndarray(q.shape, dtype=q.dtype, buffer=nl.shared_hbm)
    ts = min(P_MAX, s)
    nt = s // ts
    c = nl.ndarray((ts, nt, d), dtype=q.dtype, buffer=nl.sbuf)
    sn = nl.ndarray((ts, nt, d), dtype=q.dtype, buffer=nl.sbuf)
    pat = [[d, ts], [ts * d, nt], [1, d]]
    nisa.dma_copy(c, cos.ap(pattern=pat, offset=0))
    nisa.dma_copy(sn, sin.ap(pattern=pat, offset=0))
    half = d // 2
    for bi in range(b):
        for hi in range(h):
            base = (bi * h + hi) * s * d
            x = nl.ndarray((ts, nt, d), dtype=q.dtype, buffer=nl.sbuf)
            nisa.dma_copy(x, q.ap(pattern=pat, offset=base))
            r = nl.ndarray((ts, nt, d), dtype=q.dtype, buffer=nl.sbuf)
            t1 = nl.ndarray((ts, nt, half), dtype=q.dtype, buffer=nl.sbuf)
            t2 = nl.ndarray((ts, nt, half), dtype=q.dtype, buffer=nl.sbuf)
            nisa.tensor_tensor(dst=r, data1=x, data2=c, op=nl.multiply)
            nisa.tensor_tensor(dst=t1, data1=x[:, :, half:], data2=sn[:, :, :half], op=nl.multiply)
            nisa.tensor_tensor(dst=r[:, :, :half], data1=r[:, :, :half], data2=t1, op=nl.subtract)
            nisa.tensor_tensor(dst=t2, data1=x[:, :, :half], data2=sn[:, :, half:], op=nl.multiply)
            nisa.tensor_tensor(dst=r[:, :, half:], data1=r[:, :, half:], data2=t2, op=nl.add)
            nisa.dma_copy(out.ap(pattern=pat, offset=base), r)
    return out


def rope_reference(q, cos, sin):
    """NumPy port of rope_hf_torch_ref (forward, separate cos/sin)."""
    half = q.shape[-1] // 2
    rot = np.concatenate([-q[..., half:], q[..., :half]], -1)
    return q * cos[None, None] + rot * sin[None, None]


@pytest.mark.parametrize("shape", [(1, 2, 128, 64), (2, 1, 256, 32), (1, 1, 64, 16)])
def test_rope_style_fp32_exact(shape):
    rng = np.random.default_rng(sum(shape))
    q = rng.standard_normal(shape).astype(np.float32)
    cos, sin = (rng.standard_normal(shape[2:]).astype(np.float32) for _ in range(2))
    max_allclose(rope_kernel(q, cos, sin), rope_reference(q, cos, sin), 1e-6, 1e-6)


# ---- cascaded_max style: transposes through the PE and a grouped max ---------------------------
@nki.jit
def rowmax_kernel(x):
    """Per row max and argmax of x [B, V], with the V axis folded over the partitions."""
    B, V = x.shape
    fold = P_MAX // B
    chunk = V // fold
    n = B * fold
    vals = nl.ndarray((n, chunk), dtype=x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=vals, src=x.reshape((n, chunk)))
    local = nl.ndarray((n, 1), dtype=x.dtype, buffer=nl.sbuf)
    nisa.tensor_reduce(dst=local, op=nl.maximum, data=vals, axis=1)
    ident = nl.shared_identity_matrix(n, dtype=nl.float32)
    # move the per-partition maxima onto one partition: bit-exact transpose through the PE
    row = nl.ndarray((1, n), dtype=nl.float32, buffer=nl.psum)
    nisa.nc_matmul(dst=row, stationary=local, moving=ident, is_transpose=True)
    grouped = nl.ndarray((1, B, fold), dtype=nl.float32, buffer=nl.sbuf)
    nisa.tensor_copy(dst=grouped.reshape((1, n)), src=row)
    best = nl.ndarray((1, B), dtype=x.dtype, buffer=nl.sbuf)
    nisa.tensor_reduce(dst=best, op=nl.maximum, data=grouped, axis=2)
    out = nl.ndarray((1, B), dtype=x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=best)
    return out.reshape((B, 1))


@pytest.mark.parametrize("B,V", [(1, 256), (2, 1024), (4, 128)])
def test_cascaded_max_style(B, V):
    x = np.random.default_rng(B * V).standard_normal((B, V)).astype(np.float32)
    out = rowmax_kernel(x)
    np.testing.assert_array_equal(out, x.max(-1, keepdims=True))   # max is exact
