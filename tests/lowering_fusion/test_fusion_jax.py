"""Imported JAX functions: the fused lowering (the default) is bit-identical to the op-by-op one
and both agree with jax.jit; the imported graph prints the same op list whether or not fused."""
import warnings

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import neuron
from device.executor import run
from device.profile import profile
from lowering import lower_graph

BF16 = ml_dtypes.bfloat16


def _import(kind, f, args):
    low = jax.jit(f).lower(*args)
    if kind == "hlo":
        return neuron.load_hlo(low.as_text(dialect="hlo"))
    return neuron.load_stablehlo(low.as_text())


def check(f, *args, kind="stablehlo", rtol=1e-5, atol=1e-5):
    fn = _import(kind, f, args)
    text = str(fn.graph)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fused = fn.program("trn1")
        plain = lower_graph(fn.graph, "trn1", fuse=False)
        a, b = run(fused, list(args)), run(plain, list(args))
    assert str(fn.graph) == text
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
    theirs = jax.jit(f)(*args)
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    for o, t in zip(a, theirs):
        t = np.asarray(t)
        np.testing.assert_allclose(o.reshape(t.shape).astype(np.float64), t.astype(np.float64),
                                   rtol=rtol, atol=atol)
    return fused, plain


def mlp(x, w1, b1, w2, b2):
    h = jnp.tanh(x @ w1 + b1)
    return jnp.maximum(h @ w2 + b2, 0.0)


def rand(rng, shape, dt=np.float32):
    return (rng.standard_normal(shape) * 0.3).astype(dt)


@pytest.mark.parametrize("kind", ["hlo", "stablehlo"])
def test_exp_dot_bias(kind, rng):
    x, w, b = rand(rng, (130, 96)), rand(rng, (96, 520)), rand(rng, (520,))
    fused, plain = check(lambda x, w, b: jnp.exp(x @ w + b), x, w, b, kind=kind, rtol=1e-4)
    assert profile(fused).hbm_write_bytes < profile(plain).hbm_write_bytes


def test_tanh_dot_times_two_bf16(rng):
    x, w = rand(rng, (64, 256), BF16), rand(rng, (256, 200), BF16)
    check(lambda x, w: jnp.tanh(x @ w) * 2, x, w, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("kind", ["hlo", "stablehlo"])
def test_softmax(kind, rng):
    x = rand(rng, (200, 300))
    check(lambda x: jax.nn.softmax(x, axis=-1), x, kind=kind, rtol=1e-4, atol=1e-6)


def test_mlp(rng):
    args = [rand(rng, s) for s in [(128, 64), (64, 256), (256,), (256, 32), (32,)]]
    fused, plain = check(mlp, *args, rtol=1e-4, atol=1e-5)
    assert profile(fused).total_ns < profile(plain).total_ns


def test_gelu_bf16_and_loop(rng):
    def f(x, w):
        h = jax.nn.gelu(x @ w)
        return jax.lax.fori_loop(0, 3, lambda i, c: jnp.tanh(c * 0.5 + 1.0) - c, h)
    check(f, rand(rng, (32, 48), BF16), rand(rng, (48, 40), BF16), rtol=3e-2, atol=3e-2)


@settings(max_examples=6)
@given(M=st.integers(1, 140), N=st.integers(1, 300), bf16=st.booleans())
def test_exp_dot_bias_shapes(M, N, bf16):
    dt = BF16 if bf16 else np.float32
    rng = np.random.default_rng(M + N)
    x, w, b = rand(rng, (M, 24), dt), rand(rng, (24, N), dt), rand(rng, (N,), dt)
    check(lambda x, w, b: jnp.exp(x @ w + b), x, w, b, rtol=2e-2 if bf16 else 1e-4,
          atol=1e-2 if bf16 else 1e-5)
