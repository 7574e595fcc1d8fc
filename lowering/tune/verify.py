"""Verification: a candidate schedule runs on the emulator with fresh buffers and must match the
group's NumPy reference (``lowering.ir.evaluate``) within a dtype-aware tolerance.

Problems too large to execute quickly are verified on a *reduced problem* that runs the same
schedule: the same knob values, every loop level iterated at least twice, and the same remainder
cases (a dimension of size S tiled by t becomes ``min(S, 2t + S mod t)``). The result says which.

    >>> from lowering.ir import Graph, TensorType
    >>> from lowering.lower import plan, MatmulSchedule
    >>> from lowering.tune.groups import standalone
    >>> g = Graph("f"); x = g.param(TensorType((300, 200), "float32"), "x")
    >>> w = g.param(TensorType((200, 700), "float32"), "w")
    >>> g.set_outputs([g.add_op("dot", [x, w], {"lhs_contract": [1], "rhs_contract": [0]})])
    >>> r = verify(standalone(plan(g)[0]), MatmulSchedule(m_group=1, n_tile=256), "inf2")
    >>> r.ok, r.how
    (True, 'full problem')
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from device.executor import run

from ..ir.evaluate import evaluate
from ..ir.graph import Graph
from ..ir.types import TensorType
from ..lower.fusion import make_group
from ..lower.rules.matmul import MatmulSchedule
from ..lower.rules.reduce import ReduceSchedule
from ..lower.stream import StreamSchedule
from .groups import Standalone, reduced_sizes

MAX_WORK = 1 << 28          # element operations executed at full size before reducing


@dataclasses.dataclass
class Verdict:
    ok: bool
    how: str                 # 'full problem' | 'reduced problem [..]'
    max_error: float = 0.0
    message: str = ""


def tolerance(dtype: str) -> tuple[float, float]:
    """(rtol, atol) for results of ``dtype``: its rounding unit times a margin for summation
    order (fp32 accumulation of up to thousands of terms)."""
    if dtype in ("bfloat16", "float8_e4m3", "float8_e5m2"):
        return 3e-2, 3e-2
    if dtype == "float16":
        return 5e-3, 5e-3
    if dtype.startswith("float"):
        return 2e-4, 2e-4
    return 0.0, 0.0


def _data(rng, t: TensorType):
    if t.dtype == "bool":
        return rng.random(t.shape) < 0.5
    if t.dtype.startswith(("int", "uint")):
        return rng.integers(-5 if t.dtype.startswith("int") else 0, 6, t.shape).astype(t.np_dtype)
    return (rng.standard_normal(t.shape) * 0.5).astype(t.np_dtype)


def verify(sa: Standalone, schedule, target, seed: int = 0) -> Verdict:
    """Run ``schedule`` on fresh inputs and compare with the reference."""
    how = "full problem"
    if _work(sa) > MAX_WORK:
        reduced = reduce_problem(sa, schedule)
        if reduced is None:
            return Verdict(False, "not verified", message="too large to execute and no reduced "
                           "problem keeps this schedule's structure")
        sa, how = reduced
    rng = np.random.default_rng(seed)
    xs = [_data(rng, p.type) for p in sa.graph.params]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = run(sa.lower(target, schedule), [x.copy() for x in xs])[0]
    except Exception as e:              # noqa: BLE001 - a failing candidate is a recorded verdict
        return Verdict(False, how, message=f"{type(e).__name__}: {e}")
    ref = evaluate(sa.graph, *xs)[0]
    out_t = sa.graph.outputs[0].type
    got = np.asarray(got).reshape(ref.shape)
    rtol, atol = tolerance(out_t.dtype)
    a, b = got.astype(np.float64), ref.astype(np.float64)
    err = float(np.nanmax(np.abs(a - b))) if a.size else 0.0
    ok = bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))
    return Verdict(ok, how, err, "" if ok else f"max abs error {err:.3g} over rtol={rtol}")


def _work(sa: Standalone) -> int:
    g = sa.group
    if g.dot is not None:
        p = g.problem()
        return p.B * p.M * p.K * p.N
    return sum(op.result.type.size * max(1, len(op.inputs)) for op in g.ops)


# ---------------------------------------------------------------- reduced problems

def reduce_problem(sa: Standalone, schedule):
    """(a smaller Standalone running the same schedule structure, description) or None."""
    roles_ = roles(sa)
    if roles_ is None:
        return None
    sizes = {}
    g = sa.group
    if isinstance(schedule, MatmulSchedule) and g.dot is not None:
        p = g.problem()
        if schedule.order == "m":
            m_t, n_t = 128 * schedule.m_group, schedule.n_tile
        else:
            m_t, n_t = 128, schedule.n_tile * schedule.n_group
        sizes = {"B": min(p.B, 2), "M": reduced_sizes(p.M, m_t), "N": reduced_sizes(p.N, n_t),
                 "K": min(p.K, schedule.lhs_chunk + 256 + p.K % 128)}
    elif isinstance(schedule, (StreamSchedule, ReduceSchedule)):
        tile = 128 * (schedule.free if isinstance(schedule, StreamSchedule) else 1)
        first = _first_size(sa, roles_)
        sizes = {"S0": max(1, reduced_sizes(first, max(1, tile // max(1, _inner(sa, roles_)))))}
    else:
        return None
    new = rebuild(sa, roles_, sizes)
    if new is None:
        return None
    if [p.type for p in new.graph.params] == [p.type for p in sa.graph.params]:
        return sa, "full problem"               # nothing to reduce: every loop is short
    desc = ", ".join(f"{k}={v}" for k, v in sorted(sizes.items()))
    return new, f"reduced problem [{desc}]"


def _first_size(sa, roles):
    root = sa.group.root.result
    return root.type.shape[0] if root.type.shape else 1


def _inner(sa, roles):
    shape = sa.group.root.result.type.shape
    return int(np.prod(shape[1:])) if len(shape) > 1 else 1


def roles(sa: Standalone):
    """Axis roles of every value: 'B', 'M', 'K', 'N' for matmul groups, 'S0'.. (root axes) for
    element-wise/reduce groups; None when an op's axes cannot be related."""
    roles: dict[int, list] = {}
    g = sa.group
    dot = g.dot
    if dot is not None:
        a = dot.attrs
        lhs, rhs = dot.inputs
        lb, lc, rb, rc = (list(a[k]) for k in ("lhs_batch", "lhs_contract", "rhs_batch",
                                                "rhs_contract"))
        lf = [d for d in range(lhs.type.rank) if d not in lb + lc]
        rf = [d for d in range(rhs.type.rank) if d not in rb + rc]
        if len(lf) != 1 or len(rf) != 1 or len(lc) != 1 or len(lb) > 1:
            return None
        roles[id(lhs)] = [("B" if d in lb else "K" if d in lc else "M") for d in range(lhs.type.rank)]
        roles[id(rhs)] = [("B" if d in rb else "K" if d in rc else "N") for d in range(rhs.type.rank)]
        out = ["B"] * len(lb) + ["M", "N"]
    else:
        root = g.root
        if root.opcode == "reduce":
            x = root.inputs[0]
            dims = root.attrs["dims"]
            kept = [d for d in range(x.type.rank) if d not in dims]
            if not kept or kept[0] != 0:
                return None
            roles[id(x)] = ["S0" if d == 0 else None for d in range(x.type.rank)]
            roles[id(root.result)] = ["S0"] + [None] * (len(kept) - 1)
            return roles
        out = ["S0"] + [None] * (root.result.type.rank - 1)
    for op in g.ops:
        if op is dot:
            roles[id(op.result)] = out
            continue
        shape = op.result.type.shape
        if op.opcode == "broadcast":
            roles[id(op.result)] = out
            roles[id(op.inputs[0])] = [out[d] for d in op.attrs["dims"]]
            continue
        if op.opcode == "reduce" or any(v.type.shape != shape for v in op.inputs):
            return None
        roles[id(op.result)] = out
        for v in op.inputs:
            roles.setdefault(id(v), out)
    return roles


def rebuild(sa: Standalone, roles, sizes):
    def shape_of(v):
        r = roles.get(id(v))
        if r is None:
            return None
        return tuple(sizes.get(role, n) if role else n for role, n in zip(r, v.type.shape))
    g = Graph(sa.graph.name + "_reduced")
    env = {}
    for p in sa.graph.params:
        s = shape_of(p)
        if s is None:
            return None
        env[id(p)] = g.param(p.type.with_shape(s), p.name)
    for op in sa.graph.ops:
        attrs = dict(op.attrs)
        if "shape" in attrs:
            s = shape_of(op.result)
            if s is None:
                return None
            attrs["shape"] = s
        env[id(op.result)] = g.add_op(op.opcode, [env[id(v)] for v in op.inputs], attrs,
                                      loc=op.loc)
    g.set_outputs([env[id(sa.graph.outputs[0])]])
    return Standalone(g, make_group(g.ops))
