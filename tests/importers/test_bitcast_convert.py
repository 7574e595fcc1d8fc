"""bitcast_convert: bits read as another element type of the same width (jax.random builds its
floats this way), checked against jax.jit; a width change is refused by name."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

import neuron
from lowering import HloImportError

PAIRS = [(np.float32, jnp.int32), (np.float32, jnp.uint32), (np.int32, jnp.float32),
         (np.float16, jnp.int16), (np.uint16, jnp.bfloat16)]


@given(st.sampled_from(PAIRS), st.integers(1, 9), st.integers(1, 40), st.integers(0, 2**31))
def test_same_width_bitcasts_match_jax(pair, m, n, seed):
    src, dst = pair
    rng = np.random.default_rng(seed)
    if np.dtype(src).kind == "f":
        x = rng.standard_normal((m, n)).astype(src)
    else:
        x = rng.integers(np.iinfo(src).min, np.iinfo(src).max, (m, n), dtype=src)
        if dst == jnp.bfloat16:                       # keep NaN payloads out: they may canonicalise
            x &= np.uint16(0x7f7f)

    def f(v):
        return jax.lax.bitcast_convert_type(v, dst)
    got = np.asarray(neuron.from_jax(f)(x))
    want = np.asarray(jax.jit(f)(x))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


def test_jax_random_uniform_and_normal_match_jax():
    def f(kd):
        k = jax.random.wrap_key_data(kd)
        k1, k2 = jax.random.split(k)
        return jax.random.uniform(k1, (8, 33)), jax.random.normal(k2, (5, 7))
    kd = jax.random.key_data(jax.random.PRNGKey(7))
    got = neuron.from_jax(f)(kd)
    want = jax.jit(f)(kd)
    np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(want[0]))
    np.testing.assert_allclose(np.asarray(got[1]), np.asarray(want[1]), rtol=2e-6, atol=2e-6)


def test_a_width_changing_bitcast_is_refused_with_its_line():
    text = ("HloModule m\n"
            "ENTRY e {\n"
            "  p = f32[4] parameter(0)\n"
            "  ROOT b = s16[4,2] bitcast-convert(p)\n"
            "}\n")
    with pytest.raises(HloImportError) as e:
        neuron.load_hlo(text)
    msg = str(e.value)
    assert "float32 (4 B) to int16 (2 B) changes the element width" in msg
    assert "line 4" in msg
