"""NKI kernels callable from JAX: ``neuron.jax_kernel(kernel)``.

The returned function takes and returns JAX arrays. Under ``jax.jit`` on CPU it runs the kernel
on the emulator through ``jax.pure_callback`` (result shapes come from tracing the kernel for the
operand shapes, so shape inference is exact). When the model is lowered to StableHLO / HLO the
call is the callback's custom call carrying the frontend attribute ``neuron_kernel = <key>``;
``load_stablehlo`` / ``load_hlo`` / ``from_jax`` map that back to the registered kernel and the
lowering inlines the kernel's device program into the model's program (one program, one
profile, the kernel's instructions keeping the kernel's source lines). The key is the kernel's
``module.qualname``, so a module exported in one process imports in another that has wrapped
the same kernel.

    >>> import jax, neuron                                          # doctest: +SKIP
    >>> from benchmarks.kernels.flash_attention import flash_attention                  # doctest: +SKIP
    >>> attn = neuron.jax_kernel(flash_attention)                   # doctest: +SKIP
    >>> y = jax.jit(lambda q, k, v: attn(q, k, v) * 2)(q_t, k_t, v) # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np

from lowering.ir.ops.kernel_call import KernelEntry, register_kernel
from lowering.ir.types import TensorType
from nki.tracing import ArraySpec, Kernel, jit

_PRIMITIVE = None


def _graph_dtype(dt: str) -> str:
    return "bool" if dt == "bool_" else dt


def _primitive():
    """The one JAX primitive for kernel calls (created on first use: jax is optional)."""
    global _PRIMITIVE
    if _PRIMITIVE is not None:
        return _PRIMITIVE
    import jax
    from jax.extend import core
    from jax.extend.mlir import ir
    from jax.interpreters import mlir

    prim = core.Primitive("neuron_kernel")
    prim.multiple_results = True

    def shapes(entry, avals):
        types = entry.out_types([TensorType(a.shape, str(np.dtype(a.dtype))) for a in avals])
        return [jax.ShapeDtypeStruct(t.shape, t.np_dtype) for t in types]

    def call(*xs, key):
        from lowering.ir.ops.kernel_call import kernel_entry
        entry = kernel_entry(key)
        outs = shapes(entry, xs)

        def host(*arrays):
            return [np.asarray(r, dtype=o.dtype) for r, o in
                    zip(entry.run([np.asarray(a) for a in arrays]), outs)]
        return jax.pure_callback(host, outs, *xs, vmap_method="sequential")

    def abstract(*avals, key):
        from lowering.ir.ops.kernel_call import kernel_entry
        return [jax.core.ShapedArray(s.shape, s.dtype) for s in shapes(kernel_entry(key), avals)]

    def lowering(ctx, *args, key):
        outs = mlir.lower_fun(lambda *xs: call(*xs, key=key), multiple_results=True)(ctx, *args)
        first = outs[0]
        first = first[0] if isinstance(first, (list, tuple)) else first
        op = first.owner          # the callback's custom_call: tag it with the kernel's key
        op.attributes["mhlo.frontend_attributes"] = ir.DictAttr.get(
            {"neuron_kernel": ir.StringAttr.get(key)})
        return outs

    prim.def_impl(call)
    prim.def_abstract_eval(abstract)
    mlir.register_lowering(prim, lowering)
    _PRIMITIVE = prim
    return prim


class JaxKernel:
    """An NKI kernel wrapped for JAX (see the module doc); ``.key`` names it in exports."""

    def __init__(self, kernel, name=None):
        self.kernel = kernel if isinstance(kernel, Kernel) else jit(kernel)
        fn = self.kernel.fn
        self.key = name or f"{fn.__module__}.{fn.__qualname__}"
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        register_kernel(KernelEntry(self.key, fn.__name__, self._out_types, self._run,
                                    self._trace))

    def _trace(self, types, arch=None):
        specs = [ArraySpec(t.shape, t.np_dtype if t.dtype != "bool" else "bool_")
                 for t in types]
        return self.kernel.trace(*specs, target=getattr(arch, "name", arch))

    def _out_types(self, types):
        prog = self._trace(types)
        return [TensorType(v.shape, _graph_dtype(v.dtype))
                for v in prog.info.output_views]

    def _run(self, arrays):
        res = self.kernel(*arrays)
        return list(res) if isinstance(res, (tuple, list)) else [res]

    def bind(self, *xs):
        """The kernel's results as a list of JAX arrays (the primitive bound on ``xs``)."""
        return _primitive().bind(*xs, key=self.key)

    def __call__(self, *xs):
        outs = self.bind(*xs)
        return outs[0] if len(outs) == 1 else tuple(outs)


def jax_kernel(kernel=None, *, name=None):
    """Make an NKI kernel (``@nki.jit`` or a plain kernel function) callable from JAX."""
    if kernel is None:
        return lambda k: JaxKernel(k, name)
    return JaxKernel(kernel, name)
