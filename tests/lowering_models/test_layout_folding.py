"""Layouts chosen so transposes disappear: an Equinox-style vmapped Linear (W @ x per row, i.e.
transpose(dot(W, X))) and a torch-style x @ W.T with constant weights lower without
element-strided transposing DMAs, and match JAX."""
import jax
import jax.numpy as jnp
import numpy as np

import neuron
from lowering.lower.patterns import fuse_patterns


def _dma_row_bytes(prog):
    """Smallest contiguous run (bytes) of any DMA source's last dim (broadcasts excluded)."""
    out = []
    for i in prog.instrs:
        if i.op.name == "dma_copy":
            stride, count = i.args["src"].pattern[-1]
            if stride:
                out.append(count * 4 if stride == 1 else 4)
    return min(out)


def test_vmapped_linear_and_transposed_constant_weights():
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((512, 256)).astype(np.float32) / 16     # [out, in] like torch/eqx
    w2 = rng.standard_normal((64, 512)).astype(np.float32) / 16
    x = rng.standard_normal((128, 256)).astype(np.float32)

    def fn(x):
        h = jax.vmap(lambda r: w1 @ r)(x)            # transpose(dot(W, X)) after export
        return h @ w2.T + jnp.ones((128, 64)) @ jnp.transpose(jnp.asarray(w2[:, :64]))
    f = neuron.from_jax(fn).imported(x)
    ops = [o.opcode for o in fuse_patterns(f.graph).ops]
    assert "transpose" not in ops, ops
    assert _dma_row_bytes(f.program("trn1")) >= 256          # no 4-byte-row transposing DMAs
    np.testing.assert_allclose(f(x), jax.jit(fn)(x), rtol=1e-5, atol=1e-4)
