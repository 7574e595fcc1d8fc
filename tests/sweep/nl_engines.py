"""Sweep rows for nl functions whose lowering depends on the engine (SPEC 2.7, 2.10):

* ``sin[range]``: nl.sin reduces its argument to [-pi, pi] before ScalarE's sin (which has no
  range reduction), so it stays accurate far outside [-pi, pi]. The reduced argument is an fp32
  value, so the reference allows ~2 fp32 ulps of pi in absolute error on top of the 2-ulp libm
  tolerance.
* ``rsqrt[gpsimd]``: since NKI 0.5 nl.rsqrt is GpSimd ``tensor_scalar(op0=rsqrt)``: it traces to
  a POOL instruction, matches 1/sqrt within 1 ulp and refuses a PSUM operand.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import HardwareRuleError

from sweep_helpers import ALL_FLOATS, expect, free, parts, raises, run, seed, target, values


def _out(r):
    out = nl.ndarray(r.shape, r.dtype, buffer=nl.shared_hbm)
    nl.store(out, r)
    return out


def case_sin_range(data):
    P, F, tgt = data.draw(parts), data.draw(free), data.draw(target)
    rng = np.random.default_rng(data.draw(seed))
    dt = data.draw(st.sampled_from(("float32", "bfloat16", "float16")))
    dto = data.draw(st.sampled_from(ALL_FLOATS))
    span = data.draw(st.sampled_from((10.0, 1000.0)))
    x = values(rng, (P, F), dt, -span, span)
    x.reshape(-1)[0] = 9.0

    def k(x):
        return _out(nl.sin(nl.load(x), dtype=dto))
    got = run(k, x, target=tgt)
    assert abs(float(got.reshape(-1)[0]) - np.sin(9.0)) < 0.1      # not the ScalarE 27.65
    expect(got, np.sin(x.astype(np.float64)), dto, 2 if dto == "float32" else 1,
           2.0 ** -21, "nl.sin with range reduction")


def case_rsqrt_gpsimd(data):
    P, F, tgt = data.draw(parts), data.draw(free), data.draw(target)
    rng = np.random.default_rng(data.draw(seed))
    dt = data.draw(st.sampled_from(("float32", "bfloat16", "float16")))
    x = values(rng, (P, F), dt, 2.0 ** -10, 2.0 ** 10, log=True)

    def k(x):
        return _out(nl.rsqrt(nl.load(x)))
    kern = nki.jit(k, target=tgt)
    prog = kern.trace(x)
    engines = {(ins.op.name, ins.engine) for ins in prog.instrs}
    assert ("tensor_scalar", "POOL") in engines and not any(
        n == "activation" for n, _ in engines), engines
    expect(run(k, x, target=tgt), 1 / np.sqrt(x.astype(np.float32).astype(np.float64)), dt, 1, 0,
           "nl.rsqrt on GpSimd")

    def from_psum(x):
        t = nl.load(x)
        p = nl.ndarray(t.shape, t.dtype, buffer=nl.psum)
        nisa.tensor_copy(dst=p, src=t)
        return _out(nl.rsqrt(p))
    if F <= 512:
        raises(from_psum, (x,), "nl.rsqrt runs on GpSimd", "cannot read PSUM", target=tgt,
               kind=HardwareRuleError)


def engine_cases():
    return {"sin[range]": case_sin_range, "rsqrt[gpsimd]": case_rsqrt_gpsimd}
