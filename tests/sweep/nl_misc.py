"""Sweep table, part 2: nki.language reductions, composites, data movement, creation, buffers,
iteration, SPMD queries and op-token-only names (SPEC 2.2-2.9).

Tolerances: max/min/all, data movement and creation are exact (values are moved, not computed).
fp32 sums (sum, mean, var, softmax, rms_norm, matmul) may add in any order: they are allowed the
classic bound n * 2^-24 * sum|terms| on top of one ulp of the destination rounding.
"""
from __future__ import annotations

import contextlib
import io
import math
import warnings

import numpy as np
import pytest
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from device import dtypes
from device.errors import UserKernelError

from sweep_helpers import (ALL_FLOATS, FLOATS, INTS, expect, free, fsum_bound, npdt, parts,
                           raises, run, seed, target, to_sbuf, values)

EPS = 2.0 ** -24


def _out(r):
    out = nl.ndarray(r.shape, r.dtype, buffer=nl.shared_hbm)
    nl.store(out, r if r.buffer.kind != "psum" else to_sbuf(r))
    return out


def _common(data, max_free=None):
    P = data.draw(parts)
    F = data.draw(st.integers(1, max_free)) if max_free else data.draw(free)
    return P, F, data.draw(target), np.random.default_rng(data.draw(seed))


# ---- reductions -------------------------------------------------------------------------------------
def reduce_case(name):
    def case(data):
        P, _, tgt, rng = _common(data)
        a, b = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 40))
        nax = data.draw(st.integers(1, 2))
        axes = (2,) if nax == 1 else (1, 2)
        keep = data.draw(st.booleans())
        dt = data.draw(st.sampled_from(ALL_FLOATS))
        lo, hi = ((0.5, 1.5) if name == "prod" else (-3, 3) if name == "all" else (-8, 8))
        x = values(rng, (P, a, b), dt, lo, hi)
        if name == "prod":
            x = (x * rng.choice([-1, 1], x.shape)).astype(x.dtype)
        if name == "all":
            x = np.where(rng.random(x.shape) < 0.95, np.float32(1), x).astype(x.dtype)

        def k(x):
            t = nl.load(x)
            fn = getattr(nl, name)
            r = fn(t, axis=axes) if name in ("all", "var") else fn(t, axis=axes, keepdims=keep)
            return _out(r)
        got = run(k, x, target=tgt)
        x64 = x.astype(np.float64)
        keepdims = keep or name == "var"            # var always keeps the reduced dims
        n = math.prod(x.shape[i] for i in axes)
        if name == "all":
            want = np.all(x64 != 0, axis=axes).astype(np.float64)
        else:
            ref = {"sum": np.sum, "max": np.max, "min": np.min, "mean": np.mean, "prod": np.prod,
                   "var": np.var}[name]
            want = ref(x64, axis=axes, keepdims=keepdims)
        bound = {"sum": lambda: fsum_bound(x64, axes),
                 "mean": lambda: fsum_bound(x64, axes) / n + 2 * EPS * np.abs(np.mean(x64, axes)),
                 "prod": lambda: (n + 1) * EPS * np.abs(np.prod(x64, axes)),
                 "var": lambda: (2 * n + 8) * EPS * np.mean(x64 ** 2, axes)}.get(name, lambda: 0.0)()
        if want.ndim < 2:
            want = want.reshape(want.shape + (1,) * (2 - want.ndim))
        bound = np.broadcast_to(np.reshape(bound, np.shape(bound) + (1,) * (want.ndim - np.ndim(bound))),
                                want.shape) if np.ndim(bound) else bound
        expect(got, want, dt, 0 if name in ("max", "min", "all") else 1, bound, f"nl.{name}")
    return case


# ---- composites -------------------------------------------------------------------------------------
def case_softmax(data):
    P, F, tgt, rng = _common(data)
    dt = data.draw(st.sampled_from(FLOATS))
    x = values(rng, (P, F), dt, -10, 10)

    def k(x):
        return _out(nl.softmax(nl.load(x), axis=1))
    got = run(k, x, target=tgt)
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(axis=1, keepdims=True))
    want = e / e.sum(axis=1, keepdims=True)
    expect(got, want, dt, 1, (F + 6) * EPS * want, "nl.softmax")


def case_rms_norm(data):
    P, F, tgt, rng = _common(data)
    dt = data.draw(st.sampled_from(FLOATS))
    wrow = data.draw(st.booleans())
    x = values(rng, (P, F), dt, -4, 4)
    w = values(rng, (1 if wrow else P, F), dt, -2, 2)
    eps = 1e-3

    def k(x, w):
        return _out(nl.rms_norm(nl.load(x), nl.load(w), axis=1, n=F, epsilon=eps))
    got = run(k, x, w, target=tgt)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    want = x64 / np.sqrt(np.sum(x64 ** 2, axis=1, keepdims=True) / F + eps) * w64
    expect(got, want, dt, 1, (F + 8) * EPS * np.abs(want), "nl.rms_norm")


def case_where(data):
    P, F, tgt, rng = _common(data)
    dt = data.draw(st.sampled_from(ALL_FLOATS))
    form = data.draw(st.sampled_from(["tiles", "x_scalar", "y_scalar"]))
    c = (rng.random((P, F)) < 0.5).astype(np.float32)
    x, y = values(rng, (P, F), dt, -100, 100), values(rng, (P, F), dt, -100, 100)
    xs, ys = float(x[0, 0]), float(y[0, 0])

    def k(c, x, y):
        ct = nl.load(c)
        a = xs if form == "x_scalar" else nl.load(x)
        b = ys if form == "y_scalar" else nl.load(y)
        return _out(nl.where(ct, a, b, dtype=dt))
    got = run(k, c, x, y, target=tgt)
    want = np.where(c != 0, xs if form == "x_scalar" else x.astype(np.float64),
                    ys if form == "y_scalar" else y.astype(np.float64))
    expect(got, want, dt, 0, 0, "nl.where")


def case_dropout(data):
    P, F, tgt, rng = _common(data)
    dt = data.draw(st.sampled_from(ALL_FLOATS + ("int32",)))
    rate = data.draw(st.sampled_from([0.0, 1.0, 0.3]))
    x = values(rng, (P, F), dt, 1, 100)       # no zeros: a zero output means dropped

    def k(x):
        return _out(nl.dropout(nl.load(x), rate))
    got = run(k, x, target=tgt)
    assert got.dtype == x.dtype
    kept = got.astype(np.float64) != 0
    np.testing.assert_array_equal(np.where(kept, got, x), x)       # never rescaled
    n = x.size
    frac = 1 - kept.mean()
    if rate in (0.0, 1.0):
        assert frac == rate
    else:                                    # binomial: 6 standard deviations
        assert abs(frac - rate) <= 6 * math.sqrt(rate * (1 - rate) / n) + 1e-9, (frac, n)


def case_rand(data):
    P, F, tgt, _ = _common(data)
    dt = data.draw(st.sampled_from(("float32", "bfloat16", "float16")))

    def k(d):
        return _out(nl.rand((P, F), dtype=dt))
    got = run(k, np.zeros((1, 1), np.float32), target=tgt)
    assert got.shape == (P, F) and got.dtype == npdt(dt)
    g = got.astype(np.float64)
    assert ((g >= 0) & (g <= 1)).all()           # [0, 1) before rounding to the dtype
    if g.size >= 64:
        assert abs(g.mean() - 0.5) < 6 * math.sqrt(1 / 12 / g.size) + 2 ** -8


def case_random_seed(data):
    _, _, tgt, _ = _common(data)
    s1, s2 = data.draw(st.integers(0, 2**31 - 1)), data.draw(st.integers(0, 2**31 - 1))

    def k(s):
        t = nl.ndarray((1, 1), nl.int32, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=s)
        nl.random_seed(t)
        return _out(nl.rand((4, 16), dtype=nl.float32))
    a = run(k, np.array([[s1]], np.int32), target=tgt)
    b = run(k, np.array([[s1]], np.int32), target=tgt)
    np.testing.assert_array_equal(a, b)            # same seed, same sequence
    if s1 != s2:
        assert not np.array_equal(a, run(k, np.array([[s2]], np.int32), target=tgt))

    def bad(s):
        nl.random_seed(7)
        return s
    raises(bad, (np.zeros((1, 1), np.int32),), "seed must be a [1, 1]", target=tgt,
           kind=UserKernelError)


# ---- data movement -----------------------------------------------------------------------------------
def _conv_ref(x, dt_out):
    """DMA/tensor_copy conversion: through fp32 (SPEC 4.4), ints saturate."""
    if x.dtype == npdt(dt_out):
        return x
    return dtypes.round_to(x.astype(np.float32), dt_out)


def _mixed_dtypes(data):
    return data.draw(st.sampled_from(ALL_FLOATS + INTS)), data.draw(st.sampled_from(ALL_FLOATS + INTS))


def _conv_values(rng, shape, dt_in, dt_out):
    if dt_in in INTS:
        return values(rng, shape, dt_in, -(1 << 31), 1 << 31)
    return values(rng, shape, dt_in, -3e4, 3e4)


def case_load(data):
    P, F, tgt, rng = _common(data)
    di, do = _mixed_dtypes(data)
    x = _conv_values(rng, (P, F), di, do)

    def k(x):
        t = nl.load(x, dtype=do)
        return _out(t)
    got = run(k, x, target=tgt)
    np.testing.assert_array_equal(got.view(np.uint8), _conv_ref(x, do).view(np.uint8))


def case_store(data):
    P, F, tgt, rng = _common(data)
    di, do = _mixed_dtypes(data)
    x = _conv_values(rng, (P, F), di, do)
    scalar = data.draw(st.booleans())

    def k(x):
        out = nl.ndarray(x.shape, do, buffer=nl.shared_hbm)
        nl.store(out, 3 if scalar else nl.load(x))
        return out
    got = run(k, x, target=tgt)
    want = np.full((P, F), 3, npdt(do)) if scalar else _conv_ref(x, do)
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


def case_load_transpose2d(data):
    A, B, tgt, rng = _common(data, max_free=128)
    dt = data.draw(st.sampled_from(ALL_FLOATS + INTS))
    x = values(rng, (B, A), dt, -100, 100)

    def k(x):
        return _out(nl.load_transpose2d(x))
    np.testing.assert_array_equal(run(k, x, target=tgt), x.T)


def case_transpose(data):
    P, F, tgt, rng = _common(data, max_free=128)
    dt = data.draw(st.sampled_from(ALL_FLOATS))
    x = values(rng, (P, F), dt, -100, 100)

    def k(x):
        return _out(nl.transpose(nl.load(x)))
    got = run(k, x, target=tgt)
    np.testing.assert_array_equal(got.view(np.uint8), x.T.copy().view(np.uint8))


def case_matmul(data):
    _, _, tgt, rng = _common(data)
    K, M = data.draw(st.integers(1, 128)), data.draw(st.integers(1, 128))
    N = data.draw(st.integers(1, 512))
    tx = data.draw(st.booleans())
    dt = data.draw(st.sampled_from(ALL_FLOATS))
    a = values(rng, (K, M) if tx else (M, K), dt, -2, 2)
    b = values(rng, (K, N), dt, -2, 2)

    def k(a, b):
        return _out(nl.matmul(nl.load(a), nl.load(b), transpose_x=tx))
    got = run(k, a, b, target=tgt)
    a64 = a.astype(np.float64) if tx else a.astype(np.float64).T
    want = a64.T @ b.astype(np.float64)
    expect(got, want, "float32", 1, K * EPS * (np.abs(a64.T) @ np.abs(b.astype(np.float64))),
           "nl.matmul")


def case_broadcast_to(data):
    P, F, tgt, rng = _common(data)
    dt = data.draw(st.sampled_from(ALL_FLOATS + INTS))
    row = data.draw(st.booleans())
    x = values(rng, (1, F) if row else (P, 1), dt, -100, 100)

    def k(x):
        return _out(nl.broadcast_to(nl.load(x), (P, F)))
    np.testing.assert_array_equal(run(k, x, target=tgt), np.broadcast_to(x, (P, F)))


def case_expand_dims(data):
    P, F, tgt, rng = _common(data)
    x = values(rng, (P, F), "float32")

    def k(x):
        t = nl.expand_dims(nl.load(x), 1)
        assert t.shape == (P, 1, F)
        out = nl.ndarray((P, 1, F), t.dtype, buffer=nl.shared_hbm)
        nl.store(out, t)
        return out
    np.testing.assert_array_equal(run(k, x, target=tgt), x[:, None, :])


def case_gather_flattened(data):
    P, _, tgt, rng = _common(data)
    a, b, n = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 40)), data.draw(st.integers(1, 64))
    dt = data.draw(st.sampled_from(ALL_FLOATS + INTS))
    x = values(rng, (P, a, b), dt, -100, 100)
    idx = rng.integers(0, a * b, (P, n)).astype(np.uint32)

    def k(x, idx):
        return _out(nl.gather_flattened(nl.load(x), nl.load(idx)))
    got = run(k, x, idx, target=tgt)
    np.testing.assert_array_equal(got, np.take_along_axis(x.reshape(P, -1), idx.astype(np.int64), 1))


def case_copy_token(data):
    """nl.copy is also in the unary table; here: same-dtype copies are bit-exact (NaN payloads,
    -0.0) and a PSUM source works (SPEC 2.6)."""
    P, F, tgt, rng = _common(data, max_free=128)
    dt = data.draw(st.sampled_from(ALL_FLOATS + INTS))
    x = values(rng, (P, F), dt, -100, 100)
    if dt in ALL_FLOATS:
        x.reshape(-1)[::7] = np.float32(-0.0)

    def k(x):
        return _out(nl.copy(nl.load(x)))
    np.testing.assert_array_equal(run(k, x, target=tgt).view(np.uint8), x.view(np.uint8))


# ---- creation -----------------------------------------------------------------------------------------
def _fill_case(api):
    def case(data):
        P, F, tgt, rng = _common(data)
        dt = data.draw(st.sampled_from(ALL_FLOATS + INTS))
        buf = data.draw(st.sampled_from(["sbuf", "psum", "shared_hbm"]))
        if buf == "psum":
            F = min(F, 2048 // dtypes.itemsize(dt))
        v = {"zeros": 0, "ones": 1}.get(api, int(rng.integers(-100, 100)) if dt in INTS and
                                         not dt.startswith("u") else 7)
        buffer = getattr(nl, buf)

        def k(d):
            t = nl.full((P, F), v, dtype=dt, buffer=buffer) if api == "full" else \
                getattr(nl, api)((P, F), dtype=dt, buffer=buffer)
            assert t.shape == (P, F) and t.dtype == dt and t.buffer.kind == buffer.kind
            if buf == "shared_hbm":
                return t
            return _out(t)
        got = run(k, np.zeros((1, 1), np.float32), target=tgt)
        np.testing.assert_array_equal(got, np.full((P, F), v, npdt(dt)))
    return case


def _like_case(api):
    def case(data):
        P, F, tgt, rng = _common(data)
        dt = data.draw(st.sampled_from(ALL_FLOATS + INTS))
        new_dt = data.draw(st.sampled_from((None,) + ALL_FLOATS + INTS))
        x = values(rng, (P, F), dt, -5, 5)

        def k(x):
            t = nl.load(x)
            r = getattr(nl, api)(t, dtype=new_dt)
            assert r.shape == t.shape and r.dtype == (new_dt or dt) and r.buffer.kind == "sbuf"
            if api == "empty_like":                      # uninitialised: fill it before storing
                nisa.memset(dst=r, value=2)
            return _out(r)
        got = run(k, x, target=tgt)
        fill = {"zeros_like": 0, "ones_like": 1, "empty_like": 2}[api]
        np.testing.assert_array_equal(got, np.full((P, F), fill, npdt(new_dt or dt)))
    return case


def case_ndarray(data):
    """A fresh tensor is uninitialised: the emulator fills it with NaN (floats) or 4 (ints), and
    reading it warns (SPEC 1.4)."""
    P, F, tgt, _ = _common(data)
    dt = data.draw(st.sampled_from(ALL_FLOATS + INTS))

    def k(d):
        t = nl.ndarray((P, F), dtype=dt, buffer=nl.sbuf)
        assert t.shape == (P, F) and t.dtype == dt
        return _out(t)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        got = run(k, np.zeros((1, 1), np.float32), target=tgt)
    assert any("uninitiali" in str(x.message).lower() for x in w), [str(x.message) for x in w]
    if dt in INTS:
        assert (got == 4).all()
    else:
        assert np.isnan(got.astype(np.float32)).all()


def case_shared_constant(data):
    P, F, tgt, rng = _common(data)
    dt = data.draw(st.sampled_from(ALL_FLOATS + INTS))
    c = values(rng, (P, F), dt, -100, 100)

    def k(d):
        h = nl.shared_constant(c)
        assert h.buffer.kind == "hbm" and h.shape == (P, F)
        return _out(nl.load(h))
    np.testing.assert_array_equal(run(k, np.zeros((1, 1), np.float32), target=tgt), c)


def case_shared_identity_matrix(data):
    n, _, tgt, _ = _common(data)
    dt = data.draw(st.sampled_from(ALL_FLOATS + INTS))

    def k(d):
        t = nl.shared_identity_matrix(n, dtype=dt)
        assert t.buffer.kind == "sbuf" and t is nl.shared_identity_matrix(n, dtype=dt)  # deduped
        return _out(t)
    np.testing.assert_array_equal(run(k, np.zeros((1, 1), np.float32), target=tgt),
                                  np.eye(n, dtype=npdt(dt)))


# ---- buffers -----------------------------------------------------------------------------------------
def _buffer_query(api):
    truth = {"is_sbuf": {"sbuf"}, "is_psum": {"psum"}, "is_hbm": {"private_hbm", "shared_hbm"},
             "is_on_chip": {"sbuf", "psum"}}[api]

    def case(data):
        _, _, tgt, _ = _common(data)
        seen = {}

        def k(x):
            tiles = {"sbuf": nl.ndarray((2, 2), nl.float32, buffer=nl.sbuf),
                     "psum": nl.ndarray((2, 2), nl.float32, buffer=nl.psum),
                     "private_hbm": nl.ndarray((2, 2), nl.float32, buffer=nl.private_hbm),
                     "shared_hbm": x}
            fn = getattr(nl, api)
            for name, t in tiles.items():
                seen[name] = (fn(t), fn(getattr(nl, name)), fn(t.buffer))
            return x
        run(k, np.zeros((2, 2), np.float32), target=tgt)
        for name, got in seen.items():
            assert got == (name in truth,) * 3, (api, name, got)
    return case


# ---- iteration and SPMD --------------------------------------------------------------------------------
def _range_case(api):
    def case(data):
        _, _, tgt, rng = _common(data)
        a, b, s = data.draw(st.integers(0, 6)), data.draw(st.integers(0, 12)), data.draw(st.integers(1, 3))
        x = values(rng, (2, 16), "float32")
        fn = getattr(nl, api)
        ctx = pytest.warns(DeprecationWarning) if api == "dynamic_range" else contextlib.nullcontext()
        with ctx:
            assert list(fn(a, b, s)) == list(range(a, b, s))
        with ctx:
            assert list(fn(b)) == list(range(b))

        def k(x):                                   # unrolled at trace time: one add per trip
            acc = nl.zeros((2, 16), nl.float32)
            for i in fn(a, b, s):
                acc = nl.add(acc, nl.load(x))
            return _out(acc)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            got = run(k, x, target=tgt)
        want = np.zeros_like(x)
        for _ in range(a, b, s):                     # the same fp32 adds, in order
            want = want + x
        np.testing.assert_array_equal(got, want)
    return case


def case_ds(data):
    P, F, tgt, rng = _common(data)
    s = data.draw(st.integers(0, F - 1))
    n = data.draw(st.integers(1, F - s))
    assert nl.ds(s, n) == slice(s, s + n)
    x = values(rng, (P, F), "float32")

    def k(x):
        return _out(nl.load(x[:, nl.ds(s, n)]))
    np.testing.assert_array_equal(run(k, x, target=tgt), x[:, s:s + n])


def case_par_dim(data):
    n = data.draw(st.integers(1, 128))
    assert nl.par_dim(n) == n                       # legacy shape marker: P in a shape tuple


def _spmd_case(api):
    def case(data):
        tgt = data.draw(st.sampled_from(("trn2", "trn3")))
        lnc = data.draw(st.sampled_from((1, 2)))

        def k(d):
            out = nl.ndarray((2, 3), nl.int32, buffer=nl.shared_hbm)
            pid = nl.program_id(0)
            vals = (pid, nl.num_programs(0), nl.program_ndim())
            for j, v in enumerate(vals):
                nisa.dma_copy(dst=out[pid:pid + 1, j:j + 1], src=nl.full((1, 1), v, nl.int32))
            if lnc == 1:
                nisa.dma_copy(dst=out[1:2, :], src=nl.full((1, 3), -1, nl.int32))
            return out
        got = run(k, np.zeros((1, 1), np.float32), target=tgt, lnc=lnc)
        # SPEC 1.5: program_id is the core index, num_programs the LNC degree, ndim 0 w/o a grid
        want = [[0, 1, 0], [-1, -1, -1]] if lnc == 1 else [[0, 2, 1], [1, 2, 1]]
        np.testing.assert_array_equal(got, want)
    return case


def case_no_reorder(data):
    P, F, tgt, rng = _common(data)
    x = values(rng, (P, F), "float32")

    def k(x):
        with nl.no_reorder():
            t = nl.load(x)
            t = nl.multiply(t, 2.0)
        return _out(t)
    np.testing.assert_array_equal(run(k, x, target=tgt), x * 2)

    def bad(x):
        with nl.no_reorder():
            nl.fori_loop(0, 2, lambda i: None)
        return x
    raises(bad, (x,), "cannot be used inside an nl.no_reorder() block", target=tgt,
           kind=UserKernelError)


def case_device_print(data):
    P, F, tgt, rng = _common(data, max_free=6)
    P = min(P, 6)
    dt = data.draw(st.sampled_from(ALL_FLOATS + INTS))
    x = values(rng, (P, F), dt, -50, 50)
    prefix = data.draw(st.sampled_from(["x:", "tile", "dbg >"]))

    def k(x):
        t = nl.load(x)
        nl.device_print(prefix, t)
        return _out(t)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        run(k, x, target=tgt)
    # the simulator prints at run time: the prefix, then the tensor's values
    assert buf.getvalue() == f"{prefix} {x}\n", buf.getvalue()


def _loop_kernel(n_trips_src, step, use_while):
    def k(data, n):
        out = nl.ndarray(data.shape, nl.float32, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=nl.zeros(data.shape, nl.float32))
        n_sb = nl.ndarray((1, 1), nl.int32, buffer=nl.sbuf)
        nisa.dma_copy(dst=n_sb, src=n)
        ub = nisa.register_alloc()
        nisa.register_load(ub, n_sb)
        tmp = nl.ndarray((1, 1), nl.float32, buffer=nl.sbuf)
        if not use_while:
            def body(i):
                nisa.dma_copy(dst=tmp, src=data.ap([[1, 1], [1, 1]], scalar_offset=i, indirect_dim=1))
                nisa.dma_copy(dst=out.ap([[1, 1], [1, 1]], scalar_offset=i, indirect_dim=1), src=tmp)
            nl.fori_loop(0, ub, body, step=step)
            return out
        acc = nl.zeros((1, 1), nl.float32)
        one = nl.full((1, 1), 1, dtype=nl.int32)

        def countdown(r):
            nisa.tensor_tensor(dst=acc, data1=acc, data2=nl.full((1, 1), 1.0, nl.float32), op=nl.add)
            nisa.tensor_tensor(dst=n_sb, data1=n_sb, data2=one, op=nl.subtract)
            nisa.register_load(r, n_sb)
            return r
        nl.while_loop(ub, countdown)
        nisa.dma_copy(dst=out[0:1, 0:1], src=acc)
        return out
    return k


def _loop_case(api):
    def case(data):
        _, _, tgt, rng = _common(data)
        F = data.draw(st.integers(1, 40))
        n = data.draw(st.integers(0 if api == "fori_loop" else 1, F))
        step = data.draw(st.integers(1, 3))
        x = values(rng, (1, F), "float32", 1, 9)
        got = run(_loop_kernel(n, step, api == "while_loop"), x, np.array([[n]], np.int32),
                  target=tgt)
        want = np.zeros_like(x)
        if api == "fori_loop":
            want[0, 0:n:step] = x[0, 0:n:step]      # the bound is read at run time
        else:
            want[0, 0] = n                          # the body ran until the register became 0
        np.testing.assert_array_equal(got, want)
    return case


# ---- op-token-only names and promotion --------------------------------------------------------------------
def _token_case(api):
    def case(data):
        P, F, tgt, rng = _common(data)
        x = values(rng, (P, F), "float32", -4, 4)

        def called(x):
            getattr(nl, api)(nl.load(x))
            return x
        raises(called, (x,), f"nl.{api} is only an op token", target=tgt, kind=UserKernelError)
        if api == "bypass":                         # a no-op stage of tensor_scalar
            def k(x):
                t = nl.load(x)
                r = nl.ndarray(t.shape, t.dtype, buffer=nl.sbuf)
                nisa.tensor_scalar(dst=r, data=t, op0=nl.multiply, operand0=3.0, op1=nl.bypass,
                                   operand1=0.0)
                return _out(r)
            expect(run(k, x, target=tgt), x.astype(np.float64) * 3, "float32", 0, 0, "bypass")
        elif api == "average":                      # a partition-reduce op
            def k(x):
                t = nl.load(x)
                r = nl.ndarray((1, F), t.dtype, buffer=nl.sbuf)
                nisa.tensor_partition_reduce(dst=r, op=nl.average, data=t)
                return _out(r)
            want = x.astype(np.float64).mean(axis=0, keepdims=True)
            expect(run(k, x, target=tgt), want, "float32", 1,
                   fsum_bound(x.astype(np.float64), 0) / P + EPS * np.abs(want), "average")
        else:                                       # prelu is accepted as a token by name
            assert nl.prelu.op_name == "prelu" and nl.prelu == nl.prelu
    return case


def case_promote(data):
    """SPEC 2.1 legacy promotion rules."""
    f = st.sampled_from(ALL_FLOATS)
    i = st.sampled_from(INTS)
    a, b = data.draw(f), data.draw(i)
    assert nl.promote(a, b) == a and nl.promote(b, a) == a
    assert nl.promote("float16", "bfloat16") == "float32"
    assert nl.promote("float8_e4m3", "float8_e5m2") == "bfloat16"
    assert nl.promote("float32", "bfloat16") == "float32"
    assert nl.promote("int8", "uint8") == "int16" and nl.promote("int32", "uint32") == "float32"
    assert nl.promote("int8", "int32") == "int32"
    c, d = data.draw(st.sampled_from(ALL_FLOATS + INTS)), data.draw(st.sampled_from(ALL_FLOATS + INTS))
    assert nl.promote(c, d) == nl.promote(d, c)
    assert nl.promote(c, c) == c


def misc_cases():
    c = {n: reduce_case(n) for n in ("sum", "max", "min", "mean", "prod", "var", "all")}
    c.update({n: _fill_case(n) for n in ("zeros", "ones", "full")})
    c.update({n: _like_case(n) for n in ("zeros_like", "ones_like", "empty_like")})
    c.update({n: _buffer_query(n) for n in ("is_sbuf", "is_psum", "is_hbm", "is_on_chip")})
    c.update({n: _range_case(n) for n in ("affine_range", "sequential_range", "static_range",
                                           "dynamic_range")})
    c.update({n: _spmd_case(n) for n in ("program_id", "num_programs", "program_ndim")})
    c.update({n: _loop_case(n) for n in ("fori_loop", "while_loop")})
    c.update({n: _token_case(n) for n in ("prelu", "bypass", "average")})
    c.update({"softmax": case_softmax, "rms_norm": case_rms_norm, "where": case_where,
              "dropout": case_dropout, "rand": case_rand, "random_seed": case_random_seed,
              "load": case_load, "store": case_store, "load_transpose2d": case_load_transpose2d,
              "transpose": case_transpose, "matmul": case_matmul, "broadcast_to": case_broadcast_to,
              "expand_dims": case_expand_dims, "gather_flattened": case_gather_flattened,
              "copy[bits]": case_copy_token, "ndarray": case_ndarray,
              "shared_constant": case_shared_constant,
              "shared_identity_matrix": case_shared_identity_matrix, "ds": case_ds,
              "par_dim": case_par_dim, "no_reorder": case_no_reorder,
              "device_print": case_device_print, "promote": case_promote})
    return c
