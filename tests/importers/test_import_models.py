"""The model functions of the import study (MLP, softmax, layernorm, attention, conv2d, argmax,
fori_loop) through both importers and neuron.from_jax, against jax.jit; and the error paths."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import neuron
from importer_helpers import assert_close, check_both, hlo_text, stablehlo_text
from lowering import HloImportError, parse_hlo
from lowering import StableHloImportError
from lowering import parse_stablehlo

F32 = np.float32


def r(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(F32)


def mlp(x, w1, b1, w2):
    return jax.nn.gelu(x @ w1 + b1, approximate=True) @ w2


def softmax(x):
    return jax.nn.softmax(x, axis=-1)


def layernorm(x, g, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + 1e-5) * g + b


def attention(q, k, v):
    s = q @ k.T / np.sqrt(q.shape[-1]).astype(F32)
    s = jnp.where(jnp.tril(jnp.ones((q.shape[0], k.shape[0]), bool)), s, -1e9)
    return jax.nn.softmax(s, axis=-1) @ v


def conv2d(x, w):
    return lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW",
                                                                              "NCHW"))


def loops(x, w):
    h = lax.fori_loop(0, 3, lambda i, h: jnp.tanh(h @ w) + i, x)
    return lax.scan(lambda c, row: (c + row, c * 2), jnp.zeros(x.shape[1], F32), h)


def test_models_through_both_importers(rng):
    check_both(mlp, r(rng, 4, 8), r(rng, 8, 16, scale=0.3), r(rng, 16), r(rng, 16, 8, scale=0.3),
               dev_rtol=1e-3, dev_atol=1e-3)
    check_both(softmax, r(rng, 4, 10))
    check_both(layernorm, r(rng, 4, 10), r(rng, 10), r(rng, 10), dev_rtol=1e-3, dev_atol=1e-3)
    check_both(attention, r(rng, 6, 8), r(rng, 6, 8), r(rng, 6, 8), dev_rtol=1e-3,
               dev_atol=1e-3)
    check_both(conv2d, r(rng, 1, 3, 8, 8), r(rng, 4, 3, 3, 3), dev_rtol=1e-3, dev_atol=1e-3)
    check_both(lambda x: jnp.argmax(x, axis=-1), r(rng, 4, 10))
    check_both(loops, r(rng, 5, 4), r(rng, 4, 4, scale=0.5), dev_rtol=1e-3, dev_atol=1e-3)


def test_from_jax_caches_per_signature(rng):
    f = neuron.from_jax(attention)
    q = r(rng, 6, 8)
    assert_close(f(q, q, q), jax.jit(attention)(q, q, q), 1e-3, 1e-3)
    first = f.imported(q, q, q)
    assert f.imported(q, q, q) is first                 # same shapes/dtypes: cached
    q2 = r(rng, 5, 8)
    assert_close(f(q2, q2, q2), jax.jit(attention)(q2, q2, q2), 1e-3, 1e-3)
    assert f.imported(q2, q2, q2) is not first and len(f._cache) == 2
    assert "dot" in f.lower(q, q, q)

    @neuron.from_jax
    def double(x):
        return x * 2
    np.testing.assert_array_equal(double(q), q * 2)


def test_load_stablehlo_accepts_lowered_and_bf16_constants(rng):
    c = np.array([1.5, -2.25, 3.0], jnp.bfloat16)
    f = lambda x: (x.astype(jnp.bfloat16) * c).astype(jnp.float32)
    x = r(rng, 3)
    imported = neuron.load_stablehlo(jax.jit(f).lower(x))
    assert_close(imported(x), jax.jit(f)(x), 1e-2, 1e-2)


def test_custom_call_sharding_is_identity():
    text = """HloModule m
ENTRY main {
  x = f32[4]{0} parameter(0)
  s = f32[4]{0} custom-call(x), custom_call_target="Sharding", sharding={replicated}
  ROOT y = f32[4]{0} exponential(s)
}"""
    x = np.arange(4, dtype=F32)
    np.testing.assert_allclose(neuron.load_hlo(text)(x), np.exp(x), rtol=1e-6)
    bad = text.replace('"Sharding"', '"MyKernel"')
    with pytest.raises(HloImportError, match=r'unsupported custom-call target "MyKernel" in '
                                             r"instruction 's' \(only \"Sharding\" .*\(line 4\)"):
        parse_hlo(bad)


def _cond(p, x):
    return lax.cond(p, jnp.sin, jnp.cos, x)


def test_unsupported_op_is_named_with_its_line():
    args = (True, np.ones((4, 5), F32))
    text = hlo_text(_cond, *args)
    line = next(n for n, s in enumerate(text.splitlines(), 1) if " conditional(" in s)
    with pytest.raises(HloImportError, match=rf"unsupported HLO opcode 'conditional' in "
                                             rf"instruction '.*' \(line {line}\)"):
        parse_hlo(text)
    mlir = stablehlo_text(_cond, *args)
    line = next(n for n, s in enumerate(mlir.splitlines(), 1) if "stablehlo.case" in s)
    with pytest.raises(StableHloImportError, match=rf"unsupported StableHLO op 'stablehlo.case' "
                                                   rf"\(line {line}\)"):
        parse_stablehlo(mlir)


def test_unsupported_variadic_reduce_and_malformed_stablehlo():
    f = lambda x: lax.reduce((x, x), (0.0, 1.0), lambda a, b: (a[0] + b[0], a[1] * b[1]), (1,))
    x = np.ones((4, 6), F32)
    with pytest.raises(HloImportError, match="variadic reduce .* is not supported"):
        parse_hlo(hlo_text(f, x))
    with pytest.raises(StableHloImportError, match="variadic reduce .* is not supported"):
        parse_stablehlo(stablehlo_text(f, x))
    with pytest.raises(StableHloImportError, match="cannot parse StableHLO"):
        parse_stablehlo("module { func.func @main( }")


def test_sort_runs_on_the_device(rng):
    x = r(rng, 5)
    f = neuron.load_hlo(hlo_text(lambda x: jnp.sort(x), x))
    np.testing.assert_array_equal(f(x), np.sort(x))
