"""The nl-to-graph bridge: nl.* on whole HBM tensors recorded as graph ops and lowered.

Inside ``@neuron.jit``, ``nl.exp(nl.matmul(x, w))`` on HBM tensors records ``dot`` and ``exp`` in
the trace's graph (printed by ``.lower()``) and lowers each op at once with the same rules as an
imported HLO module, so both kinds of program share one path to the device. Each graph op keeps
the ``nl.*`` call's source line, and so do the instructions lowered from it.

The nl spellings come from the graph op table (``OpDef.nl``, ``REDUCE_KINDS``, ``DIRECTIONS``).
"""
from __future__ import annotations

from device.errors import UserKernelError, user_loc
from device.tensor import View

from lowering.ir import Graph, TensorType, broadcast_binary
from lowering.ir.ops import DIRECTIONS, REDUCE_KINDS, by_spelling, direction_of_alu
from lowering.lower import lower_graph, new_lowerer
from lowering.lower.builder import device_dtype
from lowering.lower.driver import lower_op

_NL_TO_GRAPH = by_spelling("nl")
_REDUCE = {k.nl: k.name for k in REDUCE_KINDS.values() if k.nl}
_CMP = {d.alu: d.name for d in DIRECTIONS.values()}
assert all(direction_of_alu(a) == n for a, n in _CMP.items())


def _graph_dtype(dt: str) -> str:
    return "bool" if dt == "bool_" else dt


class GraphState:
    """The graph a trace records, and where each of its values lives on the device."""

    def __init__(self, trace):
        self.graph = Graph(trace.program.name)
        self.values = {}       # storage id -> (graph Value, View)
        self.views = {}        # id(Value) -> View
        self.n_params = len(trace.program.inputs)
        self.lowered = len(trace.program.instrs)   # instructions that came from graph lowering
        for st in trace.program.inputs:
            v = View.whole(st)
            val = self.graph.param(TensorType(st.shape, _graph_dtype(st.dtype)), st.name)
            self.values[st.id] = val
            self.views[id(val)] = v


def _state(trace) -> GraphState:
    if trace.graph is None:
        trace.graph = GraphState(trace)
    return trace.graph


def _value(s: GraphState, lw, x):
    if not isinstance(x, View):
        return x
    val = s.values.get(x.storage.id)
    if val is not None and x.shape == tuple(val.type.shape) and s.views[id(val)].pattern == x.pattern:
        return val
    # a view of a known value or another HBM tensor: materialise it as a new parameter-like value
    c = lw.contiguous(x)
    val = s.graph.param(TensorType(x.shape, _graph_dtype(x.dtype)), f"{x.storage.name}_view")
    s.values[c.storage.id] = val
    s.views[id(val)] = c
    return val


def graph_op(trace, name, inputs, attrs, dtype=None):
    """Record nl op ``name`` on HBM tensors in the trace's graph and lower it; returns an HBM View."""
    s = _state(trace)
    loc = user_loc(3)
    lw = new_lowerer(trace.program, loc)
    g = s.graph
    vals = [_value(s, lw, x) for x in inputs]
    n_before = len(g.ops)
    if name == "matmul":
        a, b = vals
        res = g.add_op("dot", [a, b], {"lhs_contract": [a.type.rank - 1], "rhs_contract": [0]},
                       loc=loc)
    elif name in _CMP:
        res = broadcast_binary(g, "compare", vals[0], vals[1], direction=_CMP[name])
    elif name in _REDUCE:
        x = vals[0]
        res = g.add_op("reduce", [x], {"dims": list(attrs["axis"]), "kind": _REDUCE[name]},
                       loc=loc)
        if attrs.get("keepdims"):
            shape = [1 if i in attrs["axis"] else d for i, d in enumerate(x.type.shape)]
            res = g.add_op("reshape", [res], {"shape": shape})
    elif name == "transpose":
        res = g.add_op("transpose", vals, {"perm": list(attrs["perm"])}, loc=loc)
    elif name in _NL_TO_GRAPH and len(vals) == 2:
        res = broadcast_binary(g, _NL_TO_GRAPH[name], vals[0], vals[1])
    elif name in _NL_TO_GRAPH:
        res = g.add_op(_NL_TO_GRAPH[name], vals, {}, loc=loc)
    else:
        raise UserKernelError(f"nl.{name} on whole HBM tensors is not supported yet; load tiles "
                              f"into SBUF and use the tile API", loc=loc)
    if dtype is not None and device_dtype(_graph_dtype(dtype)) != device_dtype(res.type.dtype):
        res = g.add_op("convert", [res], {"dtype": _graph_dtype(dtype)})
    n_instrs = len(trace.program.instrs)
    for op in g.ops[n_before:]:
        op.loc = op.loc or loc
        if trace.graph_only:          # only the graph is wanted (autotune): no lowering
            out = lw.hbm(tuple(op.result.type.shape) or (1,), op.result.type.dtype)
        else:
            env = {id(v): s.views[id(v)] for v in op.inputs}
            lower_op(lw, op, env)
            out = env[id(op.result)]
        s.views[id(op.result)] = out
        s.values[out.storage.id] = op.result
    s.lowered += len(trace.program.instrs) - n_instrs
    return s.views[id(res)].reshape(tuple(res.type.shape) or (1,))


def finish(trace, ret):
    """Set the graph outputs from a model function's return value (views of graph results)."""
    s = trace.graph
    rets = ret if isinstance(ret, tuple) else (ret,)
    outs = []
    for r in rets:
        if isinstance(r, View) and r.storage.id in s.values:
            outs.append(s.values[r.storage.id])
    if outs:
        s.graph.set_outputs(outs)
    # A pure model (every instruction came from graph ops, every result is a graph value) is
    # lowered again as a whole, so element-wise chains and dot epilogues fuse (lowering.lower.fusion).
    trace.program.info.pure_graph = bool(outs) and len(outs) == len(rets) and \
        trace.lnc == 1 and s.lowered == len(trace.program.instrs) and \
        len(s.graph.params) == s.n_params
    return ret


def relower(program, graph, schedules=None):
    """The whole-graph (fused) program for a pure model, and its returned views in order."""
    new = lower_graph(graph, program.arch, name=program.name, schedules=schedules)
    views = [View.whole(st).reshape(tuple(v.type.shape) or (1,))
             for st, v in zip(new.outputs, graph.outputs)]
    new.outputs = []
    return new, views
