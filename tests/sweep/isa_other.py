"""Sweep table for nki.isa, part 2: statistics, search, shuffles, gathers, top-k, DMA, TensorE,
registers, version queries and the LNC=2 instructions (SPEC 3.2). Moves are exact; statistics
and matmuls get fp32 summation bounds (see isa_compute.py)."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from device import dtypes

from isa_compute import EPS, _common
from sweep_helpers import (ALL_FLOATS, INTS, expect, fsum_bound, load, npdt, parts, raises, run,
                           store, to_sbuf, values)

ZERO = np.zeros((1, 1), np.float32)


# ---- statistics ----------------------------------------------------------------------------------------
def case_bn_stats(data):
    P, _, tgt, rng = _common(data)
    F = data.draw(st.integers(1, 512))
    dt = data.draw(st.sampled_from(ALL_FLOATS))
    x = values(rng, (P, F), dt, -8, 8)

    def k(x):
        r = nl.ndarray((x.shape[0], 6), nl.float32, buffer=nl.sbuf)
        nisa.bn_stats(dst=r, data=load(x))
        return store(r)
    got = run(k, x, target=tgt)
    x64 = x.astype(np.float64)
    want, bound = [], []
    for part in (x64[:, 0::2], x64[:, 1::2]):
        n = part.shape[1]
        m = part.mean(axis=1) if n else np.zeros(P)
        m2 = ((part - m[:, None]) ** 2).sum(axis=1) if n else np.zeros(P)
        want += [np.full(P, n), m, m2]
        sb = np.abs(part).sum(axis=1) * (n + 2) * EPS
        bound += [np.zeros(P), sb / max(n, 1), (n + 4) * EPS * (m2 + 2 * sb * np.abs(part - m[:, None]).sum(1))]
    expect(got, np.stack(want, 1), "float32", 1, np.stack(bound, 1), "bn_stats")

    def too_wide(x):
        r = nl.ndarray((x.shape[0], 6), nl.float32, buffer=nl.sbuf)
        nisa.bn_stats(dst=r, data=nl.ndarray((x.shape[0], 513), nl.float32, buffer=nl.sbuf))
        return store(r)
    raises(too_wide, (x,), "bn_stats handles at most bn_stats_fmax=512", target=tgt)


def case_bn_aggr(data):
    P, _, tgt, rng = _common(data)
    k_ = data.draw(st.integers(1, 8))
    counts = rng.integers(1, 50, (P, k_)).astype(np.float32)
    means = values(rng, (P, k_), "float32", -4, 4)
    m2 = values(rng, (P, k_), "float32", 0, 20)
    t = np.stack([counts, means, m2], axis=2).reshape(P, 3 * k_).astype(np.float32)

    def k(t):
        r = nl.ndarray((t.shape[0], 2), nl.float32, buffer=nl.sbuf)
        nisa.bn_aggr(dst=r, data=load(t))
        return store(r)
    got = run(k, t, target=tgt)
    c, m, v = counts.astype(np.float64), means.astype(np.float64), m2.astype(np.float64)
    n = c.sum(1)
    mean = (c * m).sum(1) / n
    var = (v + c * (m - mean[:, None]) ** 2).sum(1) / n     # Chan's parallel combination
    scale = (c * np.abs(m)).sum(1) / n
    bound = np.stack([(k_ + 3) * EPS * scale, (k_ + 6) * EPS * ((v + c * (np.abs(m) + scale[:, None])
                                                                  ** 2).sum(1) / n)], 1)
    expect(got, np.stack([mean, var], 1), "float32", 1, bound, "bn_aggr")


# ---- top-8 search --------------------------------------------------------------------------------------
def _search_input(data, rng, P):
    F = data.draw(st.integers(8, 300))
    dt = data.draw(st.sampled_from(ALL_FLOATS))
    x = values(rng, (P, F), dt, -20, 20)      # bf16/fp8 values repeat: duplicates are exercised
    return F, dt, x


def case_max8(data):
    P, _, tgt, rng = _common(data)
    F, dt, x = _search_input(data, rng, P)

    def k(x):
        r = nl.ndarray((x.shape[0], 8), dt, buffer=nl.sbuf)
        nisa.max8(dst=r, src=load(x))
        return store(r)
    got = run(k, x, target=tgt)
    np.testing.assert_array_equal(got, -np.sort(-x.astype(np.float64), axis=1)[:, :8].astype(x.dtype))


def _first_unused(row, vals, order):
    used, pos = set(), [-1] * 8
    for j in order:
        for c in range(len(row)):
            if c not in used and row[c] == vals[j]:
                pos[j] = c
                used.add(c)
                break
    return pos


def case_nc_find_index8(data):
    P, _, tgt, rng = _common(data)
    P = min(P, 32)                              # the reference is a Python loop
    F, dt, x = _search_input(data, rng, P)
    idt = data.draw(st.sampled_from(("uint32", "uint16")))
    pick = rng.integers(0, F, (P, 8))
    vals = np.take_along_axis(x, pick, 1)
    vals[:, 7] = np.asarray(1000, np.float32).astype(x.dtype) if dt != "float8_e4m3" else vals[:, 7]

    def k(x, v):
        r = nl.ndarray((x.shape[0], 8), idt, buffer=nl.sbuf)
        nisa.nc_find_index8(dst=r, data=load(x), vals=load(v))
        return store(r)
    got = run(k, x, vals, target=tgt)
    miss = np.iinfo(npdt(idt)).max                # not found: all ones
    # the first occurrence of each value; duplicate vals pair with successive occurrences in
    # ascending order (nki.isa.nc_match_replace8 docstring contrasts the two tie-breaks)
    want = [[c if c >= 0 else miss for c in _first_unused(list(x[p]), list(vals[p]), range(8))]
            for p in range(P)]
    np.testing.assert_array_equal(got, np.array(want, np.int64).astype(npdt(idt)))


def case_nc_match_replace8(data):
    P, _, tgt, rng = _common(data)
    P = min(P, 32)
    F, dt, x = _search_input(data, rng, P)
    pick = rng.integers(0, F, (P, 8))
    vals = np.take_along_axis(x, pick, 1)
    imm = -99.0
    with_idx = data.draw(st.booleans())

    def k(x, v):
        r = nl.ndarray(x.shape, dt, buffer=nl.sbuf)
        ix = nl.ndarray((x.shape[0], 8), nl.uint32, buffer=nl.sbuf)
        nisa.nc_match_replace8(dst=r, data=load(x), vals=load(v), imm=imm,
                               dst_idx=ix if with_idx else None)
        if not with_idx:
            nisa.memset(dst=ix, value=0)
        return store(r), store(ix)
    got, idx = run(k, x, vals, target=tgt)
    want = x.astype(np.float64).copy()
    wi = np.zeros((P, 8), np.uint32)
    for p in range(P):      # SPEC 3.2: duplicate vals are processed in reverse order
        pos = _first_unused(list(x[p]), list(vals[p]), range(7, -1, -1))
        for j, c in enumerate(pos):
            if c >= 0:
                want[p, c] = imm
            wi[p, j] = c if c >= 0 else 0xFFFFFFFF
    expect(got, want, dt, 0, 0, "nc_match_replace8")
    if with_idx:
        np.testing.assert_array_equal(idx, wi)


def case_nc_stream_shuffle(data):
    _, F, tgt, rng = _common(data, 64)
    P = data.draw(st.sampled_from((32, 64, 96, 128, 1, 17)))
    dt = data.draw(st.sampled_from(ALL_FLOATS + INTS))
    mask = [int(m) if rng.random() > 0.1 else 255 for m in rng.integers(0, min(P, 32), 32)]
    x, old = values(rng, (P, F), dt, -50, 50), values(rng, (P, F), dt, -50, 50)

    def k(x, old):
        d = load(old)
        nisa.nc_stream_shuffle(dst=d, src=load(x), shuffle_mask=tuple(mask))
        return store(d)
    got = run(k, x, old, target=tgt)
    want = old.copy()
    for p in range(P):
        q, j = divmod(p, 32)
        if mask[j] != 255:
            want[p] = x[q * 32 + mask[j]]
    np.testing.assert_array_equal(got, want)


# ---- gathers and top-k ---------------------------------------------------------------------------------
def case_nc_n_gather(data):
    P, _, tgt, rng = _common(data)
    a, n = data.draw(st.integers(1, 300)), data.draw(st.integers(1, 100))
    dt = data.draw(st.sampled_from(ALL_FLOATS + INTS))
    x = values(rng, (P, a), dt, -100, 100)
    idx = rng.integers(0, a, (P, n)).astype(np.uint32)

    def k(x, idx):
        r = nl.ndarray(idx.shape, dt, buffer=nl.sbuf)
        nisa.nc_n_gather(dst=r, data=load(x), indices=load(idx))
        return store(r)
    np.testing.assert_array_equal(run(k, x, idx, target=tgt),
                                  np.take_along_axis(x, idx.astype(np.int64), 1))


def case_local_gather(data):
    _, _, tgt, rng = _common(data)
    P = 16 * data.draw(st.integers(1, 8))
    F, e = data.draw(st.integers(1, 64)), data.draw(st.sampled_from((1, 2, 4, 8)))
    ni = data.draw(st.integers(1, 4))
    dt = data.draw(st.sampled_from(ALL_FLOATS + INTS))
    F = max(F, e)
    x = values(rng, (P, F), dt, -100, 100)
    idx = rng.integers(0, F - e + 1, (P, ni)).astype(np.uint16)
    nv = data.draw(st.integers(1, 16 * ni))

    def k(x, idx):
        r = nl.ndarray((x.shape[0], nv * e), dt, buffer=nl.sbuf)
        nisa.local_gather(dst=r, src_buffer=load(x), index=load(idx), num_elem_per_idx=e,
                          num_valid_indices=nv)
        return store(r)
    got = run(k, x, idx, target=tgt)
    want = np.empty((P, nv * e), x.dtype)
    for c in range(P // 16):       # core c shares its 16 partitions' indices, partition-first
        flat = idx[c * 16:(c + 1) * 16].T.reshape(-1)[:nv].astype(np.int64)
        cols = (flat[:, None] + np.arange(e)).reshape(-1)
        want[c * 16:(c + 1) * 16] = x[c * 16:(c + 1) * 16][:, cols]
    np.testing.assert_array_equal(got, want)

    if P > 16:
        def odd(x, idx):
            r = nl.ndarray((P - 8, e), dt, buffer=nl.sbuf)
            nisa.local_gather(dst=r, src_buffer=load(x)[0:P - 8], index=load(idx)[0:P - 8],
                              num_elem_per_idx=e, num_valid_indices=1)
            return store(r)
        raises(odd, (x, idx), "needs a multiple of 16", target=tgt)


def case_topk(data):
    _, _, tgt, rng = _common(data)
    P = 16 * data.draw(st.integers(1, 8))
    n = data.draw(st.integers(8, 300))
    K = data.draw(st.integers(1, min(n, 40)))
    cols = -(-n // 16)
    x = rng.permutation(np.arange(P * cols)).reshape(P, cols).astype(np.float32)   # distinct
    x = (x / 64).astype(npdt("bfloat16"))

    srt = data.draw(st.booleans())

    def k(x):
        v = nl.ndarray((P, K), nl.bfloat16, buffer=nl.sbuf)
        ix = nl.ndarray((P, K), nl.uint32, buffer=nl.sbuf)
        nisa.memset(dst=v, value=0.0)
        nisa.memset(dst=ix, value=0)
        nisa.topk(val_dst=v, idx_dst=ix, src=load(x), n=n, sorted=srt)
        return store(v), store(ix)
    vals, idx = run(k, x, target=tgt)
    e, j = np.arange(n), np.arange(K)
    for g in range(P // 16):        # element e of the snake: partition e % 16, column e // 16
        snake = x[g * 16 + e % 16, e // 16].astype(np.float64)
        top = np.argsort(-snake, kind="stable")[:K]                    # descending
        top = top if srt else top[::-1]                                # unsorted: ascending
        np.testing.assert_array_equal(vals[g * 16 + j % 16, j // 16].astype(np.float64), snake[top])
        np.testing.assert_array_equal(idx[g * 16 + j % 16, j // 16], top)


# ---- DMA -----------------------------------------------------------------------------------------------
def case_dma_copy(data):
    P, F, tgt, rng = _common(data)
    tgt = data.draw(st.sampled_from(("inf2", "trn2", "trn3")))
    di = data.draw(st.sampled_from(ALL_FLOATS + INTS))
    do = data.draw(st.sampled_from(ALL_FLOATS + INTS))
    route = data.draw(st.sampled_from(("hbm-sbuf-hbm", "hbm-hbm", "sbuf-sbuf")))
    prio = data.draw(st.sampled_from((None, 0, 3)))
    x = values(rng, (P, F), di, -(1 << 31), 1 << 31) if di in INTS else values(rng, (P, F), di, -1e4, 1e4)

    def k(x):
        out = nl.ndarray(x.shape, do, buffer=nl.shared_hbm)
        if route == "hbm-hbm":
            nisa.dma_copy(dst=out, src=x, priority=prio)
        elif route == "hbm-sbuf-hbm":
            t = nl.ndarray(x.shape, do, buffer=nl.sbuf)
            nisa.dma_copy(dst=t, src=x, priority=prio)
            nisa.dma_copy(dst=out, src=t)
        else:
            a = nl.ndarray(x.shape, di, buffer=nl.sbuf)
            nisa.dma_copy(dst=a, src=x)
            t = nl.ndarray(x.shape, do, buffer=nl.sbuf)
            nisa.dma_copy(dst=t, src=a, priority=prio)
            nisa.dma_copy(dst=out, src=t)
        return out
    if prio is not None and tgt != "trn3":       # SPEC 3.2: priority is v4 only
        raises(k, (x,), "needs NeuronCore-v4", target=tgt)
        return
    got = run(k, x, target=tgt)
    want = x if di == do else dtypes.round_to(x.astype(np.float32), do)    # src -> fp32 -> dst
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))

    def from_psum(x):
        p = nl.ndarray((1, 1), nl.float32, buffer=nl.psum)
        out = nl.ndarray((1, 1), nl.float32, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=p)
        return out
    raises(from_psum, (x,), "DMA cannot access PSUM", target=tgt)


def case_dma_transpose(data):
    _, _, tgt, rng = _common(data)
    nd = data.draw(st.sampled_from((2, 3)))
    shape = tuple(data.draw(st.integers(1, 40 if nd == 2 else 8)) for _ in range(nd))
    dt = data.draw(st.sampled_from(ALL_FLOATS + INTS))
    axes = (1, 0) if nd == 2 else (2, 1, 0)
    x = values(rng, shape, dt, -100, 100)
    oshape = tuple(shape[a] for a in axes)
    if oshape[0] > 128:
        return

    def k(x):
        t = nl.ndarray(oshape, dt, buffer=nl.sbuf)
        nisa.dma_transpose(dst=t, src=x, axes=axes)
        out = nl.ndarray(oshape, dt, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=t)
        return out
    np.testing.assert_array_equal(run(k, x, target=tgt), x.transpose(axes))


def case_dma_compute(data):
    P, F, tgt, rng = _common(data)
    n = data.draw(st.integers(1, 16))
    dt, do = data.draw(st.sampled_from(ALL_FLOATS)), data.draw(st.sampled_from(ALL_FLOATS))
    xs = [values(rng, (P, F), dt, -10, 10) for _ in range(n)]
    stacked = np.stack(xs)

    def k(s):
        out = nl.ndarray((P, F), do, buffer=nl.shared_hbm)
        nisa.dma_compute(dst=out, srcs=[s[j] for j in range(n)], reduce_op=nl.add)
        return out
    got = run(k, stacked, target=tgt)
    s64 = stacked.astype(np.float64)
    expect(got, s64.sum(0), do, 1, fsum_bound(s64, 0), "dma_compute")     # summed in fp32

    def bad_scale(s):
        out = nl.ndarray((P, F), do, buffer=nl.shared_hbm)
        nisa.dma_compute(dst=out, srcs=[s[0]], reduce_op=nl.add, scales=[2.0])
        return out
    raises(bad_scale, (stacked,), "must all be 1.0", target=tgt)


# ---- TensorE -------------------------------------------------------------------------------------------
def case_nc_matmul(data):
    _, _, tgt, rng = _common(data)
    tgt = data.draw(st.sampled_from(("inf2", "trn2", "trn3")))
    K, M, N = data.draw(st.integers(1, 128)), data.draw(st.integers(1, 128)), data.draw(st.integers(1, 512))
    dt = data.draw(st.sampled_from(ALL_FLOATS))
    dto = data.draw(st.sampled_from(("float32", "bfloat16")))
    acc = data.draw(st.sampled_from((None, True, False)))
    a, b = values(rng, (K, M), dt, -2, 2), values(rng, (K, N), dt, -2, 2)

    def k(a, b):
        p = nl.ndarray((M, N), dto, buffer=nl.psum)
        sa, sb = load(a), load(b)
        nisa.nc_matmul(dst=p, stationary=sa, moving=sb)
        nisa.nc_matmul(dst=p, stationary=sa, moving=sb, accumulate=acc)
        return store(to_sbuf(p))
    if dto == "bfloat16" and tgt != "trn3":   # SPEC 3.2: bf16 PSUM results are v4 only
        raises(k, (a, b), "matmul results are written to PSUM as", target=tgt)
        return
    got = run(k, a, b, target=tgt)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    one = a64.T @ b64
    times = 1 if acc is False else 2           # None: the second write to the bank adds
    bound = (K + 2) * times * EPS * (np.abs(a64).T @ np.abs(b64))
    expect(got, one * times, dto, 1, bound, f"nc_matmul acc={acc}")


def case_nc_transpose(data):
    _, _, tgt, rng = _common(data)
    engine = data.draw(st.sampled_from(("tensor", "vector")))
    lim = 128 if engine == "tensor" else 32
    P, F = data.draw(st.integers(1, lim)), data.draw(st.integers(1, lim))
    dt = data.draw(st.sampled_from(ALL_FLOATS if engine == "tensor" else ALL_FLOATS + INTS))
    x = values(rng, (P, F), dt, -100, 100)

    def k(x):
        d = nl.ndarray((F, P), dt, buffer=nl.psum if engine == "tensor" else nl.sbuf)
        nisa.nc_transpose(dst=d, data=load(x), engine=getattr(nisa.engine, engine))
        return store(to_sbuf(d) if engine == "tensor" else d)
    np.testing.assert_array_equal(run(k, x, target=tgt), x.T)

    if engine == "vector":
        def too_big(x):
            d = nl.ndarray((33, 1), dt, buffer=nl.sbuf)
            nisa.nc_transpose(dst=d, data=nl.ndarray((1, 33), dt, buffer=nl.sbuf),
                              engine=nisa.engine.vector)
            return x
        raises(too_big, (x,), "exceeds the 32x32 limit of the Vector engine", target=tgt)
    else:
        other = "bfloat16" if dt != "bfloat16" else "float16"

        def cast(x):
            d = nl.ndarray((F, P), other, buffer=nl.psum)
            nisa.nc_transpose(dst=d, data=load(x), engine=nisa.engine.tensor)
            return x
        raises(cast, (x,), f"dst dtype {other} must equal data dtype {dt}", target=tgt)


# ---- registers, versions ---------------------------------------------------------------------------------
def _register_case(api):
    def case(data):
        _, _, tgt, rng = _common(data)
        v = data.draw(st.integers(-(1 << 31), (1 << 31) - 1))
        w = data.draw(st.integers(-1000, 1000))

        def k(src):
            t = nl.ndarray((1, 1), nl.int32, buffer=nl.sbuf)
            nisa.dma_copy(dst=t, src=src)
            r = nisa.register_alloc()              # register_alloc / register_load
            nisa.register_load(r, t)
            q = nisa.register_alloc(w)             # register_alloc(x) initialises
            s = nisa.register_alloc()
            nisa.register_move(s, r)               # register -> register
            o = nl.ndarray((1, 3), nl.int32, buffer=nl.sbuf)
            nisa.register_store(o[:, 0:1], s)
            nisa.register_store(o[:, 1:2], q)
            nisa.register_move(q, 5)               # immediate
            nisa.register_store(o[:, 2:3], q)
            return store(o)
        got = run(k, np.array([[v]], np.int32), target=tgt)
        np.testing.assert_array_equal(got, [[v, w, 5]])

        def wide(src):
            r = nisa.register_alloc(1)
            nisa.register_store(nl.ndarray((1, 2), nl.int32, buffer=nl.sbuf), r)
            return src
        raises(wide, (np.zeros((1, 1), np.int32),), "dst must hold one value", target=tgt)
    return case


def _version_case(api):
    def case(data):
        tgt = data.draw(st.sampled_from(("trn1", "inf2", "trn2", "trn3")))
        seen = {}

        def k(d):
            seen["v"], seen["s"] = nisa.get_nc_version(), nisa.get_nc_sub_version()
            return d
        run(k, ZERO, target=tgt)
        assert seen["v"] == {"trn1": 2, "inf2": 2, "trn2": 3, "trn3": 4}[tgt]
        assert seen["v"] == getattr(nisa.nc_version, f"gen{seen['v']}")
        assert seen["s"] in (0, 1)                 # SPEC 1.2: sub-version 0 or 1
    return case


# ---- LNC=2 ---------------------------------------------------------------------------------------------
def case_sendrecv(data):
    _, _, _, rng = _common(data)
    tgt = data.draw(st.sampled_from(("inf2", "trn2", "trn3")))
    P, h = data.draw(parts), data.draw(st.integers(1, 40))
    dt = data.draw(st.sampled_from(ALL_FLOATS + INTS))
    a = values(rng, (P, 2 * h), dt, -100, 100)

    def k(a):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        pid = nl.program_id(0)
        mine = nl.ndarray((P, h), a.dtype, buffer=nl.sbuf)
        theirs = nl.ndarray((P, h), a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=mine, src=a[:, pid * h:(pid + 1) * h])
        nisa.sendrecv(src=mine, dst=theirs, send_to_rank=1 - pid, recv_from_rank=1 - pid, pipe_id=0)
        nisa.dma_copy(dst=out[:, pid * h:(pid + 1) * h], src=theirs)
        return out
    if tgt == "inf2":                  # SPEC 3.2: v3+ (NeuronCore-v2 has no LNC=2 pairs)
        raises(k, (a,), "needs NeuronCore-v3 or later", target=tgt, lnc=2)
        return
    got = run(k, a, target=tgt, lnc=2)
    np.testing.assert_array_equal(got, np.concatenate([a[:, h:], a[:, :h]], axis=1))


def case_core_barrier(data):
    _, _, _, rng = _common(data)
    tgt = data.draw(st.sampled_from(("inf2", "trn2", "trn3")))
    r, F = data.draw(st.integers(1, 64)), data.draw(st.integers(1, 40))
    a = values(rng, (2 * r, F), "float32", -100, 100)

    def k(a):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        scratch = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        pid = nl.program_id(0)
        t = nl.ndarray((r, F), a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a[pid * r:(pid + 1) * r])
        nisa.dma_copy(dst=scratch[pid * r:(pid + 1) * r], src=t)
        nisa.core_barrier(scratch, (0, 1))
        nisa.dma_copy(dst=t, src=scratch[(1 - pid) * r:(2 - pid) * r])
        nisa.dma_copy(dst=out[pid * r:(pid + 1) * r], src=t)
        return out
    if tgt == "inf2":
        raises(k, (a,), "core_barrier needs NeuronCore-v3 or later", target=tgt, lnc=2)
        return
    np.testing.assert_array_equal(run(k, a, target=tgt, lnc=2), np.concatenate([a[r:], a[:r]]))


def other_cases():
    c = {"bn_stats": case_bn_stats, "bn_aggr": case_bn_aggr, "max8": case_max8,
         "nc_find_index8": case_nc_find_index8, "nc_match_replace8": case_nc_match_replace8,
         "nc_stream_shuffle": case_nc_stream_shuffle, "nc_n_gather": case_nc_n_gather,
         "local_gather": case_local_gather, "topk": case_topk, "dma_copy": case_dma_copy,
         "dma_transpose": case_dma_transpose, "dma_compute": case_dma_compute,
         "nc_matmul": case_nc_matmul, "nc_transpose": case_nc_transpose,
         "sendrecv": case_sendrecv, "core_barrier": case_core_barrier}
    c.update({n: _register_case(n) for n in ("register_alloc", "register_load", "register_move",
                                              "register_store")})
    c.update({n: _version_case(n) for n in ("get_nc_version", "get_nc_sub_version")})
    return c
