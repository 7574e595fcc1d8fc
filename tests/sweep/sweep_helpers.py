"""Shared pieces of the coverage sweep: hypothesis strategies, kernel runners, ulp comparison.

Tolerances are measured in units in the last place (ulps) *of the destination dtype*: both arrays
are mapped to their bit patterns' ordinal (sign-magnitude -> monotone integer), so one ulp means
"the neighbouring representable value" whatever the dtype (fp32, bf16, fp16, fp8).

    >>> ulp_diff(np.float32([1.0]), np.float32([np.nextafter(np.float32(1), np.float32(2))]), "float32")
    array([1])
"""
from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from hypothesis import strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device import dtypes
from device.errors import NeuronError

FLOATS = ("float32", "bfloat16", "float16")
FP8 = ("float8_e4m3", "float8_e5m2")
ALL_FLOATS = FLOATS + FP8
INTS = ("int8", "int16", "int32", "uint8", "uint16", "uint32")
TARGETS = ("inf2", "trn2")

parts = st.integers(1, 128)
# free sizes: mostly small (fast), sometimes up to ~600, odd ones included by construction
free = st.one_of(st.integers(1, 48), st.integers(1, 600))
target = st.sampled_from(TARGETS)
seed = st.integers(0, 2**31 - 1)


def npdt(dt):
    return dtypes.to_numpy(dt)


def finite_range(dt):
    """(smallest positive normal, largest finite) of a float dtype."""
    if dt == "float32":
        return 2.0 ** -126, float(np.finfo(np.float32).max)
    fi = __import__("ml_dtypes").finfo(npdt(dt))
    return float(fi.smallest_normal), float(fi.max)


def values(rng, shape, dt, lo=-4.0, hi=4.0, log=False):
    """Random values exactly representable in ``dt`` inside [lo, hi] (log-uniform magnitudes with
    ``log=True``, keeping the signs of lo/hi); ints are uniform in [lo, hi] clipped to the dtype."""
    if dt in dtypes.INTS:
        info = np.iinfo(npdt(dt))
        a, b = max(int(lo), info.min), min(int(hi), info.max)
        return rng.integers(a, b, size=shape, endpoint=True).astype(npdt(dt))
    if log:
        tiny, big = finite_range(dt)
        mlo, mhi = max(abs(lo) if lo > 0 else tiny, tiny), min(abs(hi), big)
        mag = np.exp(rng.uniform(np.log(mlo), np.log(mhi), size=shape))
        sign = np.ones(shape) if lo > 0 else (-np.ones(shape) if hi < 0 else rng.choice([-1, 1], shape))
        x = sign * mag
    else:
        x = rng.uniform(lo, hi, size=shape)
    _, big = finite_range(dt)
    x = np.clip(x, -big, big).astype(np.float32)
    r = dtypes.round_to(x, dt)
    # rounding may step just outside [lo, hi] (e.g. pi in bf16): pull those back in one ulp
    f = r.astype(np.float64)
    r = np.where(f > hi, dtypes.round_to(np.float32(hi) * (1 - 2 ** -3), dt), r)
    r = np.where(r.astype(np.float64) < lo, dtypes.round_to(np.float32(lo) * (1 - 2 ** -3), dt), r)
    return r.astype(npdt(dt))


def ordinal(a, dt):
    """Monotone integer image of each value's bit pattern (adjacent floats differ by 1)."""
    a = np.ascontiguousarray(np.asarray(a).astype(npdt(dt)))
    bits = a.view(f"uint{8 * a.dtype.itemsize}").astype(np.int64)
    sign = 1 << (8 * a.dtype.itemsize - 1)
    return np.where(bits & sign, -(bits & (sign - 1)), bits)


def ulp_diff(got, want, dt):
    return np.abs(ordinal(got, dt) - ordinal(want, dt))


def expect(got, want_f, dt, ulps=0, atol=0.0, why=""):
    """``got`` (a kernel output of dtype ``dt``) equals ``round_to(want_f, dt)`` within ``ulps``
    ulps of ``dt``, or within ``atol`` absolutely (for cancellation points of composite formulas).

    ``want_f`` is the float64/float32 reference before the output stage's rounding. Ints: exact
    unless ``ulps``/``atol`` say otherwise. NaN must match NaN, inf must match inf.
    """
    got = np.asarray(got)
    with np.errstate(over="ignore"):      # references beyond fp32 range round to inf, as on device
        want = dtypes.round_to(np.asarray(want_f, np.float64).astype(np.float32)
                               if dtypes.is_float(dt) else np.asarray(want_f), dt)
    assert got.dtype == npdt(dt), (got.dtype, dt)
    assert got.shape == want.shape, (got.shape, want.shape)
    g, w = got.astype(np.float64), want.astype(np.float64)
    if dtypes.is_float(dt):
        assert np.array_equal(np.isnan(g), np.isnan(w)), _msg(g, w, np.isnan(g) != np.isnan(w), why)
        fin = ~np.isnan(g)
        with np.errstate(invalid="ignore"):
            bad = fin & (g != w) & (ulp_diff(got, want, dt) > ulps) & ~(np.abs(g - w) <= atol)
    else:
        bad = ~(np.abs(g - w) <= max(atol, ulps))
    assert not bad.any(), _msg(g, w, bad, why)


def _msg(g, w, bad, why):
    idx = np.argwhere(bad)[:5]
    pairs = [(tuple(int(k) for k in ix), g[tuple(ix)], w[tuple(ix)]) for ix in idx]
    return f"{int(bad.sum())} mismatches ({why}): (index, got, want) {pairs}"


# ---- kernels ----------------------------------------------------------------------------------
def run(fn, *args, target="inf2", lnc=1):
    k = nki.jit(fn, target=target)
    return (k[lnc] if lnc != 1 else k)(*args)


def load(x, dtype=None):
    t = nl.ndarray(x.shape, dtype or x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=x)
    return t


def store(t):
    out = nl.ndarray(t.shape, t.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=t)
    return out


def to_sbuf(t):
    """An SBUF copy of a PSUM tile (DMA cannot read PSUM)."""
    s = nl.ndarray(t.shape, t.dtype, buffer=nl.sbuf)
    nisa.tensor_copy(dst=s, src=t)
    return s


def raises(fn, args, *says, target="inf2", kind=NeuronError, lnc=1):
    """Running ``fn`` raises ``kind`` whose message contains every ``says``; returns the error."""
    with pytest.raises(kind) as e:
        run(fn, *args, target=target, lnc=lnc)
    for s in says:
        assert s in str(e.value), f"{s!r} not in {str(e.value)!r}"
    if isinstance(e.value, NeuronError) and e.value.loc is not None:
        assert e.value.loc.file == inspect.getsourcefile(fn) or "sweep" in str(e.value.loc.file), \
            e.value.loc
    return e.value


def fsum_bound(x, axis):
    """Error bound of an fp32 sum: n * 2^-24 * sum|x| along ``axis`` (any summation order)."""
    n = np.prod([x.shape[a] for a in np.atleast_1d(axis)])
    return n * 2.0 ** -24 * np.sum(np.abs(x.astype(np.float64)), axis=axis)


def erf64(x):
    return np.vectorize(math.erf, otypes=[np.float64])(np.asarray(x, np.float64))
