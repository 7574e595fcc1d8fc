"""neuron.jax_kernel: an NKI kernel inside a JAX model. A transformer block whose attention is
the repository's flash-attention NKI kernel runs under jax.jit (the kernel on the emulator via
a callback), exports, re-imports with the kernel inlined into the model's program, and matches
the same block written in pure JAX."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuron
from benchmarks.kernels.flash_attention import flash_attention
from lowering import HloImportError

H, S, D = 2, 128, 32
E = H * D
attention = neuron.jax_kernel(flash_attention)


def _layer_norm(x):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5)


def block(x, wq, wk, wv, wo, w1, w2, use_kernel):
    h = _layer_norm(x)
    q, k, v = ((h @ w).reshape(S, H, D).transpose(1, 0, 2) for w in (wq, wk, wv))
    if use_kernel:
        o = attention(q.transpose(0, 2, 1), k.transpose(0, 2, 1), v)
    else:
        o = jax.nn.softmax(q @ k.transpose(0, 2, 1) / np.sqrt(D), axis=-1) @ v
    x = x + o.transpose(1, 0, 2).reshape(S, E) @ wo
    return x + jax.nn.gelu(_layer_norm(x) @ w1) @ w2


@pytest.fixture(scope="module")
def weights():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((S, E)).astype(np.float32)
    ws = [(rng.standard_normal(s) / np.sqrt(s[0])).astype(np.float32)
          for s in [(E, E)] * 4 + [(E, 2 * E), (2 * E, E)]]
    return [x] + ws


def with_kernel(*a):
    return block(*a, use_kernel=True)


def pure_jax(*a):
    return block(*a, use_kernel=False)


def test_kernel_runs_under_jax_jit(weights):
    got = jax.jit(with_kernel)(*weights)
    np.testing.assert_allclose(got, jax.jit(pure_jax)(*weights), rtol=1e-5, atol=1e-5)


def test_export_reimports_with_the_kernel_inlined(weights):
    want = np.asarray(jax.jit(pure_jax)(*weights))
    lowered = jax.jit(with_kernel).lower(*weights)
    text = lowered.as_text()
    assert 'neuron_kernel = "benchmarks.kernels.flash_attention.flash_attention"' in text
    for f in (neuron.load_stablehlo(text), neuron.load_hlo(lowered.as_text(dialect="hlo")),
              neuron.from_jax(with_kernel).imported(*weights)):
        assert "kernel_call" in str(f.graph)
        np.testing.assert_allclose(f(*weights), want, rtol=1e-4, atol=1e-4)
    # one program: the kernel's instructions sit in it with the kernel's source lines
    prog = f.program()
    lines = {i.loc.line for i in prog.instrs if i.loc and i.loc.file.endswith("flash_attention.py")}
    assert len(lines) >= 8
    ops = {i.op.name for i in prog.instrs if i.loc and i.loc.file.endswith("flash_attention.py")}
    assert {"nc_matmul", "activation", "tensor_reduce"} <= ops
    assert f.profile(*weights).total_ns > 0


def test_an_unregistered_kernel_is_refused_by_name(weights):
    text = jax.jit(with_kernel).lower(*weights).as_text().replace(
        "flash_attention.flash_attention", "flash_attention.nope")
    with pytest.raises(HloImportError, match="'benchmarks.kernels.flash_attention.nope'.* not "
                                             "registered"):
        neuron.load_stablehlo(text)
