"""PyTorch models on the emulator: ``neuron.from_torch(module, *example_inputs)``.

The route (reference/pytorch-routes.md): ``torch.export`` -> torchax -> a JAX function ->
StableHLO (jaxlib, the same MLIR the importer parses with) -> the graph IR. The exported
program's weights are closed over as constants of the JAX function, so they are bound by
construction (no reliance on argument order, and weights JAX drops as unused, such as
BatchNorm's ``num_batches_tracked``, never need binding). Why torchax rather than torch_xla:
torchax needs only the CPU torch wheel and emits StableHLO from our own jaxlib (no version skew),
torch_xla pins a CUDA torch build of several GB.

Pinned pair: torch 2.13.0 and torchax 0.0.13 (the ``[torch]`` extra). torchax 0.0.13 names
some named-tensor ATen overloads that torch 2.13 removed (``aten.prod.dim_Dimname`` ...) in
dictionaries it builds at import time; :func:`import_torchax` lets exactly those lookups
resolve to inert placeholders while torchax is imported (no model can call a removed overload).

    >>> import torch, neuron                                    # doctest: +SKIP
    >>> m = torch.nn.Linear(8, 4).eval()                        # doctest: +SKIP
    >>> f = neuron.from_torch(m, torch.randn(2, 8))             # doctest: +SKIP
    >>> f(torch.randn(2, 8))                                    # NumPy out    # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np

from .imported import JaxFunction, bind_torch_xla, load_stablehlo
from .torch_xla_import import graph_module_parts, is_graph_module

TORCH_VERSION, TORCHAX_VERSION = "2.13.0", "0.0.13"


class _RemovedOverload:
    """Stands for an ATen overload that the installed torch no longer has."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<removed aten overload {self.name}>"


def import_torchax():
    try:
        import torch
        import torch._ops as torch_ops
    except ImportError as e:
        raise ImportError(f"neuron.from_torch needs PyTorch: pip install 'neuron-emu[torch]' "
                          f"(torch=={TORCH_VERSION}, torchax=={TORCHAX_VERSION}) ({e})") from None
    import sys
    if "torchax.export" in sys.modules:
        return torch, sys.modules["torchax.export"]
    orig = torch_ops.OpOverloadPacket.__getattr__

    def lenient(self, key):
        try:
            return orig(self, key)
        except AttributeError:
            if "name" in key.lower():          # Dimname / names overloads removed from torch
                return _RemovedOverload(f"{self._qualified_op_name}.{key}")
            raise
    torch_ops.OpOverloadPacket.__getattr__ = lenient
    try:
        import torchax.export
    except ImportError as e:
        raise ImportError(f"neuron.from_torch needs torchax=={TORCHAX_VERSION}: pip install "
                          f"'neuron-emu[torch]' ({e})") from None
    finally:
        torch_ops.OpOverloadPacket.__getattr__ = orig
    return torch, torchax.export


def _to_array(x):
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


class TorchFunction(JaxFunction):
    """A PyTorch module (or ``torch.export.ExportedProgram``) running on the emulator.

    Call it with torch tensors or NumPy arrays of the example inputs' shapes; it returns NumPy.
    ``.lower``, ``.profile``, ``.reference`` and ``.imported`` work as for ``from_jax``."""

    def __init__(self, module_or_program, example_inputs, target=None):
        torch, tx = import_torchax()
        if isinstance(module_or_program, torch.export.ExportedProgram):
            ep = module_or_program
        elif isinstance(module_or_program, torch.nn.Module):
            if not example_inputs:
                raise TypeError("from_torch(module, *example_inputs): give example inputs so "
                                "torch.export can trace the module")
            ep = torch.export.export(module_or_program, tuple(example_inputs))
        else:
            raise TypeError(f"from_torch takes a torch.nn.Module or a torch.export."
                            f"ExportedProgram, got {type(module_or_program).__name__}")
        from torchax.ops import ops_registry

        from .torch_kernel import install_torchax_lowerings
        install_torchax_lowerings(ops_registry)     # NKI kernel operators -> kernel calls
        weights, jax_fn = tx.exported_program_to_jax(ep)
        self.exported_program = ep

        def model(*xs):
            out = jax_fn(weights, tuple(xs))
            return out[0] if isinstance(out, (list, tuple)) and len(out) == 1 else tuple(out)
        name = type(module_or_program).__name__
        model.__name__ = name
        super().__init__(model, target)
        self.__name__ = name

    def imported(self, *args):
        return super().imported(*[_to_array(a) for a in args])

    def __call__(self, *args, target=None):
        return super().__call__(*[_to_array(a) for a in args], target=target)

    def reference(self, *args):
        return super().reference(*[_to_array(a) for a in args])

    def lower(self, *args, target=None) -> str:
        return super().lower(*[_to_array(a) for a in args], target=target)

    def profile(self, *args, target=None):
        return super().profile(*[_to_array(a) for a in args], target=target)


def from_torch(module_or_program, *example_inputs, target=None):
    """Import a PyTorch module (exported with ``torch.export`` on ``example_inputs``) or an
    ``ExportedProgram``; the result runs on the emulator like ``neuron.from_jax``. torch_xla's
    ``StableHLOGraphModule`` (from ``exported_program_to_stablehlo``) is accepted too, its
    weights bound by the export's input locations (:mod:`neuron.torch_xla_import`)."""
    if is_graph_module(module_or_program):
        source, meta, state, consts = graph_module_parts(module_or_program)
        return bind_torch_xla(load_stablehlo(source, target=target), meta, state, consts)
    return TorchFunction(module_or_program, example_inputs, target)
