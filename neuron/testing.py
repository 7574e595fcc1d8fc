"""Property-based testing of your own kernels: hypothesis strategies and ``check``.

Three lines test a kernel against NumPy across dtypes and targets, with dtype-aware tolerances
and a report of the worst ULP error:

    >>> import numpy as np, neuron.testing as nt
    >>> from neuron.demo import tensor_add_kernel
    >>> r = nt.check(tensor_add_kernel, lambda a, b: a + b, shapes=[(256, 512), (256, 512)],
    ...              dtypes=["float32", "bfloat16"], targets=["inf2", "trn2"], max_examples=3)
    >>> print(r)                                         # doctest: +ELLIPSIS
    check tensor_add_kernel: PASS, ... examples x 4 (dtype, target) pairs
      float32  on inf2: worst 0 ULP, relative error 0 (tolerance 0.0001)
    ...

Strategies are built on ``hypothesis.extra.numpy``, so a failing example shrinks value by value:
``arrays`` (NKI dtypes including bfloat16 and fp8, magnitude ranges, special values on request),
``tile_shapes`` (one tile: partition / free splits), ``tiled_shapes`` (multiples of 128
partitions), ``dtypes``. With your own ``@given`` test:

    from hypothesis import given
    from neuron.testing import arrays, assert_close

    @given(arrays((128, 512), "bfloat16", special=True))
    def test_my_kernel(a):
        assert_close(my_kernel(a), np.exp(a.astype(np.float32)), dtype="bfloat16")
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError:                                   # pragma: no cover - exercised in a subprocess
    raise ImportError("neuron.testing needs hypothesis: pip install 'neuron-emu[test]' (or "
                      "pip install hypothesis)") from None

from device import dtypes as ddt

from .compare import Comparison, compare, rtol_for, ulp_distance

__all__ = ["arrays", "dtypes", "tile_shapes", "tiled_shapes", "shapes", "special_values",
           "assert_close", "check", "CheckReport", "compare", "ulp_distance", "rtol_for"]


def _finfo(dt: str):
    import ml_dtypes
    return ml_dtypes.finfo(ddt.to_numpy(dt))


def special_values(dtype) -> list:
    """Values that break kernels: signed zeros, infinities and NaN (where the dtype has them), the
    smallest subnormal and normal, and the largest finite value, with both signs."""
    dt = ddt.normalize(dtype)
    if not ddt.is_float(dt):
        info = np.iinfo(ddt.to_numpy(dt))
        return [0, 1, -1 if info.min < 0 else 2, int(info.min), int(info.max)]
    fi = _finfo(dt)
    vals = [0.0, -0.0, float(fi.smallest_subnormal), float(fi.smallest_normal), float(fi.max),
            -float(fi.smallest_subnormal), -float(fi.max), np.nan]
    with np.errstate(over="ignore"):
        if np.isinf(np.float32(np.inf).astype(ddt.to_numpy(dt))):
            vals += [np.inf, -np.inf]
    return vals


def dtypes(kinds=("float32", "bfloat16", "float16")):
    """A strategy choosing one of ``kinds``."""
    return st.sampled_from(list(kinds))


def tile_shapes(max_partitions=128, max_free=2048):
    """(P, F) shapes that fit one tile: 1..128 partitions, odd free sizes included."""
    return st.tuples(st.integers(1, max_partitions), st.integers(1, max_free))


def tiled_shapes(max_tiles=4, partitions=128, max_free=2048, ragged=False):
    """(rows, F) shapes for kernels that loop over 128-partition tiles: rows a multiple of
    ``partitions`` (plus a partial last tile when ``ragged``), F from 1 to ``max_free``."""
    rows = st.integers(1, max_tiles).map(lambda n: n * partitions)
    if ragged:
        rows = st.tuples(st.integers(0, max_tiles - 1), st.integers(1, partitions)).map(
            lambda t: t[0] * partitions + t[1])
    return st.tuples(rows, st.integers(1, max_free))


def shapes(min_dims=1, max_dims=3, max_side=300):
    """Any shape (``hypothesis.extra.numpy.array_shapes``)."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def _elements(dt, min_value, max_value, special):
    if not ddt.is_float(dt):
        info = np.iinfo(ddt.to_numpy(dt))
        lo = int(max(info.min, -1000 if min_value is None else min_value))
        hi = int(min(info.max, 1000 if max_value is None else max_value))
        el = st.integers(lo, hi)
        return el | st.sampled_from(special_values(dt)) if special else el
    fi = _finfo(dt)
    lo = -4.0 if min_value is None else float(min_value)
    hi = 4.0 if max_value is None else float(max_value)
    lo, hi = max(lo, -float(fi.max)), min(hi, float(fi.max))
    el = st.floats(lo, hi, width=32, allow_nan=False, allow_infinity=False)
    return el | st.sampled_from(special_values(dt)) if special else el


@st.composite
def arrays(draw, shape, dtype="float32", *, min_value=None, max_value=None, magnitude=None,
           special=False, dense=True, low=None, high=None):
    """Arrays of an NKI dtype, values in ``[min_value, max_value]`` (default -4..4).

    - ``magnitude=(lo_exp, hi_exp)``: scale each array by 10**e, e drawn in that range (tiny and
      huge values; results that overflow the dtype become its largest finite value unless
      ``special``).
    - ``special=True``: some elements are signed zeros, infinities, NaN, subnormals, the extremes.
    - ``dense=True`` (default): every element differs (a uniform background from a drawn seed, so
      indexing bugs show), overlaid with up to 16 drawn elements at drawn positions that shrink
      value by value (and carry the special values); ``dense=False``: exactly
      ``hypothesis.extra.numpy.arrays`` (one fill value plus sparse drawn elements), cheaper to
      shrink.

    ``shape`` and ``dtype`` may be strategies. ``low``/``high`` are the old names of the range.
    """
    shape = draw(shape) if isinstance(shape, st.SearchStrategy) else tuple(shape)
    dt = ddt.normalize(draw(dtype) if isinstance(dtype, st.SearchStrategy) else dtype)
    min_value = low if min_value is None else min_value
    max_value = high if max_value is None else max_value
    is_float = ddt.is_float(dt)
    el = _elements(dt, min_value, max_value, special)
    base_dt = np.float32 if is_float else np.int64
    if not dense:
        vals = draw(hnp.arrays(base_dt, shape, elements=el))
    else:
        seed = draw(st.integers(0, 2 ** 32 - 1))
        rng = np.random.default_rng(seed)
        if is_float:
            lo = -4.0 if min_value is None else float(min_value)
            hi = 4.0 if max_value is None else float(max_value)
            bg = rng.uniform(lo, hi, size=shape).astype(np.float32)
        else:
            info = np.iinfo(ddt.to_numpy(dt))
            bg = rng.integers(max(info.min, -1000 if min_value is None else min_value),
                              min(info.max, 1000 if max_value is None else max_value) + 1,
                              size=shape)
        vals = bg.astype(np.float64 if is_float else np.int64)
        size = vals.size
        if size:                 # drawn elements at drawn positions: these shrink value by value
            flat = vals.reshape(-1)
            for i, v in draw(st.lists(st.tuples(st.integers(0, size - 1), el),
                                      max_size=min(size, 16))):
                flat[i] = v
    if magnitude is not None and is_float:
        e = draw(st.integers(*magnitude))
        with np.errstate(over="ignore", invalid="ignore"):
            vals = (vals.astype(np.float64) * 10.0 ** e)
        if not special:
            fmax = float(_finfo(dt).max)
            vals = np.clip(vals, -fmax, fmax)
    if is_float:
        with np.errstate(over="ignore", invalid="ignore"):
            return ddt.round_to(np.asarray(vals, np.float64).astype(np.float32)
                                if dt != "float64" else np.asarray(vals), dt)
    return np.asarray(vals).astype(ddt.to_numpy(dt))


def assert_close(actual, expected, dtype=None, rtol=None, atol=None):
    """Assert ``actual`` matches ``expected`` within the dtype's tolerance (``neuron.compare``).

    ``atol`` additionally accepts element-wise absolute differences up to ``atol``.
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    c = compare(actual, expected, dtype=dtype, rtol=rtol)
    if c.ok:
        return c
    if atol is not None:
        with np.errstate(invalid="ignore"):
            d = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
        if bool(np.all((d <= atol) | (np.isnan(actual.astype(np.float64)) &
                                       np.isnan(expected.astype(np.float64))))):
            return c
    raise AssertionError(str(c))


@dataclass
class CheckReport:
    """What ``check`` ran: per (dtype, target) the worst ULP and relative error seen."""
    kernel: str
    examples: int = 0                              # hypothesis examples that ran to the end
    worst: dict = field(default_factory=dict)      # (dtype, target) -> Comparison

    def note(self, key, c: Comparison):
        old = self.worst.get(key)
        if old is None or (c.worst_ulp, c.rel_error) > (old.worst_ulp, old.rel_error):
            self.worst[key] = c

    @property
    def worst_ulp(self) -> int:
        return max((c.worst_ulp for c in self.worst.values()), default=0)

    def __str__(self):
        lines = [f"check {self.kernel}: PASS, {self.examples} examples x {len(self.worst)} "
                 f"(dtype, target) pairs"]
        for (dt, tgt), c in self.worst.items():
            lines.append(f"  {dt:8s} on {tgt}: worst {c.worst_ulp} ULP, relative error "
                         f"{c.rel_error:.3g} (tolerance {c.rtol:.3g})")
        return "\n".join(lines)


def _runner(kernel, target):
    from nki.tracing import Kernel
    k = kernel if isinstance(kernel, Kernel) else Kernel(kernel)
    if target is None:
        return k
    return Kernel(k.fn, lnc=k.lnc, target=target, **k.options)


def check(kernel, reference, shapes, dtypes=("float32",), targets=(None,), *, rtol=None,
          min_value=None, max_value=None, magnitude=None, special=False, max_examples=None,
          out_dtype=None, hypothesis_settings=None) -> CheckReport:
    """Run ``kernel`` against the NumPy ``reference`` on hypothesis-drawn inputs, for every dtype
    and target; raise ``AssertionError`` (after shrinking) naming the dtype, target, inputs' shapes
    and the relative / ULP error; return a ``CheckReport`` with the worst ULP error per pair.

    ``shapes``: one shape (or strategy) per kernel argument, or one strategy drawing the whole
    list. Inputs of each run have the run's dtype; ``reference`` receives them as float32 (float64
    for float64) NumPy arrays. The result is compared at the kernel output's dtype (or
    ``out_dtype``) with ``neuron.compare`` tolerances (``rtol`` overrides them).
    ``hypothesis_settings``: a ``hypothesis.settings`` to start from (e.g. fewer shrink phases);
    by default the current profile's.
    """
    name = getattr(kernel, "__name__", None) or getattr(getattr(kernel, "fn", None), "__name__",
                                                        "kernel")
    report = CheckReport(name)
    runners = {t: _runner(kernel, t) for t in targets}
    shape_strategy = shapes if isinstance(shapes, st.SearchStrategy) else st.tuples(
        *[s if isinstance(s, st.SearchStrategy) else st.just(tuple(s)) for s in shapes])

    kw = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                    HealthCheck.data_too_large])
    if max_examples is not None:
        kw["max_examples"] = max_examples

    @settings(hypothesis_settings, **kw) if hypothesis_settings is not None else settings(**kw)
    @given(data=st.data())
    def prop(data):
        arg_shapes = data.draw(shape_strategy, label="shapes")
        for dt in dtypes:
            args = [data.draw(arrays(s, dt, min_value=min_value, max_value=max_value,
                                     magnitude=magnitude, special=special), label=f"{dt} input")
                    for s in arg_shapes]
            wide = [a.astype(np.float64 if a.dtype == np.float64 else np.float32)
                    if ddt.is_float(ddt.normalize(a.dtype)) else a for a in args]
            want = reference(*wide)
            for tgt, k in runners.items():
                got = k(*args)
                pairs = zip(got, want) if isinstance(got, tuple) else [(got, want)]
                for g, w in pairs:
                    odt = out_dtype or np.asarray(g).dtype
                    c = compare(g, np.asarray(w), dtype=odt, rtol=rtol)
                    if not c.ok:
                        raise AssertionError(
                            f"{name} on {tgt or 'the default target'} with {dt} inputs of shapes "
                            f"{[list(s) for s in arg_shapes]}: {c}")
                    report.note((dt, tgt or "default"), c)
        report.examples += 1

    prop()
    return report
