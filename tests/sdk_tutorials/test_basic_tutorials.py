"""SDK-tutorial-style kernels (getting started, layout, indexing, tensor add, transpose2d, pooling).

Written fresh in the style of the NKI SDK examples (same APIs, same shape of code) so CI proves that
kind of kernel runs unchanged on the emulator without needing the SDK checkout.
"""
import inspect

import ml_dtypes
import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import HardwareRuleError
from nki.typing import tensor


# ---- getting started / simulate: nl.load, nl.add, nl.store ----------------------------------------
@nki.jit
def add_tiles(x_hbm, y_hbm):
    assert x_hbm.shape[0] <= nl.tile_size.pmax
    x = nl.load(x_hbm)
    y = nl.load(y_hbm)
    total = nl.add(x, y)
    out = nl.ndarray(x_hbm.shape, dtype=x_hbm.dtype, buffer=nl.shared_hbm)
    nl.store(out, value=total)
    return out


def test_load_add_store_fp32_and_fp16():
    rng = np.random.default_rng(1)
    a, b = rng.random((128, 512), np.float32), rng.random((128, 512), np.float32)
    np.testing.assert_allclose(nki.simulate(add_tiles)(a, b), a + b, rtol=1e-5)
    ones = np.ones((4, 3), np.float16)
    out = add_tiles(ones, ones)
    assert out.dtype == np.float16 and (out == 2).all()


# ---- layout: exp on a [128, 512] tile, and the 256-partition violation ----------------------------
@nki.jit
def exp_tile(x_hbm):
    out = nl.ndarray(x_hbm.shape, dtype=x_hbm.dtype, buffer=nl.shared_hbm)
    rows = x_hbm.shape[0]
    t = nl.load(x_hbm[0:rows, 0:512])  # LOAD-LINE
    nl.store(out[0:rows, 0:512], value=nl.exp(t))
    return out


def test_layout_exp_bf16():
    x = np.full((128, 512), 0.5, ml_dtypes.bfloat16)
    out = exp_tile(x)
    assert out.dtype == ml_dtypes.bfloat16
    np.testing.assert_allclose(out.astype(np.float32), np.exp(0.5), rtol=1e-2)


def test_layout_violation_reports_partition_limit_at_the_load_line():
    lines, start = inspect.getsourcelines(exp_tile.fn)
    load_line = start + next(i for i, s in enumerate(lines) if "LOAD-LINE" in s)
    with pytest.raises(HardwareRuleError) as e:
        exp_tile(np.ones((256, 512), ml_dtypes.bfloat16))
    assert e.value.rule == "partition-limit"
    assert "has 256 partitions (dimension 0); the limit is 128" in str(e.value)
    assert (e.value.value, e.value.limit) == (256, 128)
    assert e.value.loc.line == load_line
    assert f"test_basic_tutorials.py:{load_line}" in str(e.value)


# ---- indexing: strided column split (tuple outputs) and a max-pool through .ap ---------------------
@nki.jit
def split_even_odd(x_hbm):
    assert x_hbm.shape[0] <= nl.tile_size.pmax
    rows, cols = x_hbm.shape
    evens = nl.ndarray((rows, cols - cols // 2), dtype=x_hbm.dtype, buffer=nl.shared_hbm)
    odds = nl.ndarray((rows, cols // 2), dtype=x_hbm.dtype, buffer=nl.shared_hbm)
    t = nl.load(x_hbm)
    nl.store(evens, value=t[:, 0:cols:2])
    nl.store(odds, value=t[:, 1:cols:2])
    return evens, odds


def test_split_even_odd_columns_bf16():
    x = np.arange(20, dtype=np.float32).reshape(4, 5).astype(ml_dtypes.bfloat16)
    evens, odds = split_even_odd(x)
    np.testing.assert_array_equal(evens, x[:, 0::2])
    np.testing.assert_array_equal(odds, x[:, 1::2])


@nki.jit
def max_pool(x_hbm, k):
    c, h, w = x_hbm.shape
    out = nl.ndarray((c, h // k, w // k), dtype=x_hbm.dtype, buffer=nl.shared_hbm)
    t = nl.load(x_hbm)
    windows = t.ap([[h * w, c], [k * w, h // k], [k, w // k], [w, k], [1, k]])
    nl.store(out, value=nl.max(windows, axis=[3, 4]))
    return out


def test_max_pool_with_ap_windows():
    x = np.arange(2 * 36, dtype=np.float32).reshape(2, 6, 6).astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(max_pool(x, 2), x.reshape(2, 3, 2, 3, 2).max(axis=(2, 4)))


# ---- tensor add with explicit tiles: affine_range + dma_copy + tensor_tensor ----------------------
@nki.jit
def tiled_add(a_hbm, b_hbm):
    out = nl.ndarray(a_hbm.shape, dtype=a_hbm.dtype, buffer=nl.shared_hbm)
    M, N = a_hbm.shape
    TM, TN = 128, 512
    assert M % TM == 0 and N % TN == 0
    for i in nl.affine_range(M // TM):
        for j in nl.affine_range(N // TN):
            rows, cols = slice(i * TM, (i + 1) * TM), slice(j * TN, (j + 1) * TN)
            a_t = nl.ndarray(shape=(TM, TN), dtype=a_hbm.dtype, buffer=nl.sbuf)
            b_t = nl.ndarray(shape=(TM, TN), dtype=b_hbm.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=a_t, src=a_hbm[rows, cols])
            nisa.dma_copy(dst=b_t, src=b_hbm[rows, cols])
            c_t = nl.ndarray(shape=(TM, TN), dtype=a_hbm.dtype, buffer=nl.sbuf)
            nisa.tensor_tensor(dst=c_t, data1=a_t, data2=b_t, op=nl.add)
            nisa.dma_copy(dst=out[rows, cols], src=c_t)
    return out


def test_tiled_tensor_add_256x1024_fp16():
    rng = np.random.default_rng(2)
    a = rng.random((256, 1024)).astype(np.float16)
    b = rng.random((256, 1024)).astype(np.float16)
    out = tiled_add(a, b)
    assert out.dtype == np.float16
    np.testing.assert_allclose(out, a + b, atol=1e-4, rtol=1e-2)
    np.testing.assert_array_equal(out, a + b)        # fp32 sum rounded once = numpy's fp16 add


# ---- transpose2d: one tensor_copy per element on nl.ds column views --------------------------------
@nki.jit
def transpose_rows(x_hbm, shape2d):
    out = nl.ndarray(x_hbm.shape, dtype=x_hbm.dtype, buffer=nl.shared_hbm)
    parts = x_hbm.shape[0]
    src = nl.ndarray(x_hbm.shape, dtype=x_hbm.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=src, src=x_hbm)
    rows, cols = shape2d
    dst = nl.ndarray(shape=(parts, rows * cols), dtype=x_hbm.dtype, buffer=nl.sbuf)
    for r in nl.affine_range(rows):
        for c in nl.affine_range(cols):
            nisa.tensor_copy(dst=dst[:, nl.ds(c * rows + r, 1)], src=src[:, nl.ds(r * cols + c, 1)])
    nisa.dma_copy(dst=out, src=dst)
    return out


@pytest.mark.parametrize("P,X,Y,dtype", [(5, 3, 4, np.int8), (5, 7, 9, np.float32)])
def test_transpose2d_exact(P, X, Y, dtype):
    a = np.arange(P * X * Y).reshape(P, X * Y).astype(dtype)
    want = a.reshape(P, X, Y).transpose(0, 2, 1).reshape(P, X * Y)
    out = transpose_rows(a, (X, Y))
    assert out.dtype == a.dtype
    np.testing.assert_array_equal(out, want)


# ---- average pool: .ap 5-D windows, nl.sum over [3, 4], tensor_scalar by 1/k^2 (exact) -----------
@nki.jit
def avg_pool(x_hbm: tensor, k):
    c, h, w = x_hbm.shape
    out = nl.ndarray((c, h // k, w // k), dtype=x_hbm.dtype, buffer=nl.shared_hbm)
    t = nl.ndarray(x_hbm.shape, dtype=x_hbm.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=x_hbm)
    windows = t.ap([[h * w, c], [k * w, h // k], [k, w // k], [w, k], [1, k]])
    sums = nl.sum(windows, axis=[3, 4])
    scaled = nl.ndarray(sums.shape, dtype=sums.dtype, buffer=nl.sbuf)
    nisa.tensor_scalar(dst=scaled, data=sums, op0=nl.multiply, operand0=1.0 / (k * k))
    nisa.dma_copy(dst=out, src=scaled)
    return out


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_average_pool_exact(dtype):
    x = np.arange(2 * 6 * 6, dtype=dtype).reshape(2, 6, 6)
    want = np.nanmean(x.reshape(2, 3, 2, 3, 2), axis=(2, 4))
    out = avg_pool(x, 2)
    assert out.dtype == x.dtype and out.shape == (2, 3, 3)
    assert (out == want).all()
