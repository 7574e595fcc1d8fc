"""GELU (tanh form, jax.nn.gelu's default) and SiLU chains become one ScalarE activation each,
which then fuses into the producing matmul's PSUM eviction."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuron
from lowering.lower.patterns import fuse_patterns


@pytest.mark.parametrize("name,fn,act", [
    ("gelu", lambda x, w: jax.nn.gelu(x @ w), "gelu_apprx_tanh"),
    ("silu", lambda x, w: jax.nn.silu(x @ w), "silu"),
    ("x_sigmoid_x", lambda x, w: (lambda h: h * jax.nn.sigmoid(h))(x @ w), "silu")])
@pytest.mark.parametrize("dtype", [np.float32, jnp.bfloat16])
def test_activation_chain_is_one_scalar_engine_op(name, fn, act, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 64)).astype(dtype)
    w = (rng.standard_normal((64, 384)) / 8).astype(dtype)
    f = neuron.from_jax(fn).imported(x, w)
    ops = [o.opcode for o in fuse_patterns(f.graph).ops]
    assert ops == ["dot", act.replace("gelu_apprx_tanh", "gelu_tanh")], ops
    prog = f.program()
    acts = [i for i in prog.instrs if i.op.name == "activation"]
    assert acts and all(str(i.args["op"]).endswith(act) or act in str(i.args["op"])
                        for i in acts)
    assert not any(i.op.name in ("tensor_tensor", "tensor_scalar") for i in prog.instrs)
    want = np.asarray(jax.jit(fn)(x, w)).astype(np.float32)
    tol = 1e-5 if dtype == np.float32 else 2e-2
    np.testing.assert_allclose(f(x, w).astype(np.float32), want, rtol=tol, atol=tol)


def test_a_chain_with_other_users_is_left_alone():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 32)).astype(np.float32)

    def fn(x):
        t = jnp.tanh(0.7978845608 * (x + 0.044715 * x * x * x))
        return 0.5 * x * (1 + t), t
    f = neuron.from_jax(fn).imported(x)
    assert "gelu_tanh" not in [o.opcode for o in fuse_patterns(f.graph).ops]
    for got, want in zip(f(x), jax.jit(fn)(x)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
