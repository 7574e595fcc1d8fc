"""How the tuner walks a schedule space with the fast pricer.

A space of at most ``EXHAUSTIVE`` candidates is priced whole, in canonical order. A larger one
(a product of many knobs) is searched:

1. **seeds**: the default, every candidate one knob away from it, and a seeded random sample
   of the rest (``SAMPLE`` candidates; the seed is derived from the space itself, so the same
   space gives the same sample in any process);
2. **local search**: the ``BEAM`` best priced candidates' unpriced neighbours (one knob
   changed) are priced, round after round, until a round improves nothing or the budget ends.

``price(schedules)`` prices a batch and returns ``{schedule: ns}``; ``over()`` says the budget
is spent (checked between batches, so the best so far is always returned).

    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class S:
    ...     a: int = 0
    ...     b: int = 0
    ...     c: int = 0
    ...     def knobs(self): return dataclasses.asdict(self)
    >>> space = [S(a, b, c) for a in range(20) for b in range(20) for c in range(20)]
    >>> cost = lambda s: (s.a - 17) ** 2 + (s.b - 3) ** 2 + (s.c - 11) ** 2
    >>> seen = search(space, lambda batch: {s: cost(s) for s in batch}, lambda: False)
    >>> min(seen, key=seen.get), len(seen) < len(space)
    (S(a=17, b=3, c=11), True)
"""
from __future__ import annotations

import hashlib
import random

EXHAUSTIVE = 4096        # spaces up to this size are priced whole
SAMPLE = 512             # random seeds of a larger space
BEAM = 4                 # candidates whose neighbours each local-search round prices
BATCH = 64               # candidates priced between two budget checks


def _knob_tuple(s) -> tuple:
    return tuple(sorted(s.knobs().items(), key=lambda kv: kv[0]))


def neighbours(s, space) -> list:
    """The candidates of ``space`` that differ from ``s`` in exactly one knob."""
    mine = s.knobs()
    out = []
    for t in space:
        diff = 0
        for k, v in t.knobs().items():
            if mine.get(k) != v:
                diff += 1
                if diff > 1:
                    break
        if diff == 1:
            out.append(t)
    return out


def seeds(space) -> list:
    """The default, its neighbours, then a seeded sample of the rest (canonical order kept)."""
    first = [space[0]] + neighbours(space[0], space)
    chosen = set(first)
    rest = [s for s in space if s not in chosen]
    digest = hashlib.sha1(repr([_knob_tuple(s) for s in space[:64]]).encode() +
                          str(len(space)).encode()).hexdigest()
    rng = random.Random(int(digest[:12], 16))
    pick = sorted(rng.sample(range(len(rest)), min(SAMPLE, len(rest))))
    return first + [rest[i] for i in pick]


def search(space, price, over) -> dict:
    """Price ``space`` (see the module doc); returns every price obtained."""
    seen: dict = {}

    def run(batch) -> bool:
        """Price ``batch`` in slices; False once the budget is spent."""
        for i in range(0, len(batch), BATCH):
            if seen and over():
                return False
            seen.update(price(batch[i:i + BATCH]))
        return True

    if len(space) <= EXHAUSTIVE:
        run(list(space))
        return seen
    if not run(seeds(space)):
        return seen
    order = {s: i for i, s in enumerate(space)}
    best = min(seen.values())
    while True:
        top = sorted(seen, key=lambda s: (seen[s], order[s]))[:BEAM]
        frontier = []
        for s in top:
            frontier += [t for t in neighbours(s, space) if t not in seen and t not in frontier]
        if not frontier or not run(frontier):
            return seen
        now = min(seen.values())
        if now >= best:
            return seen
        best = now


__all__ = ["EXHAUSTIVE", "neighbours", "search", "seeds"]
