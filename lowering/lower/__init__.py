"""From graphs to device programs: rules with Schedules, the fusion planner and the driver.

    >>> from lowering.lower import lower_graph, plan
"""
from .driver import groups_of, lower_graph, lower_ops, new_lowerer, schedule_for
from .fusion import FusedMatmulSchedule, Group, plan
from .rules.matmul import MatmulProblem, MatmulSchedule
from .rules.reduce import ReduceProblem, ReduceSchedule
from .schedule import IllegalSchedule, NoKnobs, Schedule, from_key
from .stream import StreamProblem, StreamSchedule

__all__ = ["FusedMatmulSchedule", "Group", "IllegalSchedule", "MatmulProblem", "MatmulSchedule",
           "NoKnobs", "ReduceProblem", "ReduceSchedule", "Schedule", "StreamProblem",
           "StreamSchedule", "from_key", "groups_of", "lower_graph", "lower_ops", "new_lowerer", "plan",
           "schedule_for"]
