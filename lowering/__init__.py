"""Graph IR, importers, lowering rules with Schedules -- the layer between front ends and device
programs. Depends only on ``device`` (and NumPy/ml_dtypes; jax for StableHLO), never on ``nki``
or ``neuron``. Importing it yields a complete op table (every rule registered).

    >>> from lowering import Graph, TensorType, evaluate, parse_hlo, lower_graph, OPS
    >>> OPS['exp'].lower is not None
    True
"""
from .importers import HloImportError, StableHloImportError, parse_hlo, parse_stablehlo
from .ir import (OPS, Graph, GraphError, Op, OpDef, TensorType, Value, broadcast_binary,
                 evaluate, simplify)
from .lower import (Group, MatmulSchedule, Schedule, StreamSchedule, lower_graph, plan)

__all__ = ["Graph", "GraphError", "Group", "HloImportError", "MatmulSchedule", "OPS", "Op",
           "OpDef", "Schedule", "StableHloImportError", "StreamSchedule", "TensorType", "Value",
           "broadcast_binary", "evaluate", "lower_graph", "parse_hlo", "parse_stablehlo", "plan",
           "simplify"]
