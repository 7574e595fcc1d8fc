"""64-bit integers in imported programs: folded at import when they are constants, refused by
name when they would have to exist at run time.

The NeuronCore has no 64-bit integer engines. Exporters still emit them: ``jax.random``'s
threefry counts its counters in ``u64`` (``iota`` of the output shape, multiplied, added,
shifted right by 32 and converted to two ``u32`` halves) whatever ``jax_enable_x64`` says, and
with ``jax_enable_x64`` integer constants and indices become ``s64``/``u64``. Those values
depend on shapes and constants only, so, as XLA's constant folding does, :func:`fold_wide_integers`
evaluates every op that produces or reads a 64-bit integer and whose inputs are all constants
with the op table's reference (exact NumPy ``uint64``/``int64`` arithmetic) and replaces it by
the constant it computes; the ``u32`` halves then feed the 32-bit threefry rounds, which run on
the device. A ``uint64`` value that depends on a run-time input cannot be computed exactly and
is refused with the rule, the op, the value and the module line. (``int64`` values that remain
are left to the lowering, which refuses 64-bit arithmetic by name and passes what it can.)

    >>> from lowering.ir.graph import Graph
    >>> from lowering.ir.types import TensorType
    >>> g = Graph()
    >>> i = g.add_op("iota", [], {"shape": [4], "dimension": 0, "dtype": "uint64"})
    >>> g.set_outputs([g.add_op("convert", [i], {"dtype": "uint32"})])
    >>> [op.opcode for op in fold_wide_integers(g).ops]
    ['constant']
"""
from __future__ import annotations

import math

import numpy as np

from ..ir.graph import Graph
from ..ir.ops import OPS

WIDE = ("int64", "uint64")
MAX_FOLD_ELEMENTS = 1 << 22     # a bigger constant would cost more HBM than it saves


def _wide(op) -> bool:
    return any(v.type.dtype in WIDE for v in list(op.inputs) + op.results)


def fold_wide_integers(g: Graph, error=None) -> Graph:
    """``g`` with every constant-only op on 64-bit integers folded to a constant. ``error(msg,
    line)`` builds the exception for a ``uint64`` value left at run time (default ValueError)."""
    if not any(_wide(op) for op in g.ops):
        return g
    out = Graph(g.name)
    env, const = {}, {}                  # id(old value) -> new value; id(new value) -> array
    for p in g.params:
        env[id(p)] = out.param(p.type, p.name)
    for op in g.ops:
        ins = [env[id(v)] for v in op.inputs]
        if op.opcode == "constant":
            new = out.add_op("constant", [], dict(op.attrs), loc=op.loc)
            const[id(new)] = np.asarray(op.attrs["value"])
            env[id(op.result)] = new
            continue
        size = sum(math.prod(r.type.shape) for r in op.results)
        if (_wide(op) and not op.multi and all(id(v) in const for v in ins)
                and size <= MAX_FOLD_ELEMENTS and OPS[op.opcode].reference is not None):
            value = OPS[op.opcode].reference([const[id(v)] for v in ins], op.attrs,
                                             op.result.type)
            new = out.add_op("constant", [], {"value": np.asarray(value)}, loc=op.loc)
            const[id(new)] = np.asarray(value)
            env[id(op.result)] = new
            continue
        new = out.add_op(op.opcode, ins, dict(op.attrs), loc=op.loc)
        if op.multi:
            env.update({id(r): n for r, n in zip(op.results, new)})
        else:
            env[id(op.result)] = new
    out.set_outputs([env[id(v)] for v in g.outputs])
    out.prune()
    for op in out.ops:
        if op.opcode == "constant":
            continue
        bad = [v for v in list(op.inputs) + op.results if v.type.dtype == "uint64"]
        if bad:
            _refuse(op, bad[0], error or (lambda msg, line: ValueError(msg)))
    return out


def _refuse(op, value, error):
    loc = op.loc
    where = f" at {loc}" if loc else ""
    raise error(f"rule 64-bit-integers: {op.opcode}{where} needs u64 value {value} "
                f"({value.type}) at run time, but it depends on a run-time input and the "
                f"NeuronCore has no 64-bit integer engines (u64 values are accepted only "
                f"when they fold to constants at import, such as jax.random's counters for a "
                f"given shape); compute it in 32-bit integers (e.g. keep jax_enable_x64 off) "
                f"or make its inputs constants",
                loc.line if loc and not str(loc.file).endswith(".py") else None)
