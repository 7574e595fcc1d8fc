"""Engine accumulator registers and shared helpers for the reducing Vector/Scalar instructions.

ScalarE keeps 128 fp32 ``reduce_regs`` (one per lane) shared by ``activation``/``activate2``;
VectorE keeps its own 128, shared by ``exponential``, ``range_select``, ``select_reduce``,
``tensor_scalar_reduce`` and ``tensor_scalar_cumulative`` (SPEC 3.2 'Accumulator registers').
The registers live on the ``Memory`` of one run (attribute ``accum_regs``), so state carries from
one instruction to the next exactly as the program order says, and a fresh run starts at zero.

``reduce_cmd`` arrives as the front end's enum, its name, or its integer value:

    >>> cmd_name(3)
    'reset_reduce'
"""
from __future__ import annotations

import numpy as np

from .. import alu as A
from ..errors import UserKernelError
from ..tensor import View
from .rules import check_onchip_operand, fail

CMDS = ("idle", "reset", "reduce", "reset_reduce", "load_reduce")
LANES = 128


def cmd_name(c) -> str:
    """Normalise a reduce_cmd value (enum member, name or int) to its name."""
    if c is None:
        return "idle"
    name = getattr(c, "name", None)
    if isinstance(name, str) and name in CMDS:
        return name
    if isinstance(c, str) and c in CMDS:
        return c
    if isinstance(c, (int, np.integer)) and 0 <= int(c) < len(CMDS):
        return CMDS[int(c)]
    raise UserKernelError(f"reduce_cmd must be an nisa.reduce_cmd value, got {c!r}")


def regs(mem, engine: str) -> np.ndarray:
    """The 128 fp32 accumulator registers of ``engine`` ('ACT' or 'DVE') in this run."""
    d = mem.__dict__.setdefault("accum_regs", {})
    r = d.get(engine)
    if r is None:
        r = d[engine] = np.zeros(LANES, np.float32)
    return r


def lanes(v: View) -> slice:
    """The register lanes an on-chip operand occupies (its absolute partitions)."""
    start, n = v.partition_range()
    return slice(start, start + n)


def accumulate(mem, engine, lane, cmd, op, partial, init=None, identity=None):
    """Apply ``cmd`` to the registers of ``lane`` with this instruction's ``partial`` (P,) result.

    reset: identity; reset_reduce: identity then op; load_reduce: ``init`` then op; reduce: op;
    idle: untouched. Returns the registers' new values (P,) fp32.
    """
    r = regs(mem, engine)
    ident = np.float32(op.identity if identity is None else identity)
    if cmd in ("reset", "reset_reduce"):
        r[lane] = ident
    elif cmd == "load_reduce":
        r[lane] = np.broadcast_to(np.asarray(init, np.float32).reshape(-1), r[lane].shape)
    if cmd in ("reduce", "reset_reduce", "load_reduce"):
        r[lane] = A.apply_alu(op, r[lane], np.asarray(partial, np.float32))
    return r[lane].copy()


def reduce_free(op, y) -> np.ndarray:
    """Reduce a (P, F) fp32 array along its free axis with ALU ``op`` -> (P,) fp32."""
    y = np.asarray(y, np.float32)
    with np.errstate(all="ignore"):
        if op.name == "add":
            return np.sum(y, axis=1, dtype=np.float32)
        if op.name == "multiply":
            return np.prod(y, axis=1, dtype=np.float32)
        if op.name == "maximum":
            return np.max(y, axis=1)
        if op.name == "minimum":
            return np.min(y, axis=1)
        acc = y[:, 0]
        for k in range(1, y.shape[1]):
            acc = A.apply_alu(op, acc, y[:, k])
        return np.asarray(acc, np.float32)


def check_column(i, arch, name, P, required=False):
    """A (P, 1) on-chip result/operand tile such as ``reduce_res``."""
    v = i.args.get(name)
    if v is None:
        if required:
            raise UserKernelError(f"{i.op.name}: missing operand '{name}'", loc=i.loc)
        return None
    if not isinstance(v, View):
        raise UserKernelError(f"{i.op.name}: operand '{name}' must be a ({P}, 1) tile, got "
                              f"{type(v).__name__}", loc=i.loc)
    check_onchip_operand(i, arch, name, v)
    if v.free_size != 1 or v.shape[0] != P:
        fail(i, "shape-mismatch", f"operand '{name}' must have shape ({P}, 1), got "
             f"{list(v.shape)}", name, list(v.shape), [P, 1])
    return v


def check_arith(i, name, what="arithmetic ALU ops"):
    """The op in argument ``name`` must be an arithmetic (not bitvec) ALU op; returns it."""
    op = A.alu(i.args.get(name))
    if op.kind == "bitvec":
        fail(i, "alu-op-kind", f"{name}={op.name} is a bitvec op; {i.op.name} supports {what} "
             f"only", name, op.name, "arithmetic op")
    return op


def check_op_in(i, name, allowed, what=None):
    """The ALU op in argument ``name`` must be one of ``allowed`` (table names); returns it."""
    op = A.alu(i.args.get(name))
    if op.name not in allowed:
        fail(i, "alu-op", f"{name}={op.name} is not supported; {what or 'allowed'}: "
             f"{', '.join(allowed)}", name, op.name, list(allowed))
    return op


def check_generation(i, arch, min_gen):
    if arch.gen < min_gen:
        fail(i, "generation", f"is available on NeuronCore-v{min_gen} and newer only; target "
             f"{arch.name} is NeuronCore-v{arch.gen}", "target", arch.name, f"gen >= {min_gen}")


def read_column(mem, i, name, P):
    """A scalar-or-(P,1) operand as fp32 broadcastable over (P, F); 0-d for scalars."""
    x = i.args.get(name)
    if isinstance(x, View):
        return mem.read(x, i.loc).astype(np.float32).reshape(P, 1)
    return np.float32(0.0 if x is None else x)
