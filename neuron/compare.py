"""Comparing emulator results with a reference: relative error, ULP distance, dtype tolerances.

Needs only NumPy (the CLI and ``neuron.testing`` both use it):

    >>> import numpy as np
    >>> ulp_distance(np.float32([1.0, 2.0]), np.float32([1.0, np.nextafter(2, 3, dtype=np.float32)]))
    array([0, 1])
    >>> c = compare(np.float32([1.0, 2.0]), np.float32([1.0, 2.0001]))
    >>> c.ok, f"{c.rel_error:.1e}", c.worst_ulp
    (True, '5.0e-05', 419)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from device import dtypes as ddt

# Normwise relative tolerance (max |actual - expected| / max |expected|) per result dtype: a few
# roundings of the dtype plus fp32 summation-order differences in long reductions.
RTOL = {"float64": 1e-6, "float32": 1e-4, "tfloat32": 4e-3, "float16": 4e-3,
        "bfloat16": 3.2e-2, "float8_e4m3": 2.5e-1, "float8_e4m3fn": 2.5e-1,
        "float8_e5m2": 5e-1}


def rtol_for(dtype) -> float:
    """The default tolerance for results of ``dtype`` (0 for integers: they must match)."""
    dt = ddt.normalize(dtype)
    return RTOL.get(dt, 0.0 if not ddt.is_float(dt) else 1e-4)


def ulp_distance(actual, expected, dtype=None) -> np.ndarray:
    """Per element, how many representable ``dtype`` values lie between actual and expected.

    Both are rounded to ``dtype`` (default: actual's) first; NaN against NaN is 0, NaN against a
    number is the largest int64.
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    dt = np.dtype(ddt.to_numpy(ddt.normalize(dtype or actual.dtype)))
    if dt.kind in "iub":
        return np.abs(actual.astype(np.int64) - expected.astype(np.int64))
    bits = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}[dt.itemsize]
    a = actual.astype(np.float64).astype(dt) if actual.dtype != dt else actual
    b = expected.astype(np.float64).astype(dt) if expected.dtype != dt else expected
    ia, ib = a.view(bits).astype(np.int64), b.view(bits).astype(np.int64)
    mask = (1 << (8 * dt.itemsize - 1)) - 1
    oa = np.where(ia < 0, -(ia & mask), ia)          # sign-magnitude -> ordered integers
    ob = np.where(ib < 0, -(ib & mask), ib)
    d = np.abs(oa - ob)
    na, nb = np.isnan(a.astype(np.float64)), np.isnan(b.astype(np.float64))
    d = np.where(na & nb, 0, d)
    return np.where(na ^ nb, np.iinfo(np.int64).max, d)


@dataclass
class Comparison:
    """The outcome of ``compare``: errors, the tolerance used and the verdict."""
    dtype: str
    rel_error: float          # max |actual - expected| / max |expected| (normwise)
    max_abs_error: float
    worst_ulp: int            # largest ULP distance in ``dtype``
    worst_index: tuple        # where the largest absolute error is
    rtol: float
    ok: bool
    nonfinite_mismatches: int = 0   # elements where NaN / inf differ from the reference

    def __str__(self):
        verdict = "PASS" if self.ok else "FAIL"
        if self.nonfinite_mismatches:
            return (f"{verdict}: {self.nonfinite_mismatches} element(s) are NaN or infinite where "
                    f"the reference is not (or the other way round), first at index "
                    f"{list(self.worst_index)}")
        return (f"{verdict}: relative error {self.rel_error:.3g} (tolerance {self.rtol:.3g} for "
                f"{self.dtype}), worst {self.worst_ulp} ULP, max abs error {self.max_abs_error:.3g} "
                f"at index {list(self.worst_index)}")


def compare(actual, expected, dtype=None, rtol=None) -> Comparison:
    """Compare ``actual`` with ``expected`` at the precision of ``dtype`` (default: actual's)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        raise ValueError(f"shapes differ: actual {actual.shape}, expected {expected.shape}")
    dt = ddt.normalize(dtype or actual.dtype)
    tol = rtol_for(dt) if rtol is None else float(rtol)
    x, y = actual.astype(np.float64), expected.astype(np.float64)
    if actual.size == 0:
        return Comparison(dt, 0.0, 0.0, 0, (), tol, True)
    nan_ok = np.isnan(x) == np.isnan(y)
    same_inf = (x == y) | ~np.isinf(y)
    with np.errstate(invalid="ignore"):
        err = np.where(np.isnan(x) & np.isnan(y), 0.0, np.abs(x - y))
        err = np.where(np.isinf(y) & (x == y), 0.0, err)
    finite_ref = np.abs(y[np.isfinite(y)])
    scale = float(finite_ref.max()) if finite_ref.size else 0.0
    err_f = np.where(np.isfinite(err), err, np.inf)
    max_abs = float(err_f.max())
    rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
    bad = ~(nan_ok & same_inf)
    n_bad = int(bad.sum())
    ulp = ulp_distance(actual, expected, dt)
    where = np.argmax(bad) if n_bad else np.argmax(err_f)
    worst = tuple(int(i) for i in np.unravel_index(int(where), actual.shape))
    ok = bool(n_bad == 0 and rel <= tol)
    return Comparison(dt, rel, max_abs, int(ulp.max()), worst, tol, ok, n_bad)
