"""Kernel inputs that are NumPy views without packed elements: ``np.broadcast_to`` (stride 0),
transposes and slices. A read-only HBM input is read in place, so its strides must be honoured.

The nki-library tests pass ``np.broadcast_to(scale, (128, 1))`` as quantisation scales; under
LNC=2 (inputs in shared HBM, read in place) those read past the caller's buffer before the fix.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nki
import nki.isa as nisa
import nki.language as nl


def _copy_kernel(x):
    t = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=x)
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=t)
    return out


def _run(fn, lnc, *args):
    k = nki.jit(fn, target="trn2")
    return np.asarray((k[lnc] if lnc > 1 else k)(*args))


LAYOUTS = ("broadcast_rows", "broadcast_cols", "broadcast_scalar", "transposed", "sliced")


def _make(layout, P, F, rng):
    if layout == "broadcast_rows":
        return np.broadcast_to(rng.standard_normal((1, F)).astype(np.float32), (P, F))
    if layout == "broadcast_cols":
        return np.broadcast_to(rng.standard_normal((P, 1)).astype(np.float32), (P, F))
    if layout == "broadcast_scalar":
        return np.broadcast_to(np.float32(rng.standard_normal()), (P, F))
    if layout == "transposed":
        return rng.standard_normal((F, P)).astype(np.float32).T
    return rng.standard_normal((P, 2 * F)).astype(np.float32)[:, ::2]


@given(layout=st.sampled_from(LAYOUTS), P=st.integers(1, 128), F=st.integers(1, 24),
       lnc=st.sampled_from((1, 2)))
def test_non_packed_inputs_read_as_numpy_sees_them(layout, P, F, lnc):
    x = _make(layout, P, F, np.random.default_rng(P * 31 + F))
    before = np.array(x)
    got = _run(_copy_kernel, lnc, x)
    np.testing.assert_array_equal(got, np.asarray(x))
    np.testing.assert_array_equal(x, before)            # the caller's array is untouched


@pytest.mark.parametrize("lnc", (1, 2))
def test_broadcast_scale_column_like_the_library(lnc):
    """The library's STATIC-quant tests: a (128, 1) scale made with np.broadcast_to."""
    s = np.broadcast_to(np.array([[0.25]], np.float32), (128, 1))
    b = np.arange(128 * 8, dtype=np.float32).reshape(128, 8)

    def k(s, b):
        t = nl.ndarray((128, 1), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=s)
        u = nl.ndarray((128, 8), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=u, src=b)
        o = nl.ndarray((128, 8), nl.float32, buffer=nl.sbuf)
        nisa.tensor_scalar(dst=o, data=u, op0=nl.multiply, operand0=t)
        out = nl.ndarray((128, 8), nl.float32, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=o)
        return out
    np.testing.assert_array_equal(_run(k, lnc, s, b), b * np.float32(0.25))
