"""Op table references: numerics checked against NumPy (float64) and, where XLA's semantics
differ from NumPy's (integer division, float->int conversion, bf16 rounding), against JAX."""
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowering import Graph, TensorType, broadcast_binary, evaluate

SIZES = st.sampled_from([1, 2, 7, 16, 200, 300])


def run(opcode, arrays, attrs=None, dtypes=None):
    """Build a one-op graph over ``arrays`` and evaluate it."""
    g = Graph()
    dtypes = dtypes or [a.dtype for a in arrays]
    params = [g.param(TensorType(a.shape, dt)) for a, dt in zip(arrays, dtypes)]
    g.set_outputs([g.add_op(opcode, params, attrs or {})])
    g.verify()
    return evaluate(g, *arrays)[0]


def test_integer_divide_truncates_like_xla():
    a = np.array([7, -7, 7, -7, 0, 5], np.int32)
    b = np.array([2, 2, -2, -2, 3, 0], np.int32)
    expected = np.asarray(jax.jit(lambda a, b: jax.lax.div(a, b))(a, b))
    np.testing.assert_array_equal(run("divide", [a, b])[:5], expected[:5])
    assert run("divide", [a, b])[5] == -1  # XLA defines integer x/0 as -1


def test_float_to_int_convert_saturates_like_xla():
    x = np.array([1e10, -1e10, np.nan, 2.7, -2.7, 0.5, np.inf], np.float32)
    for dt in ("int32", "int8", "uint8"):
        expected = np.asarray(jax.jit(lambda x: x.astype(dt))(x))
        np.testing.assert_array_equal(run("convert", [x], {"dtype": dt}), expected)


def test_bf16_elementwise_rounds_once_per_op():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(1000).astype(ml_dtypes.bfloat16)
    b = rng.standard_normal(1000).astype(ml_dtypes.bfloat16)
    ours = run("add", [a, b])
    assert ours.dtype == ml_dtypes.bfloat16
    exact = (a.astype(np.float32) + b.astype(np.float32)).astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(ours.view(np.uint16), exact.view(np.uint16))
    np.testing.assert_array_equal(ours.view(np.uint16),
                                  np.asarray(jax.jit(jnp.add)(a, b)).view(np.uint16))


def test_bf16_dot_accumulates_in_f32():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((8, 512)).astype(ml_dtypes.bfloat16)
    b = rng.standard_normal((512, 4)).astype(ml_dtypes.bfloat16)
    ours = run("dot", [a, b], {"lhs_contract": [1], "rhs_contract": [0]})
    exact = (a.astype(np.float32) @ b.astype(np.float32)).astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(ours.astype(np.float32), exact.astype(np.float32))


def test_dot_general_batch_and_multiple_contracting_dims():
    rng = np.random.default_rng(3)
    lhs = rng.standard_normal((3, 5, 2, 4))   # dims: k1 b m k2
    rhs = rng.standard_normal((4, 5, 6, 3))   # dims: k2 b n k1
    out = run("dot", [lhs, rhs], {"lhs_batch": [1], "rhs_batch": [1], "lhs_contract": [0, 3],
                                  "rhs_contract": [3, 0]}, dtypes=["float64", "float64"])
    np.testing.assert_allclose(out, np.einsum("kbmj,jbnk->bmn", lhs, rhs), rtol=1e-12)


def test_broadcast_with_unsorted_dims_and_transpose():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = run("broadcast", [x], {"shape": [3, 4, 2], "dims": [2, 0]})
    np.testing.assert_array_equal(out, np.broadcast_to(x.T[:, None, :], (3, 4, 2)))
    np.testing.assert_array_equal(run("transpose", [x], {"perm": [1, 0]}), x.T)


@pytest.mark.parametrize("kind, fn", [("add", np.sum), ("mul", np.prod), ("max", np.max),
                                      ("min", np.min)])
def test_reduce_kinds_and_empty_dims(kind, fn):
    x = np.random.default_rng(4).standard_normal((3, 4, 5)).astype(np.float32)
    np.testing.assert_allclose(run("reduce", [x], {"dims": [0, 2], "kind": kind}),
                               fn(x, axis=(0, 2)), rtol=1e-5)
    empty = np.zeros((0, 3), np.float32)
    identity = {"add": 0, "mul": 1, "max": -np.inf, "min": np.inf}[kind]
    np.testing.assert_array_equal(run("reduce", [empty], {"dims": [0], "kind": kind}),
                                  np.full(3, identity, np.float32))


def test_compare_select_iota_and_unary_ops():
    x = np.array([-2.0, -0.5, 0.0, 3.0], np.float32)
    mask = run("compare", [x, np.zeros(4, np.float32)], {"direction": "GE"})
    assert mask.dtype == np.bool_ and mask.tolist() == [False, False, True, True]
    np.testing.assert_array_equal(run("select", [mask, x, -x]), np.abs(x))
    for opcode, fn in [("exp", np.exp), ("tanh", np.tanh), ("negate", np.negative),
                       ("abs", np.abs)]:
        np.testing.assert_allclose(run(opcode, [x]), fn(x), rtol=1e-6)
    pos = np.array([0.25, 4.0], np.float32)
    np.testing.assert_allclose(run("rsqrt", [pos]), [2.0, 0.5])
    np.testing.assert_allclose(run("sqrt", [pos]), [0.5, 2.0])
    np.testing.assert_allclose(run("log", [pos]), np.log(pos), rtol=1e-6)
    g = Graph()
    g.set_outputs([g.add_op("iota", [], {"shape": [2, 3], "dtype": "int32", "dimension": 1})])
    np.testing.assert_array_equal(evaluate(g)[0], [[0, 1, 2], [0, 1, 2]])


@given(m=SIZES, k=SIZES, n=SIZES, seed=st.integers(0, 2**16),
       opcode=st.sampled_from(["add", "subtract", "multiply", "maximum", "minimum"]))
def test_property_dot_then_elementwise_matches_numpy(m, k, n, seed, opcode):
    """exp-free epilogue over the dot (values stay in a range where f32 is accurate)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, k), dtype=np.float32)
    w = rng.standard_normal((k, n), dtype=np.float32)
    b = rng.standard_normal((n,), dtype=np.float32)
    g = Graph()
    px, pw, pb = (g.param(TensorType(a.shape, "float32")) for a in (x, w, b))
    y = g.add_op("dot", [px, pw], {"lhs_contract": [1], "rhs_contract": [0]})
    g.set_outputs([broadcast_binary(g, opcode, y, pb)])
    g.verify()
    (out,) = evaluate(g, x, w, b)
    ref = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply,
           "maximum": np.maximum, "minimum": np.minimum}[opcode](x.astype(np.float64) @ w, b)
    assert out.shape == (m, n) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.sqrt(k))
