"""How rule modules attach their rules to the op table (``OPS[name].lower`` and friends).

    >>> from lowering.ir.ops import OPS
    >>> import lowering.lower.rules          # fills the table
    >>> OPS['exp'].fusible, OPS['dot'].schedule.kind
    (True, 'matmul')
"""
from __future__ import annotations

from ..ir.ops import OPS
from .schedule import NoKnobs
from .stream import StreamSchedule, stream_rule


def lowers(*names, schedule=NoKnobs):
    """Register ``fn(lw, op, inputs, schedule) -> View`` as the rule of ``names``."""
    def deco(fn):
        for n in names:
            OPS[n].lower = fn
            OPS[n].schedule = schedule
        return fn
    return deco


def tile_rule(*names, psum_reader=False):
    """Register ``fn(lw, op, tiles, dst)`` as the tile body of element-wise ``names``: they are
    then streamed (StreamSchedule) and fusible. ``psum_reader``: the body's first instruction
    is a Vector/Scalar op that may read a PSUM tile directly (fused dot epilogues)."""
    def deco(fn):
        for n in names:
            d = OPS[n]
            d.tile_body, d.psum_reader = fn, psum_reader
            d.lower, d.schedule = stream_rule, StreamSchedule
        return fn
    return deco
