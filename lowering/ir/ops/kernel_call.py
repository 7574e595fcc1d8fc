"""``kernel_call``: a custom NKI kernel inside a model graph.

A front end (``neuron.jax_kernel``) registers each kernel once as a :class:`KernelEntry`: how
its result types follow from its operand types, how to run it (the reference: the kernel on
the emulator) and how to trace it to a device program for given operand types (the lowering
inlines that program into the model's, see :mod:`lowering.lower.rules.kernel_call`). Exported
models name the kernel by its registry key (a frontend attribute ``neuron_kernel`` on the
custom call); importers map the call back with :func:`import_kernel_call`. ``lowering`` never
imports the front end: the entry carries plain callables.

    >>> from lowering.ir.types import TensorType
    >>> e = register_kernel(KernelEntry("double@demo", "double", lambda ts: list(ts),
    ...                                 lambda xs: [2 * xs[0]], None))
    >>> OPS['kernel_call'].type_rule([TensorType((4,), 'float32')], {'kernel': e.key})
    (TensorType(shape=(4,), dtype='float32'),)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..types import TensorType
from .table import OPS, REQUIRED, RuleError, define, finish


@dataclass
class KernelEntry:
    """``out_types(types) -> [TensorType]``; ``run(arrays) -> [arrays]`` (the reference);
    ``trace(types, arch) -> device Program`` whose inputs are the operands in order and whose
    outputs are the results in order."""

    key: str
    name: str
    out_types: Callable
    run: Callable
    trace: Callable | None


KERNELS: dict[str, KernelEntry] = {}


def register_kernel(entry: KernelEntry) -> KernelEntry:
    KERNELS[entry.key] = entry
    return entry


def kernel_entry(key: str) -> KernelEntry:
    entry = KERNELS.get(key)
    if entry is None:
        known = ", ".join(sorted(KERNELS)) or "none"
        raise RuleError(f"NKI kernel {key!r} is not registered in this process (wrap it with "
                        f"neuron.jax_kernel or neuron.torch_kernel before importing the model; "
                        f"registered: {known})")
    return entry


def _rule(types, attrs):
    return tuple(kernel_entry(attrs["kernel"]).out_types(list(types)))


def _ref(xs, attrs, out):
    res = kernel_entry(attrs["kernel"]).run(list(xs))
    return tuple(finish(r, t) for r, t in zip(res, out))


define("kernel_call", None, {"kernel": REQUIRED}, _rule, _ref,
       "a registered NKI kernel called on the operands (results as the kernel returns them)",
       multi=True)


def import_kernel_call(key: str, emit, xs, out_types: list[TensorType]):
    """The results of a kernel call an importer found (checked against the declared types)."""
    from ...importers.hlo_syntax import HloImportError
    if key not in KERNELS:
        raise HloImportError(f"custom call names NKI kernel {key!r}, which is not registered in "
                             f"this process (wrap the kernel with neuron.jax_kernel or "
                             f"neuron.torch_kernel first)")
    res = emit("kernel_call", xs, kernel=key)
    res = list(res) if isinstance(res, tuple) else [res]
    got = [r.type for r in res]
    if got != list(out_types):
        raise HloImportError(f"NKI kernel {key!r} returns {', '.join(map(str, got))} but the "
                             f"call declares {', '.join(map(str, out_types))}")
    return res
