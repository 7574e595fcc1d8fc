"""Graph IR, its op table, and importers (XLA HLO text) -- the layer between front ends and
device programs. Depends only on NumPy/ml_dtypes (and later on ``device``), never on ``nki``
or ``neuron``.

    >>> from lowering import Graph, evaluate, parse_hlo, OPS
"""
from .graph import Graph, Op, Value, evaluate
from .hlo_syntax import HloImportError
from .hlo_text import parse_hlo
from .ops import OPS, OpDef, broadcast_binary
from .types import GraphError, TensorType
from .tiling import lower_graph

__all__ = ["Graph", "GraphError", "HloImportError", "OPS", "Op", "OpDef", "TensorType", "Value",
           "broadcast_binary", "evaluate", "lower_graph", "parse_hlo"]
