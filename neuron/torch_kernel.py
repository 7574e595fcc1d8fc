"""NKI kernels callable from PyTorch: ``neuron.torch_kernel(kernel)``, a ``torch.library`` op.

The returned object is a PyTorch custom operator ``torch.ops.neuron.<name>`` (``.op``) with a
Python wrapper: called on CPU tensors in eager mode it runs the kernel on the emulator (tensors
in, tensors out); under ``torch.export`` its fake implementation gives the result shapes and
dtypes (by tracing the kernel for the operand shapes, so shape inference is exact) and the call
stays one opaque node of the exported graph. ``neuron.from_torch`` maps that node back to the
registered kernel: on the torchax route the node becomes the same call ``neuron.jax_kernel``
makes (a custom call tagged ``neuron_kernel = <key>``), which the StableHLO importer turns into
a ``kernel_call`` and the lowering inlines the kernel's device program into the model's
program: one program, one profile, the kernel's instructions keeping the kernel's source lines.

The operator takes the kernel's positional array parameters (no defaults) as tensors and
returns ``Tensor[]`` (a kernel's result count depends on its trace); the wrapper unpacks a
single result. The key (``module.qualname`` of the kernel, or ``name=``) is shared with
``jax_kernel``, so wrapping a kernel for both frameworks registers it once.

    >>> import torch, neuron                                          # doctest: +SKIP
    >>> from benchmarks.kernels.flash_attention import flash_attention  # doctest: +SKIP
    >>> attn = neuron.torch_kernel(flash_attention)                   # doctest: +SKIP
    >>> o = attn(q_t, k_t, v)                 # eager: runs on the emulator   # doctest: +SKIP
    >>> f = neuron.from_torch(model, x)       # model calls attn: inlined     # doctest: +SKIP
"""
from __future__ import annotations

import inspect
import re

import numpy as np

from lowering.ir.types import TensorType

from .jax_kernel import JaxKernel

_LIBRARY = None
TORCH_KERNELS: dict = {}          # op name -> TorchKernel (what from_torch lowers)


def _library():
    global _LIBRARY
    if _LIBRARY is None:
        import torch
        _LIBRARY = torch.library.Library("neuron", "FRAGMENT")
    return _LIBRARY


def _to_numpy(t):
    import torch
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:          # NumPy has no bfloat16: reinterpret the bits
        import ml_dtypes
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def _to_torch(a):
    import torch
    a = np.ascontiguousarray(a)
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(a.copy())


def _graph_type(t) -> TensorType:
    return TensorType(tuple(t.shape), str(t.dtype).removeprefix("torch."))


def op_name(key: str) -> str:
    """The operator name for a kernel key: ``pkg.mod.fn`` -> ``pkg_mod_fn``."""
    name = re.sub(r"\W", "_", key)
    return name if not name[0].isdigit() else f"k_{name}"


class TorchKernel(JaxKernel):
    """An NKI kernel registered as the PyTorch operator ``torch.ops.neuron.<op_name>``."""

    def __init__(self, kernel, name=None):
        import torch
        super().__init__(kernel, name)
        fn = self.kernel.fn
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.default is p.empty]
        self.arity = len(params)
        self.op_name = op_name(self.key)
        if self.op_name not in TORCH_KERNELS:
            lib = _library()
            args = ", ".join(f"Tensor {p.name}" for p in params)
            lib.define(f"{self.op_name}({args}) -> Tensor[]")
            lib.impl(self.op_name, self._eager, "CPU")
            torch.library.register_fake(f"neuron::{self.op_name}", self._fake, lib=lib)
        TORCH_KERNELS[self.op_name] = self
        self.op = getattr(torch.ops.neuron, self.op_name)

    def _eager(self, *xs):
        return [_to_torch(r) for r in self._run([_to_numpy(x) for x in xs])]

    def _fake(self, *xs):
        import torch
        return [torch.empty(t.shape, dtype=getattr(torch, t.dtype), device=xs[0].device)
                for t in self._out_types([_graph_type(x) for x in xs])]

    def jax_call(self, *xs):
        """The JAX form of the operator (what the torchax route lowers the node to)."""
        return list(self.bind(*xs))

    def __call__(self, *xs):
        if len(xs) != self.arity:
            raise TypeError(f"{self.__name__} takes {self.arity} tensors, got {len(xs)}")
        outs = self.op(*xs)
        return outs[0] if len(outs) == 1 else tuple(outs)


def install_torchax_lowerings(ops_registry) -> None:
    """Teach torchax's interpreter every registered kernel operator (from_torch calls this)."""
    import torch
    for name, k in TORCH_KERNELS.items():
        op = getattr(torch.ops.neuron, name).default
        if op not in ops_registry.all_aten_ops:
            ops_registry.register_torch_dispatch_op(op, k.jax_call)


def torch_kernel(kernel=None, *, name=None):
    """Make an NKI kernel (``@nki.jit`` or a plain kernel function) a PyTorch custom operator
    that runs on the emulator eagerly and is inlined by ``neuron.from_torch``."""
    if kernel is None:
        return lambda k: TorchKernel(k, name)
    return TorchKernel(kernel, name)
