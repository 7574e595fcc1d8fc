"""Graph-building helpers above the strict XLA op set (NumPy-style conveniences).

    >>> from lowering.ir.graph import Graph
    >>> from lowering.ir.types import TensorType
    >>> g = Graph()
    >>> x = g.param(TensorType((4, 3), "float32"), "x")
    >>> b = g.param(TensorType((3,), "float32"), "b")
    >>> str(broadcast_binary(g, "add", x, b).type)
    'f32[4,3]'
"""
from __future__ import annotations

import numpy as np

from .graph import Value
from .types import GraphError


def broadcast_binary(g, opcode: str, a, b, **attrs):
    """Apply a binary op with NumPy broadcasting by inserting explicit ``broadcast`` ops.

    Python numbers become constants of the other operand's dtype.
    """
    if not isinstance(a, Value) and not isinstance(b, Value):
        raise GraphError(f"broadcast_binary({opcode!r}): at least one operand must be a Value")
    if not isinstance(a, Value):
        a = g.add_op("constant", [], {"value": np.asarray(a, dtype=b.type.np_dtype)})
    if not isinstance(b, Value):
        b = g.add_op("constant", [], {"value": np.asarray(b, dtype=a.type.np_dtype)})
    try:
        shape = np.broadcast_shapes(a.type.shape, b.type.shape)
    except ValueError:
        raise GraphError(f"{opcode}: shapes {a.type} and {b.type} do not broadcast "
                         "(NumPy rules: trailing dims must be equal or 1)") from None
    return g.add_op(opcode, [broadcast_to(g, a, shape), broadcast_to(g, b, shape)], attrs)


def broadcast_to(g, v, shape):
    """Strict XLA form: drop the size-1 dims that stretch (reshape), then broadcast."""
    if v.type.shape == tuple(shape):
        return v
    offset = len(shape) - v.type.rank
    keep = [i for i, s in enumerate(v.type.shape) if s == shape[i + offset]]
    if len(keep) != v.type.rank:
        v = g.add_op("reshape", [v], {"shape": [v.type.shape[i] for i in keep]})
    return g.add_op("broadcast", [v], {"shape": shape, "dims": [i + offset for i in keep]})
