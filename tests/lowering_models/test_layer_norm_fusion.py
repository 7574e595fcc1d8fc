"""Layer norms exported by JAX (mean / centred square / rsqrt chains, with scale and offset)
become one on-chip pass per 128-row block: the row block is read once and written once."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuron
from lowering.lower.patterns import fuse_patterns


def layer_norm(x, g, b):
    x32 = x.astype(jnp.float32)
    mu = x32.mean(-1, keepdims=True)
    var = ((x32 - mu) ** 2).mean(-1, keepdims=True)
    return ((x32 - mu) * jax.lax.rsqrt(var + 1e-5) * g + b).astype(x.dtype)


@pytest.mark.parametrize("dtype,shape", [(np.float32, (3, 100, 96)),
                                         (jnp.bfloat16, (300, 768))])
def test_layer_norm_is_one_pass_and_matches_jax(dtype, shape):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    g, b = rng.standard_normal(shape[-1:]).astype(np.float32), \
        rng.standard_normal(shape[-1:]).astype(np.float32)
    f = neuron.from_jax(layer_norm).imported(x, g, b)
    assert [o.opcode for o in fuse_patterns(f.graph).ops] == ["layer_norm"]
    prog = f.program()
    reads = sum(1 for i in prog.instrs if i.op.name == "dma_copy" and
                i.args["src"].storage in prog.inputs[:1])
    assert reads == -(-int(np.prod(shape[:-1])) // 128)          # each row block read once
    want = np.asarray(jax.jit(layer_norm)(x, g, b)).astype(np.float32)
    tol = 1e-5 if dtype == np.float32 else 1e-2
    np.testing.assert_allclose(f(x, g, b).astype(np.float32), want, rtol=tol, atol=tol)


def test_a_norm_without_scale_and_offset():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((130, 64)).astype(np.float32)
    fn = lambda x: (x - x.mean(-1, keepdims=True)) * jax.lax.rsqrt(x.var(-1, keepdims=True)
                                                                   + 1e-6)
    f = neuron.from_jax(fn).imported(x)
    np.testing.assert_allclose(f(x), jax.jit(fn)(x), rtol=1e-5, atol=1e-5)
