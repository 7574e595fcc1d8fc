"""Activations recognised by value: the exact GELU as torch (through torchax: XLA's erfc
expansion) and JAX export it becomes one ScalarE ``gelu``; cones that compute something else,
or whose intermediates are used elsewhere, are left alone."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuron
from lowering import Graph, TensorType
from lowering.lower.activation_fit import fuse_fitted_activations
from lowering.lower.patterns import fuse_patterns


@pytest.mark.parametrize("dtype", [np.float32, jnp.bfloat16])
def test_jax_exact_gelu_is_one_activation(dtype):
    fn = lambda x: jax.nn.gelu(x, approximate=False)  # noqa: E731
    x = np.linspace(-7, 7, 3 * 300).reshape(3, 300).astype(dtype)
    f = neuron.from_jax(fn).imported(x)
    assert len(f.graph.ops) > 20                       # the exported expansion
    assert [o.opcode for o in fuse_patterns(f.graph).ops] == ["gelu"]
    tol = 1e-6 if dtype == np.float32 else 1e-2
    np.testing.assert_allclose(f(x).astype(np.float32),
                               np.asarray(jax.jit(fn)(x)).astype(np.float32), rtol=tol, atol=tol)


def test_torch_gelu_mlp_is_fused_and_matches_torch():
    import torch
    nn = torch.nn
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(64, 256), nn.GELU(), nn.Linear(256, 64)).eval()
    x = torch.randn(32, 64)
    f = neuron.from_torch(m, x)
    ops = [o.opcode for o in fuse_patterns(f.imported(x).graph).ops]
    assert "gelu" in ops and "erf" not in ops and ops.count("multiply") <= 4
    with torch.no_grad():
        want = m(x).numpy()
    np.testing.assert_allclose(f(x), want, rtol=1e-5, atol=1e-5)


def _cone_graph(build):
    g = Graph("cone")
    x = g.param(TensorType((8, 16), "float32"), "x")

    def c(v):
        k = g.add_op("constant", [], {"value": np.float32(v)})
        return g.add_op("broadcast", [k], {"shape": [8, 16], "dims": []})
    outs = build(g, x, c)
    g.set_outputs(outs)
    return g


def test_a_cone_that_is_not_gelu_is_left_alone():
    def build(g, x, c):                               # x * (1 + erf(x)): not a GELU
        e = g.add_op("erf", [x])
        return [g.add_op("multiply", [g.add_op("multiply", [x, c(0.5)]),
                                      g.add_op("add", [e, c(1.0)])])]
    g = _cone_graph(build)
    assert "gelu" not in [o.opcode for o in fuse_fitted_activations(g).ops]


def test_a_gelu_whose_intermediate_is_used_elsewhere_is_left_alone():
    def build(g, x, c):
        e = g.add_op("erf", [g.add_op("multiply", [x, c(0.7071067811865476)])])
        y = g.add_op("multiply", [g.add_op("multiply", [x, c(0.5)]),
                                  g.add_op("add", [e, c(1.0)])])
        return [y, e]
    g = _cone_graph(build)
    assert "gelu" not in [o.opcode for o in fuse_fitted_activations(g).ops]
