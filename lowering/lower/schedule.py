"""Schedules: every tiling and layout decision of a lowering rule, as a frozen value.

A rule family declares one Schedule subclass next to its rule. Its fields are the knobs; nothing
the tuner may change lives in a module constant. Each class provides:

- ``default(problem, arch)``: the schedule that reproduces the untuned programs byte for byte
  (the golden corpus in tests/lowering/golden pins them);
- ``space(problem, arch)``: the legal candidates, the default first, in a canonical order;
- ``check(problem, arch)``: None when legal, else the reason (checked against ``device.arch``
  budgets before anything is priced);
- ``key()``: canonical JSON, the database key of the candidate.

``problem`` is the rule's view of the shapes it lowers (a small frozen dataclass, e.g.
:class:`lowering.lower.rules.matmul.MatmulProblem`), built from the graph op or fusion group.

    >>> from lowering.lower.rules.matmul import MatmulSchedule, MatmulProblem
    >>> from device.arch import get_arch
    >>> prob = MatmulProblem(1, 4096, 8192, 8192, "bfloat16")
    >>> MatmulSchedule.default(prob, get_arch("trn1")).key()
    '{"kind": "matmul", "lhs_chunk": 4096, "m_group": 4, "n_tile": 512, "order": "m"}'
"""
from __future__ import annotations

import dataclasses
import json


class IllegalSchedule(ValueError):
    """A schedule that the hardware cannot run for this problem (the message says why)."""


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Base of every rule family's schedule. Subclasses are frozen dataclasses of knobs."""

    kind = "none"            # class attribute: the family name in keys and reports

    @classmethod
    def default(cls, problem, arch) -> "Schedule":
        return cls()

    @classmethod
    def candidates(cls, problem, arch) -> list["Schedule"]:
        """Every combination of knob values worth trying (legal or not); the default first."""
        return [cls.default(problem, arch)]

    @classmethod
    def space(cls, problem, arch) -> list["Schedule"]:
        """The legal candidates, the default first (always: it is what the untuned lowering
        runs), without duplicates, in canonical order."""
        default = cls.default(problem, arch)
        out, seen = [default], {default}
        for s in cls.candidates(problem, arch):
            if s not in seen and s.check(problem, arch) is None:
                seen.add(s)
                out.append(s)
        return out

    def check(self, problem, arch) -> str | None:
        """None when this schedule can lower ``problem`` on ``arch``; else the reason."""
        return None

    def require(self, problem, arch) -> "Schedule":
        """``self``, or IllegalSchedule naming the reason."""
        why = self.check(problem, arch)
        if why is not None:
            raise IllegalSchedule(f"{self.key()} is illegal for {problem}: {why}")
        return self

    def knobs(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def key(self) -> str:
        return json.dumps({"kind": self.kind, **self.knobs()}, sort_keys=True)

    def __str__(self) -> str:
        return f"{self.kind}(" + ", ".join(f"{k}={v}" for k, v in self.knobs().items()) + ")"


@dataclasses.dataclass(frozen=True)
class NoKnobs(Schedule):
    """Rules whose programs have nothing to choose (layout DMAs, constants)."""

    kind = "fixed"


def from_key(key: str) -> Schedule:
    """The schedule a ``key()`` names (for plans stored as JSON)."""
    data = json.loads(key)
    kind = data.pop("kind")
    for cls in _all_subclasses(Schedule):
        if cls.kind == kind:
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
    raise IllegalSchedule(f"unknown schedule kind {kind!r} in {key}")


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)
