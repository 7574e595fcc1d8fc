"""Sweep table for nki.isa, part 1: Vector / Scalar / GpSimd compute instructions (SPEC 3.2).

References compute in float64 from the fp32 values the engines see (SPEC 4.4: inputs are cast to
fp32, the result is rounded to dst.dtype), then go through ``round_to`` like the output stage.
Tolerances as in nl_elementwise.py: 0 ulps for correctly rounded fp32 operations, 1 ulp for
activation functions, fp32 summation bounds for reductions. Scans and cumulative ops are defined
as sequences of fp32 ALU steps, so their references run the same fp32 steps and match exactly.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from device import dtypes

from nl_elementwise import ARITH, BITWISE, CMP, UNARY, _draw_unary_input
from sweep_helpers import (ALL_FLOATS, FLOATS, INTS, expect, free, fsum_bound, load, npdt, parts,
                           raises, run, seed, store, target, values)

EPS = 2.0 ** -24
TINY = 2.0 ** -126
ENG = {"vector": nisa.engine.vector, "scalar": nisa.engine.scalar, "gpsimd": nisa.engine.gpsimd,
       "unknown": nisa.engine.unknown}


def _common(data, max_free=None):
    P = data.draw(parts, label="P")
    F = data.draw(st.integers(1, max_free), label="F") if max_free else data.draw(free, label="F")
    return P, F, data.draw(target, label="target"), np.random.default_rng(data.draw(seed))


def _f32(x):
    return np.asarray(x).astype(np.float32).astype(np.float64)


def _alu(name, x, y):
    """An arithmetic ALU op on fp32 operands, in float64 (exact for +-*/, max, min, compares)."""
    fn = {**{k: v[0] for k, v in ARITH.items()}, **CMP}[name]
    with np.errstate(all="ignore"):
        return np.asarray(fn(_f32(x), _f32(y)), np.float64)


def _alu32(name, x, y):
    """The same op evaluated as the engine does, one fp32 rounding per step (for scans)."""
    return _alu(name, x, y).astype(np.float32)


# ---- tensor_tensor -------------------------------------------------------------------------------------
TT_ARITH = ("add", "subtract", "multiply", "divide", "maximum", "minimum", "abs_max", "abs_min",
            "power", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
            "logical_and", "logical_or", "logical_xor")


def case_tensor_tensor(data):
    P, F, tgt, rng = _common(data)
    kind = data.draw(st.sampled_from(["bitvec", "any", "int32"]), label="kind")
    bit = kind == "bitvec"
    if bit:
        op = data.draw(st.sampled_from(sorted(BITWISE)))
        dt = data.draw(st.sampled_from(INTS))
        info, bits = np.iinfo(npdt(dt)), 8 * npdt(dt).itemsize
        x = values(rng, (P, F), dt, info.min, info.max)
        y = values(rng, (P, F), dt, 0, bits - 1) if op.endswith("shift") else \
            values(rng, (P, F), dt, info.min, info.max)
        engine, psum, dto = "vector", False, dt
    else:
        op = data.draw(st.sampled_from(TT_ARITH))
        pool = ("int32", "uint32") if kind == "int32" else ALL_FLOATS + INTS
        dt, dto = data.draw(st.sampled_from(pool)), data.draw(st.sampled_from(pool))
        engine = data.draw(st.sampled_from(["unknown", "vector", "gpsimd"]))
        psum = engine != "gpsimd" and data.draw(st.booleans())
        lo, hi = (0.25, 4) if op == "power" else (-50, 50)
        if dt in ("int32", "uint32") and op not in ("power", "divide", "multiply"):
            lo, hi = -(1 << 29), 1 << 29        # beyond fp32's 24 bits: native int on GpSimd
        x = values(rng, (P, F), dt, lo, hi)
        y = values(rng, (P, F), dt, 0.5 if op in ("divide", "power") else lo,
                   3 if op == "power" else hi)
        y = np.where(rng.random((P, F)) < 0.2, x, y).astype(x.dtype)     # ties
    F = min(F, 2048 // max(dtypes.itemsize(dt), dtypes.itemsize(dto))) if psum else F
    x, y = x[:, :F], y[:, :F]

    def k(x, y):
        a = load(x)
        if psum:                                  # one input may come from PSUM
            pa = nl.ndarray(a.shape, a.dtype, buffer=nl.psum)
            nisa.tensor_copy(dst=pa, src=a)
            a = pa
        r = nl.ndarray(x.shape, dto, buffer=nl.sbuf)
        nisa.tensor_tensor(dst=r, data1=a, data2=load(y), op=getattr(nl, op), engine=ENG[engine])
        return store(r)
    got = run(k, x, y, target=tgt)
    if bit:
        np.testing.assert_array_equal(got, BITWISE[op](x, y))
        return
    native = engine != "vector" and dt in ("int32", "uint32") and dto in ("int32", "uint32") and \
        op not in ("power", "divide") and not psum
    if native:   # SPEC 3.2: all-int32/uint32 operands run natively on GpSimd (no fp32 rounding)
        want = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply,
                "maximum": np.maximum, "minimum": np.minimum}.get(op)
        want = want(x.astype(np.int64), y.astype(np.int64)) if want else _alu(op, x, y)
        if op in ("abs_max", "abs_min"):
            want = ARITH[op][0](x.astype(np.int64), y.astype(np.int64))
        if op in CMP:
            want = CMP[op](x.astype(np.int64), y.astype(np.int64)).astype(np.int64)
        expect(got, want, dto, 0, 0, f"tensor_tensor {op} native")
        return
    ulps = 2 if op == "power" and dto == "float32" else (1 if op == "power" else 0)
    # the engine's result is an fp32 value (rounded once more for int destinations)
    expect(got, _alu32(op, x, y), dto, ulps, TINY, f"tensor_tensor {op} {dt}->{dto} {engine}")


def case_tensor_tensor_errors(data):
    P, F, tgt, rng = _common(data, 64)
    x = values(rng, (P, F), "float32")

    def both_psum(x):
        a = nl.ndarray(x.shape, x.dtype, buffer=nl.psum)
        b = nl.ndarray(x.shape, x.dtype, buffer=nl.psum)
        nisa.memset(dst=a, value=1.0)
        nisa.memset(dst=b, value=1.0)
        r = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
        nisa.tensor_tensor(dst=r, data1=a, data2=b, op=nl.add)
        return store(r)
    raises(both_psum, (x,), "are both in PSUM", target=tgt)

    def bitvec_float(x):
        r = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
        nisa.tensor_tensor(dst=r, data1=load(x), data2=load(x), op=nl.bitwise_and)
        return store(r)
    raises(bitvec_float, (x,), "bitwise op bitwise_and needs integer dtypes", target=tgt)


# ---- tensor_scalar --------------------------------------------------------------------------------------
TS_OPS = ("add", "subtract", "multiply", "maximum", "minimum", "divide", "abs_max", "abs_min",
          "equal", "greater", "less_equal")


def case_tensor_scalar(data):
    P, F, tgt, rng = _common(data)
    engine = data.draw(st.sampled_from(["vector", "scalar", "gpsimd", "unknown"]))
    bit = engine == "vector" and data.draw(st.booleans())
    if engine == "gpsimd":
        ops = ("rsqrt", None)
    elif bit:
        ops = (data.draw(st.sampled_from(sorted(BITWISE))), data.draw(st.sampled_from(
            [None] + sorted(BITWISE))))
    else:
        ops = (data.draw(st.sampled_from(TS_OPS)), data.draw(st.sampled_from((None,) + TS_OPS)))
    dt = data.draw(st.sampled_from(INTS if bit else ALL_FLOATS))
    dto = dt if bit else data.draw(st.sampled_from(ALL_FLOATS))
    rev = (data.draw(st.booleans()), data.draw(st.booleans()))
    col = (data.draw(st.booleans()), data.draw(st.booleans()))
    if bit:
        bits = 8 * npdt(dt).itemsize
        info = np.iinfo(npdt(dt))
        x = values(rng, (P, F), dt, info.min, info.max)
        ops_vals = [values(rng, (P, 1), dt, 0, bits - 1) if o and o.endswith("shift") else
                    values(rng, (P, 1), dt, info.min, info.max) for o in ops]
        rev = tuple(r and not (o or "").endswith("shift") for r, o in zip(rev, ops))
    else:
        lo = 2.0 ** -20 if ops[0] == "rsqrt" else -20
        x = values(rng, (P, F), dt, lo, 20, log=ops[0] == "rsqrt")
        ops_vals = [values(rng, (P, 1), "float32", 0.5, 4) * np.float32(rng.choice([-1, 1])) for _ in ops]
    operands = [v if c else (v.reshape(-1)[0].item()) for v, c in zip(ops_vals, col)]
    legal = True
    named = tuple(o for o in ops if o)
    if engine == "scalar" and tgt in ("inf2", "trn2"):
        legal = named in (("multiply", "add"), ("multiply",), ("add",))

    def k(x, o0, o1):
        t = load(x)
        a0 = load(o0) if col[0] else operands[0]
        a1 = load(o1) if col[1] else operands[1]
        r = nl.ndarray(x.shape, dto, buffer=nl.sbuf)
        nisa.tensor_scalar(dst=r, data=t, op0=getattr(nl, ops[0]), operand0=a0, reverse0=rev[0],
                           op1=getattr(nl, ops[1]) if ops[1] else None,
                           operand1=a1 if ops[1] else None, reverse1=rev[1], engine=ENG[engine])
        return store(r)
    args = (x, ops_vals[0], ops_vals[1])
    if not legal:      # SPEC 3.2: ScalarE tensor_scalar on trn2 supports only (mul, add) forms
        raises(k, args, "ScalarE tensor_scalar on", target=tgt)
        return
    got = run(k, *args, target=tgt)
    if bit:
        y = x
        for o, v, r in zip(ops, ops_vals, rev):
            if o:
                vv = v if col[ops.index(o)] else v.reshape(-1)[0]
                y = BITWISE[o](vv, y) if r else BITWISE[o](y, vv)
        np.testing.assert_array_equal(got, np.broadcast_to(y, x.shape))
        return
    if ops[0] == "rsqrt":
        y = 1 / np.sqrt(_f32(x))
        expect(got, y, dto, 1, 0, "tensor_scalar rsqrt (gpsimd)")
        return
    y = _f32(x)
    for j, (o, r) in enumerate(zip(ops, rev)):
        if o:
            v = _f32(ops_vals[j] if col[j] else ops_vals[j].reshape(-1)[0])
            y = _alu(o, v, y) if r else _alu(o, y, v)
            y = y.astype(np.float32).astype(np.float64)       # fp32 between the two stages
    expect(got, y, dto, 0, TINY, f"tensor_scalar {ops} rev={rev} {engine}")


def case_scalar_tensor_tensor(data):
    P, F, tgt, rng = _common(data)
    o0 = data.draw(st.sampled_from(TS_OPS))
    o1 = data.draw(st.sampled_from(TS_OPS))
    dt, dto = data.draw(st.sampled_from(ALL_FLOATS)), data.draw(st.sampled_from(ALL_FLOATS))
    rev = (data.draw(st.booleans()), data.draw(st.booleans()))
    col = data.draw(st.booleans())
    x, z = values(rng, (P, F), dt, -20, 20), values(rng, (P, F), dt, 0.5, 20)
    c = values(rng, (P, 1), "float32", 0.5, 4)
    c0 = float(c[0, 0])

    def k(x, c, z):
        r = nl.ndarray(x.shape, dto, buffer=nl.sbuf)
        nisa.scalar_tensor_tensor(dst=r, data=load(x), op0=getattr(nl, o0),
                                  operand0=load(c) if col else c0,
                                  op1=getattr(nl, o1), operand1=load(z), reverse0=rev[0],
                                  reverse1=rev[1])
        return store(r)
    got = run(k, x, c, z, target=tgt)
    cv = _f32(c if col else c[0, 0])
    y = (_alu(o0, cv, x) if rev[0] else _alu(o0, x, cv)).astype(np.float32)
    y = _alu(o1, z, y) if rev[1] else _alu(o1, y, z)
    expect(got, y, dto, 0, TINY, f"scalar_tensor_tensor {o0},{o1} {rev}")


# ---- activation -----------------------------------------------------------------------------------------
ACT_OPS = sorted(n for n in UNARY if n not in ("negative", "ceil", "floor", "trunc", "tan"))


def _activation(data, api):
    P, F, tgt, rng = _common(data)
    op = data.draw(st.sampled_from(ACT_OPS))
    dt, dto = data.draw(st.sampled_from(ALL_FLOATS)), data.draw(st.sampled_from(ALL_FLOATS))
    bias_kind = data.draw(st.sampled_from(["none", "column", "scalar"]))
    scale_col = data.draw(st.booleans())
    reduce = api == "activation_reduce" or data.draw(st.booleans())
    ref, dom, _, atol = UNARY[op]
    x = _draw_unary_input(rng, (P, F), dt, dom)
    # scale 1 and bias 0 keep the samples inside the documented valid range; the affine stage
    # is still exercised (a (P,1) scale tile of ones, a bias tile of zeros)
    sc = np.ones((P, 1), np.float32)
    bi = np.zeros((P, 1), np.float32)
    if dom == "all":
        sc = values(rng, (P, 1), "float32", 0.5, 2)
        bi = values(rng, (P, 1), "float32", -1, 1)
    legal = not (bias_kind == "scalar" and tgt == "inf2")
    s0, b0 = float(sc[0, 0]), float(bi[0, 0])

    def k(x, sc, bi):
        r = nl.ndarray(x.shape, dto, buffer=nl.sbuf)
        rr = nl.ndarray((x.shape[0], 1), nl.float32, buffer=nl.sbuf)
        bias = {"none": None, "column": load(bi), "scalar": b0}[bias_kind]
        scale = load(sc) if scale_col else s0
        if api == "activation_reduce":
            nisa.activation_reduce(dst=r, op=getattr(nl, op), data=load(x), reduce_op=nl.add,
                                   reduce_res=rr, bias=bias, scale=scale)
        else:
            nisa.activation(dst=r, op=getattr(nl, op), data=load(x), bias=bias, scale=scale,
                            reduce_op=nl.add if reduce else None, reduce_res=rr if reduce else None,
                            reduce_cmd=nisa.reduce_cmd.reset_reduce if reduce else
                            nisa.reduce_cmd.idle)
        if not reduce:
            nisa.memset(dst=rr, value=0.0)
        return store(r), store(rr)
    if not legal:      # SPEC 3.2: a scalar bias needs NeuronCore-v3+
        raises(k, (x, sc, bi), "is a scalar; on NeuronCore-v2 bias must be", target=tgt)
        return
    got, red = run(k, x, sc, bi, target=tgt)
    s = sc if scale_col else np.float32(sc[0, 0])
    with np.errstate(all="ignore"):          # fp32 overflow to inf is the engine's result too
        pre = (x.astype(np.float32) * s).astype(np.float32)
        if bias_kind != "none":
            pre = (pre + (bi if bias_kind == "column" else np.float32(bi[0, 0]))).astype(np.float32)
        want = ref(pre.astype(np.float64))
    expect(got, want, dto, 0 if UNARY[op][2] == 0 else 1, max(atol, TINY), f"activation {op}")
    if reduce:
        w32 = want.astype(np.float32).astype(np.float64)
        if np.isfinite(w32).all():
            expect(red, w32.sum(axis=1, keepdims=True), "float32", 1,
                   fsum_bound(w32, 1)[:, None] + 2 * EPS * np.abs(w32).sum(1, keepdims=True),
                   "activation reduce")


def case_activation(data):
    _activation(data, "activation")


def case_activation_reduce(data):
    _activation(data, "activation_reduce")


# ---- copies and fills ----------------------------------------------------------------------------------
def case_tensor_copy(data):
    P, F, tgt, rng = _common(data)
    dt, dto = data.draw(st.sampled_from(ALL_FLOATS + INTS)), data.draw(st.sampled_from(ALL_FLOATS + INTS))
    engine = data.draw(st.sampled_from(["vector", "gpsimd", "scalar", "unknown"]))
    x = values(rng, (P, F), dt, -(1 << 31), 1 << 31) if dt in INTS else values(rng, (P, F), dt, -1e4, 1e4)

    def k(x):
        r = nl.ndarray(x.shape, dto, buffer=nl.sbuf)
        nisa.tensor_copy(dst=r, src=load(x), engine=ENG[engine])
        return store(r)
    if engine == "scalar" and tgt == "inf2":     # SPEC 3.2: v2 ScalarE cannot tensor_copy
        raises(k, (x,), "ScalarE cannot tensor_copy on NeuronCore-v2", target=tgt)
        return
    got = run(k, x, target=tgt)
    want = x if dt == dto else dtypes.round_to(x.astype(np.float32), dto)   # through fp32
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


def case_memset(data):
    P, F, tgt, rng = _common(data)
    dt = data.draw(st.sampled_from(ALL_FLOATS + INTS))
    engine = data.draw(st.sampled_from(["vector", "gpsimd", "unknown"]))
    v = int(rng.integers(0, 100)) if dt in INTS else float(values(rng, (1,), dt, -100, 100)[0])

    def k(d):
        r = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        nisa.memset(dst=r, value=v, engine=ENG[engine])
        return store(r)
    np.testing.assert_array_equal(run(k, np.zeros((1, 1), np.float32), target=tgt),
                                  np.full((P, F), v, npdt(dt)))
    if dt in INTS:
        def bad(d):
            r = nl.ndarray((P, F), dt, buffer=nl.sbuf)
            nisa.memset(dst=r, value=1.5)
            return store(r)
        raises(bad, (np.zeros((1, 1), np.float32),), "is a float but dst has integer dtype",
               target=tgt)


def case_tensor_copy_predicated(data):
    P, F, tgt, rng = _common(data)
    dt = data.draw(st.sampled_from(ALL_FLOATS + INTS))
    pdt = data.draw(st.sampled_from(("uint8", "uint16", "uint32")))
    rev = data.draw(st.booleans())
    scalar_src = data.draw(st.booleans())
    x, old = values(rng, (P, F), dt, -100, 100), values(rng, (P, F), dt, -100, 100)
    pred = (rng.random((P, F)) < 0.5).astype(npdt(pdt)) * rng.integers(1, 5, (P, F)).astype(npdt(pdt))
    sv = 7

    def k(x, old, pred):
        d = load(old)
        nisa.tensor_copy_predicated(dst=d, src=sv if scalar_src else load(x), predicate=load(pred),
                                    reverse_pred=rev)
        return store(d)
    got = run(k, x, old, pred, target=tgt)
    keep = (pred != 0) ^ rev
    np.testing.assert_array_equal(got, np.where(keep, np.asarray(sv).astype(x.dtype) if scalar_src
                                                else x, old))


# ---- reductions and scans --------------------------------------------------------------------------------
def case_tensor_reduce(data):
    P, _, tgt, rng = _common(data)
    a, b = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 40))
    bit = data.draw(st.booleans())
    op = data.draw(st.sampled_from(("bitwise_and", "bitwise_or", "bitwise_xor") if bit else
                                   ("add", "multiply", "maximum", "minimum")))
    dt = data.draw(st.sampled_from(INTS if bit else ALL_FLOATS))
    axes = data.draw(st.sampled_from(((2,), (1, 2))))
    negate = not bit and data.draw(st.booleans())
    keep = data.draw(st.booleans())
    x = values(rng, (P, a, b), dt, np.iinfo(npdt(dt)).min if bit else (0.5 if op == "multiply" else -8),
               np.iinfo(npdt(dt)).max if bit else (1.5 if op == "multiply" else 8))
    oshape = (P,) + tuple(1 if d in axes else x.shape[d] for d in (1, 2)) if keep else \
        ((P, a) if axes == (2,) else (P, 1))

    def k(x):
        r = nl.ndarray(oshape, dt, buffer=nl.sbuf)
        nisa.tensor_reduce(dst=r, op=getattr(nl, op), data=load(x), axis=axes, negate=negate,
                           keepdims=keep)
        return store(r)
    got = run(k, x, target=tgt)
    if bit:
        want = x
        for ax in sorted(axes, reverse=True):
            want = BITWISE[op].reduce(want, axis=ax)
        np.testing.assert_array_equal(got.reshape(-1), want.reshape(-1))
        return
    x64 = x.astype(np.float64)
    fn = {"add": np.sum, "multiply": np.prod, "maximum": np.max, "minimum": np.min}[op]
    want = fn(x64, axis=axes) * (-1 if negate else 1)
    n = np.prod([x.shape[d] for d in axes])
    bound = {"add": fsum_bound(x64, axes), "multiply": (n + 1) * EPS * np.abs(want)}.get(op, 0.0)
    expect(got.reshape(want.shape), want, dt, 0 if op in ("maximum", "minimum") else 1, bound,
           f"tensor_reduce {op}")


def case_tensor_tensor_scan(data):
    P, F, tgt, rng = _common(data, 64)
    op0 = data.draw(st.sampled_from(("multiply", "add", "maximum")))
    op1 = data.draw(st.sampled_from(("add", "subtract", "maximum", "minimum")))
    dt, dto = data.draw(st.sampled_from(FLOATS)), data.draw(st.sampled_from(ALL_FLOATS))
    col = data.draw(st.booleans())
    d0, d1 = values(rng, (P, F), dt, -1, 1), values(rng, (P, F), dt, -2, 2)
    init = values(rng, (P, 1), "float32", -1, 1)
    i0 = float(init[0, 0])

    def k(d0, d1, init):
        r = nl.ndarray(d0.shape, dto, buffer=nl.sbuf)
        nisa.tensor_tensor_scan(dst=r, data0=load(d0), data1=load(d1),
                                initial=load(init) if col else i0,
                                op0=getattr(nl, op0), op1=getattr(nl, op1))
        return store(r)
    got = run(k, d0, d1, init, target=tgt)
    r = (init if col else np.full((P, 1), init[0, 0], np.float32)).reshape(P)
    out = np.empty((P, F), np.float32)
    for j in range(F):                        # r_j = op1(op0(d0_j, r_{j-1}), d1_j), fp32 steps
        r = _alu32(op1, _alu32(op0, d0[:, j], r), d1[:, j])
        out[:, j] = r
    expect(got, out, dto, 0, 0, f"tensor_tensor_scan {op0},{op1}")


def case_tensor_scalar_reduce(data):
    P, F, tgt, rng = _common(data)
    op0 = data.draw(st.sampled_from(("add", "subtract", "multiply", "maximum")))
    red = data.draw(st.sampled_from(("add", "multiply", "maximum", "minimum")))
    dt = data.draw(st.sampled_from(ALL_FLOATS))
    col, neg = data.draw(st.booleans()), data.draw(st.booleans())
    x = values(rng, (P, F), dt, 0.9, 1.1) if red == "multiply" else values(rng, (P, F), dt, -8, 8)
    c = values(rng, (P, 1), "float32", 0.95, 1.05) if red == "multiply" else \
        values(rng, (P, 1), "float32", -2, 2)
    if red == "multiply" and op0 in ("add", "subtract"):
        c = (c - 1).astype(np.float32) * 0.01
    load_init = data.draw(st.booleans())
    init = values(rng, (P, 1), "float32", 0.5, 1.5)
    c0 = float(c[0, 0])

    def k(x, c, init):
        r = nl.ndarray(x.shape, dt, buffer=nl.sbuf)
        rr = nl.ndarray((x.shape[0], 1), nl.float32, buffer=nl.sbuf)
        nisa.tensor_scalar_reduce(dst=r, data=load(x), op0=getattr(nl, op0),
                                  operand0=load(c) if col else c0,
                                  reduce_op=getattr(nl, red), reduce_res=rr,
                                  reduce_res_negate=neg,
                                  reduce_cmd=nisa.reduce_cmd.load_reduce if load_init
                                  else nisa.reduce_cmd.reset_reduce,
                                  reduce_init=load(init) if load_init else None)
        return store(r), store(rr)
    got, rr = run(k, x, c, init, target=tgt)
    y = _alu(op0, x, c if col else c[0, 0]).astype(np.float32).astype(np.float64)
    expect(got, y, dt, 0, TINY, f"tensor_scalar_reduce {op0}")
    fn = {"add": np.sum, "multiply": np.prod, "maximum": np.max, "minimum": np.min}[red]
    r = fn(y, axis=1, keepdims=True)
    if load_init:    # the registers start from reduce_init, then fold this result in
        r = _alu(red, init, r)
    r = -r if neg else r
    bound = {"add": fsum_bound(y, 1)[:, None] + EPS * np.abs(init) * 2,
             "multiply": (F + 3) * EPS * np.abs(r)}.get(red, 0.0)
    expect(rr, r, "float32", 1, bound, f"tensor_scalar_reduce {red}")


def case_tensor_scalar_cumulative(data):
    P, F, tgt, rng = _common(data, 64)
    op0 = data.draw(st.sampled_from(("add", "multiply", "maximum")))
    op1 = data.draw(st.sampled_from(("add", "subtract", "multiply", "maximum", "minimum")))
    dt = data.draw(st.sampled_from(ALL_FLOATS + ("int8", "int16", "uint8", "uint16")))
    load_init = data.draw(st.booleans())
    x = values(rng, (P, F), dt, 0, 4) if dt in INTS else values(rng, (P, F), dt, 0.9, 1.1)
    imm0 = 1.0
    init = values(rng, (P, 1), "float32", -1, 1)

    def k(x, init):
        r = nl.ndarray(x.shape, "float32", buffer=nl.sbuf)
        nisa.tensor_scalar_cumulative(dst=r, src=load(x), op0=getattr(nl, op0), op1=getattr(nl, op1),
                                      imm0=imm0, imm1=load(init) if load_init else None,
                                      reduce_cmd=nisa.reduce_cmd.load_reduce if load_init else
                                      nisa.reduce_cmd.reset_reduce)
        return store(r)
    got = run(k, x, init, target=tgt)
    ident = {"add": 0.0, "subtract": 0.0, "multiply": 1.0, "maximum": -np.inf, "minimum": np.inf}
    reg = init.reshape(P) if load_init else np.full(P, ident[op1], np.float32)
    out = np.empty((P, F), np.float32)
    for j in range(F):                    # reg = op1(op0(x_j, imm0), reg); dst_j = reg
        reg = _alu32(op1, _alu32(op0, x[:, j], imm0), reg)
        out[:, j] = reg
    expect(got, out, "float32", 0, 0, f"tensor_scalar_cumulative {op0},{op1}")

    def bad(x, init):
        r = nl.ndarray(x.shape, "int32", buffer=nl.sbuf)
        nisa.tensor_scalar_cumulative(dst=r, src=load(x), op0=nl.add, op1=nl.add, imm0=1.0)
        return store(r)
    raises(bad, (x, init), "int32/uint32 are not supported", target=tgt)


def case_select_reduce(data):
    P, F, tgt, rng = _common(data)
    dt = data.draw(st.sampled_from(ALL_FLOATS))
    pdt = data.draw(st.sampled_from(("int8", "int16", "uint8", "uint16")))
    rev, col = data.draw(st.booleans()), data.draw(st.booleans())
    x = values(rng, (P, F), dt, -50, 50)
    pred = (rng.random((P, F)) < 0.5).astype(npdt(pdt))
    off = values(rng, (P, 1), "float32", -60, 60)
    o0 = float(off[0, 0])

    def k(x, pred, off):
        r = nl.ndarray(x.shape, dt, buffer=nl.sbuf)
        rr = nl.ndarray((x.shape[0], 1), nl.float32, buffer=nl.sbuf)
        nisa.select_reduce(dst=r, predicate=load(pred), on_true=load(x),
                           on_false=load(off) if col else o0, reduce_res=rr,
                           reduce_cmd=nisa.reduce_cmd.reset_reduce, reduce_op=nl.maximum,
                           reverse_pred=rev)
        return store(r), store(rr)
    got, rr = run(k, x, pred, off, target=tgt)
    want = np.where((pred != 0) ^ rev, x.astype(np.float64), _f32(off if col else off[0, 0]))
    expect(got, want, dt, 0, 0, "select_reduce")
    expect(rr, want.max(axis=1, keepdims=True), "float32", 0, 0, "select_reduce max")


def case_range_select(data):
    P, F, tgt, rng = _common(data)
    dt = data.draw(st.sampled_from(FLOATS))
    c0 = data.draw(st.sampled_from(("less", "less_equal", "greater", "greater_equal", "equal")))
    c1 = data.draw(st.sampled_from(("less", "less_equal", "greater", "greater_equal", "equal")))
    start = data.draw(st.integers(0, 100))
    x = values(rng, (P, F), dt, -50, 50)
    b0 = rng.integers(start - 5, start + F + 5, (P, 1)).astype(np.float32)
    b1 = rng.integers(start - 5, start + F + 5, (P, 1)).astype(np.float32)

    def k(x, b0, b1):
        r = nl.ndarray(x.shape, "float32", buffer=nl.sbuf)
        rr = nl.ndarray((x.shape[0], 1), nl.float32, buffer=nl.sbuf)
        nisa.range_select(dst=r, on_true_tile=load(x), comp_op0=getattr(nl, c0),
                          comp_op1=getattr(nl, c1), bound0=load(b0), bound1=load(b1),
                          reduce_res=rr, range_start=start)
        return store(r), store(rr)
    if tgt == "inf2":     # SPEC 3.2: range_select is v3+
        raises(k, (x, b0, b1), "is available on NeuronCore-v3 and newer only", target=tgt)
        return
    got, rr = run(k, x, b0, b1, target=tgt)
    j = start + np.arange(F, dtype=np.float64)[None, :]
    m = CMP[c0](j, b0) & CMP[c1](j, b1)
    want = np.where(m, x.astype(np.float64), -3.4028234663852886e38)
    expect(got, want, "float32", 0, 0, "range_select")
    expect(rr, want.max(axis=1, keepdims=True), "float32", 0, 0, "range_select max")


def case_exponential(data):
    P, F, tgt, rng = _common(data)
    tgt = data.draw(st.sampled_from(("inf2", "trn2", "trn3")))
    dt, dto = data.draw(st.sampled_from(ALL_FLOATS)), data.draw(st.sampled_from(ALL_FLOATS))
    col, red = data.draw(st.booleans()), data.draw(st.booleans())
    x = values(rng, (P, F), dt, -10, 10)
    mx = values(rng, (P, 1), "float32", -2, 2)
    m0 = float(mx[0, 0])

    def k(x, mx):
        r = nl.ndarray(x.shape, dto, buffer=nl.sbuf)
        rr = nl.ndarray((x.shape[0], 1), nl.float32, buffer=nl.sbuf)
        nisa.exponential(dst=r, src=load(x), max_value=load(mx) if col else m0,
                         reduce_res=rr if red else None,
                         reduce_cmd=nisa.reduce_cmd.reset_reduce if red else nisa.reduce_cmd.idle)
        if not red:
            nisa.memset(dst=rr, value=0.0)
        return store(r), store(rr)
    if tgt != "trn3":     # SPEC 3.2: exponential is NeuronCore-v4 only
        raises(k, (x, mx), "is available on NeuronCore-v4 and newer only", target=tgt)
        return
    got, rr = run(k, x, mx, target=tgt)
    want = np.exp(_f32((_f32(x) - _f32(mx if col else mx[0, 0]))))
    # fp32 libm exp: 2 ulps into fp32, 1 ulp into narrower dtypes (see nl_elementwise.py)
    expect(got, want, dto, 2 if dto == "float32" else 1, TINY, "exponential")
    if red:
        w32 = want.astype(np.float32).astype(np.float64)
        expect(rr, w32.sum(1, keepdims=True), "float32", 1,
               fsum_bound(w32, 1)[:, None] + 2 * EPS * w32.sum(1, keepdims=True), "exp sum")


def case_reciprocal(data):
    P, F, tgt, rng = _common(data)
    dt, dto = data.draw(st.sampled_from(ALL_FLOATS)), data.draw(st.sampled_from(ALL_FLOATS))
    x = values(rng, (P, F), dt, 2.0 ** -14, 2.0 ** 14, log=True) * \
        rng.choice([-1, 1], (P, F)).astype(npdt(dt))

    def k(x):
        r = nl.ndarray(x.shape, dto, buffer=nl.sbuf)
        nisa.reciprocal(dst=r, data=load(x))
        return store(r)
    expect(run(k, x, target=tgt), 1 / _f32(x), dto, 0, TINY, "reciprocal")


def case_tensor_partition_reduce(data):
    P, F, tgt, rng = _common(data)
    bit = data.draw(st.booleans())
    op = data.draw(st.sampled_from(("bitwise_or", "bitwise_and") if bit else
                                   ("add", "average", "maximum")))
    dt = data.draw(st.sampled_from(INTS if bit else ALL_FLOATS))
    info = np.iinfo(npdt(dt)) if bit else None
    x = values(rng, (P, F), dt, info.min, info.max) if bit else values(rng, (P, F), dt, -8, 8)

    def k(x):
        r = nl.ndarray((1, F), dt, buffer=nl.sbuf)
        nisa.tensor_partition_reduce(dst=r, op=getattr(nl, op), data=load(x))
        return store(r)
    got = run(k, x, target=tgt)
    if bit:
        np.testing.assert_array_equal(got, BITWISE[op].reduce(x, axis=0, keepdims=True))
        return
    x64 = x.astype(np.float64)
    want = {"add": x64.sum(0, keepdims=True), "average": x64.mean(0, keepdims=True),
            "maximum": x64.max(0, keepdims=True)}[op]
    bound = 0.0 if op == "maximum" else fsum_bound(x64, 0)[None, :] / (P if op == "average" else 1) \
        + 2 * EPS * np.abs(want)
    expect(got, want, dt, 0 if op == "maximum" else 1, bound, f"tensor_partition_reduce {op}")


def case_iota(data):
    P, _, tgt, rng = _common(data)
    nd = data.draw(st.integers(1, 4))
    pat = [[data.draw(st.integers(-5, 5)), data.draw(st.integers(1, 6))] for _ in range(nd)]
    off, cm = data.draw(st.integers(-100, 100)), data.draw(st.integers(-3, 3))
    dt = data.draw(st.sampled_from(("int32", "float32", "bfloat16", "int16", "uint32")))
    n = int(np.prod([c for _, c in pat]))

    def k(d):
        r = nl.ndarray((P, n), dt, buffer=nl.sbuf)
        nisa.iota(dst=r, pattern=pat, offset=off, channel_multiplier=cm)
        return store(r)
    got = run(k, np.zeros((1, 1), np.float32), target=tgt)
    vals = np.zeros([c for _, c in pat], np.int64)
    for d, (s, c) in enumerate(pat):
        shape = [1] * nd
        shape[d] = c
        vals = vals + s * np.arange(c).reshape(shape)
    want = vals.reshape(1, -1) + off + cm * np.arange(P)[:, None]
    # int32 arithmetic, then cast to dst (through fp32 for floats; ints saturate)
    expect(got, want if dt in INTS else want.astype(np.float32), dt, 0, 0, "iota")

    def psum_dst(d):
        r = nl.ndarray((P, n), dt, buffer=nl.psum)
        nisa.iota(dst=r, pattern=pat, offset=off)
        return d
    raises(psum_dst, (np.zeros((1, 1), np.float32),), "needs it in SBUF", target=tgt)


def case_affine_select(data):
    P, _, tgt, rng = _common(data)
    nd = data.draw(st.integers(1, 3))
    pat = [[data.draw(st.integers(-3, 3)), data.draw(st.integers(1, 8))] for _ in range(nd)]
    off, cm = data.draw(st.integers(-20, 20)), data.draw(st.integers(-2, 2))
    cmp = data.draw(st.sampled_from(("equal", "not_equal", "less", "less_equal", "greater",
                                     "greater_equal")))
    dt = data.draw(st.sampled_from(ALL_FLOATS))
    n = int(np.prod([c for _, c in pat]))
    x = values(rng, (P, n), dt, -10, 10)
    fv = -9.0

    def k(x):
        r = nl.ndarray(x.shape, dt, buffer=nl.sbuf)
        nisa.affine_select(dst=r, pattern=pat, channel_multiplier=cm, on_true_tile=load(x),
                           on_false_value=fv, cmp_op=getattr(nl, cmp), offset=off)
        return store(r)
    got = run(k, x, target=tgt)
    vals = np.zeros([c for _, c in pat], np.int64)
    for d, (s, c) in enumerate(pat):
        shape = [1] * nd
        shape[d] = c
        vals = vals + s * np.arange(c).reshape(shape)
    aff = vals.reshape(1, -1) + off + cm * np.arange(P)[:, None]
    want = np.where(CMP[cmp](aff, 0), x.astype(np.float64), fv)
    expect(got, want, dt, 0, 0, "affine_select")


def case_dropout(data):
    P, F, tgt, rng = _common(data)
    dt = data.draw(st.sampled_from(ALL_FLOATS + ("int32", "uint8")))
    prob = data.draw(st.sampled_from((0.0, 1.0, 0.5)))
    col = data.draw(st.booleans())
    x = values(rng, (P, F), dt, 1, 100)
    pc = np.full((P, 1), prob, np.float32)

    def k(x, pc):
        r = nl.ndarray(x.shape, dt, buffer=nl.sbuf)
        nisa.dropout(dst=r, data=load(x), prob=load(pc) if col else prob)
        return store(r)
    got = run(k, x, pc, target=tgt)
    kept = got.astype(np.float64) != 0
    np.testing.assert_array_equal(np.where(kept, got, x), x)
    frac = 1 - kept.mean()
    if prob in (0.0, 1.0):
        assert frac == prob
    else:
        assert abs(frac - prob) <= 6 * np.sqrt(prob * (1 - prob) / x.size) + 1e-9


def compute_cases():
    return {"tensor_tensor": case_tensor_tensor, "tensor_tensor[errors]": case_tensor_tensor_errors,
            "tensor_scalar": case_tensor_scalar, "scalar_tensor_tensor": case_scalar_tensor_tensor,
            "activation": case_activation, "activation_reduce": case_activation_reduce,
            "tensor_copy": case_tensor_copy, "memset": case_memset,
            "tensor_copy_predicated": case_tensor_copy_predicated,
            "tensor_reduce": case_tensor_reduce, "tensor_tensor_scan": case_tensor_tensor_scan,
            "tensor_scalar_reduce": case_tensor_scalar_reduce,
            "tensor_scalar_cumulative": case_tensor_scalar_cumulative,
            "select_reduce": case_select_reduce, "range_select": case_range_select,
            "exponential": case_exponential, "reciprocal": case_reciprocal,
            "tensor_partition_reduce": case_tensor_partition_reduce, "iota": case_iota,
            "affine_select": case_affine_select, "dropout": case_dropout}
