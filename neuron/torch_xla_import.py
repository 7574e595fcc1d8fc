"""torch_xla's StableHLO (``exported_program_to_stablehlo``) with its weights bound.

torch_xla lowers a ``torch.export`` program to one StableHLO ``@main`` whose arguments are the
tensors the lazy-tensor graph happened to read, in that order: parameters and buffers, the
user's inputs and constants torch_xla lifted itself (SDPA's ``tensor<i1>``), interleaved — the
user input is not always last. The order is recorded in the function's metadata as
``input_locations``, one per argument: ``{"type_": "parameter", "name": <state_dict key>}``,
``{"type_": "input_arg", "position": <index among the user's inputs>}`` or
``{"type_": "constant", "position": <index into the additional constants>}``; inputs the graph
never read are listed in ``unused_inputs``. ``StableHLOGraphModule.save(dir)`` writes
``functions/<name>.meta`` (that metadata as JSON), ``functions/<name>.mlir`` (text, when kept)
and ``.bytecode``, ``data/<state_dict key>`` and ``constants/<i>`` (``np.save`` files).

``neuron.imported.TorchXlaFunction`` binds each argument by its location, so the result is called with the
user's inputs only, in the order the PyTorch module takes them; weights stay HBM inputs of the
program, as on the device. ``neuron.load_stablehlo(path=saved_dir)`` and
``neuron.from_torch(stablehlo_graph_module)`` both come here.

What was verified and how: torch_xla does not install beside the project's CPU torch, so the
format was read from torch_xla's public source (``torch_xla/stablehlo.py``: the bundle, the
metadata dataclasses, the save layout, how a call assembles its arguments) and from
``module @IrToHlo`` texts it prints (``tuple<...>`` results, ``mhlo.sharding`` argument
attributes, ``custom_call @mhlo.erf``). The tests build such directories from real PyTorch
modules (weights first, the user input in the middle, a lifted constant, an unused input) and
compare with eager PyTorch; a torch_xla release that changes the layout would need a new test.

    >>> import neuron                                         # doctest: +SKIP
    >>> f = neuron.load_stablehlo(path="/tmp/stablehlo_dir")  # what program.save() wrote  # doctest: +SKIP
    >>> y = f(x)                                              # the user's inputs only  # doctest: +SKIP
"""
from __future__ import annotations

import json
import os

import numpy as np


def _field(obj, name, default=None):
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def locations(meta) -> list[tuple[str, int, str]]:
    """``(type, position, name)`` per argument of @main, from the metadata (JSON or in memory)."""
    out = []
    for loc in _field(meta, "input_locations") or []:
        kind = _field(loc, "type_")
        kind = getattr(kind, "value", kind)          # the enum in memory, its value in JSON
        out.append((str(kind), int(_field(loc, "position", -1)), _field(loc, "name", "")))
    return out


def user_count(locs, meta) -> int:
    """How many inputs the module takes: the used ones and those listed as unused."""
    positions = {pos for kind, pos, _ in locs if kind == "input_arg"}
    for item in _field(meta, "unused_inputs") or []:
        loc = item[0] if isinstance(item, (list, tuple)) else item
        positions.add(int(_field(loc, "position", -1)))
    return max(positions) + 1 if positions else 0


def bind_arrays(locs, params, state_dict, constants) -> dict:
    """Argument index -> the array bound to it (parameters and constants), checked against
    @main's parameter types."""
    if len(locs) != len(params):
        raise ValueError(f"torch_xla metadata lists {len(locs)} input locations but @main takes "
                         f"{len(params)} arguments")
    bound = {}
    for i, ((kind, pos, name), p) in enumerate(zip(locs, params)):
        if kind == "input_arg":
            continue
        if kind == "parameter":
            if name not in state_dict:
                raise KeyError(f"argument {i} of @main is parameter {name!r}, which is not in "
                               f"the saved state dict ({len(state_dict)} entries)")
            arr, what = np.asarray(state_dict[name]), f"parameter {name!r}"
        elif kind == "constant":
            if not 0 <= pos < len(constants):
                raise IndexError(f"argument {i} of @main is constant {pos}, but the export has "
                                 f"{len(constants)} additional constants")
            arr, what = np.asarray(constants[pos]), f"constant {pos}"
        else:
            raise ValueError(f"argument {i} of @main has input location type {kind!r} "
                             f"(torch_xla writes parameter, input_arg or constant)")
        if tuple(arr.shape) != tuple(p.type.shape):
            raise ValueError(f"{what} has shape {tuple(arr.shape)} but argument {i} of @main is "
                             f"{p.type}")
        bound[i] = arr.astype(p.type.np_dtype, copy=False)
    return bound


def full_arguments(locs, bound, args) -> list:
    """@main's arguments: the bound arrays with the user's ``args`` at their locations."""
    full = [bound.get(i) for i in range(len(locs))]
    for i, (kind, pos, _) in enumerate(locs):
        if kind == "input_arg":
            a = args[pos]
            full[i] = a.detach().cpu().numpy() if hasattr(a, "detach") else a
    return full


def is_saved_dir(path) -> bool:
    """Whether ``path`` is a directory written by ``StableHLOGraphModule.save``."""
    return os.path.isdir(os.path.join(path, "functions"))


def _load_arrays(d):
    if not os.path.isdir(d):
        return {}
    return {name: np.load(os.path.join(d, name), allow_pickle=False) for name in os.listdir(d)}


def read_saved_dir(path, function: str | None = None):
    """``(module file, meta, state dict, constants)`` of a saved torch_xla directory."""
    fdir = os.path.join(path, "functions")
    metas = sorted(n[:-5] for n in os.listdir(fdir) if n.endswith(".meta"))
    if not metas:
        raise FileNotFoundError(f"{os.fspath(path)!r}: no functions/*.meta (not a torch_xla "
                                f"StableHLO directory)")
    name = function or ("forward" if "forward" in metas else metas[0])
    if name not in metas:
        raise FileNotFoundError(f"{os.fspath(path)!r} has functions {metas}, not {name!r}")
    with open(os.path.join(fdir, name + ".meta")) as f:
        meta = json.load(f)
    text = os.path.join(fdir, name + ".mlir")
    module = text if os.path.exists(text) else os.path.join(fdir, name + ".bytecode")
    consts = _load_arrays(os.path.join(path, "constants"))
    ordered = [consts[k] for k in sorted(consts, key=int)]
    return module, meta, _load_arrays(os.path.join(path, "data")), ordered


def is_graph_module(obj) -> bool:
    """Whether ``obj`` looks like torch_xla's in-memory ``StableHLOGraphModule``."""
    return hasattr(obj, "get_stablehlo_text") and hasattr(obj, "_bundle")


def graph_module_parts(program):
    """``(text or bytecode, meta, state dict, constants)`` of a ``StableHLOGraphModule``: its
    bundle's default function, state dict and additional constants."""
    bundle = program._bundle            # torch_xla keeps the exported bundle here
    func = bundle.stablehlo_funcs[0]
    source = func.text if func.text is not None else func.bytecode
    return source, func.meta, dict(bundle.state_dict), list(bundle.additional_constants)
