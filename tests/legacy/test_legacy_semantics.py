"""Legacy (neuronxcc.nki) semantics the SDK's own examples rely on, checked against NumPy.

Tile-indexed HBM access, the simulator's IndexError, masked results assigned into a tile, slices
past a tensor's end clipped by a mask, NumPy-style broadcasting and true division, full-extent
``nl.mgrid``, ``nl.fp32.min``, returned on-chip tiles and the legacy precision default.
"""
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nki.legacy as lnki
from nki.legacy import isa as nisa
from nki.legacy import language as nl
from nki.legacy.index import LegacyMaskWarning


# ---- tile-indexed (indirect) HBM access ----------------------------------------------------------
@lnki.jit
def _gather_rows(table, idx):
    out = nl.ndarray((idx.shape[0], table.shape[1]), dtype=table.dtype, buffer=nl.shared_hbm)
    i_p = nl.arange(idx.shape[0])[:, None]
    i_f = nl.arange(table.shape[1])[None, :]
    ix = nl.load(idx)
    nl.store(out, nl.load(table[ix[i_p, 0], i_f]))
    return out


@lnki.jit
def _scatter_rows(rows, idx, n):
    out = nl.ndarray((n, rows.shape[1]), dtype=rows.dtype, buffer=nl.shared_hbm)
    nl.store(out, 0.0)
    i_f = nl.arange(rows.shape[1])[None, :]
    nl.store(out[nl.load(idx), i_f], nl.load(rows))
    return out


@settings(max_examples=8)
@given(st.integers(1, 40), st.integers(1, 64), st.data())
def test_tile_indexed_load_gathers_and_store_scatters_rows(n_idx, F, data):
    n_rows = data.draw(st.integers(n_idx, 80))
    table = np.arange(n_rows * F, dtype=np.float32).reshape(n_rows, F)
    perm = np.array(data.draw(st.permutations(list(range(n_rows)))), np.int32)[:n_idx]
    idx = perm.reshape(-1, 1)
    np.testing.assert_array_equal(_gather_rows(table, idx), table[perm])
    want = np.zeros((n_rows, F), np.float32)
    want[perm] = table[:n_idx]
    np.testing.assert_array_equal(_scatter_rows(table[:n_idx].copy(), idx, n_rows), want)


@lnki.jit
def _batch_gather(t, idx):
    out = nl.ndarray((2, idx.shape[0], t.shape[2]), dtype=t.dtype, buffer=nl.shared_hbm)
    i_f = nl.arange(t.shape[2])[None, :]
    ix = nl.load(idx)
    for b in nl.affine_range(2):
        nl.store(out[b], nl.load(t[b, ix, i_f]))
    return out


def test_integer_indices_before_the_index_tile_pick_a_sub_tensor():
    t = np.arange(2 * 7 * 5, dtype=np.float32).reshape(2, 7, 5)
    idx = np.array([[6], [0], [3]], np.int32)
    np.testing.assert_array_equal(_batch_gather(t, idx), t[:, idx[:, 0]])


@lnki.jit
def _gather_step(table, step, mode):
    out = nl.ndarray((8, table.shape[1]), dtype=table.dtype, buffer=nl.shared_hbm)
    i_f = nl.arange(table.shape[1])[None, :]
    rows = nisa.iota(step * nl.arange(8)[:, None], dtype=np.int32)
    t = nisa.memset(shape=(8, table.shape[1]), value=-1, dtype=table.dtype)
    nisa.dma_copy(src=table[rows, i_f], dst=t, oob_mode=mode)
    nl.store(out, t)
    return out


def test_out_of_bounds_gather_raises_the_simulators_index_error():
    table = np.arange(20 * 4, dtype=np.float32).reshape(20, 4)
    with pytest.raises(IndexError) as ei:
        _gather_step(table, 3, nisa.oob_mode.error)          # row 21 of 20
    assert type(ei.value) is IndexError
    assert str(ei.value) == "index 84 is out of bounds for axis 0 with size 80"
    assert ei.value.rule == "access-out-of-bound"
    assert any("vector_offset[7]" in n and "test_legacy_semantics.py" in n
               for n in ei.value.__notes__)


def test_out_of_bounds_rows_are_skipped_with_oob_mode_skip():
    table = np.arange(20 * 4, dtype=np.float32).reshape(20, 4)
    out = _gather_step(table, 3, nisa.oob_mode.skip)
    want = np.full((8, 4), -1, np.float32)
    want[:7] = table[3 * np.arange(7)]
    np.testing.assert_array_equal(out, want)


def test_an_index_tile_on_an_on_chip_tile_is_refused():
    @lnki.jit
    def k(x, idx):
        out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
        t = nl.load(x)
        nl.store(out, t[nl.load(idx), nl.arange(4)[None, :]])
        return out
    with pytest.raises(Exception, match=r"indirect \(tile-indexed\) access needs an HBM tensor"):
        k(np.zeros((4, 4), np.float32), np.zeros((4, 1), np.int32))


# ---- masks ---------------------------------------------------------------------------------------
@lnki.jit
def _masked_into(x, limit):
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    i_p, i_f = nl.mgrid[0:x.shape[0], 0:x.shape[1]]
    t = nl.load(x)
    acc = nl.full(x.shape, 5.0, dtype=x.dtype)
    acc[i_p, i_f] = nisa.tensor_scalar(t, np.multiply, 2.0, mask=(i_f < limit))
    acc[i_p, i_f] += nl.exp(t, mask=(i_p < limit))
    nl.store(out, acc)
    return out


@settings(max_examples=6)
@given(st.integers(1, 16), st.integers(1, 16), st.integers(0, 20))
def test_a_masked_result_assigned_into_a_tile_leaves_the_rest_alone(P, F, limit):
    x = np.linspace(-1, 1, P * F, dtype=np.float32).reshape(P, F)
    want = np.full((P, F), 5.0, np.float32)
    want[:, :limit] = 2 * x[:, :limit]
    want[:limit] += np.exp(x[:limit])
    np.testing.assert_allclose(_masked_into(x, limit), want, rtol=1e-6)


@lnki.jit
def _tail_copy(x, rows):
    out = nl.ndarray((rows, x.shape[1]), dtype=x.dtype, buffer=nl.shared_hbm)
    t = nisa.memset(shape=(128, x.shape[1]), value=0, dtype=x.dtype)
    i_p = nl.arange(128)[:, None]
    nisa.dma_copy(src=x[0:128, :], dst=t, mask=(i_p < x.shape[0]))
    nl.store(out[0:128, :], t, mask=(i_p < rows))
    return out


def test_slices_past_the_end_are_clipped_by_the_mask_before_the_bounds_check():
    x = np.arange(50 * 3, dtype=np.float32).reshape(50, 3)
    out = _tail_copy(x, 60)
    np.testing.assert_array_equal(out[:50], x)
    np.testing.assert_array_equal(out[50:], 0)


def test_python_and_of_masks_keeps_the_right_hand_comparison_and_warns():
    @lnki.jit
    def k(x):
        out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
        i_p, i_f = nl.mgrid[0:x.shape[0], 0:x.shape[1]]
        t = nisa.memset(shape=x.shape, value=0.0, dtype=x.dtype)
        t[i_p, i_f] = nl.copy(nl.load(x), mask=(i_p < 2 and i_f < 3))
        nl.store(out, t)
        return out
    x = np.ones((4, 5), np.float32)
    with pytest.warns(LegacyMaskWarning, match=r"keeps only 'b < m'"):
        out = k(x)
    want = np.zeros((4, 5), np.float32)
    want[:, :3] = 1
    np.testing.assert_array_equal(out, want)


# ---- broadcasting, division, mgrid, dtypes -------------------------------------------------------
@lnki.jit
def _outer_sum(col, row):
    out = nl.ndarray((col.shape[0], row.shape[1]), dtype=col.dtype, buffer=nl.shared_hbm)
    nl.store(out, nl.add(nl.load(col), nl.load(row)))
    return out


@settings(max_examples=6)
@given(st.integers(1, 128), st.integers(1, 64))
def test_nl_add_broadcasts_like_numpy_including_the_partition_axis(P, F):
    col = np.arange(P, dtype=np.float32)[:, None]
    row = np.arange(F, dtype=np.float32)[None, :] * 1000
    np.testing.assert_array_equal(_outer_sum(col, row), col + row)


@lnki.jit
def _int_div(x, d):
    out = nl.ndarray(x.shape, dtype=np.int32, buffer=nl.shared_hbm)
    nl.store(out, nl.floor(nl.load(x) / d, dtype=nl.int32))
    return out


def test_dividing_integer_tiles_is_true_division():
    x = np.arange(0, 128, dtype=np.int32).reshape(128, 1)
    np.testing.assert_array_equal(_int_div(x, 38), x // 38)


@lnki.jit
def _grid_codes(x):
    out = nl.ndarray((4, 3, 5), dtype=np.float32, buffer=nl.shared_hbm)
    g = nl.mgrid[0:4, 0:3, 0:5]
    nl.store(out, nisa.iota(100 * g.p + 10 * g.x + g.y, dtype=np.float32))
    return out


def test_mgrid_axes_span_the_whole_grid_and_have_p_x_y_names():
    i, j, k = np.mgrid[0:4, 0:3, 0:5]
    np.testing.assert_array_equal(_grid_codes(np.zeros(1, np.float32)), 100 * i + 10 * j + k)


def test_mgrid_names_past_its_rank_are_an_error():
    @lnki.jit
    def k(x):
        return nl.mgrid[0:4, 0:3].y
    with pytest.raises(Exception, match=r"nl.mgrid result has 2 axes; .y is axis 2"):
        k(np.zeros(1, np.float32))


def test_fp32_alias_is_a_dtype_with_finfo_limits():
    assert nl.fp32 == np.float32 and np.dtype(nl.bf16) == np.dtype(ml_dtypes.bfloat16)
    assert nl.fp32.min == float(np.finfo(np.float32).min)
    assert nl.bf16.max == float(ml_dtypes.finfo(ml_dtypes.bfloat16).max)
    assert nl.finfo(nl.float16).max == np.finfo(np.float16).max
    assert np.zeros(2, nl.fp16).dtype == np.float16
    assert nl.float8_e4m3 == np.dtype(ml_dtypes.float8_e4m3)     # legacy FP8 has inf


@lnki.jit
def _fill_like_legacy(x):
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    t = nl.full(x.shape, fill_value=np.float32(-2.5), dtype=x.dtype)
    nl.store(out, nl.maximum(t, nl.load(x)))
    return out


def test_numpy_scalar_fill_values():
    x = np.linspace(-5, 5, 12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(_fill_like_legacy(x), np.maximum(x, -2.5))


# ---- outputs and precision -----------------------------------------------------------------------
@lnki.jit
def _returns_tiles(x):
    scratch = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.hbm)
    nl.store(scratch, nl.load(x))
    t = nl.load(scratch)
    return t, nisa.tensor_scalar(t, np.add, 1.0), scratch


def test_returned_sbuf_tiles_and_hbm_tensors_come_back_as_arrays():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    a, b, c = _returns_tiles(x)
    np.testing.assert_array_equal(a, x)
    np.testing.assert_array_equal(b, x + 1)
    np.testing.assert_array_equal(c, x)


@lnki.jit
def _to_bf16(x):
    out = nl.ndarray(x.shape, dtype=np.float32, buffer=nl.shared_hbm)
    nl.store(out, nisa.activation(op=nl.copy, data=nl.load(x), dtype=nl.bfloat16))
    return out


def test_legacy_kernels_default_to_nki_precise_fp_0(monkeypatch):
    x = np.array([[1.0 + 2 ** -12]], np.float32)           # not representable in bf16
    monkeypatch.delenv("NKI_PRECISE_FP", raising=False)
    assert _to_bf16(x)[0, 0] == x[0, 0]                     # held in fp32, as neuronxcc did
    monkeypatch.setenv("NKI_PRECISE_FP", "1")
    assert _to_bf16(x)[0, 0] == 1.0                         # rounded like hardware on request


def test_a_kernel_named_like_a_test_is_not_collected_by_pytest():
    assert lnki.LegacyKernel.__test__ is False
