"""A fusion group as a graph of its own: what the tuner prices, verifies and ships to workers.

Values between groups live in HBM, so a group lowered alone with its external inputs as
parameters runs the same instructions as inside the whole program: groups are tuned
independently and the search is a sum of per-group spaces.

    >>> from lowering.ir import Graph, TensorType
    >>> g = Graph("f"); x = g.param(TensorType((64, 32), "float32"), "x")
    >>> w = g.param(TensorType((32, 16), "float32"), "w")
    >>> y = g.add_op("dot", [x, w], {"lhs_contract": [1], "rhs_contract": [0]})
    >>> g.set_outputs([g.add_op("exp", [y])])
    >>> from lowering.lower import plan
    >>> sub = standalone(plan(g)[0])
    >>> sub.group.key == plan(g)[0].key, [str(p.type) for p in sub.graph.params]
    (True, ['f32[64,32]', 'f32[32,16]'])
"""
from __future__ import annotations

import dataclasses
import math

from ..ir.graph import Graph
from ..lower.fusion import Group, make_group
from ..lower.rules.matmul import MatmulSchedule
from ..lower.stream import StreamSchedule
from ..lower.rules.reduce import ReduceSchedule


@dataclasses.dataclass(frozen=True, eq=False)
class Standalone:
    """A group rebuilt as its own graph (params = the group's external inputs)."""

    graph: Graph
    group: Group

    def lower(self, target, schedule=None):
        from ..lower.driver import lower_graph
        sched = {self.group.key: schedule} if schedule is not None else None
        return lower_graph(self.graph, target, schedules=sched, groups=[self.group])


def standalone(group: Group, name: str = "group") -> Standalone:
    g = Graph(name)
    env: dict[int, object] = {}
    for op in group.ops:
        for v in op.inputs:
            if id(v) not in env:
                env[id(v)] = g.param(v.type, f"in{len(g.params)}")
        new = g.add_op(op.opcode, [env[id(v)] for v in op.inputs], dict(op.attrs), loc=op.loc)
        for r, n in zip(op.results, new if op.multi else (new,)):
            env[id(r)] = n
    g.set_outputs([env[id(v)] for v in group.outputs])
    sub = make_group(g.ops, tuple(env[id(v)] for v in group.stores))
    if sub.key != group.key:                   # the key is structural: this cannot differ
        raise AssertionError(f"standalone group key {sub.key} != {group.key}")
    return Standalone(g, sub)


def tunable(group: Group) -> bool:
    """Groups whose rule has knobs worth searching."""
    return issubclass(group.schedule_class(), (MatmulSchedule, StreamSchedule, ReduceSchedule))


def reduced_sizes(size: int, tile: int) -> int:
    """A size that iterates a loop of ``tile`` at least twice and keeps the remainder."""
    return min(size, 2 * tile + size % tile) if tile > 0 else size


def work(group: Group) -> int:
    """A rough count of element operations the group executes on the emulator."""
    if group.dot is not None:
        p = group.problem()
        return p.B * p.M * p.K * p.N
    return sum(math.prod(op.result.type.shape) for op in group.ops) * 4
