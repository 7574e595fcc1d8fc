"""The schedules of fused groups: a dot with an epilogue, and a reduce with its producer.

Each extends its rule family's schedule with the knobs that only a group has:

- ``split`` (one flag per internal edge; () fuses every edge): where the group is cut into
  loops that pass the value through HBM (:func:`lowering.lower.fusion.split_parts`);
- ``resident`` (a reduce with the element-wise group producing its operand): whether the
  producer's tiles stay in SBUF and are reduced as they are computed (one loop, no HBM round
  trip) or go through HBM as two loops (the default: the program of the two groups unfused).

    >>> from device.arch import get_arch
    >>> prob = FusedReduceProblem(2048, 1024, 4, "add", "float32", 1, tiles=3)
    >>> space = FusedReduceSchedule.space(prob, get_arch("inf2"))
    >>> space[0].key(), sum(s.resident for s in space), len(space)
    ('{"chunk": 4096, "kind": "fused_reduce"}', 5, 10)
"""
from __future__ import annotations

import dataclasses

from .rules.matmul import MatmulProblem, MatmulSchedule
from .rules.reduce import ReduceProblem, ReduceSchedule
from .stream import check_split, split_choices


@dataclasses.dataclass(frozen=True)
class FusedMatmulProblem(MatmulProblem):
    """A dot with an epilogue: the dot's problem and the group's internal edge count."""

    edges: int = 0


@dataclasses.dataclass(frozen=True)
class FusedMatmulSchedule(MatmulSchedule):
    """A dot with an element-wise epilogue: the matmul knobs plus ``row_cache``, the SBUF bytes
    per partition for row-vector leaves (a bias) kept across output tiles."""

    kind = "fused_matmul"
    row_cache: int = 32 * 1024
    split: tuple = ()

    def knobs(self) -> dict:
        k = super().knobs()
        if not any(self.split):
            k.pop("split")
        return k

    @classmethod
    def default(cls, problem, arch):
        return cls(**MatmulSchedule.default(problem, arch).knobs())

    @classmethod
    def candidates(cls, problem, arch):
        out = [cls(**s.knobs()) for s in MatmulSchedule.candidates(problem, arch)]
        base = cls.default(problem, arch).knobs()
        return out + [cls(**base, split=s) for s in split_choices(getattr(problem, "edges", 0))]

    @property
    def closed_form(self) -> bool:
        return super().closed_form and not any(self.split)

    def matmul_knobs(self) -> dict:
        """The knobs of the dot itself (for the dot's part of a split group)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(MatmulSchedule)}

    def check(self, problem, arch):
        why = check_split(self.split, getattr(problem, "edges", 0)) or \
            MatmulSchedule.check(self, problem, arch)
        if why is None and self.sbuf_bytes(problem, arch) + self.row_cache > \
                arch.sbuf_usable_bytes_per_partition:
            return f"the row cache of {self.row_cache} B does not fit beside the matmul tiles"
        return why


@dataclasses.dataclass(frozen=True)
class FusedReduceProblem(ReduceProblem):
    """A reduce over the trailing axes of an element-wise group's result: the reduce's problem
    and the SBUF tiles a resident loop keeps live per iteration (the group's and the reduce's)."""

    tiles: int = 2


@dataclasses.dataclass(frozen=True)
class FusedReduceSchedule(ReduceSchedule):
    """The reduce knobs plus ``resident`` (see the module doc) and ``row_cache`` (SBUF bytes
    per partition for row-vector leaves of the producer, resident loop only)."""

    kind = "fused_reduce"
    resident: bool = False
    row_cache: int = 32 * 1024

    def knobs(self) -> dict:
        k = super().knobs()
        if not self.resident:
            k.pop("resident")
            k.pop("row_cache")              # only the resident loop has leaves to cache
        return k

    @classmethod
    def candidates(cls, problem, arch):
        out = [cls(**s.knobs()) for s in ReduceSchedule.candidates(problem, arch)]
        return out + [cls(**s.knobs(), resident=True) for s in out]

    def check(self, problem, arch):
        if self.resident and self.axis != "free":
            return "resident=True reduces the producer's tiles on the free axis (axis='free')"
        why = ReduceSchedule.check(self, problem, arch)
        if why is None and self.resident:
            need = problem.tiles * self.chunk * problem.itemsize + self.row_cache
            if need > arch.sbuf_usable_bytes_per_partition:
                return (f"resident: {problem.tiles} tiles x {self.chunk} x {problem.itemsize} B"
                        f" + row cache {self.row_cache} B = {need} B per partition exceed the "
                        f"{arch.sbuf_usable_bytes_per_partition} B of SBUF")
        return why
