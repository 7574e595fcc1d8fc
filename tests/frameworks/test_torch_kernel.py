"""neuron.torch_kernel: an NKI kernel as a PyTorch custom operator. Eagerly it runs on the
emulator; torch.export keeps it as one node; neuron.from_torch maps the node back to the
kernel and inlines its device program into the model's (one program, one profile, the kernel's
source lines), matching eager PyTorch."""
import numpy as np
import pytest
import torch
import torch.nn as nn

import nki
import nki.language as nl
import neuron


@nki.jit
def gated_tanh(x, g):
    """tanh(x) * sigmoid(g) over [rows <= 128, cols] tiles."""
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    a = nl.load(x)
    b = nl.load(g)
    y = nl.multiply(nl.tanh(a), nl.sigmoid(b))
    nl.store(out, y)
    return out


@nki.jit
def split_scale(x):
    """Two results: 2x and x - 1."""
    two = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    less = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    t = nl.load(x)
    nl.store(two, nl.multiply(t, 2.0))
    nl.store(less, nl.subtract(t, 1.0))
    return two, less


gate = neuron.torch_kernel(gated_tanh)
split = neuron.torch_kernel(split_scale)


class GatedMLP(nn.Module):
    def __init__(self, d=32, h=64):
        super().__init__()
        self.up = nn.Linear(d, h)
        self.gate = nn.Linear(d, h)
        self.down = nn.Linear(h, d)

    def forward(self, x, use_kernel=True):
        a, g = self.up(x), self.gate(x)
        y = gate(a, g) if use_kernel else torch.tanh(a) * torch.sigmoid(g)
        return x + self.down(y)


def test_eager_call_runs_the_kernel_on_the_emulator():
    torch.manual_seed(0)
    a, g = torch.randn(16, 48), torch.randn(16, 48)
    got = gate(a, g)
    assert isinstance(got, torch.Tensor) and got.shape == (16, 48)
    torch.testing.assert_close(got, torch.tanh(a) * torch.sigmoid(g), rtol=1e-5, atol=1e-6)
    two, less = split(a)
    torch.testing.assert_close(two, 2 * a)
    torch.testing.assert_close(less, a - 1)
    assert gate.op_name.endswith("test_torch_kernel_gated_tanh")
    assert gate.op is getattr(torch.ops.neuron, gate.op_name)


def test_export_keeps_one_node_with_exact_shapes():
    m = GatedMLP().eval()
    ep = torch.export.export(m, (torch.randn(8, 32),))
    nodes = [n for n in ep.graph.nodes if n.op == "call_function"
             and "neuron" in str(n.target)]
    assert len(nodes) == 1
    (val,) = nodes[0].meta["val"]
    assert tuple(val.shape) == (8, 64) and val.dtype == torch.float32


def test_from_torch_inlines_the_kernel_and_matches_eager():
    torch.manual_seed(1)
    m = GatedMLP().eval()
    x = torch.randn(8, 32)
    f = neuron.from_torch(m, x)
    x2 = torch.randn(8, 32)
    with torch.no_grad():
        want = m(x2, use_kernel=False).numpy()
        eager = m(x2).numpy()
    np.testing.assert_allclose(eager, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f(x2), want, rtol=1e-5, atol=1e-5)
    imp = f.imported(x2)
    assert "kernel_call" in str(imp.graph)
    prog = imp.program()
    mine = [i for i in prog.instrs if i.loc and i.loc.file == __file__]
    assert {i.op.name for i in mine} >= {"activation"}
    lines = {i.loc.line for i in mine}
    src = gated_tanh.fn.__code__.co_firstlineno
    assert lines and all(src < ln < src + 10 for ln in lines)
    assert f.profile(x2).total_ns > 0


def test_a_kernel_with_two_results_under_from_torch():
    class M(nn.Module):
        def forward(self, x):
            a, b = split(x)
            return a * b
    x = torch.randn(4, 16)
    np.testing.assert_allclose(neuron.from_torch(M(), x)(x), ((2 * x) * (x - 1)).numpy(),
                               rtol=1e-6, atol=1e-6)


def test_wrong_argument_count_is_refused_by_name():
    with pytest.raises(TypeError, match="gated_tanh takes 2 tensors, got 1"):
        gate(torch.ones(2, 2))
