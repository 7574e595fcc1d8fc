"""The NumPy oracle: run a graph with each op's reference implementation.

Lowered programs, fused groups and tuned schedules are all tested against this.
"""
from __future__ import annotations

import numpy as np

from .ops import OPS
from .types import GraphError


def evaluate(graph: Graph, *arrays) -> list[np.ndarray]:
    """Run the graph on NumPy arrays with each op's reference implementation (the test oracle).

    Arguments are converted to the parameter dtypes; shapes must match exactly.

        >>> from lowering.ir.graph import Graph
        >>> from lowering.ir.types import TensorType
        >>> g = Graph(); x = g.param(TensorType((2,), "float32"), "x")
        >>> g.set_outputs([g.add_op("negate", [x])])
        >>> evaluate(g, np.array([1.0, -2.0]))
        [array([-1.,  2.], dtype=float32)]
    """
    if len(arrays) != len(graph.params):
        signature = ", ".join(f"{p}: {p.type}" for p in graph.params)
        raise GraphError(f"graph {graph.name} takes {len(graph.params)} argument(s) "
                         f"({signature}), got {len(arrays)}")
    env: dict[int, np.ndarray] = {}
    for i, (p, a) in enumerate(zip(graph.params, arrays)):
        arr = np.asarray(a)
        if arr.shape != p.type.shape:
            raise GraphError(f"argument {i} for {p}: shape {list(arr.shape)} does not match "
                             f"the parameter type {p.type}")
        env[id(p)] = arr.astype(p.type.np_dtype, copy=False)
    for op in graph.ops:
        inputs = [env[id(v)] for v in op.inputs]
        out_type = tuple(r.type for r in op.results) if op.multi else op.result.type
        outs = OPS[op.opcode].reference(inputs, op.attrs, out_type)
        outs = list(outs) if op.multi else [outs]
        for r, out in zip(op.results, outs):
            if out.shape != r.type.shape or out.dtype != r.type.np_dtype:
                # A broken reference would silently poison every test that uses it: fail loudly.
                raise GraphError(f"reference of {op.opcode} returned {out.dtype}"
                                 f"{list(out.shape)} for `{op}`")
            env[id(r)] = out
    return [env[id(v)] for v in graph.outputs]
