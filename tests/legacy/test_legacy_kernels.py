"""The legacy (NKI 0.1, ``neuronxcc.nki``) layer: kernels written in the old style against NumPy.

Grids run serially with program_id, arange/mgrid affine indexing, mask= clipping, tile operators,
return-style ISA calls, ``psum[...] += nc_matmul`` accumulation and par_dim block tiles.
"""
import ml_dtypes
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import nki.legacy as lnki
from nki.legacy import isa as nisa
from nki.legacy import language as nl


# ---- grids, program_id and affine arange indexing --------------------------------------------------
@lnki.jit
def _grid_axpy(a, b, alpha):
    out = nl.ndarray(a.shape, dtype=a.dtype, buffer=nl.shared_hbm)
    i_p = nl.arange(32)[:, None]
    i_f = nl.arange(64)[None, :]
    rows = nl.program_id(0) * 32 + i_p
    cols = nl.program_id(1) * 64 + i_f
    x = nl.load(a[rows, cols])
    y = nl.load(b[rows, cols])
    nl.store(out[rows, cols], value=x * alpha + y)
    return out


@given(st.integers(1, 3), st.integers(1, 3), st.floats(-4, 4, width=32))
def test_grid_runs_every_instance_serially(gx, gy, alpha):
    rng = np.random.default_rng(gx * 7 + gy)
    a = rng.normal(size=(32 * gx, 64 * gy)).astype(np.float32)
    b = rng.normal(size=(32 * gx, 64 * gy)).astype(np.float32)
    out = _grid_axpy[gx, gy](a, b, alpha)
    np.testing.assert_allclose(out, a * np.float32(alpha) + b, rtol=1e-6, atol=1e-6)


@lnki.jit
def _ids(x):
    out = nl.ndarray((nl.num_programs(), 4), dtype=np.float32, buffer=nl.shared_hbm)
    k = nl.program_id(0) * nl.num_programs(1) + nl.program_id(1)
    t = nl.full((1, 4), 0.0, dtype=np.float32)
    t[0, 0] = float(nl.program_id(0))
    t[0, 1] = float(nl.program_id(1))
    t[0, 2] = float(nl.num_programs(axes=(0, 1)))
    t[0, 3] = float(nl.program_ndim())
    nl.store(out[k:k + 1, :], t)
    return out


def test_program_id_and_num_programs_follow_the_nd_grid():
    out = _ids[3, 2](np.zeros((1, 1), np.float32))
    want = [[i, j, 6, 2] for i in range(3) for j in range(2)]
    np.testing.assert_array_equal(out, np.array(want, np.float32))


@lnki.jit
def _swap_halves(x, F1, F2):
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    t = nl.load(x)
    i_p = nl.arange(x.shape[0])[:, None, None]
    i_a = nl.arange(F1)[None, :, None]
    i_b = nl.arange(F2)[None, None, :]
    res = nl.ndarray(x.shape, dtype=x.dtype)
    res[i_p, i_b * F1 + i_a] = nl.exp(t[i_p, i_a * F2 + i_b])
    nl.store(out, value=res)
    return out


@given(st.integers(1, 16), st.integers(1, 6), st.integers(1, 6))
def test_three_d_arange_permutes_the_free_axis(P, F1, F2):
    x = np.linspace(-2, 2, P * F1 * F2, dtype=np.float32).reshape(P, F1 * F2)
    want = np.exp(x.reshape(P, F1, F2)).transpose(0, 2, 1).reshape(P, F1 * F2)
    np.testing.assert_allclose(_swap_halves(x, F1, F2), want, rtol=1e-5)


@lnki.jit
def _max_pool(x, k):
    C, H, W = x.shape
    out = nl.ndarray((C, H // k, W // k), dtype=x.dtype, buffer=nl.shared_hbm)
    c, h, dh, w, dw = nl.mgrid[0:C, 0:H // k, 0:k, 0:W // k, 0:k]
    t = nl.load(x)
    nl.store(out, value=nl.max(t[c, k * h + dh, k * w + dw], axis=[2, 4]))
    return out


@given(st.integers(1, 8), st.integers(1, 3), st.integers(1, 3), st.sampled_from([1, 2, 3]))
def test_five_d_mgrid_window_reduces_non_trailing_axes(C, HO, WO, k):
    rng = np.random.default_rng(C + HO + WO)
    x = rng.normal(size=(C, HO * k, WO * k)).astype(np.float16)
    want = x.reshape(C, HO, k, WO, k).max(axis=(2, 4))
    np.testing.assert_array_equal(_max_pool(x, k), want)


@lnki.jit
def _mgrid_px(x):
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    ix = nl.mgrid[0:x.shape[0], 0:x.shape[1]]
    t = nl.load(x[ix.p, ix.x])
    nl.store(out[ix.p, ix.x], value=2.0 * t - 1.0)
    return out


def test_mgrid_p_and_x_accessors():
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    np.testing.assert_array_equal(_mgrid_px(x), 2 * x - 1)


# ---- masks ---------------------------------------------------------------------------------------
@lnki.jit
def _masked_scale(x):
    n, m = x.shape
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    i_p = nl.arange(128)[:, None]
    i_f = nl.arange(64)[None, :]
    for r in nl.affine_range((n + 127) // 128):
        for c in nl.affine_range((m + 63) // 64):
            msk = (r * 128 + i_p < n) & (c * 64 + i_f < m)
            t = nl.load(x[r * 128 + i_p, c * 64 + i_f], mask=msk)
            y = nl.multiply(t, 3.0, mask=msk)
            nl.store(out[r * 128 + i_p, c * 64 + i_f], value=y, mask=msk)
    return out


@given(st.integers(1, 300), st.integers(1, 130))
def test_mask_clips_ragged_tiles(n, m):
    x = np.random.default_rng(n * m).normal(size=(n, m)).astype(np.float32)
    np.testing.assert_allclose(_masked_scale(x), 3 * x, rtol=1e-6)


@lnki.jit
def _lower_mask(x, lo):
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    nl.store(out, value=nl.zeros(x.shape, dtype=x.dtype))
    i_p = nl.arange(x.shape[0])[:, None]
    i_f = nl.arange(x.shape[1])[None, :]
    t = nl.load(x[i_p, i_f], mask=(i_f >= lo) & (i_p <= x.shape[0] - 2))
    nl.store(out[i_p, i_f], value=t, mask=(lo <= i_f) & (i_p < x.shape[0] - 1))
    return out


def test_mask_lower_bounds_and_reversed_comparisons():
    x = np.arange(40, dtype=np.float32).reshape(5, 8)
    want = np.zeros_like(x)
    want[:4, 3:] = x[:4, 3:]
    np.testing.assert_array_equal(_lower_mask(x, 3), want)


# ---- return-style ISA, tile operators and accumulation --------------------------------------------
@lnki.jit
def _isa_mix(a, b):
    out = nl.ndarray(a.shape, dtype=np.float32, buffer=nl.shared_hbm)
    ta, tb = nl.load(a), nl.load(b)
    s = nisa.tensor_tensor(ta, tb, op=np.add)
    e = nisa.activation(op=nl.exp, data=s, scale=0.5)
    m = nisa.tensor_scalar(e, np.multiply, 2.0, op1=np.subtract, operand1=1.0)
    r = nisa.tensor_reduce(np.add, m, axis=(1,), keepdims=True)
    acc = nl.zeros(a.shape, dtype=np.float32)
    acc += m
    acc -= r
    nl.store(out, value=acc)
    return out


def test_return_style_isa_and_inplace_operators():
    rng = np.random.default_rng(1)
    a = rng.uniform(-1, 1, (16, 24)).astype(np.float32)
    b = rng.uniform(-1, 1, (16, 24)).astype(np.float32)
    m = np.exp((a + b) * 0.5) * 2 - 1
    np.testing.assert_allclose(_isa_mix(a, b), m - m.sum(1, keepdims=True), rtol=1e-4, atol=1e-4)


@lnki.jit
def _matmul_k_tiles(lhsT, rhs):
    K, M = lhsT.shape
    N = rhs.shape[1]
    out = nl.ndarray((M, N), dtype=np.float32, buffer=nl.shared_hbm)
    ps = nl.zeros((M, N), dtype=np.float32, buffer=nl.psum)
    i_k = nl.arange(128)[:, None]
    for k in nl.affine_range(K // 128):
        st = nl.load(lhsT[k * 128 + i_k, nl.arange(M)[None, :]])
        mv = nl.load(rhs[k * 128 + i_k, nl.arange(N)[None, :]])
        ps[...] += nisa.nc_matmul(st, mv)
    nl.store(out, value=nl.copy(ps))
    return out


@given(st.integers(1, 3), st.sampled_from([8, 64, 128]), st.sampled_from([16, 512]))
def test_psum_plus_equals_nc_matmul_accumulates(kt, M, N):
    rng = np.random.default_rng(kt * M + N)
    lhsT = rng.normal(size=(128 * kt, M)).astype(np.float32)
    rhs = rng.normal(size=(128 * kt, N)).astype(np.float32)
    np.testing.assert_allclose(_matmul_k_tiles(lhsT, rhs), lhsT.T @ rhs, rtol=1e-4, atol=1e-3)


@lnki.jit
def _transpose_iota(x):
    P, F = x.shape
    out = nl.ndarray((F, P), dtype=np.float32, buffer=nl.shared_hbm)
    t = nisa.nc_transpose(nl.load(x))
    ramp = nisa.iota(nl.arange(F)[:, None] * 100 + nl.arange(P)[None, :], dtype=np.float32)
    nl.store(out, value=t + ramp)
    return out


def test_nc_transpose_and_iota_of_an_index_expression():
    x = np.random.default_rng(3).normal(size=(64, 48)).astype(np.float32)
    ramp = np.arange(48)[:, None] * 100 + np.arange(64)[None, :]
    np.testing.assert_allclose(_transpose_iota(x), x.T + ramp, rtol=1e-6)


@lnki.jit(mode="simulation")
def _blocks(x):
    nb, P, F = x.shape
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    buf = nl.ndarray((nb, nl.par_dim(P), F), dtype=x.dtype, buffer=nl.sbuf)
    for i in nl.affine_range(nb):
        buf[i, :, :] = nl.load(x[i])
        buf[i] += 1.0
    for i in nl.affine_range(nb):
        nl.store(out[i], value=buf[i, :, :] * (i + 1))
    return out


def test_par_dim_block_tiles_and_simulate_kernel():
    x = np.random.default_rng(4).normal(size=(3, 32, 8)).astype(np.float32)
    want = (x + 1) * np.arange(1, 4, dtype=np.float32)[:, None, None]
    np.testing.assert_allclose(lnki.simulate_kernel(_blocks, x), want, rtol=1e-6)


def test_legacy_dtypes_are_numpy_dtypes():
    assert nl.bfloat16 == np.dtype(ml_dtypes.bfloat16)
    assert nl.float16 is np.float16 and nl.int8 is np.int8
    assert nl.spmd_dim(3, nl.nc(2)) == 6 == nl.nc(2) * 3


@lnki.jit
def _softmax_rows(x):
    P, F = x.shape
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    assert x.dtype == nl.float32 and x.dtype != nl.float16     # legacy dtype comparisons
    t = nl.load(x)
    neg_max = nisa.tensor_reduce(op=nl.max, data=t, axis=1, negate=True)
    sums = nl.ndarray((P, 1), dtype=np.float32)
    e = nisa.activation(op=nl.exp, data=t, bias=neg_max, reduce_op=nl.add, reduce_res=sums)
    ident = nl.ndarray((P, P), dtype=np.float32)
    ident[...] = nisa.iota(nl.arange(P)[:, None] - nl.arange(P)[None, :], dtype=np.float32)
    ps = nl.ndarray((P, F), dtype=np.float32, buffer=nl.psum)
    ps[...] = nisa.nc_matmul(nisa.tensor_scalar(ident, np.equal, 0.0), e)   # I @ e, in place
    nl.store(out, value=nisa.tensor_scalar(ps, np.multiply, nisa.reciprocal(sums)))
    return out


def test_activation_reduce_res_and_matmul_assignment():
    x = np.random.default_rng(5).normal(size=(32, 40)).astype(np.float32)
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(_softmax_rows(x), e / e.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)
