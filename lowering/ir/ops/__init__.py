"""The graph-IR op table (:mod:`.table`) and the op families that fill it.

    >>> from lowering.ir.ops import OPS
    >>> len(OPS) > 50
    True
"""
from . import core, elementwise, layout, window  # noqa: F401  (each family defines its ops)
from . import attention, exported, ffn, kernel_call  # noqa: F401  (exporters' ops, kernels, fused blocks)
from .table import (DIRECTIONS, OPS, REDUCE_KINDS, REQUIRED, OpDef, ReduceKind, RuleError,
                    by_spelling, direction_of_alu, reduce_kind_of_combiner)

__all__ = ["DIRECTIONS", "OPS", "OpDef", "REDUCE_KINDS", "REQUIRED", "ReduceKind", "RuleError",
           "by_spelling", "direction_of_alu", "reduce_kind_of_combiner"]
