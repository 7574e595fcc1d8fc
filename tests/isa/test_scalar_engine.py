"""activation reduce_cmd / ScalarE registers, activation_reduce, and engine rules of
tensor_scalar / tensor_copy / tensor_tensor / tensor_reduce, vs NumPy."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from isa_helpers import (FLOATS, Line, assert_same, expect_error, f32, float_dt, load, odd_free,
                         parts, rand, rnd, run, store, target)


@given(P=parts, F=odd_free, dt=float_dt, tgt=target)
def test_activation_reduce_cmd_chains_through_scalar_registers(P, F, dt, tgt):
    x = rand((P, 2 * F), dt, 1, -1, 1)
    s, b = rand((P, 1), "float32", 2), rand((P, 1), "float32", 3)

    def k(x, s, b):
        t = load(x)
        y = nl.ndarray((P, 2 * F), "float32", buffer=nl.sbuf)
        r1 = nl.ndarray((P, 1), "float32", buffer=nl.sbuf)
        r2 = nl.ndarray((P, 1), "float32", buffer=nl.sbuf)
        r3 = nl.ndarray((P, 1), "float32", buffer=nl.sbuf)
        bias = load(b)
        nisa.activation(dst=y[:, 0:F], op=nl.exp, data=t[:, 0:F], bias=bias, scale=load(s), reduce_op=nl.add, reduce_cmd=nisa.reduce_cmd.reset_reduce)  # noqa: E501
        nisa.activation(dst=y[:, F:], op=nl.exp, data=t[:, F:], bias=bias, scale=load(s), reduce_op=nl.add, reduce_res=r1, reduce_cmd=nisa.reduce_cmd.reduce)  # noqa: E501
        nisa.activation(dst=y[:, 0:F], op=nl.copy, data=t[:, 0:F], bias=bias, reduce_res=r2)  # idle: readout only  # noqa: E501
        nisa.activation(dst=y[:, 0:F], op=nl.copy, data=t[:, 0:F], bias=bias, reduce_res=r3, reduce_cmd=nisa.reduce_cmd.reset)  # noqa: E501
        return store(y), store(r1), store(r2), store(r3)
    y, r1, r2, r3 = run(k, x, s, b, target=tgt)
    e = np.exp(f32(x) * s + b).astype(np.float32)
    want = np.sum(e[:, :F], axis=1, dtype=np.float32) + np.sum(e[:, F:], axis=1, dtype=np.float32)
    assert_same(r1, want.reshape(P, 1))
    assert_same(r2, want.reshape(P, 1))
    assert_same(r3, np.zeros((P, 1), np.float32))
    assert_same(y[:, F:], e[:, F:])


@given(P=parts, F=odd_free, dt=float_dt, tgt=target)
def test_activation_reduce(P, F, dt, tgt):
    x = rand((P, F), dt, 4, -2, 2)

    def k(x):
        y = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        r = nl.ndarray((P, 1), "float32", buffer=nl.sbuf)
        nisa.activation_reduce(dst=y, op=nl.square, data=load(x), reduce_op=nl.add, reduce_res=r)
        return store(y), store(r)
    y, r = run(k, x, target=tgt)
    sq = np.square(f32(x))
    assert_same(y, rnd(sq, dt))
    assert_same(r, np.sum(sq, axis=1, keepdims=True, dtype=np.float32))


def test_activation_rules():
    x = rand((4, 8), "float32")
    L = Line()

    def k(x):
        t = load(x)
        L.mark(); nisa.activation(dst=t, op=nl.exp, data=t, bias=1.0)  # noqa: E702
        return store(t)
    expect_error(k, (x,), L, "activation-bias", "on NeuronCore-v2 bias must be a (4, 1) tile",
                 target="inf2")
    assert run(k, x, target="trn2").shape == (4, 8)      # v3+: scalar bias is fine

    def k2(x):
        t = load(x)
        b = nl.ndarray((4, 1), "float32", buffer=nl.sbuf)
        nisa.memset(dst=b, value=0.0)
        L.mark(); nisa.activation(dst=t, op=nl.reciprocal, data=t, bias=b)  # noqa: E702
        return store(t)
    expect_error(k2, (x,), L, "accepts no bias on NeuronCore-v2", target="inf2")

    def k3(x):
        t = load(x)
        L.mark(); nisa.activation(dst=t, op=nl.exp, data=t, reduce_op=nl.maximum, reduce_cmd=nisa.reduce_cmd.reset_reduce)  # noqa: E702,E501
        return store(t)
    expect_error(k3, (x,), L, "reduce_op=maximum is not supported", target="inf2")

    def k4(x):
        t = load(x)
        L.mark(); nisa.activation(dst=t, op=nl.exp, data=t, reduce_cmd=nisa.reduce_cmd.load_reduce)  # noqa: E702,E501
        return store(t)
    expect_error(k4, (x,), L, "load_reduce is not supported by activation")


@given(P=parts, F=odd_free, dt=float_dt, tgt=target,
       ops=st.sampled_from([("multiply", "add"), ("multiply", None), ("add", None)]))
def test_tensor_scalar_on_scalar_engine(P, F, dt, tgt, ops):
    x = rand((P, F), dt, 5)

    def k(x):
        out = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        nisa.tensor_scalar(dst=out, data=load(x), op0=getattr(nl, ops[0]), operand0=1.5,
                           op1=getattr(nl, ops[1]) if ops[1] else None, operand1=-0.25,
                           engine=nisa.engine.scalar)
        return store(out)
    y = f32(x) * np.float32(1.5) if ops[0] == "multiply" else f32(x) + np.float32(1.5)
    if ops[1]:
        y = y + np.float32(-0.25)
    assert_same(run(k, x, target=tgt), rnd(y, dt))


def test_tensor_scalar_engine_rules():
    x = rand((4, 8), "float32")
    L = Line()

    def k(x):
        t = load(x)
        L.mark(); nisa.tensor_scalar(dst=t, data=t, op0=nl.subtract, operand0=1.0, engine=nisa.engine.scalar)  # noqa: E702,E501
        return store(t)
    expect_error(k, (x,), L, "ScalarE tensor_scalar on trn2 supports only", target="trn2")

    def k2(x):
        t = load(x)
        L.mark(); nisa.tensor_scalar(dst=t, data=t, op0=nl.add, operand0=1.0, engine=nisa.engine.gpsimd)  # noqa: E702,E501
        return store(t)
    expect_error(k2, (x,), L, "GpSimd runs tensor_scalar only for op0=rsqrt")

    def k3(x):
        t = nl.ndarray((4, 8), "int32", buffer=nl.sbuf)
        nisa.memset(dst=t, value=3)
        L.mark(); nisa.tensor_scalar(dst=t, data=t, op0=nl.bitwise_and, operand0=1, engine=nisa.engine.gpsimd)  # noqa: E702,E501
        return store(t)
    expect_error(k3, (x,), L, "run on the Vector engine only")


@given(P=parts, F=odd_free, tgt=target)
def test_gpsimd_rsqrt(P, F, tgt):
    x = rand((P, F), "float32", 6, 0.5, 9)

    def k(x):
        t = load(x)
        nisa.tensor_scalar(dst=t, data=t, op0=nl.rsqrt, operand0=0.0, engine=nisa.engine.gpsimd)
        return store(t)
    assert_same(run(k, x, target=tgt), (1 / np.sqrt(x)).astype(np.float32))


@given(P=parts, F=odd_free, src=st.sampled_from(FLOATS + ["int32", "float8_e5m2"]),
       dst=st.sampled_from(FLOATS + ["int32"]), eng=st.sampled_from(["vector", "gpsimd", "scalar"]))
def test_tensor_copy_engines_on_trn2(P, F, src, dst, eng):
    x = rand((P, F), src, 7)

    def k(x):
        out = nl.ndarray((P, F), dst, buffer=nl.sbuf)
        nisa.tensor_copy(dst=out, src=load(x), engine=getattr(nisa.engine, eng))
        return store(out)
    got = run(k, x, target="trn2")
    assert_same(got, x if src == dst else rnd(f32(x), dst))


def test_tensor_copy_engine_rules():
    x = rand((4, 8), "float32")
    L = Line()

    def k(x):
        out = nl.ndarray((4, 8), "float32", buffer=nl.sbuf)
        L.mark(); nisa.tensor_copy(dst=out, src=load(x), engine=nisa.engine.scalar)  # noqa: E702
        return store(out)
    expect_error(k, (x,), L, "ScalarE cannot tensor_copy on NeuronCore-v2", target="inf2")

    def k2(x):
        p = nl.ndarray((4, 8), "float32", buffer=nl.psum)
        out = nl.ndarray((4, 8), "float32", buffer=nl.sbuf)
        L.mark(); nisa.tensor_copy(dst=out, src=p, engine=nisa.engine.gpsimd)  # noqa: E702
        return store(out)
    expect_error(k2, (x,), L, "GpSimd", "PSUM")


@given(P=parts, F=odd_free, dt=float_dt, tgt=target,
       op=st.sampled_from(["add", "subtract", "multiply", "maximum", "divide"]))
def test_tensor_tensor(P, F, dt, tgt, op):
    a, b = rand((P, F), dt, 8), rand((P, F), dt, 9, 0.5, 2)

    def k(a, b):
        out = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        nisa.tensor_tensor(dst=out, data1=load(a), data2=load(b), op=getattr(nl, op))
        return store(out)
    fn = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply,
          "maximum": np.maximum, "divide": np.divide}[op]
    assert_same(run(k, a, b, target=tgt), rnd(fn(f32(a), f32(b)), dt))


@given(P=parts, F=odd_free, dt=float_dt, tgt=target, neg=st.booleans(),
       op=st.sampled_from(["add", "maximum", "minimum"]))
def test_tensor_reduce(P, F, dt, tgt, neg, op):
    x = rand((P, 3, F), dt, 10)

    def k(x):
        out = nl.ndarray((P, 3), dt, buffer=nl.sbuf)
        nisa.tensor_reduce(dst=out, op=getattr(nl, op), data=load(x), axis=2, negate=neg)
        return store(out)
    xf = f32(x)
    r = np.sum(xf, axis=2, dtype=np.float32) if op == "add" else getattr(np, op[:3])(xf, axis=2)
    assert_same(run(k, x, target=tgt), rnd(-r if neg else r, dt))


def test_env_var_target_selects_the_generation(monkeypatch):
    x = rand((4, 8), "float32")
    b = np.zeros((4, 1), np.float32)

    def k(x, b):
        t, bb = load(x), load(b)
        nisa.range_select(dst=t, on_true_tile=t, comp_op0=nl.less, comp_op1=nl.less, bound0=bb,
                          bound1=bb)
        return store(t)
    import nki
    from device.errors import HardwareRuleError
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", "trn2")
    assert nki.jit(k)(x, b).shape == (4, 8)
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", "trn1")
    with pytest.raises(HardwareRuleError, match="NeuronCore-v3 and newer"):
        nki.jit(k)(x, b)
