"""Sweep rows for the random-number instructions and the GpSimd index builders (SPEC 3.2): rng,
set_rng_seed, rand_set_state, rand_get_state, rand2, nonzero_with_count, sequence_bounds.

The XORWOW reference below follows Marsaglia's recurrence element by element (five xorshift words
and a Weyl counter per generator; VectorE lanes hold four generators used round-robin). With
rand_set_state the state is explicit, so sequences are checked exactly; set_rng_seed's expansion
of one seed is emulator-defined, so its rows check reproducibility and bit balance instead.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl

from isa_compute import ENG, _common
from isa_v4 import GEN4, V4_TARGETS
from sweep_helpers import INTS, expect, load, npdt, raises, run, store, values

GEN3 = "is available on NeuronCore-v3 and newer only"
WORDS = {"gpsimd": 6, "vector": 24}


def xorwow_ref(state, n):
    """(P, 6g) uint32 state -> ((P, n) uint32 outputs, final state); element f uses gen f % g."""
    s = np.array(state, np.uint64)
    g = s.shape[1] // 6
    out = np.zeros((s.shape[0], n), np.uint64)
    m = np.uint64(0xFFFFFFFF)
    for f in range(n):
        b = 6 * (f % g)
        x, y, z, w, v, d = (s[:, b + j].copy() for j in range(6))
        t = x ^ (x >> np.uint64(2))
        v_new = ((v ^ (v << np.uint64(4))) & m) ^ ((t ^ (t << np.uint64(1))) & m)
        d = (d + np.uint64(362437)) & m
        s[:, b:b + 6] = np.stack([y, z, w, v, v_new, d], 1)     # (x,y,z,w,v) <- (y,z,w,v,v')
        out[:, f] = (v_new + d) & m
    return out.astype(np.uint32), s.astype(np.uint32)


def _settable(tgt, eng):
    return (tgt == "trn2" and eng == "gpsimd") or tgt == "trn3"


def case_rng(data):
    P, F, _, rng = _common(data, 40)
    tgt = data.draw(V4_TARGETS)
    eng = data.draw(st.sampled_from(("vector", "gpsimd")))
    dt = data.draw(st.sampled_from(INTS))
    st0 = rng.integers(0, 2 ** 32, (P, WORDS[eng]), dtype=np.uint64).astype(np.uint32)
    seed = np.array([[int(rng.integers(0, 2 ** 31))]], np.int32)
    explicit = _settable(tgt, eng)

    def k(s0, seed):
        if explicit:
            nisa.rand_set_state(src_seeds=load(s0), engine=ENG[eng])
        else:
            nisa.set_rng_seed(src_seeds=load(seed))
        a, b = (nl.ndarray((P, F), dt, buffer=nl.sbuf) for _ in range(2))
        nisa.rng(dst=a, engine=ENG[eng])
        nisa.rng(dst=b, engine=ENG[eng])
        fin = nl.ndarray((P, WORDS[eng]), nl.uint32, buffer=nl.sbuf)
        if explicit:
            nisa.rand_get_state(dst=fin, engine=ENG[eng])
        else:
            nisa.memset(dst=fin, value=0)
        return store(a), store(b), store(fin)
    if eng == "gpsimd" and tgt == "inf2":       # rng docs: GpSimd needs NeuronCore-v3
        raises(k, (st0, seed), "rng runs on Vector on inf2", target=tgt)
        return
    a, b, fin = run(k, st0, seed, target=tgt)
    if explicit:
        first, mid = xorwow_ref(st0, F)           # each instruction starts at generator 0
        second, final = xorwow_ref(mid, F)
        bits = np.concatenate([first, second], 1)
        width = f"uint{8 * npdt(dt).itemsize}"
        want = bits.astype(width).view(npdt(dt))       # the least significant bits
        np.testing.assert_array_equal(np.concatenate([a, b], 1), want)
        np.testing.assert_array_equal(fin, final)
        return
    a2, b2, _ = run(k, st0, seed, target=tgt)          # same seed: same sequence
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)
    u = np.concatenate([a, b], 1).view(f"uint{8 * npdt(dt).itemsize}")
    nbits = 8 * u.dtype.itemsize
    ones = sum(((u >> k_) & 1).sum() for k_ in range(nbits)) / (u.size * nbits)
    assert abs(ones - 0.5) <= 6 * np.sqrt(0.25 / (u.size * nbits)), ones


def case_set_rng_seed(data):
    P, F, tgt, rng = _common(data, 32)
    sdt = data.draw(st.sampled_from(("int32", "uint32", "float32", "int16")))
    shape = data.draw(st.sampled_from(((1, 1), (1, 1), (1, 2))))
    seeds = rng.integers(0, 1000, (2,) + shape).astype(npdt(sdt))
    seeds[1] = seeds[0] + 1

    def k(s):
        nisa.set_rng_seed(src_seeds=load(s))
        r = nl.ndarray((P, F), nl.uint32, buffer=nl.sbuf)
        nisa.rng(dst=r)
        return store(r)
    if shape != (1, 1):                  # the shape is checked before the dtype
        raises(k, (seeds[0],), "src_seeds must be a [1, 1] tensor", target=tgt)
        return
    if sdt == "int16":
        raises(k, (seeds[0],), "src_seeds must hold a 32-bit value", target=tgt)
        return
    r0, r0b, r1 = (run(k, s, target=tgt) for s in (seeds[0], seeds[0], seeds[1]))
    np.testing.assert_array_equal(r0, r0b)
    assert P * F < 3 or not np.array_equal(r0, r1), "different seeds gave the same sequence"


def case_rand_set_state(data):
    P, _, _, rng = _common(data, 8)
    tgt = data.draw(V4_TARGETS)
    eng = data.draw(st.sampled_from(("vector", "gpsimd")))
    words = data.draw(st.sampled_from((WORDS[eng], WORDS[eng], 6 if eng == "vector" else 24)))
    s0 = rng.integers(0, 2 ** 32, (P, words), dtype=np.uint64).astype(np.uint32)

    def k(s0):
        nisa.rand_set_state(src_seeds=load(s0), engine=ENG[eng])
        out = nl.ndarray(s0.shape, nl.uint32, buffer=nl.sbuf)
        nisa.rand_get_state(dst=out, engine=ENG[eng])
        return store(out)
    if tgt == "inf2":
        raises(k, (s0,), GEN3, target=tgt)
    elif eng == "vector" and tgt == "trn2":
        raises(k, (s0,), "rand_set_state runs on GpSimd on trn2", target=tgt)
    elif words != WORDS[eng]:
        raises(k, (s0,), f"must hold {WORDS[eng]} uint32 state words", target=tgt)
    else:
        np.testing.assert_array_equal(run(k, s0, target=tgt), s0)


def case_rand_get_state(data):
    P, _, _, rng = _common(data, 8)
    tgt = data.draw(st.sampled_from(("trn2", "trn3")))
    eng = data.draw(st.sampled_from(("vector", "gpsimd")))
    psum = data.draw(st.booleans())
    s0 = rng.integers(0, 2 ** 32, (P, WORDS[eng]), dtype=np.uint64).astype(np.uint32)

    def k(s0):
        nisa.rand_set_state(src_seeds=load(s0), engine=ENG[eng])
        out = nl.ndarray(s0.shape, nl.uint32, buffer=nl.psum if psum else nl.sbuf)
        nisa.rand_get_state(dst=out, engine=ENG[eng])
        sb = nl.ndarray(s0.shape, nl.uint32, buffer=nl.sbuf)
        nisa.tensor_copy(dst=sb, src=out)
        return store(sb)
    if eng == "vector" and tgt == "trn2":
        raises(k, (s0,), "rand_set_state runs on GpSimd on trn2", target=tgt)
    elif psum and (tgt == "trn2" or eng == "gpsimd"):   # PSUM: v4 Vector only
        raises(k, (s0,), "PSUM", target=tgt)
    else:
        np.testing.assert_array_equal(run(k, s0, target=tgt), s0)


RAND2_OUT = ("float8_e4m3", "float8_e5m2", "float16", "bfloat16", "float32", "int8", "int32",
             "uint16")


def case_rand2(data):
    P, F, _, rng = _common(data, 64)
    tgt = data.draw(V4_TARGETS)
    dt = data.draw(st.sampled_from(RAND2_OUT + ("float8_e4m3fn",)))
    col = data.draw(st.booleans())
    lo = values(rng, (P, 1), "float32", -50, 0)
    hi = lo + values(rng, (P, 1), "float32", 0.5, 100)
    st0 = rng.integers(0, 2 ** 32, (P, 24), dtype=np.uint64).astype(np.uint32)

    def k(s0, lo_t, hi_t):
        r = nl.ndarray((P, F), dt, buffer=nl.sbuf)
        if tgt == "trn3":
            nisa.rand_set_state(src_seeds=load(s0), engine=nisa.engine.vector)
        nisa.rand2(dst=r, min=load(lo_t) if col else float(lo[0, 0]),
                   max=load(hi_t) if col else float(hi[0, 0]))
        return store(r)
    args = (st0, lo, hi)
    if tgt != "trn3":
        raises(k, args, GEN4, target=tgt)
        return
    if dt == "float8_e4m3fn":
        raises(k, args, "rand2 writes", target=tgt)
        return
    bits, _ = xorwow_ref(st0, F)
    u = (bits >> 8).astype(np.float32) * np.float32(2.0 ** -24)
    l, h = (lo, hi) if col else (lo[0, 0], hi[0, 0])
    want = (l + u * (h - l).astype(np.float32)).astype(np.float32)
    got = run(k, *args, target=tgt)
    expect(got, want.astype(np.float64), dt, 0, 0, "rand2")

    def empty_range(s0, lo, hi):
        r = nl.ndarray((P, F), nl.float32, buffer=nl.sbuf)
        nisa.rand2(dst=r, min=1.0, max=1.0)
        return store(r)
    raises(empty_range, args, "needs min < max", target=tgt)


# ---- GpSimd index builders --------------------------------------------------------------------------------
def case_nonzero_with_count(data):
    P, F, _, rng = _common(data, 100)
    tgt = data.draw(V4_TARGETS)
    dt = data.draw(st.sampled_from(("float32", "int32")))
    off, pad = data.draw(st.integers(-100, 1000)), data.draw(st.integers(-5, 5))
    x = values(rng, (P, F), dt, -3, 3) * (rng.random((P, F)) < data.draw(
        st.sampled_from((0.0, 0.3, 1.0)))).astype(npdt(dt))
    bad = data.draw(st.sampled_from((False, False, True)))

    def k(x):
        r = nl.ndarray((P, F + (2 if bad else 1)), nl.int32, buffer=nl.sbuf)
        nisa.memset(dst=r, value=-7)
        nisa.nonzero_with_count(dst=r, src=load(x), index_offset=off, padding_val=pad)
        return store(r)
    if tgt == "inf2":
        raises(k, (x,), GEN3, target=tgt)
        return
    if bad:
        raises(k, (x,), "dst must have exactly one more element per partition", target=tgt)
        return
    got = run(k, x, target=tgt)
    want = np.full((P, F + 1), -7, np.int64)
    for p in range(0, P, 16):              # GpSimd cores read and write partitions 0, 16, ..., 112
        nz = [j + off for j in range(F) if x[p, j] != 0]
        want[p] = nz + [pad] * (F - len(nz)) + [len(nz)]
    np.testing.assert_array_equal(got, want)


def bounds_reference(ids):
    """Per element: start and end (exclusive) of its run of equal ids; id 0 -> (n, -1)."""
    n = len(ids)
    lo, hi = np.zeros(n), np.zeros(n)
    for j in range(n):
        if ids[j] == 0:
            lo[j], hi[j] = n, -1
            continue
        a = j
        while a > 0 and ids[a - 1] == ids[j]:
            a -= 1
        b = j + 1
        while b < n and ids[b] == ids[j]:
            b += 1
        lo[j], hi[j] = a, b
    return np.stack([lo, hi])[None]


def case_sequence_bounds(data):
    _, N, tgt, rng = _common(data, 300)
    dti, dto = data.draw(st.sampled_from(("float32", "int32"))), \
        data.draw(st.sampled_from(("float32", "int32")))
    ids = np.sort(rng.integers(0, max(2, N // 3), N))
    ids[rng.random(N) < 0.1] = 0
    ids = ids.reshape(1, N).astype(npdt(dti))
    two = data.draw(st.sampled_from((False, False, True)))

    def k(s):
        t = load(s)
        if two:
            t = nl.ndarray((2, N), dti, buffer=nl.sbuf)
            nisa.memset(dst=t, value=1)
        r = nl.ndarray((t.shape[0], 2, N), dto, buffer=nl.sbuf)
        nisa.sequence_bounds(dst=r, segment_ids=t)
        return store(r)
    if two:
        raises(k, (ids,), "sequence_bounds works on one partition", target=tgt)
        return
    expect(run(k, ids, target=tgt), bounds_reference(ids[0]), dto, 0, 0, "sequence_bounds")


def rand_cases():
    return {"rng": case_rng, "set_rng_seed": case_set_rng_seed,
            "rand_set_state": case_rand_set_state, "rand_get_state": case_rand_get_state,
            "rand2": case_rand2, "nonzero_with_count": case_nonzero_with_count,
            "sequence_bounds": case_sequence_bounds}
