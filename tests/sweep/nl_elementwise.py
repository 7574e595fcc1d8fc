"""Sweep table, part 1: the element-wise nki.language functions (SPEC 2.7, 2.10).

Each entry gives a float64 NumPy reference, the input domain it is sampled from (inside the valid
range SPEC 2.10 documents for the ScalarE function) and the tolerance in ulps of the destination
dtype (after ``device.dtypes.round_to``):

* 0 ulps: the engine result is the correctly rounded fp32 value (IEEE add/mul/div/sqrt,
  comparisons, selections, rounding functions, 1/x), and rounding that to the destination dtype
  gives the same value as rounding the float64 reference through fp32.
* 1 ulp: composite activations (sigmoid, silu, gelu*, mish, softplus, erf, erf_dx and the
  derivatives) are evaluated as the correctly rounded fp32 value of the float64 formula; libm
  differences below one float64 ulp can put at most one rounding boundary between the two.
* single fp32 libm functions (exp, log, sin, cos, arctan, tanh: 2 ulps; tan: 3 ulps; rsqrt: one
  division after a correctly rounded sqrt, 1 ulp) carry NumPy's fp32 SIMD error when the
  destination is fp32 (ScalarE is itself a polynomial approximation, SPEC 4.4); for narrower
  destinations that error can cross at most one rounding boundary: 1 ulp.
* ``power``: the ALU evaluates it in fp32 (not correctly rounded): 2 fp32 ulps, 1 ulp narrower.
* ``atol``: the derivatives silu_dx, gelu_dx, gelu_apprx_sigmoid_dx cross zero, where the
  float64 cancellation of O(1) terms leaves an absolute error of ~2^-52; 2^-40 bounds it.

Every comparison also accepts results below fp32's smallest normal (1.2e-38) as zero: the engines
compute in fp32 and flush such results.
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

import nki.language as nl
from sweep_helpers import (ALL_FLOATS, INTS, erf64, expect, free, npdt, parts, run, seed,
                           target, values)

F32_TINY = 2.0 ** -126
PI = math.pi


def _sig(x):
    x = np.asarray(x, np.float64)
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _erfc(x):
    return np.vectorize(math.erfc, otypes=[np.float64])(np.asarray(x, np.float64))


def _gelu_tanh(x):
    z = math.sqrt(2 / PI) * (x + 0.044715 * x ** 3)
    return x * _sig(2 * z)                      # 0.5 x (1 + tanh z) without the cancellation


_G = 1.702
# name -> (reference, domain, fp32 ulps, atol). domain "all" = every real the dtype holds (SPEC 2.10:
# "valid over all reals"); (lo, hi[, "log"]) = sampled inside the documented valid range.
UNARY = {
    "abs": (np.abs, "all", 0, 0), "negative": (np.negative, "all", 0, 0),
    "sign": (np.sign, "all", 0, 0), "ceil": (np.ceil, (-300, 300), 0, 0),
    "floor": (np.floor, (-300, 300), 0, 0), "trunc": (np.trunc, (-300, 300), 0, 0),
    "square": (np.square, "all", 0, 0), "relu": (lambda x: np.maximum(x, 0), "all", 0, 0),
    "copy": (lambda x: x, "all", 0, 0),
    "exp": (np.exp, (-80, 80), 2, 0),
    "log": (np.log, (2.0 ** -64, 2.0 ** 64, "log"), 2, 0),
    "sqrt": (np.sqrt, (2.0 ** -116, 2.0 ** 118, "log"), 0, 0),
    "rsqrt": (lambda x: 1 / np.sqrt(x), (2.0 ** -87, 2.0 ** 97, "log"), 1, 0),
    # reciprocal: valid on +-[2^-42, 2^42] (sampled symmetric, log-uniform magnitudes)
    "reciprocal": (lambda x: 1 / x, (-2.0 ** 42, 2.0 ** 42, "log", 2.0 ** -42), 0, 0),
    "sin": (np.sin, (-PI, PI), 2, 0), "cos": (np.cos, (-PI, PI), 2, 0),
    "tan": (np.tan, (-1.5, 1.5), 3, 0),        # not in the activation list: sampled off the poles
    "arctan": (np.arctan, (-PI / 2, PI / 2), 2, 0),
    "tanh": (np.tanh, "all", 2, 0), "sigmoid": (_sig, "all", 1, 0),
    "silu": (lambda x: x * _sig(x), "all", 1, 0),
    "silu_dx": (lambda x: _sig(x) * (1 + x * (1 - _sig(x))), "all", 1, 2.0 ** -40),
    "gelu": (lambda x: 0.5 * x * _erfc(-x / math.sqrt(2)), "all", 1, 0),
    "gelu_dx": (lambda x: 0.5 * _erfc(-x / math.sqrt(2)) + x * np.exp(-x * x / 2) /
                math.sqrt(2 * PI), "all", 1, 2.0 ** -40),
    "gelu_apprx_tanh": (_gelu_tanh, "all", 1, 0),
    "gelu_apprx_sigmoid": (lambda x: x * _sig(_G * x), "all", 1, 0),
    "gelu_apprx_sigmoid_dx": (lambda x: _sig(_G * x) * (1 + _G * x * (1 - _sig(_G * x))), "all", 1, 2.0 ** -40),
    "mish": (lambda x: x * np.tanh(np.logaddexp(0, x)), "all", 1, 0),
    "softplus": (lambda x: np.logaddexp(0, x), "all", 1, 0),
    "erf": (erf64, "all", 1, 0),
    "erf_dx": (lambda x: 2 / math.sqrt(PI) * np.exp(-x * x), "all", 1, 0),
}


def _draw_unary_input(rng, shape, dt, dom):
    if dom == "all":
        # 3/4 of the elements in the interesting [-8, 8] band, 1/4 anywhere in the dtype's range
        near = values(rng, shape, dt, -8.0, 8.0)
        far = values(rng, shape, dt, -3e38, 3e38, log=True)
        return np.where(rng.random(shape) < 0.75, near, far)
    lo, hi = dom[0], dom[1]
    if len(dom) == 2:
        return values(rng, shape, dt, lo, hi)
    if len(dom) == 4:                           # symmetric magnitudes in [dom[3], hi]
        return values(rng, shape, dt, -hi, hi, log=True) if dom[3] <= 0 else \
            np.where(rng.random(shape) < 0.5, 1, -1).astype(np.float32).astype(npdt(dt)) * \
            values(rng, shape, dt, dom[3], hi, log=True)
    return values(rng, shape, dt, lo, hi, log=True)


def unary_case(name):
    ref, dom, ulps32, atol = UNARY[name]

    def case(data):
        P, F, tgt, s = data.draw(parts), data.draw(free), data.draw(target), data.draw(seed)
        dt_in = data.draw(st.sampled_from(ALL_FLOATS), label="in")
        dt_out = data.draw(st.sampled_from(ALL_FLOATS), label="out")
        rng = np.random.default_rng(s)
        x = _draw_unary_input(rng, (P, F), dt_in, dom)

        def k(x):
            t = nl.load(x)
            r = getattr(nl, name)(t, dtype=dt_out)
            out = nl.ndarray(r.shape, r.dtype, buffer=nl.shared_hbm)
            nl.store(out, r)
            return out
        got = run(k, x, target=tgt)
        with np.errstate(all="ignore"):
            want = ref(x.astype(np.float64))
        ulps = ulps32 if dt_out == "float32" else min(ulps32, 1)
        expect(got, want, dt_out, ulps, max(atol, F32_TINY), f"nl.{name} {dt_in}->{dt_out}")
    return case


# ---- binary ---------------------------------------------------------------------------------------
ARITH = {
    "add": (np.add, 0), "subtract": (np.subtract, 0), "multiply": (np.multiply, 0),
    "divide": (np.divide, 0), "maximum": (np.maximum, 0), "minimum": (np.minimum, 0),
    "power": (np.power, 2), "fmod": (np.fmod, 0), "mod": (np.mod, 0),
    # SPEC 2.7: the signed operand of larger / smaller magnitude, y on a tie
    "abs_max": (lambda x, y: np.where(np.abs(x) > np.abs(y), x, y), 0),
    "abs_min": (lambda x, y: np.where(np.abs(x) < np.abs(y), x, y), 0),
}
CMP = {"equal": np.equal, "not_equal": np.not_equal, "less": np.less,
       "less_equal": np.less_equal, "greater": np.greater, "greater_equal": np.greater_equal,
       "logical_and": lambda x, y: (x != 0) & (y != 0),
       "logical_or": lambda x, y: (x != 0) | (y != 0),
       "logical_xor": lambda x, y: (x != 0) ^ (y != 0)}


def _logical_shr(x, y):
    u = np.dtype(f"uint{8 * x.dtype.itemsize}")
    return (x.astype(u) >> y.astype(u)).astype(x.dtype)


BITWISE = {"bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or,
           "bitwise_xor": np.bitwise_xor, "left_shift": lambda x, y: np.left_shift(x, y),
           "right_shift": _logical_shr}        # logical: there is no arithmetic right shift


def _operands(data, rng, P, F, dt, lo, hi, y_lo=None, y_hi=None):
    """x tile, and y as a full tile, a (P, 1) column or a Python scalar (either side)."""
    form = data.draw(st.sampled_from(["tile", "column", "scalar", "scalar_left"]), label="form")
    x = values(rng, (P, F), dt, lo, hi)
    ylo, yhi = (lo if y_lo is None else y_lo), (hi if y_hi is None else y_hi)
    y = values(rng, (P, F) if form == "tile" else (P, 1), dt, ylo, yhi)
    if form == "tile" and dt not in INTS:
        k = rng.random((P, F))
        y = np.where(k < 0.15, x, np.where(k < 0.25, -x, y)).astype(x.dtype)   # ties, |x| == |y|
    if form.startswith("scalar"):
        y = y.reshape(-1)[0].item() if dt in INTS else float(y.reshape(-1)[0])
    return form, x, y


def _binary_kernel(name, form, dt_out):
    def k(x, y):
        a = nl.load(x)
        b = y if form.startswith("scalar") else nl.load(y)
        r = getattr(nl, name)(b, a, dtype=dt_out) if form == "scalar_left" else \
            getattr(nl, name)(a, b, dtype=dt_out)
        out = nl.ndarray(r.shape, r.dtype, buffer=nl.shared_hbm)
        nl.store(out, r)
        return out
    return k


def _binary_ref(ref, form, x, y, as_f32=True):
    xf = x.astype(np.float32).astype(np.float64) if as_f32 else x
    yf = (np.float64(np.float32(y)) if form.startswith("scalar") else
          y.astype(np.float32).astype(np.float64)) if as_f32 else y
    with np.errstate(all="ignore"):
        return ref(yf, xf) if form == "scalar_left" else ref(xf, yf)


def _domain(name, dt):
    if name == "power":
        return (0.25, 4.0, -3.0, 3.0)
    if name in ("divide", "fmod", "mod"):
        return (-100.0, 100.0, 0.5, 8.0)       # divisors away from 0 (both signs come from ties)
    big = 240.0 if dt == "float8_e4m3" else 1e4
    return (-big, big, None, None)


def arith_case(name):
    ref, ulps32 = ARITH[name]

    def case(data):
        P, F, tgt, s = data.draw(parts), data.draw(free), data.draw(target), data.draw(seed)
        dt = data.draw(st.sampled_from(ALL_FLOATS), label="dtype")
        dt_out = data.draw(st.sampled_from(ALL_FLOATS), label="out")
        rng = np.random.default_rng(s)
        lo, hi, ylo, yhi = _domain(name, dt)
        form, x, y = _operands(data, rng, P, F, dt, lo, hi, ylo, yhi)
        got = run(_binary_kernel(name, form, dt_out), x, y, target=tgt)
        want = _binary_ref(ref, form, x, y)
        ulps = ulps32 if dt_out == "float32" else min(ulps32, 1)
        expect(got, want, dt_out, ulps, F32_TINY, f"nl.{name} {form} {dt}->{dt_out}")
    return case


def int_arith_case(name):
    """Integer operands (SPEC 3.2 tensor_tensor: int32/uint32 pairs run natively on GpSimd, other
    ints are cast to fp32); the values fit 24 bits so either way the result is exact."""
    ref = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply,
           "maximum": np.maximum, "minimum": np.minimum}[name]

    def case(data):
        P, F, tgt, s = data.draw(parts), data.draw(free), data.draw(target), data.draw(seed)
        dt = data.draw(st.sampled_from(INTS), label="dtype")
        rng = np.random.default_rng(s)
        lim = 3000 if name == "multiply" else 1 << 22
        form, x, y = _operands(data, rng, P, F, dt, -lim, lim)
        got = run(_binary_kernel(name, form, None), x, y, target=tgt)
        want = _binary_ref(ref, form, x.astype(np.int64), y if form.startswith("scalar") else
                           y.astype(np.int64), as_f32=False)
        expect(got, want, dt, 0, 0, f"nl.{name} {form} {dt}")   # saturates like round_to
    return case


def cmp_case(name):
    ref = CMP[name]

    def case(data):
        P, F, tgt, s = data.draw(parts), data.draw(free), data.draw(target), data.draw(seed)
        dt = data.draw(st.sampled_from(ALL_FLOATS + INTS), label="dtype")
        dt_out = data.draw(st.sampled_from(("float32", "bfloat16", "float8_e4m3", "int32",
                                            "uint8", None)), label="out")
        rng = np.random.default_rng(s)
        # small ranges so equal values (and zeros for the logical ops) are common
        form, x, y = _operands(data, rng, P, F, dt, -3, 3)
        got = run(_binary_kernel(name, form, dt_out), x, y, target=tgt)
        # SPEC 2.10: comparison operands are cast to fp32; the result is 1.0 / 0.0
        want = _binary_ref(ref, form, x, y).astype(np.float64)
        expect(got, want, dt_out or dt, 0, 0, f"nl.{name} {form} {dt}->{dt_out}")
    return case


def bitwise_case(name):
    ref = BITWISE[name]

    def case(data):
        P, F, tgt, s = data.draw(parts), data.draw(free), data.draw(target), data.draw(seed)
        dt = data.draw(st.sampled_from(INTS), label="dtype")
        rng = np.random.default_rng(s)
        info = np.iinfo(npdt(dt))
        bits = 8 * npdt(dt).itemsize
        shift = name.endswith("shift")
        form, x, y = _operands(data, rng, P, F, dt, info.min, info.max,
                               0 if shift else info.min, bits - 1 if shift else info.max)
        got = run(_binary_kernel(name, form, None), x, y, target=tgt)
        yy = np.asarray(y).astype(x.dtype)
        with np.errstate(all="ignore"):
            want = ref(yy, x) if form == "scalar_left" else ref(x, yy)
        np.testing.assert_array_equal(got, np.broadcast_to(want, x.shape))
        assert got.dtype == x.dtype
    return case


def bit_unary_case(name):
    def case(data):
        P, F, tgt, s = data.draw(parts), data.draw(free), data.draw(target), data.draw(seed)
        dt = data.draw(st.sampled_from((INTS + ALL_FLOATS) if name == "logical_not" else INTS))
        rng = np.random.default_rng(s)
        lo, hi = (-2, 2) if name == "logical_not" else (-(1 << 40), 1 << 40)
        x = values(rng, (P, F), dt, lo, hi)

        def k(x):
            r = getattr(nl, name)(nl.load(x))
            out = nl.ndarray(r.shape, r.dtype, buffer=nl.shared_hbm)
            nl.store(out, r)
            return out
        got = run(k, x, target=tgt)
        if name == "invert":
            np.testing.assert_array_equal(got, ~x)
        else:
            expect(got, (x.astype(np.float64) == 0).astype(np.float64), dt, 0, 0, "logical_not")
    return case


def elementwise_cases():
    cases = {n: unary_case(n) for n in UNARY}
    cases.update({n: arith_case(n) for n in ARITH})
    cases.update({n: cmp_case(n) for n in CMP})
    cases.update({n: bitwise_case(n) for n in BITWISE})
    cases.update({n: bit_unary_case(n) for n in ("invert", "logical_not")})
    cases.update({f"{n}[int]": int_arith_case(n) for n in
                  ("add", "subtract", "multiply", "maximum", "minimum")})
    return cases
