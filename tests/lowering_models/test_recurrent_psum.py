"""Recurrent cells scanned with while (Flax's LSTMCell: one Dense per gate and input, 8 dots in
the loop body) lower within the 8 PSUM banks: loop bodies reuse bank-sized PSUM tiles in turn
instead of keeping one per matmul live for the whole body."""
import jax
import jax.numpy as jnp
import numpy as np

import neuron
from device.tensor import PSUM

B, T, I, H = 4, 6, 32, 64


def lstm(xs, *w):
    wi, wh = w[:4], w[4:]

    def cell(carry, x):
        h, c = carry
        i, f, g, o = (x @ a + h @ b for a, b in zip(wi, wh))
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h
    return jax.lax.scan(cell, (jnp.zeros((B, H)), jnp.zeros((B, H))), xs)[1]


def test_eight_dot_lstm_fits_the_psum_and_matches_jax():
    rng = np.random.default_rng(0)
    args = [rng.standard_normal((T, B, I)).astype(np.float32)] + \
        [(rng.standard_normal((I, H)) / 8).astype(np.float32) for _ in range(4)] + \
        [(rng.standard_normal((H, H)) / 8).astype(np.float32) for _ in range(4)]
    f = neuron.from_jax(lstm).imported(*args)
    prog = f.program("trn1")                                  # verified: no psum-banks error
    assert sum(1 for s in prog.storages if s.buffer == PSUM) <= 8
    np.testing.assert_allclose(f(*args), jax.jit(lstm)(*args), rtol=1e-5, atol=1e-5)
