"""DMA: indirect dma_copy with oob_mode, dma_transpose, dma_compute vs NumPy."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from isa_helpers import (FLOATS, Line, assert_same, expect_error, f32, load, rand, rnd, run, store,
                         target)


@given(R=st.integers(1, 40), P=st.integers(1, 64), F=st.integers(1, 33),
       dt=st.sampled_from(FLOATS), tgt=target, skip=st.booleans(), seed=st.integers(0, 50))
def test_indirect_gather_with_oob_skip(R, P, F, dt, tgt, skip, seed):
    table = rand((R, F), dt, seed)
    hi = R + (4 if skip else 0)
    idx = np.random.default_rng(seed).integers(0, hi, (P, 1)).astype(np.int32)
    fill = rand((P, F), dt, seed + 1)

    def k(table, idx, fill):
        ix = load(idx)
        d = load(fill)
        nisa.dma_copy(dst=d, src=table.ap([[F, P], [1, F]], vector_offset=ix, indirect_dim=0),
                      oob_mode=nisa.oob_mode.skip if skip else nisa.oob_mode.error)
        return store(d)
    want = fill.copy()
    ok = idx[:, 0] < R
    want[ok] = table[idx[ok, 0]]
    assert_same(run(k, table, idx, fill, target=tgt), want)


def test_indirect_gather_out_of_bounds_raises_by_default():
    table, idx = rand((4, 3), "float32"), np.array([[1], [9]], np.int32)
    L = Line()

    def k(table, idx):
        d = nl.ndarray((2, 3), "float32", buffer=nl.sbuf)
        L.mark(); nisa.dma_copy(dst=d, src=table.ap([[3, 2], [1, 3]], vector_offset=load(idx), indirect_dim=0))  # noqa: E702,E501
        return store(d)
    expect_error(k, (table, idx), L, "access-out-of-bound")


@given(R=st.integers(2, 30), P=st.integers(1, 32), F=st.integers(1, 17), skip=st.booleans(),
       seed=st.integers(0, 50))
def test_indirect_scatter_with_oob_skip(R, P, F, skip, seed):
    base = rand((R, F), "float32", seed)
    src = rand((P, F), "float32", seed + 1)
    r = np.random.default_rng(seed)
    idx = r.integers(0, R + (5 if skip else 0), (P, 1)).astype(np.int32)

    def k(base, src, idx):
        out = nl.ndarray((R, F), "float32", buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=base)
        nisa.dma_copy(dst=out.ap([[F, P], [1, F]], vector_offset=load(idx), indirect_dim=0),
                      src=load(src), oob_mode=nisa.oob_mode.skip if skip else nisa.oob_mode.error)
        return out
    want = base.copy()
    for p in range(P):                       # in order: a repeated index keeps the last row
        if idx[p, 0] < R:
            want[idx[p, 0]] = src[p]
    assert_same(run(k, base, src, idx), want)


@given(n=st.integers(0, 6), skip=st.booleans())
def test_scalar_offset_copy_and_skip(n, skip):
    A = rand((4, 5), "float32", 3)
    off = np.array([[n]], np.int32)

    def k(A, off):
        d = nl.ndarray((1, 5), "float32", buffer=nl.sbuf)
        nisa.memset(dst=d, value=-1.0)
        nisa.dma_copy(dst=d, src=A.ap([[5, 1], [1, 5]], scalar_offset=load(off), indirect_dim=0),
                      oob_mode=nisa.oob_mode.skip if skip else nisa.oob_mode.error)
        return store(d)
    if n < 4:
        assert_same(run(k, A, off), A[n:n + 1])
    elif skip:
        assert_same(run(k, A, off), np.full((1, 5), -1.0, np.float32))
    else:
        from device.errors import HardwareRuleError
        import pytest
        with pytest.raises(HardwareRuleError, match="access-out-of-bound"):
            run(k, A, off)


@given(shape=st.sampled_from([(16, 8), (5, 7), (3, 4, 6), (2, 3, 4, 5)]),
       dt=st.sampled_from(FLOATS + ["int8"]), tgt=target, from_sbuf=st.booleans())
def test_dma_transpose(shape, dt, tgt, from_sbuf):
    x = rand(shape, dt, 4)
    axes = {2: (1, 0), 3: (2, 1, 0), 4: (3, 1, 2, 0)}[len(shape)]

    def k(x):
        src = load(x) if from_sbuf else x
        out = nl.ndarray(tuple(shape[a] for a in axes), dt, buffer=nl.sbuf)
        nisa.dma_transpose(dst=out, src=src)
        return store(out)
    assert_same(run(k, x, target=tgt), np.ascontiguousarray(np.transpose(x, axes)))


def test_dma_transpose_checks():
    x = rand((16, 8), "float32")
    L = Line()

    def k(x):
        out = nl.ndarray((16, 8), "float32", buffer=nl.sbuf)
        L.mark(); nisa.dma_transpose(dst=out, src=x)  # noqa: E702
        return store(out)
    expect_error(k, (x,), L, "must equal the permuted src shape [8, 16]")

    def k2(x):
        out = nl.ndarray((8, 16), "float32", buffer=nl.sbuf)
        L.mark(); nisa.dma_transpose(dst=out, src=x, dge_mode=nisa.dge_mode.hwdge)  # noqa: E702
        return store(out)
    expect_error(k2, (x,), L, "hwdge transpose needs a 2-byte dtype", target="trn2")
    expect_error(k2, (x,), L, "generation", target="inf2")

    def k3(x):
        out = nl.ndarray((8, 16), "float32", buffer=nl.sbuf)
        L.mark(); nisa.dma_transpose(dst=out, src=x, axes=(0, 1))  # noqa: E702
        return store(out)
    expect_error(k3, (x,), L, "axes (0, 1) are not supported")


@given(n=st.integers(1, 5), P=st.integers(1, 64), F=st.integers(1, 33),
       dt=st.sampled_from(FLOATS), tgt=target)
def test_dma_compute_sum(n, P, F, dt, tgt):
    xs = [rand((P, F), dt, 10 + j) for j in range(5)]

    def k(a, b, c, d, e):
        srcs = [a, b, c, d, e][:n]
        out = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        nisa.dma_compute(dst=out, srcs=[load(x) if j % 2 else x for j, x in enumerate(srcs)],
                         reduce_op=nl.add)
        return store(out)
    acc = np.zeros((P, F), np.float32)
    for x in xs[:n]:
        acc = acc + f32(x)
    assert_same(run(k, *xs, target=tgt), rnd(acc, dt))


def test_dma_compute_scatter_add():
    base = rand((6, 4), "float32", 20)
    upd = rand((3, 4), "float32", 21)
    idx = np.array([[4], [0], [2]], np.int32)

    def k(base, upd, idx):
        out = nl.ndarray((6, 4), "float32", buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=base)
        rows = out.ap([[4, 3], [1, 4]], vector_offset=load(idx), indirect_dim=0)
        nisa.dma_compute(dst=rows, srcs=[rows, load(upd)], reduce_op=nl.add)
        return out
    want = base.copy()
    want[idx[:, 0]] += upd
    assert_same(run(k, base, upd, idx), want)


def test_dma_compute_checks():
    x = rand((4, 8), "float32")
    L = Line()

    def k(x):
        out = nl.ndarray((4, 8), "float32", buffer=nl.sbuf)
        L.mark(); nisa.dma_compute(dst=out, srcs=[x, x], reduce_op=nl.multiply)  # noqa: E702
        return store(out)
    expect_error(k, (x,), L, "reduce_op=multiply is not supported")

    def k2(x):
        out = nl.ndarray((4, 8), "float32", buffer=nl.sbuf)
        L.mark(); nisa.dma_compute(dst=out, srcs=[x, x], reduce_op=nl.add, scales=[1.0, 2.0])  # noqa: E702,E501
        return store(out)
    expect_error(k2, (x,), L, "must all be 1.0")

    def k3(x):
        out = nl.ndarray((4, 8), "float32", buffer=nl.sbuf)
        L.mark(); nisa.dma_compute(dst=out, srcs=[x] * 17, reduce_op=nl.add)  # noqa: E702
        return store(out)
    expect_error(k3, (x,), L, "17 sources exceed the limit of 16")


def test_dma_copy_priority_is_v4_only():
    x = rand((4, 8), "float32")
    L = Line()

    def k(x):
        t = nl.ndarray((4, 8), "float32", buffer=nl.sbuf)
        L.mark(); nisa.dma_copy(dst=t, src=x, priority=1)  # noqa: E702
        return store(t)
    expect_error(k, (x,), L, "priority=1 needs NeuronCore-v4", target="trn2")
    assert_same(run(k, x, target="trn3"), x)
