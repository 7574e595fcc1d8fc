"""The lowering rules, one module per family; importing this package fills the op table.

    >>> from lowering.ir.ops import OPS
    >>> all(d.lower is not None for d in OPS.values() if d.name not in ('sort', 'atan2'))
    True
"""
from . import elementwise, layout, matmul, reduce, window  # noqa: F401

__all__ = ["elementwise", "layout", "matmul", "reduce", "window"]
