"""Attention chains exported by JAX are recognised and lowered as one flash-style op: the
scores never reach HBM, the result matches JAX, and chains that do not fit the pattern (scores
used elsewhere) are left alone."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuron
from lowering.lower.patterns import fuse_attention


def attention(q, k, v, causal):
    s = (q @ k.transpose(0, 2, 1)).astype(jnp.float32) / np.sqrt(q.shape[-1])
    if causal:
        s = jnp.where(jnp.tril(jnp.ones(s.shape[1:], bool)), s, -1e9)
    return (jax.nn.softmax(s, -1).astype(v.dtype) @ v)


def _big_hbm_tensors(prog, size):
    return [s for s in prog.storages if s.buffer.name.endswith("hbm") and
            int(np.prod(s.shape)) >= size]


@pytest.mark.parametrize("dtype,causal,shape", [(np.float32, False, (2, 128, 32, 640)),
                                                (jnp.bfloat16, True, (3, 200, 64, 256))])
def test_attention_is_fused_and_matches_jax(dtype, causal, shape):
    B, Sq, D, Sk = shape
    rng = np.random.default_rng(0)
    q = rng.standard_normal((B, Sq, D)).astype(dtype)
    k, v = (rng.standard_normal((B, Sk, D)).astype(dtype) for _ in range(2))
    if causal:
        k, v = k[:, :Sq], v[:, :Sq]
    fn = lambda q, k, v: attention(q, k, v, causal)
    f = neuron.from_jax(fn).imported(q, k, v)
    assert "attention" in [o.opcode for o in fuse_attention(f.graph).ops]
    prog = f.program()
    assert not _big_hbm_tensors(prog, B * Sq * k.shape[1])      # no [B, Sq, Sk] scratch
    want = np.asarray(jax.jit(fn)(q, k, v)).astype(np.float32)
    got = f(q, k, v).astype(np.float32)
    tol = 1e-5 if dtype == np.float32 else 3e-2
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    np.testing.assert_allclose(f.reference(q, k, v).astype(np.float32), want, rtol=tol,
                               atol=tol)


def test_scores_used_elsewhere_are_not_fused():
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((1, 128, 16)).astype(np.float32) for _ in range(3))

    def fn(q, k, v):
        s = q @ k.transpose(0, 2, 1) / 4.0
        return jax.nn.softmax(s, -1) @ v, s.sum()
    f = neuron.from_jax(fn).imported(q, k, v)
    assert "attention" not in [o.opcode for o in fuse_attention(f.graph).ops]
    for got, want in zip(f(q, k, v), jax.jit(fn)(q, k, v)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
