"""GpSimd instructions (partition reduce, iota, affine_select, gathers, topk) vs NumPy."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from isa_helpers import (FLOATS, Line, assert_same, expect_error, f32, float_dt, load, odd_free,
                         parts, rand, rnd, run, store, target)


@given(P=parts, F=odd_free, dt=float_dt, tgt=target,
       op=st.sampled_from(["add", "average", "maximum"]))
def test_tensor_partition_reduce(P, F, dt, tgt, op):
    x = rand((P, 2, F), dt, 1)

    def k(x):
        out = nl.ndarray((1, 2, F), dt, buffer=nl.sbuf)
        nisa.tensor_partition_reduce(dst=out, op=getattr(nl, op), data=load(x))
        return store(out)
    xf = f32(x)
    if op == "maximum":
        want = xf.max(axis=0, keepdims=True)
    else:
        want = np.sum(xf, axis=0, keepdims=True, dtype=np.float32)
        if op == "average":
            want = want / np.float32(P)
    assert_same(run(k, x, target=tgt), rnd(want, dt))


@given(P=parts, F=odd_free, dt=st.sampled_from(["int32", "uint16", "int8"]),
       op=st.sampled_from(["bitwise_or", "bitwise_and"]))
def test_tensor_partition_reduce_bitwise(P, F, dt, op):
    x = rand((P, F), dt, 2)

    def k(x):
        out = nl.ndarray((1, F), dt, buffer=nl.sbuf)
        nisa.tensor_partition_reduce(dst=out, op=getattr(nl, op), data=load(x))
        return store(out)
    want = getattr(np, op).reduce(x, axis=0, keepdims=True)
    assert_same(run(k, x), want)


def test_tensor_partition_reduce_checks():
    x = rand((8, 4), "float32")
    L = Line()

    def k(x):
        out = nl.ndarray((1, 4), "float32", buffer=nl.sbuf)
        L.mark(); nisa.tensor_partition_reduce(dst=out, op=nl.multiply, data=load(x))  # noqa: E702
        return store(out)
    expect_error(k, (x,), L, "op=multiply is not supported")

    def k2(x):
        p = nl.ndarray((8, 4), "float32", buffer=nl.psum)
        out = nl.ndarray((1, 4), "float32", buffer=nl.sbuf)
        L.mark(); nisa.tensor_partition_reduce(dst=out, op=nl.add, data=p)  # noqa: E702
        return store(out)
    expect_error(k2, (x,), L, "buffer", "PSUM")

    def k3(x):
        out = nl.ndarray((2, 4), "float32", buffer=nl.sbuf)
        L.mark(); nisa.tensor_partition_reduce(dst=out, op=nl.add, data=load(x))  # noqa: E702
        return store(out)
    expect_error(k3, (x,), L, "dst must have 1 partition")


@given(P=parts, a=st.integers(1, 5), b=st.integers(1, 7), dt=st.sampled_from(["int32", "float32",
                                                                             "bfloat16"]),
       off=st.integers(-50, 50), cm=st.integers(-3, 3))
def test_iota(P, a, b, dt, off, cm):
    def k():
        out = nl.ndarray((P, a, b), dt, buffer=nl.sbuf)
        nisa.iota(dst=out, pattern=[[b * 3, a], [2, b]], offset=off, channel_multiplier=cm)
        return store(out)
    want = (off + cm * np.arange(P)[:, None, None] + 3 * b * np.arange(a)[None, :, None]
            + 2 * np.arange(b)[None, None, :])
    assert_same(run(k), rnd(want, dt) if dt != "int32" else want.astype(np.int32))


def test_iota_writes_sbuf_only():
    L = Line()

    def k():
        out = nl.ndarray((4, 4), "float32", buffer=nl.psum)
        L.mark(); nisa.iota(dst=out, pattern=[[1, 4]])  # noqa: E702
        return out
    expect_error(k, (), L, "buffer", "needs it in SBUF")


@given(P=parts, F=odd_free, dt=float_dt, tgt=target,
       cmp=st.sampled_from(["greater_equal", "equal", "less"]), off=st.integers(-10, 10))
def test_affine_select_causal_mask(P, F, dt, tgt, cmp, off):
    x = rand((P, F), dt, 3)

    def k(x):
        out = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        nisa.affine_select(dst=out, pattern=[[-1, F]], channel_multiplier=1, on_true_tile=load(x),
                           on_false_value=-9984.0, cmp_op=getattr(nl, cmp), offset=off)
        return store(out)
    v = off + np.arange(P)[:, None] - np.arange(F)[None, :]
    pred = {"greater_equal": v >= 0, "equal": v == 0, "less": v < 0}[cmp]
    assert_same(run(k, x, target=tgt), rnd(np.where(pred, f32(x), -9984.0), dt))


def test_affine_select_checks():
    x = rand((4, 8), "float32")
    L = Line()

    def k(x):
        out = nl.ndarray((4, 8), "float32", buffer=nl.sbuf)
        L.mark(); nisa.affine_select(dst=out, pattern=[[1, 7]], channel_multiplier=0, on_true_tile=load(x), on_false_value=0.0)  # noqa: E702,E501
        return store(out)
    expect_error(k, (x,), L, "pattern [[1, 7]] generates 7 elements per partition but dst has 8")


@given(cores=st.integers(1, 8), E=st.sampled_from([1, 2, 4]), ncols=st.integers(1, 4),
       dt=st.sampled_from(FLOATS + ["int32"]), data=st.data())
def test_local_gather(cores, E, ncols, dt, data):
    P, W = 16 * cores, 40
    src = rand((P, W), dt, 4)
    nvalid = data.draw(st.integers(1, 16 * ncols))
    idx = np.random.default_rng(5).integers(0, W - E + 1, (P, ncols)).astype(np.uint16)

    def k(src, idx):
        out = nl.ndarray((P, nvalid * E), dt, buffer=nl.sbuf)
        nisa.local_gather(dst=out, src_buffer=load(src), index=load(idx), num_elem_per_idx=E,
                          num_valid_indices=nvalid)
        return store(out)
    want = np.empty((P, nvalid * E), src.dtype)
    for c in range(cores):
        flat = idx[c * 16:(c + 1) * 16].flatten(order="F")[:nvalid].astype(np.int64)
        cols = (flat[:, None] + np.arange(E)).reshape(-1)
        want[c * 16:(c + 1) * 16] = src[c * 16:(c + 1) * 16][:, cols]
    assert_same(run(k, src, idx), want)


def test_local_gather_checks():
    src, idx = rand((20, 8), "float32"), np.zeros((20, 1), np.uint16)
    L = Line()

    def k(src, idx):
        out = nl.ndarray((20, 16), "float32", buffer=nl.sbuf)
        L.mark(); nisa.local_gather(dst=out, src_buffer=load(src), index=load(idx))  # noqa: E702
        return store(out)
    expect_error(k, (src, idx), L, "needs a multiple of 16")

    def k2(src, idx):
        out = nl.ndarray((16, 48), "float32", buffer=nl.sbuf)
        L.mark(); nisa.local_gather(dst=out, src_buffer=load(src)[0:16], index=load(idx)[0:16], num_elem_per_idx=3)  # noqa: E702,E501
        return store(out)
    expect_error(k2, (src, idx), L, "num_elem_per_idx=3 must be one of")


@given(P=parts, F=odd_free, n=st.integers(1, 40), dt=st.sampled_from(FLOATS + ["int16"]),
       tgt=target)
def test_nc_n_gather(P, F, n, dt, tgt):
    x = rand((P, F), dt, 6)
    idx = np.random.default_rng(7).integers(0, F, (P, n)).astype(np.uint32)

    def k(x, idx):
        out = nl.ndarray((P, n), dt, buffer=nl.sbuf)
        nisa.nc_n_gather(dst=out, data=load(x), indices=load(idx))
        return store(out)
    assert_same(run(k, x, idx, target=tgt), np.take_along_axis(x, idx.astype(np.int64), axis=1))


def test_nc_n_gather_checks():
    x, idx = rand((4, 8), "float32"), np.zeros((4, 3), np.int32)
    L = Line()

    def k(x, idx):
        out = nl.ndarray((4, 3), "float32", buffer=nl.sbuf)
        L.mark(); nisa.nc_n_gather(dst=out, data=load(x), indices=load(idx))  # noqa: E702
        return store(out)
    expect_error(k, (x, idx), L, "nc_n_gather indices must be")
    big = np.full((4, 3), 8, np.uint32)

    def k2(x, idx):
        out = nl.ndarray((4, 3), "float32", buffer=nl.sbuf)
        L.mark(); nisa.nc_n_gather(dst=out, data=load(x), indices=load(idx))  # noqa: E702
        return store(out)
    expect_error(k2, (x, big), L, "access-out-of-bound", "index 8")


@given(groups=st.integers(1, 8), n=st.integers(8, 100), srt=st.booleans(), data=st.data())
def test_topk(groups, n, srt, data):
    # results in the snake layout of the input (NKI 2.33): result j at partition j % 16,
    # column j // 16; descending when sorted=True, else ascending (as the SDK simulator)
    P = 16 * groups
    K = data.draw(st.integers(1, n))
    cols, kc = -(-n // 16), -(-K // 16)
    src = rand((P, cols), "bfloat16", 8, -50, 50)

    def k(src):
        v = nl.ndarray((P, K), "bfloat16", buffer=nl.sbuf)
        ix = nl.ndarray((P, K), "uint32", buffer=nl.sbuf)
        nisa.memset(dst=v, value=7.0)
        nisa.memset(dst=ix, value=7)
        nisa.topk(val_dst=v, idx_dst=ix, src=load(src), n=n, sorted=srt)
        return store(v), store(ix)
    v, ix = run(k, src, target="trn2")
    e, j = np.arange(n), np.arange(K)
    for g in range(groups):
        snake = f32(src)[g * 16 + e % 16, e // 16]
        top = np.argsort(-snake, kind="stable")[:K]
        top = top if srt else top[::-1]
        rows = g * 16 + j % 16
        assert (f32(v)[rows, j // 16] == snake[top]).all()
        assert (ix[rows, j // 16] == top).all()
        tail = np.arange(K % 16, 16) if K % 16 else np.arange(0)
        assert np.isnan(f32(v)[g * 16 + tail, kc - 1]).all()         # whole last column written
        assert (ix[g * 16 + tail, kc - 1] == 0xFFFFFFFF).all()
        assert (f32(v)[g * 16:(g + 1) * 16, kc:] == 7).all()            # later columns untouched
        assert (ix[g * 16:(g + 1) * 16, kc:] == 7).all()


def test_topk_checks():
    src = rand((16, 4), "float32")
    L = Line()

    def k(src):
        v = nl.ndarray((16, 8), "bfloat16", buffer=nl.sbuf)
        ix = nl.ndarray((16, 8), "uint32", buffer=nl.sbuf)
        L.mark(); nisa.topk(val_dst=v, idx_dst=ix, src=load(src), n=60)  # noqa: E702
        return store(v)
    expect_error(k, (src,), L, "topk src must be")

    def k2(src):
        s = load(src, "bfloat16")
        v = nl.ndarray((16, 8), "bfloat16", buffer=nl.sbuf)
        ix = nl.ndarray((16, 8), "uint32", buffer=nl.sbuf)
        L.mark(); nisa.topk(val_dst=v, idx_dst=ix, src=s, n=100)  # noqa: E702
        return store(v)
    expect_error(k2, (src,), L, "an n=100 snake needs 7")


@given(P=parts, F=odd_free, dt=st.sampled_from(FLOATS + ["int32", "float8_e4m3"]), tgt=target,
       eng=st.sampled_from(["vector", "gpsimd"]))
def test_memset(P, F, dt, tgt, eng):
    val = 3 if dt == "int32" else 1.375

    def k():
        out = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        nisa.memset(dst=out, value=val, engine=getattr(nisa.engine, eng))
        return store(out)
    assert_same(run(k, target=tgt), rnd(np.full((P, F), val, np.float32), dt)
                if dt != "int32" else np.full((P, F), val, np.int32))
