"""A pure @neuron.jit model is lowered as one graph (fused); a mixed tile + model kernel is not."""
import numpy as np

import neuron
import nki.isa as nisa
import nki.language as nl
from device.executor import run
from lowering import lower_graph


@neuron.jit
def affine_exp(x, w, b):
    return nl.exp(nl.add(nl.matmul(x, w), b))


def test_pure_model_is_fused_and_bit_identical_to_unfused():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((200, 300)) * 0.05).astype(np.float32)
    w = (rng.standard_normal((300, 700)) * 0.05).astype(np.float32)
    b = (rng.standard_normal(700) * 0.1).astype(np.float32)
    prog = affine_exp.trace(x, w, b)
    graph = prog.info.graph
    unfused = lower_graph(graph, prog.arch, fuse=False)
    assert len(prog.instrs) < len(unfused.instrs)
    got = affine_exp(x, w, b)
    np.testing.assert_array_equal(got, run(unfused, [x, w, b])[0].reshape(got.shape))
    np.testing.assert_allclose(got, np.exp(x @ w + b), rtol=1e-5)


@neuron.jit
def mixed(x, w):
    y = nl.matmul(x, w)                       # whole-tensor op (graph)
    t = nl.ndarray((y.shape[0], y.shape[1]), nl.float32, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=y)               # then tile code reads its HBM result
    out = nl.ndarray(y.shape, nl.float32, buffer=nl.shared_hbm)
    nisa.activation(dst=t, op=nl.exp, data=t)
    nisa.dma_copy(dst=out, src=t)
    return out


def test_mixed_tile_and_model_code_is_not_relowered():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((64, 96)) * 0.1).astype(np.float32)
    w = (rng.standard_normal((96, 40)) * 0.1).astype(np.float32)
    assert not mixed.trace(x, w).info.pure_graph
    np.testing.assert_allclose(mixed(x, w), np.exp(x @ w), rtol=1e-5)
