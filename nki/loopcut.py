"""Loop cutting: trace a kernel with some of its ``affine_range``/``sequential_range`` loops cut
to a few iterations, remembering which instructions each kept iteration emitted.

This is what makes pricing a big tile kernel cheap (``neuron.autotune``'s truncated pricing):
the timing of a loop nest whose body reaches a steady state grows linearly in each loop's trip
count, so a program traced with the loops cut to ``keep`` and ``keep + 1`` iterations prices
the whole one by (multi)linear extrapolation. One trace with every chosen loop cut to
``keep + 1`` iterations gives all the smaller programs by dropping the instructions of the last
kept iterations (``LoopCut.program``), so a kernel is traced once per estimate.

Which loops are cut (at most two "sites", a site being the source line of the loop):

* **A**: the first loop entered outside any other ``affine_range``/``sequential_range`` loop
  whose trip count exceeds ``keep + 1``;
* **B**: inside A, the first ``sequential_range`` loop, or ``affine_range`` loop directly in A,
  whose trip count exceeds ``keep + 1``.

``static_range`` and Python ``range`` loops are never cut. Every affine/sequential loop's trip
count must be the same at every entry (``LoopCut.valid``: a triangular nest's iterations differ),
else extrapolation does not apply and the caller prices the full program. What it cannot see:
Python branches on the loop index (a remainder handled in the last iteration only) are priced
as if every iteration took the common path. A site whose cutting breaks the kernel (it built state a later loop indexes) is
named in ``skip`` on a retry. ``keep`` is one count for every site or one per site (A, B).

    >>> import nki, nki.language as nl, nki.isa as nisa
    >>> @nki.jit
    ... def k(a):
    ...     out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    ...     for i in nl.affine_range(a.shape[0] // 128):
    ...         t = nl.ndarray((128, a.shape[1]), a.dtype, buffer=nl.sbuf)
    ...         nisa.dma_copy(dst=t, src=a[i * 128:(i + 1) * 128])
    ...         nisa.dma_copy(dst=out[i * 128:(i + 1) * 128], src=t)
    ...     return out
    >>> cut = LoopCut(keep=1)
    >>> with cut:
    ...     prog = nki.tracing.Kernel(k.fn).trace(nki.ArraySpec((1024, 64), "float32"))
    >>> cut.full_trips(), len(prog.instrs), len(cut.program(prog, (1,)).instrs)
    ((8,), 4, 2)
"""
from __future__ import annotations

import dataclasses
import threading

from device.errors import user_loc
from device.program import Instr, Program

_local = threading.local()


def wrap(r: range, kind: str):
    """The iterable a loop helper returns: ``r`` itself unless a LoopCut is active."""
    cut = getattr(_local, "cut", None)
    if cut is None:
        return r
    return cut.loop(r, kind, user_loc(2))


class LoopCut:
    """Context manager: loops traced inside it are cut (see the module doc)."""

    def __init__(self, keep=1, skip=(), max_sites: int = 2):
        keeps = tuple(keep) if isinstance(keep, (tuple, list)) else (keep,) * max_sites
        if len(keeps) != max_sites or min(keeps) < 1:
            raise ValueError(f"LoopCut keeps at least one iteration of each of its {max_sites} "
                             f"loops, got keep={keep}")
        self.keeps, self.skip, self.max_sites = keeps, frozenset(skip), max_sites
        self.sites: list = []        # source locations of the cut loops (A, then B)
        self.trips: list = []        # per site: the set of full trip counts seen
        self.marks: list = []        # (instruction count, site, iteration or -1 at exit)
        self.active: list = []       # sites of the cut loops being iterated
        self.depth = 0               # affine/sequential loops being iterated (cut or not)
        self.seen: dict = {}         # every affine/sequential loop site -> its trip counts

    def __enter__(self):
        if getattr(_local, "cut", None) is not None:
            raise RuntimeError("LoopCut contexts do not nest")
        _local.cut = self
        return self

    def __exit__(self, *exc):
        _local.cut = None
        return False

    # -- while tracing --------------------------------------------------------------------------
    def _site(self, loc, kind, n, direct_in_a):
        key = (loc.file, loc.line) if loc is not None else None
        if key in self.sites:
            return self.sites.index(key)
        if key is None or key in self.skip or len(self.sites) >= self.max_sites or \
                n <= self.keeps[len(self.sites)] + 1:
            return None
        if not self.sites and self.depth == 0:
            self.sites.append(key)
        elif len(self.sites) == 1 and 0 in self.active and (kind == "sequential" or direct_in_a):
            self.sites.append(key)
        else:
            return None
        self.trips.append(set())
        return len(self.sites) - 1

    def loop(self, r, kind, loc):
        if loc is not None:
            self.seen.setdefault((loc.file, loc.line), set()).add(len(r))
        direct_in_a = bool(self.active == [0] and self.depth == 1)
        site = self._site(loc, kind, len(r), direct_in_a)
        return self._iterate(r, site)

    def _count(self):
        from .tracing import maybe_current
        tr = maybe_current()
        return len(tr.program.instrs) if tr is not None else 0

    def _iterate(self, r, site):
        self.depth += 1
        try:
            if site is None:
                yield from r
                return
            self.trips[site].add(len(r))
            self.active.append(site)
            try:
                for i, v in enumerate(r[:self.keeps[site] + 1]):
                    self.marks.append((self._count(), site, i))
                    yield v
            finally:
                self.active.remove(site)
                self.marks.append((self._count(), site, -1))
        finally:
            self.depth -= 1

    # -- afterwards -----------------------------------------------------------------------------
    @property
    def valid(self) -> bool:
        """Every loop (cut or not) had one trip count wherever it was entered: the kept
        iterations look like the dropped ones (the extrapolation's premise)."""
        return all(len(t) == 1 for t in self.trips) and all(len(t) == 1
                                                            for t in self.seen.values())

    def full_trips(self) -> tuple:
        return tuple(next(iter(t)) for t in self.trips)

    def tags(self, n_instrs: int) -> list:
        """Per instruction: the iteration of each cut site it was emitted in (-1: outside)."""
        state = [-1] * len(self.sites)
        out, marks, m = [], self.marks, 0
        for idx in range(n_instrs):
            while m < len(marks) and marks[m][0] <= idx:
                _, s, i = marks[m]
                state[s] = i
                m += 1
            out.append(tuple(state))
        return out

    def program(self, prog: Program, iterations: tuple, tags=None) -> Program:
        """``prog`` with each cut site's iterations >= ``iterations[site]`` dropped (as if traced
        with that site cut there); SBUF/PSUM capacity planned again for what is left."""
        from device.passes import check_capacity
        tags = tags if tags is not None else self.tags(len(prog.instrs))
        sub = Program(prog.name, prog.arch)
        sub.storages, sub.inputs, sub.outputs = prog.storages, prog.inputs, prog.outputs
        sub.info = dataclasses.replace(prog.info, peak=None, spills=None)
        for ins, tag in zip(prog.instrs, tags):
            if all(t < lim for t, lim in zip(tag, iterations)):
                new = Instr(ins.op, ins.engine, ins.args, ins.loc, ins.name)
                new.index = len(sub.instrs)
                sub.instrs.append(new)
        check_capacity(sub, warn=False)
        return sub


__all__ = ["LoopCut", "wrap"]
