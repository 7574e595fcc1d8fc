"""VectorE fused ops, scans, predicated copies and accumulator instructions vs NumPy."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from isa_helpers import (FLOATS, Line, assert_same, expect_error, f32, float_dt, load, odd_free,
                         parts, rand, rnd, run, store, target)


@given(P=parts, F=odd_free, dt=float_dt, tgt=target, rev0=st.booleans(), rev1=st.booleans())
def test_scalar_tensor_tensor(P, F, dt, tgt, rev0, rev1):
    a, b, c = rand((P, F), dt, 1), rand((P, F), dt, 2), rand((P, 1), "float32", 3)

    def k(a, b, c):
        out = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        nisa.scalar_tensor_tensor(dst=out, data=load(a), op0=nl.subtract, operand0=load(c),
                                  op1=nl.multiply, operand1=load(b), reverse0=rev0, reverse1=rev1)
        return store(out)
    t = (f32(c) - f32(a)) if rev0 else (f32(a) - f32(c))
    want = rnd(f32(b) * t if rev1 else t * f32(b), dt)
    assert_same(run(k, a, b, c, target=tgt), want)


def test_scalar_tensor_tensor_rejects_bitvec_and_two_psum():
    a = rand((4, 8), "int32")
    L = Line()

    def k(a):
        x = load(a)
        out = nl.ndarray((4, 8), "int32", buffer=nl.sbuf)
        L.mark(); nisa.scalar_tensor_tensor(dst=out, data=x, op0=nl.bitwise_and, operand0=3, op1=nl.add, operand1=x)  # noqa: E702,E501
        return store(out)
    expect_error(k, (a,), L, "alu-op-kind", "op0=bitwise_and is a bitvec op")

    def k2(a):
        p1 = nl.ndarray((4, 8), "float32", buffer=nl.psum)
        p2 = nl.ndarray((4, 8), "float32", buffer=nl.psum)
        out = nl.ndarray((4, 8), "float32", buffer=nl.sbuf)
        L.mark(); nisa.scalar_tensor_tensor(dst=out, data=p1, op0=nl.add, operand0=1.0, op1=nl.add, operand1=p2)  # noqa: E702,E501
        return store(out)
    expect_error(k2, (a,), L, "psum-two-inputs")


def _scan_ref(d0, d1, init, rev0=False, rev1=False):
    r = np.broadcast_to(np.float32(init), (d0.shape[0], 1)).reshape(-1).astype(np.float32)
    out = np.empty(d0.shape, np.float32)
    for k in range(d0.shape[1]):
        t = (r * d0[:, k]) if rev0 else (d0[:, k] * r)        # op0 multiply
        r = ((d1[:, k] + t) if rev1 else (t + d1[:, k])).astype(np.float32)   # op1 add
        out[:, k] = r
    return out


@given(P=parts, F=odd_free, dt=float_dt, tgt=target, tile_init=st.booleans())
def test_tensor_tensor_scan_is_sequential_fp32(P, F, dt, tgt, tile_init):
    d0, d1 = rand((P, F), dt, 4, 0.5, 1.0), rand((P, F), dt, 5)
    init = rand((P, 1), "float32", 6)

    def k(d0, d1, init):
        out = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        nisa.tensor_tensor_scan(dst=out, data0=load(d0), data1=load(d1),
                                initial=load(init) if tile_init else 0.25, op0=nl.multiply,
                                op1=nl.add)
        return store(out)
    ref = _scan_ref(f32(d0), f32(d1), init if tile_init else np.float32(0.25))
    assert_same(run(k, d0, d1, init, target=tgt), rnd(ref, dt))


def test_tensor_tensor_scan_cumsum_matches_sequential_sum():
    x = rand((3, 200), "float32", 7)

    def k(x):
        t = load(x)
        ones = nl.ndarray((3, 200), "float32", buffer=nl.sbuf)
        nisa.memset(dst=ones, value=1.0)
        out = nl.ndarray((3, 200), "float32", buffer=nl.sbuf)
        nisa.tensor_tensor_scan(dst=out, data0=ones, data1=t, initial=0.0, op0=nl.multiply, op1=nl.add)  # noqa: E501
        return store(out)
    want = np.zeros_like(x)
    acc = np.zeros(3, np.float32)
    for j in range(200):
        acc = (acc + x[:, j]).astype(np.float32)
        want[:, j] = acc
    assert_same(run(k, x), want)


def test_tensor_tensor_scan_rejects_bad_initial():
    x = rand((4, 8), "float32")
    L = Line()

    def k(x):
        t = load(x)
        out = nl.ndarray((4, 8), "float32", buffer=nl.sbuf)
        L.mark(); nisa.tensor_tensor_scan(dst=out, data0=t, data1=t, initial=t, op0=nl.add, op1=nl.add)  # noqa: E702,E501
        return store(out)
    expect_error(k, (x,), L, "scalar-operand", "'initial' must be a scalar or a (P, 1) tile")


@given(P=parts, F=odd_free, dt=st.sampled_from(FLOATS + ["int32", "uint8"]), tgt=target,
       rev=st.booleans(), scalar=st.booleans())
def test_tensor_copy_predicated(P, F, dt, tgt, rev, scalar):
    src, old = rand((P, F), dt, 8), rand((P, F), dt, 9)
    pred = (np.random.default_rng(10).random((P, F)) < 0.5).astype(np.uint8)

    def k(src, old, pred):
        d = load(old)
        nisa.tensor_copy_predicated(dst=d, src=3 if scalar else load(src), predicate=load(pred),
                                    reverse_pred=rev)
        return store(d)
    keep = (pred != 0) ^ rev
    new = np.full_like(src, 3) if scalar else src
    assert_same(run(k, src, old, pred, target=tgt), np.where(keep, new, old))


def test_tensor_copy_predicated_checks():
    x = rand((4, 8), "float32")
    p16 = np.ones((4, 8), np.int16)
    L = Line()

    def k(x, p):
        d = load(x)
        L.mark(); nisa.tensor_copy_predicated(dst=d, src=d, predicate=load(p))  # noqa: E702
        return store(d)
    expect_error(k, (x, p16), L, "dtype", "predicates must be")

    def k2(x):
        d = load(x)
        s = nl.ndarray((4, 8), "bfloat16", buffer=nl.sbuf)
        pr = nl.ndarray((4, 8), "uint8", buffer=nl.sbuf)
        L.mark(); nisa.tensor_copy_predicated(dst=d, src=s, predicate=pr)  # noqa: E702
        return store(d)
    expect_error(k2, (x,), L, "src dtype bfloat16 must equal dst dtype float32")


@given(P=parts, F=odd_free, dt=float_dt, tgt=target)
def test_reciprocal(P, F, dt, tgt):
    x = rand((P, F), dt, 11, 0.5, 8.0)

    def k(x):
        out = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        nisa.reciprocal(dst=out, data=load(x))
        return store(out)
    assert_same(run(k, x, target=tgt), rnd(np.float32(1) / f32(x), dt))


def test_reciprocal_shape_check():
    x = rand((4, 8), "float32")
    L = Line()

    def k(x):
        out = nl.ndarray((4, 9), "float32", buffer=nl.sbuf)
        L.mark(); nisa.reciprocal(dst=out, data=load(x))  # noqa: E702
        return store(out)
    expect_error(k, (x,), L, "shape-mismatch")


_RED = {"add": np.sum, "maximum": np.max, "minimum": np.min, "multiply": np.prod}


@given(P=parts, F=odd_free, dt=float_dt, tgt=target,
       rop=st.sampled_from(["add", "maximum", "minimum", "multiply"]), neg=st.booleans())
def test_tensor_scalar_reduce(P, F, dt, tgt, rop, neg):
    x = rand((P, F), dt, 12, 0.5, 1.5)

    def k(x):
        out = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        rr = nl.ndarray((P, 1), "float32", buffer=nl.sbuf)
        nisa.tensor_scalar_reduce(dst=out, data=load(x), op0=nl.multiply, operand0=1.5,
                                  reduce_op=getattr(nl, rop), reduce_res=rr,
                                  reduce_res_negate=neg)
        return store(out), store(rr)
    y = f32(x) * np.float32(1.5)
    red = _RED[rop](y, axis=1, keepdims=True, dtype=np.float32) if rop in ("add", "multiply") \
        else _RED[rop](y, axis=1, keepdims=True)
    got_y, got_r = run(k, x, target=tgt)
    assert_same(got_y, rnd(y, dt))
    assert_same(got_r, -red if neg else red)


def test_tensor_scalar_reduce_chains_through_the_vector_registers():
    x = rand((8, 16), "float32", 13)

    def k(x):
        t = load(x)
        a = nl.ndarray((8, 16), "float32", buffer=nl.sbuf)
        rr = nl.ndarray((8, 1), "float32", buffer=nl.sbuf)
        nisa.tensor_scalar_reduce(dst=a[:, 0:8], data=t[:, 0:8], op0=nl.add, operand0=0.0, reduce_op=nl.add)  # noqa: E501
        nisa.tensor_scalar_reduce(dst=a[:, 8:16], data=t[:, 8:16], op0=nl.add, operand0=0.0, reduce_op=nl.add, reduce_res=rr, reduce_cmd=nisa.reduce_cmd.reduce)  # noqa: E501
        init = nl.ndarray((8, 1), "float32", buffer=nl.sbuf)
        nisa.memset(dst=init, value=100.0)
        r2 = nl.ndarray((8, 1), "float32", buffer=nl.sbuf)
        nisa.tensor_scalar_reduce(dst=a[:, 0:8], data=t[:, 0:8], op0=nl.add, operand0=0.0, reduce_op=nl.add, reduce_res=r2, reduce_cmd=nisa.reduce_cmd.load_reduce, reduce_init=init)  # noqa: E501
        return store(rr), store(r2)
    rr, r2 = run(k, x)
    s1 = np.sum(x[:, :8], axis=1, dtype=np.float32)
    s2 = np.sum(x[:, 8:], axis=1, dtype=np.float32)
    assert_same(rr, (s1 + s2).reshape(8, 1))
    assert_same(r2, (np.float32(100) + s1).reshape(8, 1))


def test_tensor_scalar_reduce_checks():
    x = rand((4, 8), "float32")
    L = Line()

    def k(x):
        t = load(x)
        L.mark(); nisa.tensor_scalar_reduce(dst=t, data=t, op0=nl.add, operand0=1.0, reduce_op=nl.add, reverse0=True)  # noqa: E702,E501
        return store(t)
    expect_error(k, (x,), L, "reverse0=True is not supported yet")

    def k2(x):
        t = load(x)
        L.mark(); nisa.tensor_scalar_reduce(dst=t, data=t, op0=nl.add, operand0=1.0, reduce_op=nl.subtract)  # noqa: E702,E501
        return store(t)
    expect_error(k2, (x,), L, "reduce_op=subtract is not supported")

    def k3(x):
        t = load(x)
        L.mark(); nisa.tensor_scalar_reduce(dst=t, data=t, op0=nl.add, operand0=1.0, reduce_op=nl.add, reduce_cmd=nisa.reduce_cmd.load_reduce)  # noqa: E702,E501
        return store(t)
    expect_error(k3, (x,), L, "reduce_init must be given exactly when reduce_cmd is load_reduce")

    def k4(x):
        t = load(x)
        rr = nl.ndarray((4, 2), "float32", buffer=nl.sbuf)
        L.mark(); nisa.tensor_scalar_reduce(dst=t, data=t, op0=nl.add, operand0=1.0, reduce_op=nl.add, reduce_res=rr)  # noqa: E702,E501
        return store(t)
    expect_error(k4, (x,), L, "operand 'reduce_res' must have shape (4, 1)")


@given(P=parts, F=odd_free, dt=st.sampled_from(FLOATS + ["int16"]), tgt=target,
       op1=st.sampled_from(["add", "maximum", "minimum", "multiply", "subtract"]))
def test_tensor_scalar_cumulative(P, F, dt, tgt, op1):
    x = rand((P, F), dt, 14, 0.9, 1.1) if dt != "int16" else rand((P, F), dt, 14)

    def k(x):
        out = nl.ndarray((P, F), "float32", buffer=nl.sbuf)
        nisa.tensor_scalar_cumulative(dst=out, src=load(x), op0=nl.multiply, op1=getattr(nl, op1),
                                      imm0=0.5)
        return store(out)
    y = f32(x) * np.float32(0.5)
    reg = np.full(P, {"add": 0, "subtract": 0, "multiply": 1, "maximum": -np.inf,
                      "minimum": np.inf}[op1], np.float32)
    fn = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "maximum": np.maximum,
          "minimum": np.minimum}[op1]
    want = np.empty_like(y)
    for j in range(F):
        reg = fn(y[:, j], reg).astype(np.float32)
        want[:, j] = reg
    assert_same(run(k, x, target=tgt), want)


def test_tensor_scalar_cumulative_load_reduce_and_checks():
    x = rand((4, 8), "float32", 15)

    def k(x):
        out = nl.ndarray((4, 8), "float32", buffer=nl.sbuf)
        nisa.tensor_scalar_cumulative(dst=out, src=load(x), op0=nl.add, op1=nl.add, imm0=0.0, imm1=10.0, reduce_cmd=nisa.reduce_cmd.load_reduce)  # noqa: E501
        return store(out)
    seq = np.concatenate([np.full((4, 1), 10, np.float32), x], axis=1)
    assert_same(run(k, x), np.cumsum(seq, axis=1, dtype=np.float32)[:, 1:])
    L = Line()

    def k2(x):
        t = nl.ndarray((4, 8), "int32", buffer=nl.sbuf)
        L.mark(); nisa.tensor_scalar_cumulative(dst=t, src=t, op0=nl.add, op1=nl.add, imm0=0.0)  # noqa: E702,E501
        return store(t)
    expect_error(k2, (x,), L, "int32/uint32 are not supported")

    def k3(x):
        t = load(x)
        L.mark(); nisa.tensor_scalar_cumulative(dst=t, src=t, op0=nl.add, op1=nl.divide, imm0=0.0)  # noqa: E702,E501
        return store(t)
    expect_error(k3, (x,), L, "op1=divide is not supported")


@given(P=parts, F=odd_free, dt=st.sampled_from(FLOATS + ["int16"]), tgt=target, rev=st.booleans(),
       tile_false=st.booleans())
def test_select_reduce(P, F, dt, tgt, rev, tile_false):
    x = rand((P, F), dt, 16)
    fv = rand((P, 1), "float32", 17)
    pred = (np.random.default_rng(18).random((P, F)) < 0.5).astype(np.int8)

    def k(x, fv, pred):
        out = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        rr = nl.ndarray((P, 1), "float32", buffer=nl.sbuf)
        nisa.select_reduce(dst=out, predicate=load(pred), on_true=load(x),
                           on_false=load(fv) if tile_false else -2.0, reduce_res=rr,
                           reduce_cmd=nisa.reduce_cmd.reset_reduce, reverse_pred=rev)
        return store(out), store(rr)
    keep = (pred != 0) ^ rev
    y = np.where(keep, f32(x), fv if tile_false else np.float32(-2.0)).astype(np.float32)
    got, red = run(k, x, fv, pred, target=tgt)
    assert_same(got, rnd(y, dt))
    assert_same(red, np.max(y, axis=1, keepdims=True))


def test_select_reduce_checks():
    x = rand((4, 8), "float32")
    L = Line()

    def k(x):
        t = load(x)
        p = nl.ndarray((4, 8), "int32", buffer=nl.sbuf)
        L.mark(); nisa.select_reduce(dst=t, predicate=p, on_true=t, on_false=0.0)  # noqa: E702
        return store(t)
    expect_error(k, (x,), L, "predicates must be")

    def k2(x):
        t = nl.ndarray((4, 8), "int32", buffer=nl.sbuf)
        p = nl.ndarray((4, 8), "int8", buffer=nl.sbuf)
        L.mark(); nisa.select_reduce(dst=t, predicate=p, on_true=t, on_false=0.0)  # noqa: E702
        return store(t)
    expect_error(k2, (x,), L, "on_true dtype int32 is not supported")

    def k3(x):
        t = load(x)
        p = nl.ndarray((4, 8), "int8", buffer=nl.sbuf)
        L.mark(); nisa.select_reduce(dst=t, predicate=p, on_true=t, on_false=0.0, reduce_op=nl.add)  # noqa: E702,E501
        return store(t)
    expect_error(k3, (x,), L, "reduce_op=add is not supported")


@given(P=parts, F=odd_free, dt=float_dt, start=st.integers(0, 50))
def test_range_select_on_trn2(P, F, dt, start):
    x = rand((P, F), dt, 19)
    b0 = np.random.default_rng(20).integers(0, 60, (P, 1)).astype(np.float32)
    b1 = b0 + 10

    def k(x, b0, b1):
        out = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        rr = nl.ndarray((P, 1), "float32", buffer=nl.sbuf)
        nisa.range_select(dst=out, on_true_tile=load(x), comp_op0=nl.greater_equal,
                          comp_op1=nl.less, bound0=load(b0), bound1=load(b1), reduce_res=rr,
                          range_start=start)
        return store(out), store(rr)
    idx = (start + np.arange(F, dtype=np.float32)).reshape(1, -1)
    y = np.where((idx >= b0) & (idx < b1), f32(x), np.float32(-3.4028235e38)).astype(np.float32)
    got, red = run(k, x, b0, b1, target="trn2")
    with np.errstate(over="ignore"):
        assert_same(got, rnd(y, dt))
    assert_same(red, np.max(y, axis=1, keepdims=True))


def test_range_select_is_v3_only_and_checks_on_false():
    x, b = rand((4, 8), "float32"), np.zeros((4, 1), np.float32)
    L = Line()

    def k(x, b):
        t, bb = load(x), load(b)
        L.mark(); nisa.range_select(dst=t, on_true_tile=t, comp_op0=nl.less, comp_op1=nl.less, bound0=bb, bound1=bb)  # noqa: E702,E501
        return store(t)
    expect_error(k, (x, b), L, "generation", "NeuronCore-v3 and newer", target="inf2")

    def k2(x, b):
        t, bb = load(x), load(b)
        L.mark(); nisa.range_select(dst=t, on_true_tile=t, comp_op0=nl.less, comp_op1=nl.less, bound0=bb, bound1=bb, on_false_value=0.0)  # noqa: E702,E501
        return store(t)
    expect_error(k2, (x, b), L, "on_false_value must be FP32_MIN", target="trn2")

    def k3(x, b):
        t, bb = load(x), load(b)
        L.mark(); nisa.range_select(dst=t, on_true_tile=t, comp_op0=nl.add, comp_op1=nl.less, bound0=bb, bound1=bb)  # noqa: E702,E501
        return store(t)
    expect_error(k3, (x, b), L, "comp_op0=add is not supported", target="trn2")


@given(P=parts, F=odd_free, dt=float_dt)
def test_exponential_on_trn3(P, F, dt):
    x = rand((P, F), dt, 21)
    m = rand((P, 1), "float32", 22)

    def k(x, m):
        out = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        rr = nl.ndarray((P, 1), "float32", buffer=nl.sbuf)
        nisa.exponential(dst=out, src=load(x), max_value=load(m), reduce_res=rr,
                         reduce_cmd=nisa.reduce_cmd.reset_reduce)
        return store(out), store(rr)
    y = np.exp(f32(x) - m).astype(np.float32)
    got, red = run(k, x, m, target="trn3")
    assert_same(got, rnd(y, dt))
    assert_same(red, np.sum(y, axis=1, keepdims=True, dtype=np.float32))


def test_exponential_needs_gen4():
    x = rand((4, 8), "float32")
    L = Line()

    def k(x):
        t = load(x)
        L.mark(); nisa.exponential(dst=t, src=t)  # noqa: E702
        return store(t)
    for tgt in ("inf2", "trn2"):
        expect_error(k, (x,), L, "generation", "NeuronCore-v4", target=tgt)


def test_raw_int_enum_is_rejected():
    x = rand((4, 8), "float32")

    def k(x):
        t = load(x)
        nisa.exponential(dst=t, src=t, reduce_cmd=3)
        return store(t)
    import pytest
    from device.errors import UserKernelError
    with pytest.raises(UserKernelError, match="reduce_cmd must be an nisa.reduce_cmd value"):
        run(k, x, target="trn3")
