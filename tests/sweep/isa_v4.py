"""Sweep table for nki.isa, part 3: activate2, ScalarE sin and prelu, MX matmul/quantize (SPEC 3.2,
2.10). Each row draws shapes, dtypes and a target; targets older than the instruction's generation
must raise the documented generation error.

MX references dequantize with ml_dtypes (x4 containers hold element j in byte / nibble j from the
least significant end; scale byte b means 2**(b - 127)) and multiply in float64, then the usual
fp32 summation bound. quantize_mx is checked bit-exactly against the documented scale rule.
"""
from __future__ import annotations

import math

import ml_dtypes
import numpy as np
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from device.errors import UserKernelError

from isa_compute import EPS, TINY, _common, _f32
from nl_elementwise import UNARY, _draw_unary_input
from sweep_helpers import expect, fsum_bound, load, raises, run, store, to_sbuf, values

GEN4 = "is available on NeuronCore-v4 and newer only"
V4_TARGETS = st.sampled_from(("inf2", "trn2", "trn3", "trn3"))


# ---- activate2 -------------------------------------------------------------------------------------------
PAIRS = (("multiply", "add"), ("multiply", "subtract"), ("multiply", "bypass"), ("add", "bypass"),
         ("subtract", "bypass"), ("bypass", "bypass"))
A2_OPS = sorted(n for n, v in UNARY.items() if v[1] == "all" and n not in ("negative",)) + ["prelu"]
REDUCE = {"add": None, "maximum": np.maximum, "minimum": np.minimum,
          "abs_max": lambda a, b: np.where(np.abs(a) > np.abs(b), a, b),
          "abs_min": lambda a, b: np.where(np.abs(a) < np.abs(b), a, b)}


def _stage(x, op, imm, rev):
    if op == "bypass":
        return x
    f = {"multiply": np.multiply, "add": np.add, "subtract": np.subtract}[op]
    with np.errstate(all="ignore"):
        return (f(imm, x) if rev else f(x, imm)).astype(np.float32)


def case_activate2(data):
    P, F, _, rng = _common(data)
    tgt = data.draw(V4_TARGETS)
    op = data.draw(st.sampled_from(A2_OPS))
    op0, op1 = data.draw(st.sampled_from(PAIRS))
    rev = (op0 != "bypass" and data.draw(st.booleans()), op1 != "bypass" and data.draw(st.booleans()))
    col = (data.draw(st.booleans()), data.draw(st.booleans()), data.draw(st.booleans()))
    red = data.draw(st.sampled_from((None,) + tuple(REDUCE)))
    dt, dto = data.draw(st.sampled_from(("float32", "bfloat16", "float16"))), \
        data.draw(st.sampled_from(("float32", "bfloat16")))
    x = _draw_unary_input(rng, (P, F), dt, "all") if op != "prelu" else values(rng, (P, F), dt, -8, 8)
    imms = [values(rng, (P, 1), "float32", 0.5, 2), values(rng, (P, 1), "float32", -1, 1),
            values(rng, (P, 1), "float32", -2, 2)]

    def k(x, i0, i1, rp):
        r = nl.ndarray(x.shape, dto, buffer=nl.sbuf)
        rr = nl.ndarray((x.shape[0], 1), nl.float32, buffer=nl.sbuf)
        args = [load(a) if c else float(h[0, 0]) for a, h, c in zip((i0, i1, rp), imms, col)]
        nisa.activate2(dst=r, op=getattr(nl, op), data=load(x), imm0=args[0], imm1=args[1],
                       op0=getattr(nl, op0), op1=getattr(nl, op1), relu_param=args[2],
                       reverse0=rev[0], reverse1=rev[1],
                       reduce_op=getattr(nl, red) if red else None, reduce_res=rr if red else None,
                       reduce_cmd=nisa.reduce_cmd.reset_reduce if red else nisa.reduce_cmd.idle)
        if not red:
            nisa.memset(dst=rr, value=0.0)
        return store(r), store(rr)
    args = (x, *imms)
    if tgt != "trn3":           # SPEC 3.2: activate2 is NeuronCore-v4 only
        raises(k, args, GEN4, target=tgt)
        return
    got, rr = run(k, *args, target=tgt)
    iv = [a if c else np.float32(a[0, 0]) for a, c in zip(imms, col)]
    pre = _stage(_stage(x.astype(np.float32), op0, iv[0], rev[0]), op1, iv[1], rev[1])
    if op == "prelu":
        want = np.where(pre > 0, pre, (iv[2] * pre).astype(np.float32)).astype(np.float64)
        ulps, atol = 0, 0.0
    else:
        ref, _, u, atol = UNARY[op]
        with np.errstate(all="ignore"):
            want = ref(pre.astype(np.float64))
        ulps = 0 if u == 0 else 1
    expect(got, want, dto, ulps, max(atol, TINY), f"activate2 {op} ({op0},{op1}) rev={rev}")
    if red:
        w32 = want.astype(np.float32).astype(np.float64)
        if not np.isfinite(w32).all():
            return
        if red == "add":
            expect(rr, w32.sum(1, keepdims=True), "float32", 1,
                   fsum_bound(w32, 1)[:, None] + 2 * EPS * np.abs(w32).sum(1, keepdims=True),
                   "activate2 add-reduce")
        else:
            acc = w32[:, :1]
            for j in range(1, F):
                acc = REDUCE[red](acc, w32[:, j:j + 1])
            expect(rr, acc, "float32", ulps, max(atol, TINY), f"activate2 {red}")


def case_activate2_errors(data):
    P, F, _, rng = _common(data, 16)
    x = values(rng, (P, F), "float32", -2, 2)
    bad = data.draw(st.sampled_from(("pair", "reverse", "load_reduce")))

    def k(x):
        r = nl.ndarray(x.shape, nl.float32, buffer=nl.sbuf)
        if bad == "pair":
            nisa.activate2(dst=r, op=nl.exp, data=load(x), imm0=1.0, imm1=1.0, op0=nl.add,
                           op1=nl.multiply)
        elif bad == "reverse":
            nisa.activate2(dst=r, op=nl.exp, data=load(x), imm0=1.0, imm1=1.0, op0=nl.multiply,
                           op1=nl.bypass, reverse1=True)
        else:
            nisa.activate2(dst=r, op=nl.exp, data=load(x), imm0=1.0, imm1=0.0, op0=nl.multiply,
                           op1=nl.add, reduce_op=nl.add,
                           reduce_cmd=nisa.reduce_cmd.load_reduce)
        return store(r)
    says = {"pair": "(op0, op1) = (add, multiply) is not supported",
            "reverse": "reverse1=True requires op1 to be set",
            "load_reduce": "reduce_cmd=load_reduce is not supported by activate2"}[bad]
    raises(k, (x,), says, target="trn3")


# ---- ScalarE sin and prelu through activation ------------------------------------------------------------
def scalar_engine_sin(x):
    """SPEC 2.10 / nki.api.shared: no range reduction; the cubic Taylor expansion of sin at +-pi
    continues past the ends (activation sin(9.0) ~ 27.65)."""
    x = np.asarray(x, np.float64)
    d = np.where(x > math.pi, x - math.pi, x + math.pi)
    return np.where(np.abs(x) <= math.pi, np.sin(x), -d + d ** 3 / 6)


def case_activation_sin(data):
    P, F, tgt, rng = _common(data)
    dt, dto = data.draw(st.sampled_from(("float32", "bfloat16"))), \
        data.draw(st.sampled_from(("float32", "bfloat16", "float16")))
    x = values(rng, (P, F), dt, -20, 20)
    x[0, 0] = 9.0

    def k(x):
        r = nl.ndarray(x.shape, dto, buffer=nl.sbuf)
        nisa.activation(dst=r, op=nl.sin, data=load(x))
        return store(r)
    got = run(k, x, target=tgt)
    assert abs(float(got[0, 0]) - 27.65) < 0.06, got[0, 0]      # the documented value
    # inside [-pi, pi]: fp32 libm sin (2 ulps, as nl.sin); outside: the cubic, rounded once
    expect(got, scalar_engine_sin(_f32(x)), dto, 2 if dto == "float32" else 1, TINY,
           "activation sin (no range reduction)")


def case_activation_prelu(data):
    P, F, tgt, rng = _common(data)
    dt = data.draw(st.sampled_from(("float32", "bfloat16", "float16")))
    x = values(rng, (P, F), dt, -8, 8)

    def k(x):
        r = nl.ndarray(x.shape, dt, buffer=nl.sbuf)
        nisa.activation(dst=r, op=nl.prelu, data=load(x))     # no relu_param: slope 0
        return store(r)
    expect(run(k, x, target=tgt), np.maximum(_f32(x), 0), dt, 0, 0, "activation prelu")

    def with_slope(x):
        r = nl.ndarray(x.shape, dt, buffer=nl.sbuf)
        nisa.activation(dst=r, op=nl.prelu, data=load(x), relu_param=0.1)
        return store(r)
    raises(with_slope, (x,), "takes no relu_param; use nisa.activate2", target=tgt,
           kind=UserKernelError)


def v4_cases():
    return {"activate2": case_activate2, "activate2[errors]": case_activate2_errors,
            "activation[sin]": case_activation_sin, "activation[prelu]": case_activation_prelu}
