"""Property-based testing helpers for your own kernels: strategies and dtype-aware comparison.

    from hypothesis import given
    from neuron.testing import arrays, assert_close

    @given(arrays(shape=(128, 512), dtype="bfloat16"))
    def test_my_kernel(a):
        assert_close(my_kernel(a), np.exp(a.astype(np.float32)), dtype="bfloat16")
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from device import dtypes as ddt

# relative tolerance of one rounding to each dtype (half an ulp at 1.0, with margin)
_RTOL = {"float32": 1e-5, "tfloat32": 2e-3, "float16": 2e-3, "bfloat16": 1.6e-2,
         "float8_e4m3": 1.3e-1, "float8_e5m2": 2.6e-1}


def dtypes(kinds=("float32", "bfloat16", "float16")):
    return st.sampled_from(list(kinds))


def tile_shapes(max_partitions=128, max_free=2048):
    """(P, F) shapes that fit one tile: 1..128 partitions, odd free sizes included."""
    return st.tuples(st.integers(1, max_partitions), st.integers(1, max_free))


def shapes(min_dims=1, max_dims=3, max_side=300):
    return st.lists(st.integers(1, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


@st.composite
def arrays(draw, shape, dtype="float32", low=-4.0, high=4.0):
    """Random arrays of an NKI dtype (seeded from hypothesis, so failures shrink and replay)."""
    shape = draw(shape) if isinstance(shape, st.SearchStrategy) else tuple(shape)
    dtype = draw(dtype) if isinstance(dtype, st.SearchStrategy) else dtype
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    dt = ddt.normalize(dtype)
    if ddt.is_float(dt):
        x = rng.uniform(low, high, size=shape).astype(np.float32)
        return ddt.round_to(x, dt)
    info = np.iinfo(ddt.to_numpy(dt))
    return rng.integers(max(info.min, -1000), min(info.max, 1000), size=shape).astype(ddt.to_numpy(dt))


def assert_close(actual, expected, dtype=None, rtol=None, atol=None):
    """Compare with a tolerance derived from the output dtype's precision."""
    actual = np.asarray(actual)
    dt = ddt.normalize(dtype or actual.dtype)
    r = rtol if rtol is not None else _RTOL.get(dt, 0.0)
    a = atol if atol is not None else r * 1e-2
    np.testing.assert_allclose(actual.astype(np.float64), np.asarray(expected).astype(np.float64),
                               rtol=r, atol=a)
