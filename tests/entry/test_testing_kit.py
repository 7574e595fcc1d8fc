"""neuron.testing: strategies on hypothesis.extra.numpy, special values, tiled shapes, check()."""
import ml_dtypes
import numpy as np
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

import neuron
import nki
import nki.language as nl
import neuron.testing as nt
from neuron.compare import compare, ulp_distance


@nki.jit
def scale(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    for i in nl.affine_range(a.shape[0] // 128):
        nl.store(out[i * 128:(i + 1) * 128], nl.multiply(nl.load(a[i * 128:(i + 1) * 128]), 3.0))
    return out


@nki.jit
def scale_first_tile_only(a):                    # the bug: only the first 128 rows are written
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    nl.store(out[0:128], nl.multiply(nl.load(a[0:128]), 3.0))
    return out


@settings(max_examples=10)
@given(nt.arrays(nt.tile_shapes(max_free=64), nt.dtypes(["float32", "bfloat16", "int32"]),
                 min_value=-2, max_value=2))
def test_arrays_respect_dtype_and_range(a):
    assert a.dtype in (np.float32, ml_dtypes.bfloat16, np.int32)
    assert a.shape[0] <= 128 and np.all(np.abs(a.astype(np.float64)) <= 2)


def test_arrays_shrink_value_by_value():
    a = find(nt.arrays((4, 4), "float32", dense=False), lambda a: bool((a > 1.5).any()))
    assert set(np.unique(a).tolist()) <= {0.0, 2.0} and float(a.max()) == 2.0   # simplest values


def test_special_values_are_drawn_on_request():
    a = find(nt.arrays((4, 4), "bfloat16", special=True),
             lambda a: bool(np.isnan(a.astype(np.float32)).any()))
    assert a.dtype == ml_dtypes.bfloat16
    fi = ml_dtypes.finfo(ml_dtypes.bfloat16)
    assert float(fi.smallest_subnormal) in nt.special_values("bfloat16")
    assert np.inf in nt.special_values("bfloat16") and -0.0 in nt.special_values("bfloat16")
    assert not any(np.isinf(v) for v in nt.special_values("float8_e4m3fn"))   # no inf in e4m3fn


def test_magnitude_ranges_reach_tiny_and_huge_values():
    big = find(nt.arrays((2, 2), "float32", magnitude=(-30, 30)),
               lambda a: float(np.abs(a).max()) > 1e25)
    tiny = find(nt.arrays((2, 2), "float32", magnitude=(-30, 30)),
                lambda a: 0 < float(np.abs(a).max()) < 1e-25)
    assert np.isfinite(big).all() and np.isfinite(tiny).all()


@settings(max_examples=10)
@given(nt.tiled_shapes(max_tiles=3, max_free=100), nt.tiled_shapes(ragged=True))
def test_tiled_shapes(s, r):
    assert s[0] % 128 == 0 and 128 <= s[0] <= 384 and 1 <= s[1] <= 100
    assert 1 <= r[0] <= 512


def test_check_passes_across_dtypes_and_targets_and_reports_worst_ulp():
    r = nt.check(scale, lambda a: a * 3, shapes=[nt.tiled_shapes(max_tiles=2, max_free=32)],
                 dtypes=["float32", "bfloat16"], targets=["inf2", "trn2"], max_examples=4)
    assert set(r.worst) == {("float32", "inf2"), ("float32", "trn2"), ("bfloat16", "inf2"),
                            ("bfloat16", "trn2")}
    assert r.worst_ulp == 0 and r.examples >= 1
    text = str(r)
    assert text.startswith("check scale: PASS, ") and "bfloat16 on trn2: worst 0 ULP" in text


def test_check_finds_a_bug_and_names_dtype_target_and_error():
    with pytest.raises(AssertionError) as e, pytest.warns(neuron.UnwrittenOutputWarning):
        nt.check(scale_first_tile_only, lambda a: a * 3, shapes=[(256, 2)], dtypes=["float16"],
                 targets=["trn2"], max_examples=2,
                 hypothesis_settings=settings(phases=[Phase.explicit, Phase.generate]))
    msg = str(e.value)
    assert "scale_first_tile_only on trn2 with float16 inputs of shapes [[256, 2]]" in msg
    assert "FAIL: 256 element(s) are NaN or infinite where the reference is not" in msg


def test_compare_and_ulp():
    one = np.float32(1.0)
    assert ulp_distance(np.float32([one]), np.float32([np.nextafter(one, 2, dtype=np.float32)]))[0] == 1
    assert ulp_distance(np.float32([-0.0]), np.float32([0.0]))[0] == 0
    c = compare(np.float32([1.0, 2.0]), np.float32([1.0, 2.5]))
    assert not c.ok and "FAIL: relative error 0.2 (tolerance 0.0001 for float32)" in str(c)
    with pytest.raises(AssertionError, match="tolerance 0.032 for bfloat16"):
        nt.assert_close(np.float32([1.0]), np.float32([1.1]), dtype="bfloat16")
