"""A product that overflows fp32 inside a dot or convolution is +-inf on every executor (the PE's
rule, device/isa/pe.py ``products_sum``), even when a NaN sits elsewhere in the same tile (issue 9,
found by the seed-3 fuzz run with special float inputs: a NaN hid the PE's overflow check, and the
fast path's fused fp32 BLAS call turned 2.6e38 - 3.75e38 into a finite -1.1e38).

The graph reference is not the judge here: it computes dots with fp32 BLAS, whose answer for a
finite product beyond fp32 depends on FMA and summation order (as XLA's does)."""
from __future__ import annotations

import numpy as np
import pytest

import neuron

DOT = """HloModule d
ENTRY e {
  a = f32[2,K] parameter(0)
  b = f32[K,1] parameter(1)
  ROOT r = f32[2,1] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}
"""

CONV = """HloModule c
ENTRY e {
  x = f32[1,2,9] parameter(0)
  k = f32[3,2,3] parameter(1)
  ROOT y = f32[1,3,9] convolution(x, k), window={size=3 pad=1_1}, dim_labels=bf0_oi0->bf0
}
"""

EXECUTORS = ("fast", "exact", "reference")


def _on_every_executor(text, args, monkeypatch):
    outs = []
    for ex in EXECUTORS:
        monkeypatch.setenv("NEURON_EMU_EXECUTOR", ex)
        outs.append(neuron.load_hlo(text)(*args))
    for ex, o in zip(EXECUTORS[1:], outs[1:]):
        np.testing.assert_array_equal(o, outs[0], err_msg=f"{ex} differs from fast")
    return outs[0]


@pytest.mark.parametrize("K", [2, 300])                   # one matmul; a K-tiled PSUM group
def test_overflowing_product_beside_a_nan_is_inf(K, monkeypatch):
    a = np.zeros((2, K), np.float32)
    b = np.zeros((K, 1), np.float32)
    a[0, 0], a[0, K - 1], b[0, 0], b[K - 1, 0] = 0.875, -3e38, 3e38, 1.25   # 2.6e38 + -3.75e38
    a[1, K // 2] = np.nan                                  # in the same tile, another row
    got = _on_every_executor(DOT.replace("K", str(K)), (a, b), monkeypatch)
    assert got[0, 0] == -np.inf and np.isnan(got[1, 0])


def test_without_a_nan_the_same_dot_is_inf_too(monkeypatch):
    a = np.array([[0.875, -3e38], [2.0, 1.0]], np.float32)
    b = np.array([[3e38], [1.25]], np.float32)
    got = _on_every_executor(DOT.replace("K", "2"), (a, b), monkeypatch)
    assert got[0, 0] == -np.inf and np.isposinf(got[1, 0])    # 6e38 + 1.25


def test_convolution_overflow_beside_nan(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 9)).astype(np.float32)
    k = rng.standard_normal((3, 2, 3)).astype(np.float32)
    x[0, 0, 7], x[0, 1, 5], k[1, 0, 2], k[1, 1, 2] = np.nan, -3e38, 3e38, 1.25
    got = _on_every_executor(CONV, (x, k), monkeypatch)
    # y[0, 1, 4] holds x[0, 1, 5] * k[1, 1, 2] = -3.75e38 (overflows) beside finite terms
    assert np.isneginf(got[0, 1, 4])
