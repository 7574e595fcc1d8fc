"""Each newly supported op, as a small JAX function imported from HLO text and StableHLO and
compared with jax.jit (graph reference and emulator run)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

from importer_helpers import check_both

F32 = np.float32


def r(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(F32)


UNARY = {
    "slice": lambda x: x[1:3, ::2],
    "concatenate": lambda x: jnp.concatenate([x, x * 2], axis=0),
    "pad": lambda x: jnp.pad(x, ((1, 2), (0, 1)), constant_values=3.0),
    "pad_interior_negative": lambda x: lax.pad(x, F32(0), [(1, -1, 1), (0, 0, 0)]),
    "select": lambda x: jnp.where(x > 0, x, -0.5 * x),
    "clamp": lambda x: lax.clamp(F32(-0.5), x, F32(0.5)),
    "clip": lambda x: jnp.clip(x, -1, 1),
    "is_finite": lambda x: jnp.where(jnp.isfinite(jnp.log(x)), 1.0, 0.0),
    "rounding": lambda x: jnp.sign(x) + jnp.floor(x * 3) + jnp.ceil(x * 3) + jnp.round(x * 3),
    "log1p_expm1_logistic": lambda x: jnp.log1p(jnp.abs(x)) + jnp.expm1(x) + jax.nn.sigmoid(x),
    "reverse": lambda x: jnp.flip(x, 0),
    "argmax": lambda x: jnp.argmax(x, axis=1),
    "argmin": lambda x: jnp.argmin(x, axis=0),
    "any_all": lambda x: jnp.any(x > 1, axis=1) | jnp.all(x > -1, axis=1),
    "cumsum": lambda x: jnp.cumsum(x, axis=1),
    "maxpool": lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (2, 2), (2, 2), "VALID"),
    "avgpool_same": lambda x: lax.reduce_window(x, 0.0, lax.add, (3, 3), (1, 1), "SAME") / 9,
    "call_relu": lambda x: jax.nn.relu(x) * 2,
    "optimization_barrier": lambda x: lax.optimization_barrier(x * 2) + 1,
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_programs(name, rng):
    check_both(UNARY[name], r(rng, 4, 6))


def test_logic_and_bit_ops(rng):
    x, y = r(rng, 4, 6), r(rng, 4, 6)
    check_both(lambda x, y: (((x > 0) & (y < 0)) | ~(x > y)) ^ (y > 0.5), x, y)
    a = rng.integers(0, 100, (4, 6)).astype(np.int32)
    b = rng.integers(0, 100, (4, 6)).astype(np.int32)
    check_both(lambda a, b: ((a & b) | (a ^ b)) + (~a) + (a << 2) + (b >> 1), a, b)


def test_power_and_remainder(rng):
    x, y = r(rng, 4, 6), r(rng, 4, 6)
    check_both(lambda x, y: jnp.abs(x) ** y + jnp.fmod(x * 5, y + 3), x, y, dev_rtol=1e-3)


def test_dynamic_slice_and_update(rng):
    x, u = r(rng, 6, 5), r(rng, 2, 3)
    for i in (0, 3, 5, -2):                      # 5 and -2 exercise clamping / wrapping
        check_both(lambda x, i: lax.dynamic_slice(x, (i, 1), (2, 4)), x, np.int32(i))
        check_both(lambda x, u, i: lax.dynamic_update_slice(x, u, (i, 2)), x, u, np.int32(i))
    check_both(lambda x: lax.dynamic_slice(x, (2, 1), (3, 3)), x)        # constant starts


def test_gather_take_and_take_along_axis(rng):
    x = r(rng, 6, 4)
    idx = np.array([5, 0, 2, 2, -1], np.int32)
    check_both(lambda x, i: x[i], x, idx)
    check_both(lambda x, i: jnp.take(x, i, axis=1), x, np.array([3, 0, 1], np.int32))
    order = np.argsort(x, axis=1).astype(np.int32)[:, :2]
    check_both(lambda x, o: jnp.take_along_axis(x, o, axis=1), x, order)


def test_scatter_add_and_set(rng):
    x = r(rng, 6, 4)
    idx = np.array([1, 3, 1, 9], np.int32)          # a duplicate and an out-of-bounds index
    check_both(lambda x, i: x.at[i].add(1.5), x, idx)
    check_both(lambda x, i: x.at[i].set(-2.0, mode="drop"), x, idx)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_conv2d_layouts_strides_groups(layout, rng):
    x = r(rng, 2, 4, 7, 7) if layout == "NCHW" else r(rng, 2, 7, 7, 4)
    w = r(rng, 6, 2, 3, 3) if layout == "NCHW" else r(rng, 3, 3, 2, 6)
    dn = ("NCHW", "OIHW", "NCHW") if layout == "NCHW" else ("NHWC", "HWIO", "NHWC")
    f = lambda x, w: lax.conv_general_dilated(x, w, (2, 1), [(1, 1), (0, 2)],
                                               rhs_dilation=(1, 2), dimension_numbers=dn,
                                               feature_group_count=2)
    check_both(f, x, w, dev_rtol=1e-3, dev_atol=1e-3)


def test_while_loops(rng):
    x, w = r(rng, 5, 4), r(rng, 4, 4, scale=0.5)

    def fori(x, w):
        return lax.fori_loop(0, 3, lambda i, h: jnp.tanh(h @ w) + i, x)

    def data_dependent(x):                        # trip count depends on the data
        return lax.while_loop(lambda s: s[0].sum() < 50.0, lambda s: (s[0] * 1.5 + 1, s[1] + 1),
                              (jnp.abs(x), 0))
    check_both(fori, x, w, dev_rtol=1e-3, dev_atol=1e-3)
    check_both(data_dependent, x)


def test_scan_with_dynamic_index(rng):
    x = r(rng, 5, 4)

    def scan(x):
        def step(c, row):
            c = c + row
            return c, c * 2
        return lax.scan(step, jnp.zeros(4, F32), x)
    check_both(scan, x)


def test_sort_and_top_k_import(rng):
    """sort has no device lowering yet: the imported graph reference still matches JAX."""
    x = r(rng, 4, 6)
    check_both(lambda x: jnp.sort(x, axis=1), x, device=False)
    check_both(lambda x: lax.top_k(x, 2), x, device=False)
    check_both(lambda x: jnp.argsort(-x, axis=1), x, device=False)


@settings(max_examples=6)
@given(rows=st.integers(1, 140), cols=st.integers(1, 40), seed=st.integers(0, 3))
def test_argmax_and_rounding_over_shapes(rows, cols, seed):
    rng = np.random.default_rng(seed)
    x = r(rng, rows, cols, scale=4)
    x[0, 0] = np.nan if seed == 3 else x[0, 0]
    check_both(lambda x: (jnp.argmax(x, axis=1), jnp.round(x), jnp.log1p(jnp.abs(x))), x)
