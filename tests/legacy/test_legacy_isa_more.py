"""Legacy return-style and in-place ISA calls that forward to their NKI 0.6 forms, against NumPy.

Each kernel below is written the legacy way (``r = nisa.op(...)``, ``dtype=``/``mask=`` keywords,
NumPy functions as ops) and its result is checked against a NumPy model of the instruction.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nki.legacy as lnki
from device.errors import HardwareRuleError, UserKernelError
from nki.legacy import isa as nisa
from nki.legacy import language as nl


def _rows(seed, P, F, lo=-50.0, hi=50.0):
    return np.random.default_rng(seed).uniform(lo, hi, (P, F)).astype(np.float32)


# ---- top-8 family --------------------------------------------------------------------------------
@lnki.jit
def _top8(x):
    vals = nl.ndarray((x.shape[0], 8), dtype=x.dtype, buffer=nl.shared_hbm)
    idx = nl.ndarray((x.shape[0], 8), dtype=nl.uint32, buffer=nl.shared_hbm)
    rest = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    t = nl.load(x)
    m = nisa.max8(src=t)
    nl.store(vals, m)
    nl.store(idx, nisa.nc_find_index8(data=t, vals=m))
    nl.store(rest, nisa.nc_match_replace8(data=t, vals=m, imm=-1000.0))
    return vals, idx, rest


@settings(max_examples=5)
@given(st.integers(1, 64), st.integers(8, 100), st.integers(0, 99))
def test_max8_find_index8_and_match_replace8(P, F, seed):
    x = _rows(seed, P, F)
    vals, idx, rest = _top8(x)
    order = np.argsort(-x, axis=1, kind="stable")[:, :8]
    np.testing.assert_array_equal(vals, np.take_along_axis(x, order, 1))
    np.testing.assert_array_equal(idx, order.astype(np.uint32))
    want = x.copy()
    np.put_along_axis(want, order, -1000.0, 1)
    np.testing.assert_array_equal(rest, want)


# ---- cross-partition -----------------------------------------------------------------------------
@lnki.jit
def _shuffle_and_reduce(x, shuffle):
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    tot = nl.ndarray((1, x.shape[1]), dtype=x.dtype, buffer=nl.shared_hbm)
    t = nl.load(x)
    moved = nl.ndarray(x.shape, dtype=x.dtype)
    nisa.nc_stream_shuffle(src=t, dst=moved, shuffle_mask=list(shuffle))
    nl.store(out, moved)
    nl.store(tot, nisa.tensor_partition_reduce(np.add, t))
    return out, tot


@settings(max_examples=5)
@given(st.permutations(list(range(32))), st.integers(1, 40))
def test_stream_shuffle_moves_partitions_and_partition_reduce_sums(shuffle, F):
    x = _rows(F, 32, F)
    out, tot = _shuffle_and_reduce(x, tuple(shuffle))
    np.testing.assert_array_equal(out, x[list(shuffle)])
    np.testing.assert_allclose(tot, x.sum(0, keepdims=True), rtol=1e-5, atol=1e-4)


# ---- selects -------------------------------------------------------------------------------------
@lnki.jit
def _lower_triangle(x, fill):
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    ip, jf = nl.mgrid[0:x.shape[0], 0:x.shape[1]]
    t = nl.load(x)
    nl.store(out, nisa.affine_select(pred=(jf <= ip + 2) & (jf >= ip - 1),
                                     on_true_tile=t, on_false_value=fill))
    return out


@settings(max_examples=5)
@given(st.integers(1, 64), st.integers(1, 64))
def test_affine_select_keeps_the_band_where_every_comparison_holds(P, F):
    x = _rows(P + F, P, F)
    i, j = np.indices((P, F))
    want = np.where((j <= i + 2) & (j >= i - 1), x, np.float32(-7.0))
    np.testing.assert_array_equal(_lower_triangle(x, -7.0), want)


@lnki.jit
def _range_pick(x, lo, hi, start):
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    best = nl.ndarray((x.shape[0], 1), dtype=x.dtype, buffer=nl.shared_hbm)
    red = nl.ndarray((x.shape[0], 1), dtype=x.dtype)
    r = nisa.range_select(on_true_tile=nl.load(x), comp_op0=np.greater_equal, comp_op1=np.less,
                          bound0=nl.load(lo), bound1=nl.load(hi), reduce_res=red,
                          reduce_cmd=nisa.reduce_cmd.reset_reduce, reduce_op=np.max,
                          range_start=start, on_false_value=nl.fp32.min)
    nl.store(out, r)
    nl.store(best, red)
    return out, best


@pytest.mark.parametrize("start", [0, 5])
def test_range_select_against_numpy(start, monkeypatch):
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", "trn2")
    x = _rows(3, 16, 24)
    lo = np.arange(16, dtype=np.float32)[:, None]
    hi = lo + 9
    out, best = _range_pick(x, lo, hi, start)
    col = start + np.arange(24)[None, :]
    want = np.where((col >= lo) & (col < hi), x, np.finfo(np.float32).min)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(best, want.max(1, keepdims=True))


@lnki.jit
def _select_and_copy(pred, a, b):
    sel = nl.ndarray(a.shape, dtype=a.dtype, buffer=nl.shared_hbm)
    cp = nl.ndarray(a.shape, dtype=a.dtype, buffer=nl.shared_hbm)
    mx = nl.ndarray((a.shape[0], 1), dtype=a.dtype, buffer=nl.shared_hbm)
    p, x, y = nl.load(pred), nl.load(a), nl.load(b)
    d = nl.ndarray(a.shape, dtype=a.dtype)
    r = nl.ndarray((a.shape[0], 1), dtype=a.dtype)
    nisa.select_reduce(dst=d, predicate=p, on_true=x, on_false=-60.0, reduce_res=r,
                       reduce_cmd=nisa.reduce_cmd.reset_reduce, reduce_op=nl.max)
    nl.store(sel, d)
    nl.store(mx, r)
    nisa.tensor_copy_predicated(src=x, dst=y, predicate=p, reverse_pred=True)
    nl.store(cp, y)
    return sel, mx, cp


@settings(max_examples=5)
@given(st.integers(1, 128), st.integers(1, 50), st.integers(0, 9))
def test_select_reduce_and_copy_predicated(P, F, seed):
    a, b = _rows(seed, P, F), _rows(seed + 1, P, F)
    pred = (np.random.default_rng(seed).random((P, F)) < 0.5).astype(np.uint8)
    sel, mx, cp = _select_and_copy(pred, a, b)
    want = np.where(pred != 0, a, np.float32(-60.0))
    np.testing.assert_array_equal(sel, want)
    np.testing.assert_array_equal(mx, want.max(1, keepdims=True))
    np.testing.assert_array_equal(cp, np.where(pred == 0, a, b))


# ---- scans and bounds ----------------------------------------------------------------------------
@lnki.jit
def _cumulative(x, imm0):
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    d = nl.ndarray(x.shape, dtype=x.dtype)
    nisa.tensor_scalar_cumulative(src=nl.load(x), dst=d, op0=np.multiply, op1=nl.max,
                                  imm0=imm0)
    nl.store(out, d)
    return out


@settings(max_examples=5)
@given(st.integers(1, 128), st.integers(1, 64), st.floats(-3, 3, width=32))
def test_tensor_scalar_cumulative_is_a_running_max_of_scaled_values(P, F, s):
    x = _rows(P * F, P, F)
    want = np.maximum.accumulate(x * np.float32(s), axis=1)
    np.testing.assert_allclose(_cumulative(x, s), want, rtol=1e-6)


@lnki.jit
def _bounds(seg):
    out = nl.ndarray((1, 2, seg.shape[1]), dtype=seg.dtype, buffer=nl.shared_hbm)
    b = nisa.sequence_bounds(segment_ids=nl.load(seg))
    nl.store(out, b)
    return out


def test_sequence_bounds_of_runs_with_padding():
    seg = np.array([[0, 3, 3, 5, 5, 5, 0, 2]], np.float32)
    n = seg.shape[1]
    starts = [n, 1, 1, 3, 3, 3, n, 7]
    ends = [-1, 3, 3, 6, 6, 6, -1, 8]
    np.testing.assert_array_equal(_bounds(seg), np.array([[starts, ends]], np.float32))


# ---- dma -----------------------------------------------------------------------------------------
@lnki.jit
def _dma_and_transpose(x):
    copy = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    tr = nl.ndarray((x.shape[1], x.shape[0]), dtype=x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=copy, src=x)
    nl.store(tr, nisa.dma_transpose(x))
    return copy, tr


@pytest.mark.parametrize("shape", [(16, 128), (32, 8)])
def test_dma_copy_and_transpose(shape, monkeypatch):
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", "trn2")
    x = _rows(1, *shape).astype(np.float16)
    copy, tr = _dma_and_transpose(x)
    np.testing.assert_array_equal(copy, x)
    np.testing.assert_array_equal(tr, x.T)


@lnki.jit
def _rmw(x, init):
    out = nl.ndarray(init.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    nl.store(out, nl.load(init))
    i_f = nl.arange(x.shape[1])[None, :]
    rows = nisa.iota(3 * nl.arange(x.shape[0])[:, None], dtype=np.int32)
    nisa.dma_copy(dst=out[rows, i_f], src=nl.load(x), dst_rmw_op=np.add)
    return out


def test_dma_copy_read_modify_write_adds_into_scattered_rows():
    x, init = _rows(5, 10, 16), _rows(6, 30, 16)
    want = init.copy()
    want[3 * np.arange(10)] += x
    np.testing.assert_allclose(_rmw(x, init), want, rtol=1e-6)


# ---- misc ----------------------------------------------------------------------------------------
@lnki.jit
def _drop(x, p):
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    nl.store(out, nisa.dropout(nl.load(x), prob=p))
    return out


def test_dropout_keeps_values_or_zeroes_them():
    x = _rows(2, 128, 256, 1.0, 2.0)
    assert np.array_equal(_drop(x, 0.0), x)
    y = _drop(x, 0.5)
    kept = y != 0
    assert 0.3 < kept.mean() < 0.7           # about half survive
    assert np.all((y[kept] == x[kept]) | np.isclose(y[kept], 2 * x[kept]))


@lnki.jit
def _gather(src, index):
    out = nl.ndarray((src.shape[0], 8 * 2), dtype=src.dtype, buffer=nl.shared_hbm)
    nl.store(out, nisa.local_gather(nl.load(src), nl.load(index), num_elem_per_idx=2,
                                    num_valid_indices=8))
    return out


def test_local_gather_per_16_partition_core():
    src = _rows(3, 32, 40)
    index = (np.arange(32 * 1, dtype=np.uint16).reshape(32, 1) * 2) % 38
    out = _gather(src, index)
    for c in range(2):
        flat = index[c * 16:(c + 1) * 16].flatten(order="F")[:8].astype(int)
        cols = (flat[:, None] + np.arange(2)).reshape(-1)
        np.testing.assert_array_equal(out[c * 16:(c + 1) * 16], src[c * 16:(c + 1) * 16][:, cols])


@lnki.jit
def _double_row(a, b):
    out = nl.ndarray((a.shape[2], b.shape[2]), dtype=nl.float32, buffer=nl.shared_hbm)
    nl.store(out, nisa.nc_matmul(nl.load(a), nl.load(b), perf_mode="double_row_gen3"))
    return out


def test_legacy_double_row_gen3_perf_mode(monkeypatch):
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", "trn2")
    rng = np.random.default_rng(0)
    a = rng.integers(-2, 3, (128, 2, 16)).astype(nl.float8_e5m2)
    b = rng.integers(-2, 3, (128, 2, 64)).astype(nl.float8_e5m2)
    want = np.einsum("kri,krj->ij", a.astype(np.float32), b.astype(np.float32))
    np.testing.assert_array_equal(_double_row(a, b), want)


# ---- errors --------------------------------------------------------------------------------------
@lnki.jit
def _bad_pred(x):
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    nl.store(out, nisa.affine_select(pred=x, on_true_tile=nl.load(x), on_false_value=0.0))
    return out


def test_affine_select_rejects_a_non_predicate():
    with pytest.raises(UserKernelError, match=r"pred must be comparisons of nl.arange"):
        _bad_pred(np.zeros((4, 4), np.float32))


@lnki.jit
def _bad_transpose_axes(x):
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    nl.store(out, nisa.dma_transpose(x, axes=(0, 0)))
    return out


def test_dma_transpose_rejects_a_bad_permutation():
    with pytest.raises(UserKernelError, match=r"axes=\(0, 0\) is not a permutation"):
        _bad_transpose_axes(np.zeros((4, 4), np.float16))


def test_range_select_needs_neuroncore_v3(monkeypatch):
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", "inf2")
    x = _rows(3, 16, 24)
    lo = np.zeros((16, 1), np.float32)
    with pytest.raises(HardwareRuleError, match=r"generation: range_select is available on "
                                                r"NeuronCore-v3"):
        _range_pick(x, lo, lo + 3, 0)
