"""bn_stats/bn_aggr, max8/nc_find_index8/nc_match_replace8, nc_stream_shuffle, dropout vs NumPy."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from isa_helpers import (FLOATS, Line, assert_same, expect_error, f32, float_dt, load, odd_free,
                         parts, rand, rnd, run, store, target)


def _stats_ref(x):
    out = []
    for part in (x[:, 0::2], x[:, 1::2]):
        n = part.shape[1]
        if n == 0:
            out += [np.zeros(x.shape[0], np.float32)] * 3
            continue
        m = np.mean(part, axis=1, dtype=np.float32)
        out += [np.full(x.shape[0], n, np.float32), m,
                np.sum(np.square(part - m[:, None]), axis=1, dtype=np.float32)]
    return np.stack(out, axis=1)


@given(P=parts, F=odd_free, dt=float_dt, tgt=target, chunks=st.integers(1, 3))
def test_bn_stats_then_bn_aggr_give_mean_and_variance(P, F, dt, tgt, chunks):
    x = rand((P, chunks * F), dt, 1)

    def k(x):
        t = load(x)
        stats = nl.ndarray((P, 6 * chunks), "float32", buffer=nl.sbuf)
        for c in range(chunks):
            nisa.bn_stats(dst=stats[:, 6 * c:6 * (c + 1)], data=t[:, c * F:(c + 1) * F])
        mv = nl.ndarray((P, 2), "float32", buffer=nl.sbuf)
        nisa.bn_aggr(dst=mv, data=stats)
        return store(stats), store(mv)
    stats, mv = run(k, x, target=tgt)
    xf = f32(x)
    assert_same(stats, np.concatenate([_stats_ref(xf[:, c * F:(c + 1) * F])
                                       for c in range(chunks)], axis=1))
    np.testing.assert_allclose(mv[:, 0], xf.mean(axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mv[:, 1], xf.var(axis=1), rtol=1e-4, atol=1e-5)


def test_bn_stats_and_bn_aggr_checks():
    x = rand((4, 513), "float32")
    L = Line()

    def k(x):
        s = nl.ndarray((4, 6), "float32", buffer=nl.sbuf)
        L.mark(); nisa.bn_stats(dst=s, data=load(x))  # noqa: E702
        return store(s)
    expect_error(k, (x,), L, "free-size-limit", "bn_stats_fmax=512")

    def k2(x):
        s = nl.ndarray((4, 5), "float32", buffer=nl.sbuf)
        m = nl.ndarray((4, 2), "float32", buffer=nl.sbuf)
        L.mark(); nisa.bn_aggr(dst=m, data=s)  # noqa: E702
        return store(m)
    expect_error(k2, (x,), L, "a multiple of 3")


@given(P=parts, F=st.integers(8, 70), dt=float_dt, tgt=target, three_d=st.booleans())
def test_max8_find_index8_match_replace8(P, F, dt, tgt, three_d):
    x = rand((P, 2, F) if three_d else (P, F), dt, 2, -100, 100)

    def k(x):
        t = load(x)
        mx = nl.ndarray((P, 8), "float32", buffer=nl.sbuf)
        nisa.max8(dst=mx, src=t)
        idx = nl.ndarray((P, 8), "uint32", buffer=nl.sbuf)
        nisa.nc_find_index8(dst=idx, data=t, vals=mx)
        rep = nl.ndarray(x.shape, dt, buffer=nl.sbuf)
        ridx = nl.ndarray((P, 8), "uint16", buffer=nl.sbuf)
        nisa.nc_match_replace8(dst=rep, data=t, vals=mx, imm=-1000.0, dst_idx=ridx)
        return store(mx), store(idx), store(rep), store(ridx)
    mx, idx, rep, ridx = run(k, x, target=tgt)
    xf = f32(x).reshape(P, -1)
    top = -np.sort(-xf, axis=1)[:, :8]
    assert_same(mx, top)
    # first occurrences; equal values (bf16 ties) pair with successive positions
    for p in range(P):
        used = set()
        for j in range(8):
            pos = next(q for q in range(xf.shape[1]) if xf[p, q] == top[p, j] and q not in used)
            used.add(pos)
            assert idx[p, j] == pos
        assert sorted(ridx[p]) == sorted(used)
    want = xf.copy()
    want[np.arange(P)[:, None], idx.astype(np.int64)] = -1000.0
    assert_same(rep, rnd(want, dt).reshape(x.shape))


def test_find_index8_absent_value_is_all_ones_and_checks():
    x = np.arange(4 * 16, dtype=np.float32).reshape(4, 16)
    v = np.full((4, 8), -5.0, np.float32)
    v[:, 0] = x[:, 3]

    def k(x, v):
        idx = nl.ndarray((4, 8), "uint32", buffer=nl.sbuf)
        nisa.nc_find_index8(dst=idx, data=load(x), vals=load(v))
        return store(idx)
    got = run(k, x, v)
    assert (got[:, 0] == 3).all() and (got[:, 1:] == 0xFFFFFFFF).all()
    L = Line()

    def k2(x, v):
        idx = nl.ndarray((4, 8), "float32", buffer=nl.sbuf)
        L.mark(); nisa.nc_find_index8(dst=idx, data=load(x), vals=load(v))  # noqa: E702
        return store(idx)
    expect_error(k2, (x, v), L, "indices are written as")

    def k3(x, v):
        mx = nl.ndarray((4, 8), "float32", buffer=nl.sbuf)
        L.mark(); nisa.max8(dst=mx, src=load(x)[:, 0:4])  # noqa: E702
        return store(mx)
    expect_error(k3, (x, v), L, "between 8 and 16384")


def test_match_replace8_duplicate_vals_fill_from_the_last_slot():
    data = np.array([[1, 2, 3, 4, 8, 8, 8, 8, 8, 8, 8]], np.float32)
    vals = np.array([[3, 8, 8, 8, 8, 8, 8, 8]], np.float32)

    def k(d, v):
        out = nl.ndarray((1, 11), "float32", buffer=nl.sbuf)
        di = nl.ndarray((1, 8), "uint32", buffer=nl.sbuf)
        nisa.nc_match_replace8(dst=out, data=load(d), vals=load(v), imm=0.0, dst_idx=di)
        return store(out), store(di)
    out, di = run(k, data, vals)
    assert di.tolist() == [[2, 10, 9, 8, 7, 6, 5, 4]]
    assert out.tolist() == [[1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0]]


@given(P=st.sampled_from([1, 5, 32, 64, 96, 128]), F=odd_free,
       dt=st.sampled_from(FLOATS + ["int32"]), tgt=target, seed=st.integers(0, 100))
def test_nc_stream_shuffle(P, F, dt, tgt, seed):
    x, old = rand((P, F), dt, seed), rand((P, F), dt, seed + 1)
    r = np.random.default_rng(seed)
    mask = [int(m) for m in r.integers(0, min(P, 32), 32)]
    mask[r.integers(0, 32)] = 255

    def k(x, old):
        d = load(old)
        nisa.nc_stream_shuffle(dst=d, src=load(x), shuffle_mask=mask)
        return store(d)
    want = old.copy()
    for p in range(P):
        q, j = divmod(p, 32)
        if mask[j] != 255:
            want[p] = x[q * 32 + mask[j]]
    assert_same(run(k, x, old, target=tgt), want)


def test_nc_stream_shuffle_checks():
    x = rand((64, 4), "float32")
    L = Line()

    def k(x):
        t = load(x)
        L.mark(); nisa.nc_stream_shuffle(dst=t, src=t, shuffle_mask=[0] * 31)  # noqa: E702
        return store(t)
    expect_error(k, (x,), L, "shuffle_mask must be a list of 32 ints")

    def k2(x):
        t = load(x)
        d = nl.ndarray((64, 4), "bfloat16", buffer=nl.sbuf)
        L.mark(); nisa.nc_stream_shuffle(dst=d, src=t, shuffle_mask=list(range(32)))  # noqa: E702
        return store(d)
    expect_error(k2, (x,), L, "dst dtype bfloat16 must equal src dtype float32")


@given(P=parts, F=odd_free, dt=st.sampled_from(FLOATS + ["int32"]), tgt=target)
def test_dropout(P, F, dt, tgt):
    x = rand((P, F), dt, 3, 1, 4) if dt != "int32" else rand((P, F), dt, 3) | 1
    probs = np.linspace(0, 1, P, dtype=np.float32).reshape(P, 1)

    def k(x, probs):
        t = load(x)
        out = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        nisa.dropout(dst=out, data=t, prob=load(probs))
        zero = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        nisa.dropout(dst=zero, data=t, prob=1.0)
        keep = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        nisa.dropout(dst=keep, data=t, prob=0.0)
        return store(out), store(zero), store(keep)
    out, zero, keep = run(k, x, probs, target=tgt)
    assert ((out == 0) | (out == x)).all()
    assert (zero == 0).all()
    assert_same(keep, x)
    if P > 1:
        assert (out[-1] == 0).all() and (out[0] == x[0]).all()


def test_dropout_checks():
    x = rand((4, 8), "int32")
    L = Line()

    def k(x):
        t = load(x)
        pr = nl.ndarray((4, 1), "bfloat16", buffer=nl.sbuf)
        L.mark(); nisa.dropout(dst=t, data=t, prob=pr)  # noqa: E702
        return store(t)
    expect_error(k, (x,), L, "for this data dtype prob must be")

    def k2(x):
        t = load(x)
        L.mark(); nisa.dropout(dst=t, data=t, prob=1.5)  # noqa: E702
        return store(t)
    expect_error(k2, (x,), L, "prob=1.5 must be within [0, 1]")
