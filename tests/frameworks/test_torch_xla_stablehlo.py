"""torch_xla's StableHLO (exported_program_to_stablehlo) with weights bound by the export's
input_locations. torch_xla does not install beside the CPU torch wheel, so the tests write what
its StableHLOGraphModule.save(dir) writes (functions/forward.{mlir,meta}, data/<key>,
constants/<i>; format read from torch_xla's public stablehlo.py) for real PyTorch modules: the
StableHLO comes from the same ExportedProgram through torchax, its arguments permuted the way
torch_xla orders them (weights first, user inputs among them, a lifted constant, an unused
input); numbers are compared with eager PyTorch."""
import enum
import json
import re
import types

import jax
import numpy as np
import pytest
import torch
import torch.nn as nn

import neuron
from neuron.torch_import import import_torchax

XLA_HEADER = ("module @IrToHlo.77 attributes {mhlo.cross_program_prefetches = [], "
              "mhlo.input_output_alias = [], mhlo.is_dynamic = false, "
              "mhlo.use_auto_spmd_partitioning = false}")


class Net(nn.Module):
    """Two user inputs (x, y) and a third the graph never reads."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.bn = nn.BatchNorm1d(32)
        self.fc2 = nn.Linear(32, 8)

    def forward(self, x, y, unused):
        return self.fc2(torch.nn.functional.gelu(self.bn(self.fc1(x)))) * y


def _export(module, example, order):
    """The torch_xla form of ``module``: StableHLO text whose @main takes the arguments in
    ``order`` (("parameter", key) / ("input_arg", i) / ("constant", key)), its meta JSON, the
    state dict and the additional constants."""
    torch_mod, tx = import_torchax()
    import torchax
    torchax.default_env()                 # registers torchax's ATen lowerings
    ep = torch.export.export(module, tuple(example))
    names, states, func = tx.exported_program_to_jax(ep, export_raw=True)
    state = {n: s.detach().numpy() for n, s in zip(names, states)}
    user = [e.numpy() for e in example]

    def fn(*args):
        env = {}
        for (kind, key), a in zip(order, args):
            env[(kind, key)] = a
        st = [env.get(("parameter", n), env.get(("constant", n), state[n])) for n in names]
        ins = [env.get(("input_arg", i), user[i]) for i in range(len(user))]
        return func([jax.numpy.asarray(s) for s in st], tuple(ins))[0]

    arrays = [state[k] if kind != "input_arg" else user[k] for kind, k in order]
    text = jax.jit(fn, keep_unused=True).lower(*arrays).as_text()
    text = re.sub(r"^module @\S+ attributes \{.*\} \{$", XLA_HEADER + " {", text, count=1,
                  flags=re.M)
    consts = [k for kind, k in order if kind == "constant"]
    locs = []
    for kind, k in order:
        if kind == "parameter":
            locs.append({"type_": "parameter", "position": -1, "name": k})
        elif kind == "constant":
            locs.append({"type_": "constant", "position": consts.index(k), "name": ""})
        else:
            locs.append({"type_": "input_arg", "position": k, "name": ""})
    sig = lambda a: {"shape": list(a.shape), "dtype": str(a.dtype), "dynamic_dims": []}  # noqa
    used = {k for kind, k in order if kind == "input_arg"}
    meta = {"name": "forward", "stablehlo_version": "0.0.0",
            "input_signature": [sig(a) for a in arrays], "output_signature": [],
            "input_locations": locs,
            "unused_inputs": [[{"type_": "input_arg", "position": i, "name": ""}, sig(u)]
                              for i, u in enumerate(user) if i not in used],
            "input_pytree_spec": None, "output_pytree_spec": None}
    params = {k: v for k, v in state.items() if k not in consts}
    return text, meta, params, [state[k] for k in consts]


def _save(tmp_path, text, meta, params, consts):
    """What StableHLOGraphModule.save(dir) writes."""
    (tmp_path / "functions").mkdir(parents=True)
    (tmp_path / "data").mkdir()
    (tmp_path / "constants").mkdir()
    (tmp_path / "functions" / "forward.mlir").write_text(text)
    (tmp_path / "functions" / "forward.meta").write_text(json.dumps(meta))
    for key, val in params.items():
        with open(tmp_path / "data" / key, "wb") as f:
            np.save(f, val)
    for i, c in enumerate(consts):
        with open(tmp_path / "constants" / str(i), "wb") as f:
            np.save(f, c)
    return tmp_path


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    m = Net()
    m.bn.running_mean.uniform_(-0.5, 0.5)
    m.bn.running_var.uniform_(0.5, 2.0)
    m.eval()
    example = (torch.randn(4, 16), torch.randn(4, 8), torch.randn(3))
    # torch_xla's order: whatever the lazy graph read first; the user's inputs in the middle
    order = [("parameter", "fc2.weight"), ("input_arg", 1), ("parameter", "fc1.weight"),
             ("constant", "bn.running_var"), ("parameter", "bn.weight"), ("input_arg", 0),
             ("parameter", "fc1.bias"), ("parameter", "bn.bias"),
             ("parameter", "bn.running_mean"), ("parameter", "fc2.bias")]
    return m, _export(m, example, order)


def _eager(m, *xs):
    with torch.no_grad():
        return m(*xs).numpy()


def test_saved_directory_binds_weights_by_input_location(net, tmp_path):
    m, exported = net
    d = _save(tmp_path, *exported)
    f = neuron.load_stablehlo(path=d)
    assert f.n_user == 3 and len(f.graph.params) == 10
    x, y, u = torch.randn(4, 16), torch.randn(4, 8), torch.randn(3)
    np.testing.assert_allclose(f(x, y, u), _eager(m, x, y, u), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f.reference(x.numpy(), y.numpy(), u.numpy()),
                               _eager(m, x, y, u), rtol=1e-5, atol=1e-5)
    import pathlib
    np.testing.assert_allclose(neuron.load_stablehlo(pathlib.Path(d))(x, y, u),
                               _eager(m, x, y, u), rtol=1e-5, atol=1e-5)


def test_from_torch_takes_a_stablehlo_graph_module(net):
    m, (text, meta, params, consts) = net

    class VariableType(enum.Enum):          # torch_xla's in-memory metadata uses an enum
        INPUT_ARG, PARAMETER, CONSTANT = "input_arg", "parameter", "constant"
    locs = [types.SimpleNamespace(type_=VariableType(loc["type_"]), position=loc["position"],
                                  name=loc["name"]) for loc in meta["input_locations"]]
    fmeta = types.SimpleNamespace(**{**meta, "input_locations": locs})
    program = types.SimpleNamespace(
        get_stablehlo_text=lambda name=None: text,
        _bundle=types.SimpleNamespace(
            stablehlo_funcs=[types.SimpleNamespace(meta=fmeta, text=text, bytecode=b"")],
            state_dict=params, additional_constants=consts))
    f = neuron.from_torch(program)
    x, y, u = torch.randn(4, 16), torch.randn(4, 8), torch.randn(3)
    np.testing.assert_allclose(f(x, y, u), _eager(m, x, y, u), rtol=1e-5, atol=1e-5)


HANDWRITTEN = XLA_HEADER + """ {
  func.func @main(%arg0: tensor<4xf32> {mhlo.sharding = "{replicated}"}, %arg1: tensor<2x3xf32>, %arg2: tensor<4x3xf32>) -> tuple<tensor<2x4xf32>, tensor<2x4xf32>> {
    %0 = stablehlo.transpose %arg2, dims = [1, 0] : (tensor<4x3xf32>) -> tensor<3x4xf32>
    %1 = stablehlo.dot_general %arg1, %0, contracting_dims = [1] x [0] : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
    %2 = stablehlo.broadcast_in_dim %arg0, dims = [1] : (tensor<4xf32>) -> tensor<2x4xf32>
    %3 = stablehlo.add %1, %2 : tensor<2x4xf32>
    %4 = stablehlo.custom_call @mhlo.erf(%3) : (tensor<2x4xf32>) -> tensor<2x4xf32>
    %5 = stablehlo.tuple %4, %3 {xla_shape = "(f32[2,4]{1,0}, f32[2,4]{1,0})"} : tuple<tensor<2x4xf32>, tensor<2x4xf32>>
    return %5 : tuple<tensor<2x4xf32>, tensor<2x4xf32>>
  }
}
"""


def test_torch_xla_text_form_tuple_result_and_erf(tmp_path):
    """The text as torch_xla prints it: IrToHlo module, sharding attributes, tuple results."""
    torch.manual_seed(2)
    lin = nn.Linear(3, 4)
    x = torch.randn(2, 3)
    with torch.no_grad():
        pre = lin(x)
    meta = {"input_locations": [{"type_": "parameter", "position": -1, "name": "bias"},
                                {"type_": "input_arg", "position": 0, "name": ""},
                                {"type_": "parameter", "position": -1, "name": "weight"}],
            "unused_inputs": []}
    d = _save(tmp_path, HANDWRITTEN, meta, {k: v.detach().numpy() for k, v in
                                            lin.state_dict().items()}, [])
    got_erf, got_pre = neuron.load_stablehlo(path=d)(x)
    np.testing.assert_allclose(got_pre, pre.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got_erf, torch.erf(pre).numpy(), rtol=1e-5, atol=1e-6)


def test_binding_errors_name_the_argument(tmp_path):
    meta = {"input_locations": [{"type_": "parameter", "position": -1, "name": "bias"},
                                {"type_": "input_arg", "position": 0, "name": ""},
                                {"type_": "parameter", "position": -1, "name": "weight"}],
            "unused_inputs": []}
    w = {"bias": np.zeros(4, np.float32), "weight": np.zeros((4, 3), np.float32)}
    with pytest.raises(KeyError, match="argument 2 of @main is parameter 'weight', which is "
                                       "not in the saved state dict"):
        neuron.load_stablehlo(path=_save(tmp_path / "a", HANDWRITTEN, meta,
                                         {"bias": w["bias"]}, []))
    with pytest.raises(ValueError, match=r"parameter 'bias' has shape \(5,\) but argument 0 of "
                                         r"@main is f32\[4\]"):
        neuron.load_stablehlo(path=_save(tmp_path / "b", HANDWRITTEN, meta,
                                         {**w, "bias": np.zeros(5, np.float32)}, []))
    bad = {**meta, "input_locations": meta["input_locations"][:2]}
    with pytest.raises(ValueError, match="lists 2 input locations but @main takes 3"):
        neuron.load_stablehlo(path=_save(tmp_path / "c", HANDWRITTEN, bad, w, []))
    f = neuron.load_stablehlo(path=_save(tmp_path / "d", HANDWRITTEN, meta, w, []))
    with pytest.raises(TypeError, match="takes 1 inputs .the module's., got 2"):
        f(np.zeros((2, 3), np.float32), np.zeros(4, np.float32))
