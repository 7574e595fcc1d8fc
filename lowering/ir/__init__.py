"""The graph IR: types, the op table, graphs, the NumPy oracle, builders and passes.

    >>> from lowering.ir import Graph, TensorType
    >>> g = Graph("f"); x = g.param(TensorType((2,), "float32"), "x")
    >>> g.set_outputs([g.add_op("exp", [x])]); print(g.ops[0])
    %0 = exp(%x) : f32[2]
"""
from .builders import broadcast_binary
from .evaluate import evaluate
from .graph import Graph, Op, Value
from .ops import OPS, OpDef, RuleError
from .passes import simplify
from .types import GraphError, TensorType

__all__ = ["Graph", "GraphError", "OPS", "Op", "OpDef", "RuleError", "TensorType", "Value",
           "broadcast_binary", "evaluate", "simplify"]
