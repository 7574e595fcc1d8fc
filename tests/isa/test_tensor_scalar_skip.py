"""``nisa.tensor_scalar`` with ``op0=None``: the first stage is skipped, like ``nl.bypass``.

The library's MX gate/up projection clamps with ``op0=nl.minimum if upper else None`` and
``op1=nl.maximum if lower else None``, so a lower bound alone arrives as ``op0=None,
operand0=None``. Both executors must agree (the fast path is checked against the reference).
"""
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from device import executor
from isa_helpers import Line, assert_same, expect_error, f32, float_dt, load, parts, rand, rnd, run, store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fastpath"))
from fastpath_helpers import checking_run  # noqa: E402

OPS = {"maximum": np.maximum, "minimum": np.minimum, "add": np.add, "multiply": np.multiply,
       "subtract": np.subtract}


@pytest.fixture(scope="module", autouse=True)
def both_executors():
    original = executor.run
    executor.run = checking_run(original)
    try:
        yield
    finally:
        executor.run = original


@given(P=parts, F=st.integers(1, 40), dt=float_dt, op1=st.sampled_from(sorted(OPS)),
       column=st.booleans(), rev1=st.booleans())
def test_op0_none_applies_only_op1(P, F, dt, op1, column, rev1):
    a, c = rand((P, F), dt, 1), rand((P, 1), "float32", 2)

    def k(a, c):
        out = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        nisa.tensor_scalar(dst=out, data=load(a), op0=None, operand0=None, op1=getattr(nl, op1),
                           operand1=load(c) if column else 0.75, reverse1=rev1)
        return store(out)
    x, y = f32(a), (f32(c) if column else np.float32(0.75))
    want = rnd(OPS[op1](y, x) if rev1 else OPS[op1](x, y), dt)
    assert_same(run(k, a, c, target="trn2"), want)


@given(P=parts, F=st.integers(1, 40), dt=float_dt)
def test_both_ops_none_is_a_copy(P, F, dt):
    a = rand((P, F), dt, 3)

    def k(a):
        out = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        nisa.tensor_scalar(dst=out, data=load(a), op0=None, operand0=None)
        return store(out)
    assert_same(run(k, a, target="trn2"), a)


def test_clamp_with_lower_bound_only_like_the_library():
    """The MX gate/up projection's clamp when only ``gate_clamp_lower_limit`` is set."""
    a = rand((128, 24), "bfloat16", 4)
    upper, lower = None, -1.5

    def k(a):
        t = load(a)
        nisa.tensor_scalar(dst=t, data=t, op0=nl.minimum if upper is not None else None,
                           operand0=upper, op1=nl.maximum if lower is not None else None,
                           operand1=lower)
        return store(t)
    assert_same(run(k, a, target="trn2"), rnd(np.maximum(f32(a), -1.5), "bfloat16"))


def test_op0_none_with_bitvec_op1_on_integers():
    a = rand((16, 10), "int32", 5)

    def k(a):
        out = nl.ndarray((16, 10), "int32", buffer=nl.sbuf)
        nisa.tensor_scalar(dst=out, data=load(a), op0=None, operand0=None, op1=nl.bitwise_and,
                           operand1=0xFF)
        return store(out)
    assert_same(run(k, a, target="trn2"), (a & 0xFF).astype(np.int32))


def test_op0_none_with_op1_but_no_operand1_names_the_operand():
    a = rand((4, 8), "float32", 6)
    L = Line()

    def k(a):
        out = nl.ndarray((4, 8), "float32", buffer=nl.sbuf)
        L.mark(); nisa.tensor_scalar(dst=out, data=load(a), op0=None, operand0=None, op1=nl.add)  # noqa: E702,E501
        return store(out)
    expect_error(k, (a,), L, "tensor_scalar: missing operand 'operand1'")


def test_op0_none_still_checks_op1_operand_shape():
    a, c = rand((4, 8), "float32", 7), rand((4, 2), "float32", 8)
    L = Line()

    def k(a, c):
        out = nl.ndarray((4, 8), "float32", buffer=nl.sbuf)
        L.mark(); nisa.tensor_scalar(dst=out, data=load(a), op0=None, operand0=None, op1=nl.add, operand1=load(c))  # noqa: E702,E501
        return store(out)
    expect_error(k, (a, c), L, "operand 'operand1' must be a scalar or a (P, 1) tile", "[4, 2]")
