"""The lowering rules, one module per family; importing this package fills the op table.

    >>> from lowering.ir.ops import OPS
    >>> all(d.lower is not None for d in OPS.values())
    True
"""
from . import elementwise, layout, matmul, reduce, window  # noqa: F401
from . import attention, conv, exported, ffn, kernel_call, mh_attention, norms, sort  # noqa: F401  (issue 12)

__all__ = ["attention", "conv", "elementwise", "exported", "ffn", "kernel_call", "layout", "matmul", "mh_attention",
           "norms", "reduce", "sort",
           "window"]
