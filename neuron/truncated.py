"""Truncated pricing of a tile kernel: trace it with its main loops cut to a few iterations, price
those programs on the timing model, and extrapolate to the full trip counts.

A loop nest whose body reaches a steady state costs ``a + b*n`` in its trip count ``n`` (exact
when the steady state is periodic, which is what double-buffered tile loops are built for); two
nested cut loops cost ``a + b*n1 + c*n2 + d*n1*n2``. So the kernel is traced once with the cut
loops (``nki.loopcut``: the outermost loop, and one loop inside it) running ``keep + 1``
iterations; the programs with ``keep`` or ``keep + 1`` iterations of each are cut out of that
trace, priced with ``device.timing.schedule``, and the full time is their multilinear
extrapolation. A kernel whose loops cannot be cut (or whose cut loop's trip count varies) is
priced in full, and the result says so (``how``); so is a small one (``full_below``
instructions), whose short loops are latency-bound rather than in a steady state.

    >>> import nki
    >>> from benchmarks.kernels.matmul_stages import nki_matmul_fully_optimized_ as mm
    >>> specs = [nki.ArraySpec((1024, 512), "bfloat16"), nki.ArraySpec((1024, 2048), "bfloat16")]
    >>> fast = price_truncated(mm, specs, {"TILES_M": 2, "TILES_N": 1, "TILES_K": 2}, "trn1",
    ...                        full_below=0)
    >>> full = price_full(mm, specs, {"TILES_M": 2, "TILES_N": 1, "TILES_K": 2}, "trn1")
    >>> fast.how.split(":")[0], round(fast.ns / full.ns, 2), fast.traced < full.traced
    ('truncated keep=1', 1.0, True)
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import warnings

from device.errors import NeuronError
from device.timing import Scheduler, schedule
from nki.loopcut import LoopCut
from nki.tracing import Kernel


@dataclasses.dataclass
class Price:
    """A modelled time (ns) and how it was obtained."""

    ns: float
    how: str                 # 'full' | 'truncated keep=k: file:line x n, ...'
    traced: int              # instructions traced for this price
    instructions: float      # instructions of the full program (extrapolated when truncated)


def price_full(kernel, args, kwargs, target) -> Price:
    """Trace the whole kernel and schedule every instruction."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = Kernel(kernel.fn, lnc=kernel.lnc).trace(*args, target=target, **kwargs)
        ns = schedule(prog, keep_events=False).total_ns
    return Price(ns, "full", len(prog.instrs), len(prog.instrs))


def _weights(keep: int, full: int):
    """Linear extrapolation weights of the samples at ``keep`` and ``keep + 1`` for ``full``."""
    return {keep: keep + 1 - full, keep + 1: full - keep}


FULL_BELOW = 4096


def price_truncated(kernel, args, kwargs, target, keep=1, full_below: int = FULL_BELOW) -> Price:
    """Extrapolated price from a trace with the kernel's main loops cut (see the module doc).
    A kernel whose full program has at most ``full_below`` instructions is priced in full: its
    loops are short and latency-bound (not yet a periodic steady state), and it is cheap."""
    if getattr(kernel, "lnc", 1) != 1:             # two cores' streams: price in full
        return price_full(kernel, args, kwargs, target)
    skip: set = set()
    for _attempt in range(4):
        cut = LoopCut(keep, skip)
        try:
            with warnings.catch_warnings(), cut:
                warnings.simplefilter("ignore")
                prog = Kernel(kernel.fn, lnc=1).trace(*args, target=target, **kwargs)
        except NeuronError:
            raise                                   # a rule the configuration itself breaks
        except Exception:                           # noqa: BLE001 - the cut broke the kernel's
            if not cut.sites:                       # own bookkeeping: cut less and try again
                raise
            skip.add(cut.sites[-1])
            continue
        break
    else:
        return price_full(kernel, args, kwargs, target)
    if not cut.sites or not cut.valid:
        return price_full(kernel, args, kwargs, target)
    full = cut.full_trips()
    keeps = cut.keeps[:len(full)]
    tags = cut.tags(len(prog.instrs))
    if _extrapolated_count(tags, keeps, full) <= full_below:
        return price_full(kernel, args, kwargs, target)
    ns = count = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the outer site's smaller sample is a prefix of its larger one: both come from one run
        for inner in itertools.product(*((k, k + 1) for k in keeps[1:])):
            top = (keeps[0] + 1,) + inner
            if all(c == k + 1 for c, k in zip(top, keeps)):
                sub, sub_tags = prog, tags
            else:
                sub = cut.program(prog, top, tags)
                sub_tags = [t for t in tags if all(x < lim for x, lim in zip(t, top))]
            sched = Scheduler(sub, None, False)
            hi = sched.run().total_ns
            lo = sched.launch + max((sched.done_at.get(i, 0.0) for i, t in enumerate(sub_tags)
                                     if t[0] < keeps[0]), default=0.0)
            n_lo = sum(1 for t in sub_tags if t[0] < keeps[0])
            for a_iters, t_ns, n_ins in ((keeps[0], lo, n_lo), (keeps[0] + 1, hi, len(sub_tags))):
                w = 1.0
                for c, n, k in zip((a_iters,) + inner, full, keeps):
                    w *= _weights(k, n)[c]
                ns += w * t_ns
                count += w * n_ins
    where = ", ".join(f"{os.path.basename(f)}:{line} x{n}" for (f, line), n in zip(cut.sites, full))
    kept = keep if isinstance(keep, int) else ",".join(map(str, keep))
    return Price(ns, f"truncated keep={kept}: {where}", len(prog.instrs), count)


def _extrapolated_count(tags, keeps, full) -> float:
    total = 0.0
    for corner in itertools.product(*((k, k + 1) for k in keeps)):
        w = 1.0
        for c, n, k in zip(corner, full, keeps):
            w *= _weights(k, n)[c]
        if w:
            total += w * sum(1 for t in tags if all(x < c for x, c in zip(t, corner)))
    return total


def price(kernel, args, kwargs, target, how) -> Price:
    """``how``: 'full', or (keep, full_below) of truncated pricing (keep: the iterations it
    keeps, an int or one per cut loop)."""
    if how == "full":
        return price_full(kernel, args, kwargs, target)
    keep, full_below = how
    return price_truncated(kernel, args, kwargs, target, keep=keep, full_below=full_below)


__all__ = ["Price", "price", "price_full", "price_truncated"]
