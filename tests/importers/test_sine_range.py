"""HLO sine over the whole real line: the lowering reduces the range before ScalarE's sin."""
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, strategies as st

import neuron


@given(st.floats(-200.0, 200.0, width=32), st.integers(1, 300))
def test_sine_matches_jax_far_outside_pi(scale, n):
    x = (np.linspace(-1.0, 1.0, n, dtype=np.float32) * np.float32(scale)).astype(np.float32)
    f = neuron.load_hlo(jax.jit(jnp.sin).lower(x).as_text(dialect="hlo"))
    np.testing.assert_allclose(f(x), np.sin(x.astype(np.float64)), atol=2e-5)
