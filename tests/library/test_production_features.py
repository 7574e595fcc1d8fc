"""What production (nki-library) kernels rely on, one test per feature.

PSUM auto-accumulation, ``.ap`` with offsets (static, scalar, vector, indirect_dim, dtype),
column-tiled ``nc_matmul``, tensors/buffers in boolean tests, dtypes as values, configuration
objects and enums as kernel arguments, ``@nki.jit`` functions called from kernels, legacy
spellings, and kernel ``assert`` messages reaching the caller unchanged.
"""
import enum
from dataclasses import dataclass

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import HardwareRuleError


# ---- exact automatic PSUM accumulation (accumulate never passed) ------------------------------
@nki.jit
def matmul_k_loop(a_t, b):
    """out[M, N] = a_t[K, M].T @ b[K, N], K tiled by 128, one fresh PSUM tile per output tile."""
    K, M = a_t.shape
    N = b.shape[1]
    out = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.shared_hbm)
    acc = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.psum)
    for k in nl.affine_range(K // 128):
        at = nl.ndarray((128, M), dtype=a_t.dtype, buffer=nl.sbuf)
        bt = nl.ndarray((128, N), dtype=b.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=at, src=a_t[k * 128:(k + 1) * 128, :])
        nisa.dma_copy(dst=bt, src=b[k * 128:(k + 1) * 128, :])
        nisa.nc_matmul(acc, at, bt)                      # positional dst-first, no accumulate=
    res = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.sbuf)
    nisa.tensor_copy(dst=res, src=acc)
    nisa.dma_copy(dst=out, src=res)
    return out


@given(kt=st.integers(1, 4), m=st.sampled_from([1, 32, 128]), n=st.sampled_from([1, 64, 512]))
def test_psum_auto_accumulation_is_exact_on_integers(kt, m, n):
    rng = np.random.default_rng(kt * m * n)
    a = rng.integers(-4, 5, (kt * 128, m)).astype(np.float32)
    b = rng.integers(-4, 5, (kt * 128, n)).astype(np.float32)
    np.testing.assert_array_equal(matmul_k_loop(a, b), a.T @ b)   # integers: fp32 sums are exact


def test_psum_first_matmul_overwrites_memset_and_later_ones_add():
    @nki.jit
    def k(a_t, b):
        out = nl.ndarray((8, 16), dtype=nl.float32, buffer=nl.shared_hbm)
        at = nl.ndarray((4, 8), dtype=nl.float32)
        bt = nl.ndarray((4, 16), dtype=nl.float32)
        nisa.dma_copy(dst=at, src=a_t)
        nisa.dma_copy(dst=bt, src=b)
        ps = nl.ndarray((8, 16), dtype=nl.float32, buffer=nl.psum)
        nisa.memset(dst=ps, value=100.0)          # not a matmul write: the next matmul overwrites
        nisa.nc_matmul(dst=ps, stationary=at, moving=bt)
        nisa.nc_matmul(dst=ps[:, 0:8], stationary=at, moving=bt[:, 0:8])   # adds on half only
        sb = nl.ndarray((8, 16), dtype=nl.float32)
        nisa.tensor_copy(dst=sb, src=ps)
        nisa.dma_copy(dst=out, src=sb)
        return out

    a = np.arange(32, dtype=np.float32).reshape(4, 8) / 8
    b = np.arange(64, dtype=np.float32).reshape(4, 16) / 16
    want = a.T @ b
    want[:, :8] *= 2
    np.testing.assert_allclose(k(a, b), want, rtol=1e-6)


# ---- .ap with offset / scalar_offset / vector_offset / indirect_dim / dtype ----------------------
@nki.jit
def gather_rows(table, idx):
    """out[p, :] = table[idx[p], :] via .ap(vector_offset=...) on the HBM table."""
    P = idx.shape[0]
    D = table.shape[1]
    ids = nl.ndarray((P, 1), dtype=idx.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=ids, src=idx)
    rows = nl.ndarray((P, D), dtype=table.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=rows, src=table.ap(pattern=[[D, P], [1, D]], offset=0, vector_offset=ids,
                                         indirect_dim=0))
    out = nl.ndarray((P, D), dtype=table.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=rows)
    return out


@given(n=st.integers(1, 50), p=st.integers(1, 128), d=st.integers(1, 40))
def test_vector_offset_gathers_hbm_rows(n, p, d):
    rng = np.random.default_rng(n * p * d)
    table = rng.standard_normal((n, d)).astype(np.float32)
    idx = rng.integers(0, n, (p, 1)).astype(np.int32)
    np.testing.assert_array_equal(gather_rows(table, idx), table[idx[:, 0]])


def test_vector_offset_scatters_rows_into_an_in_place_output():
    @nki.jit
    def scatter(dst_table, src, idx):
        P, D = src.shape
        ids = nl.ndarray((P, 1), dtype=nl.int32)
        nisa.dma_copy(dst=ids, src=idx)
        rows = nl.ndarray((P, D), dtype=src.dtype)
        nisa.dma_copy(dst=rows, src=src)
        # the first pair's stride is a placeholder: each row's offset is idx[p] * D
        nisa.dma_copy(dst=dst_table.ap(pattern=[[1, P], [1, D]], offset=0, vector_offset=ids,
                                       indirect_dim=0), src=rows)
        return dst_table

    table = np.zeros((10, 6), np.float32)
    src = np.arange(18, dtype=np.float32).reshape(3, 6)
    idx = np.array([[7], [2], [5]], np.int32)
    out = scatter(table, src, idx)
    want = np.zeros((10, 6), np.float32)
    want[[7, 2, 5]] = src
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(table, want)          # in-place output written back


def test_vector_offset_out_of_range_names_the_index():
    table = np.zeros((4, 3), np.float32)
    with pytest.raises(HardwareRuleError, match=r"access-out-of-bound: dynamic offset 9 "
                       r"\(vector_offset\[1\]\)") as e:
        gather_rows(table, np.array([[0], [9]], np.int32))
    assert e.value.limit == 12


def test_vector_offset_shape_is_checked_at_trace_time():
    @nki.jit
    def bad(table, idx):
        ids = nl.ndarray((4, 1), dtype=nl.int32)
        nisa.dma_copy(dst=ids, src=idx)
        rows = nl.ndarray((8, 3), dtype=nl.float32)
        nisa.dma_copy(dst=rows, src=table.ap([[3, 8], [1, 3]], 0, vector_offset=ids))
        return table

    with pytest.raises(HardwareRuleError, match=r"dynamic-offset: vector_offset tensor .* has "
                       r"shape \(4, 1\); expected \(8, 1\)") as e:
        bad(np.zeros((8, 3), np.float32), np.zeros((4, 1), np.int32))
    assert e.value.loc.line > 0 and "nisa.dma_copy(dst=rows" in str(e.value)


@nki.jit
def scalar_window(x, start):
    """out = x[b, start:start+W, :] for each b, with start read from HBM at run time."""
    B, S, D = x.shape
    W = 4
    st_sb = nl.ndarray((1, 1), dtype=nl.int32)
    nisa.dma_copy(dst=st_sb, src=start)
    out = nl.ndarray((B, W, D), dtype=x.dtype, buffer=nl.shared_hbm)
    for b in range(B):
        t = nl.ndarray((W, D), dtype=x.dtype)
        # indirect_dim=1: the offset counts rows of x's dim 1 (D elements each)
        nisa.dma_copy(dst=t, src=x.ap([[D, W], [1, D]], offset=b * S * D, scalar_offset=st_sb,
                                      indirect_dim=1))
        nisa.dma_copy(dst=out[b], src=t)
    return out


@given(start=st.integers(0, 12))
def test_scalar_offset_with_indirect_dim(start):
    x = np.arange(2 * 16 * 5, dtype=np.float32).reshape(2, 16, 5)
    out = scalar_window(x, np.array([[start]], np.int32))
    np.testing.assert_array_equal(out, x[:, start:start + 4])


def test_ap_dtype_reinterprets_storage():
    @nki.jit
    def bits(x):
        n = x.shape[1]
        t = nl.ndarray((x.shape[0], 2 * n), dtype=nl.bfloat16)
        nisa.dma_copy(dst=t, src=x.ap([[2 * n, x.shape[0]], [1, 2 * n]], offset=0,
                                      dtype=nl.bfloat16))
        out = nl.ndarray((x.shape[0], 2 * n), dtype=nl.bfloat16, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=t)
        return out

    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(bits(x).view(np.uint16), x.view(np.uint16))


# ---- nc_matmul column tiling ------------------------------------------------------------------
def _column_tiled(cols):
    @nki.jit
    def k(a_t, b):
        K, M = a_t.shape
        N = b.shape[1]
        n_tiles = 128 // cols
        ps = nl.ndarray((128, N), dtype=nl.float32, buffer=nl.psum)
        at = nl.ndarray((K, M), dtype=a_t.dtype)
        bt = nl.ndarray((K, N), dtype=b.dtype)
        nisa.dma_copy(dst=at, src=a_t)
        nisa.dma_copy(dst=bt, src=b)
        for c in range(n_tiles):            # the same product in every column tile
            nisa.nc_matmul(dst=ps[nl.ds(c * cols, M), :], stationary=at, moving=bt,
                           tile_position=(0, c * cols), tile_size=(K, cols))
        sb = nl.ndarray((128, N), dtype=nl.float32)
        nisa.tensor_copy(dst=sb[0:n_tiles * cols], src=ps[0:n_tiles * cols])
        out = nl.ndarray((n_tiles, cols, N), dtype=nl.float32, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out.reshape((128, N)), src=sb)
        return out
    return k


@pytest.mark.parametrize("target,cols", [("trn2", 32), ("inf2", 64)])
def test_column_tiled_matmul_is_an_ordinary_matmul(monkeypatch, target, cols):
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", target)
    rng = np.random.default_rng(cols)
    a = rng.standard_normal((128, cols)).astype(np.float32)
    b = rng.standard_normal((128, 96)).astype(np.float32)
    out = _column_tiled(cols)(a, b)
    for tile in out:
        np.testing.assert_allclose(tile, a.T @ b, rtol=1e-5, atol=1e-4)


def test_column_tile_of_32_is_rejected_on_v2(monkeypatch):
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", "inf2")
    with pytest.raises(HardwareRuleError, match=r"pe-tiling: nc_matmul tile_size column size 32 "
                       r"is not a PE tile size on inf2: \(64, 128\)"):
        _column_tiled(32)(np.zeros((128, 32), np.float32), np.zeros((128, 8), np.float32))


def test_column_tile_dst_must_start_at_the_tile_column(monkeypatch):
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", "trn2")

    @nki.jit
    def k(a_t, b):
        ps = nl.ndarray((128, 8), dtype=nl.float32, buffer=nl.psum)
        at = nl.ndarray((128, 32), dtype=nl.float32)
        bt = nl.ndarray((128, 8), dtype=nl.float32)
        nisa.dma_copy(dst=at, src=a_t)
        nisa.dma_copy(dst=bt, src=b)
        nisa.nc_matmul(dst=ps[0:32, :], stationary=at, moving=bt, tile_position=(0, 64),
                       tile_size=(128, 32))
        return a_t

    with pytest.raises(HardwareRuleError, match=r"pe-tiling: nc_matmul dst starts at PSUM "
                       r"partition 0 but PE column tile 64") as e:
        k(np.zeros((128, 32), np.float32), np.zeros((128, 8), np.float32))
    assert e.value.loc.line > 0 and "tile_position=(0, 64)" in str(e.value)


# ---- nc_matmul partial PE tiles (size below 32) ------------------------------------------------
def _partial_tile(rows, pos=(0, 0)):
    @nki.jit
    def k(a_t, b):
        K, M = a_t.shape
        N = b.shape[1]
        at = nl.ndarray((K, M), dtype=a_t.dtype)
        bt = nl.ndarray((K, N), dtype=b.dtype)
        nisa.dma_copy(dst=at, src=a_t)
        nisa.dma_copy(dst=bt, src=b)
        ps = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.psum)
        nisa.nc_matmul(ps, at, bt, tile_position=pos, tile_size=(rows, rows))
        sb = nl.ndarray((M, N), dtype=nl.float32)
        nisa.tensor_copy(dst=sb, src=ps)
        out = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=sb)
        return out
    return k


@pytest.mark.parametrize("target", ["trn2", "inf2"])
@pytest.mark.parametrize("rows", [8, 16])
def test_partial_pe_tile_is_an_ordinary_matmul(monkeypatch, target, rows):
    # nki-library gdn_cte passes tile_size=(16, 16) for one-chunk groups: the partial tile
    # occupies the smallest PE tile of the generation
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", target)
    rng = np.random.default_rng(rows)
    a = rng.standard_normal((rows, rows)).astype(np.float32)
    b = rng.standard_normal((rows, 40)).astype(np.float32)
    np.testing.assert_allclose(_partial_tile(rows)(a, b), a.T @ b, rtol=1e-5, atol=1e-5)


def test_partial_pe_tile_position_is_a_multiple_of_the_occupied_tile(monkeypatch):
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", "trn2")
    with pytest.raises(HardwareRuleError, match=r"pe-tiling: nc_matmul tile_position row 16 is "
                       r"not a multiple of the tile size 32"):
        _partial_tile(16, pos=(16, 0))(np.zeros((16, 16), np.float32), np.zeros((16, 8), np.float32))


def test_partial_pe_tile_still_bounds_the_operands(monkeypatch):
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", "trn2")

    @nki.jit
    def k(a_t, b):
        at = nl.ndarray((32, 16), dtype=nl.float32)
        bt = nl.ndarray((32, 8), dtype=nl.float32)
        nisa.dma_copy(dst=at, src=a_t)
        nisa.dma_copy(dst=bt, src=b)
        ps = nl.ndarray((16, 8), dtype=nl.float32, buffer=nl.psum)
        nisa.nc_matmul(ps, at, bt, tile_position=(0, 0), tile_size=(16, 16))
        return a_t

    with pytest.raises(HardwareRuleError, match=r"pe-tiling: nc_matmul operands \(K=32, M=16\) do "
                       r"not fit tile_size \(16, 16\)"):
        k(np.zeros((32, 16), np.float32), np.zeros((32, 8), np.float32))
