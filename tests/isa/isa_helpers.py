"""Shared helpers for the nki.isa instruction tests: kernels on random data vs NumPy references."""
from __future__ import annotations

import sys

import ml_dtypes
import numpy as np
import pytest
from hypothesis import strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device import dtypes
from device.errors import NeuronError

FLOATS = ["float32", "bfloat16", "float16"]
FP8 = ["float8_e4m3", "float8_e5m2"]
TARGETS = ["inf2", "trn2"]

parts = st.integers(1, 128)
odd_free = st.integers(0, 33).map(lambda k: 2 * k + 1)
float_dt = st.sampled_from(FLOATS)
target = st.sampled_from(TARGETS)


def np_dtype(dt):
    return dtypes.to_numpy(dt)


def rand(shape, dt, seed=0, lo=-4.0, hi=4.0):
    """Random values already representable in ``dt`` (so loading them is exact)."""
    r = np.random.default_rng(seed)
    if dt in dtypes.INTS:
        info = np.iinfo(np_dtype(dt))
        return r.integers(max(info.min, -1000), min(info.max, 1000) + 1, size=shape).astype(np_dtype(dt))
    return r.uniform(lo, hi, size=shape).astype(np.float32).astype(np_dtype(dt))


def rnd(x, dt):
    """Round an fp32 reference like the engines' output stage."""
    return dtypes.round_to(np.asarray(x, np.float32), dt)


def f32(x):
    return np.asarray(x).astype(np.float32)


def load(x, dtype=None):
    """An SBUF copy of HBM tensor ``x``."""
    t = nl.ndarray(x.shape, dtype or x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=x)
    return t


def store(t):
    """A shared-HBM copy of on-chip tile ``t`` (the kernel's output)."""
    out = nl.ndarray(t.shape, t.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=t)
    return out


def run(fn, *args, target="inf2"):
    """Trace ``fn`` for ``target`` and run it on the emulator."""
    return nki.jit(fn, target=target)(*args)


def assert_same(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_array_equal(got.astype(np.float64), want.astype(np.float64))


class Line:
    """Records the line of the next statement: ``L.mark(); nisa.op(...)`` on the same line."""

    def __init__(self):
        self.line = None

    def mark(self):
        self.line = sys._getframe(1).f_lineno
        return self


def expect_error(fn, args, line: Line, *says, target="inf2", kind=NeuronError):
    """Run ``fn`` expecting an error whose text contains ``says`` and whose loc is ``line``."""
    with pytest.raises(kind) as e:
        run(fn, *args, target=target)
    text = str(e.value)
    for s in says:
        assert s in text, f"{s!r} not in {text!r}"
    assert e.value.loc is not None and e.value.loc.line == line.line, (e.value.loc, line.line)
    assert e.value.loc.file == __import__("inspect").getsourcefile(fn)
    return e.value


BF16 = ml_dtypes.bfloat16
