"""The driver: the only code that walks a graph to lower it.

``lower_graph`` plans the fusion groups (:func:`lowering.lower.fusion.plan`), picks each group's
schedule (``schedules[group.key]`` when given, else the rule's default), and lowers the groups in
graph order. Every graph value lives in HBM between groups. Instructions carry the source
location of the op they came from (the ``nl.*`` line, or the HLO instruction and its line).

    >>> from lowering.ir import Graph, TensorType
    >>> g = Graph("f"); x = g.param(TensorType((256, 64), "float32"), "x")
    >>> g.set_outputs([g.add_op("exp", [x])])
    >>> prog = lower_graph(g, "inf2")
    >>> [i.op.name for i in prog.instrs]             # one [128, 128] tile
    ['dma_copy', 'activation', 'dma_copy']
    >>> from lowering.lower.stream import StreamSchedule
    >>> key = plan(g)[0].key
    >>> len(lower_graph(g, "inf2", schedules={key: StreamSchedule(free=32)}).instrs)
    12
"""
from __future__ import annotations

from device.arch import get_arch
from device.errors import UserKernelError
from device.program import Program

from . import rules  # noqa: F401  (fills OPS[...].lower: the table is complete once lowering loads)
from ..ir.ops import OPS
from .builder import Lowerer, device_dtype
from .fusion import Group, lower_group, plan
from .patterns import fuse_patterns
from .schedule import IllegalSchedule


def schedule_for(group: Group, arch, schedules: dict | None):
    """The schedule of ``group``: the given one (checked) or the rule's default."""
    sched = (schedules or {}).get(group.key)
    if sched is None:
        return group.default_schedule(arch)
    cls = group.schedule_class()
    if not isinstance(sched, cls):
        raise IllegalSchedule(f"group {group.key} takes a {cls.__name__}, got {sched!r}")
    return sched.require(group.problem(), arch)


def lower_ops(lw: Lowerer, graph, views, groups=None) -> list:
    """Lower every op of ``graph`` with its parameters bound to ``views``; return the output
    views. Used for whole graphs, loop bodies and rules that decompose into simpler ops.
    ``groups`` overrides the fusion plan (the tuner prices one group as its own graph)."""
    env = {id(p): v for p, v in zip(graph.params, views)}
    for group in groups if groups is not None else plan(graph, lw.fuse):
        sched = schedule_for(group, lw.arch, lw.schedules)
        if group.fused:
            lower_group(lw, group, env, sched)
        else:
            lower_op(lw, group.root, env, sched)
    return [env[id(v)] for v in graph.outputs]


def lower_op(lw: Lowerer, op, env: dict, sched=None) -> None:
    """Lower one graph op on its own; ``env`` maps id(value) -> HBM view and gets its results."""
    rule = OPS[op.opcode].lower
    with lw.at(op.loc):
        if rule is None:
            raise UserKernelError(f"graph op '{op.opcode}' has no lowering to the NeuronCore yet",
                                  loc=lw.loc)
        if sched is None:
            sched = schedule_for(plan_one(op), lw.arch, lw.schedules)
        ins = [env[id(x)] for x in op.inputs]
        out = rule(lw, op, ins, sched)
    if op.multi:
        env.update({id(r): o for r, o in zip(op.results, out)})
    else:
        env[id(op.result)] = out


def groups_of(graph, fuse: bool = True) -> list[Group]:
    """The fusion groups ``lower_graph`` lowers for ``graph`` (after the whole-model pattern
    passes), whose keys ``schedules=`` refers to."""
    return plan(fuse_patterns(graph), fuse)


def plan_one(op) -> Group:
    from .fusion import make_group
    return make_group([op])


def new_lowerer(program: Program, loc=None, fuse=True, schedules=None) -> Lowerer:
    return Lowerer(program, loc, subgraph=lower_ops, schedules=schedules, fuse=fuse)


def lower_graph(graph, target=None, name=None, fuse=True, schedules=None, groups=None) -> Program:
    """Lower a whole graph to a device program whose inputs are the graph's parameters.

    ``schedules`` maps group keys (``groups_of(graph)[i].key``) to Schedules; missing groups use their
    rule's default. ``fuse=False`` lowers every op on its own (each value round-trips HBM)."""
    prog = Program(name or graph.name, get_arch(target))
    if groups is None:                       # whole-model patterns (both fuse modes: same bits)
        graph = fuse_patterns(graph)
    lw = new_lowerer(prog, fuse=fuse, schedules=schedules)
    views = []
    for pv in graph.params:
        v = prog.alloc(pv.type.shape or (1,), device_dtype(pv.type.dtype), "hbm", name=pv.name,
                       kind="input")
        prog.inputs.append(v.storage)
        views.append(v.reshape(tuple(pv.type.shape)) if pv.type.shape else v)
    finish_outputs(lw, prog, lower_ops(lw, graph, views, groups))
    return prog


def finish_outputs(lw, prog, views):
    """Make every returned value an owned shared_hbm tensor (copy aliases and inputs)."""
    seen = set()
    for v in views:
        st = v.storage
        if st.kind in ("input", "const") or not v.is_contiguous() or v.offset or \
                v.size != st.size or st.id in seen:
            new = lw.hbm(v.shape, v.dtype)
            lw.emit("dma_copy", dst=new, src=v)
            st = new.storage
        seen.add(st.id)
        prog.outputs.append(st)
