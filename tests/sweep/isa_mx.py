"""Sweep rows for the MX instructions (SPEC 3.2, mxfp-matmul deep dive): nc_matmul_mx, quantize_mx
and the packed x4 dtypes. References are written here independently of device/dtypes.py: x4
containers are unpacked with NumPy bit operations and ml_dtypes, scales are 2**(byte - 127)."""
from __future__ import annotations

import ml_dtypes
import numpy as np
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl

from isa_compute import EPS, _common
from isa_v4 import GEN4, V4_TARGETS
from sweep_helpers import expect, load, raises, run, store, to_sbuf

ELEM = {"float8_e5m2_x4": ml_dtypes.float8_e5m2, "float8_e4m3fn_x4": ml_dtypes.float8_e4m3fn,
        "float4_e2m1fn_x4": ml_dtypes.float4_e2m1fn}
HOST = {"float8_e5m2_x4": np.uint32, "float8_e4m3fn_x4": np.uint32, "float4_e2m1fn_x4": np.uint16}
EMAX = {"float8_e4m3fn_x4": 8, "float8_e5m2_x4": 15}


def unpack(raw, dt):
    """(..., ) containers -> (..., 4) float64 values."""
    bits = 4 if dt.startswith("float4") else 8
    raw = np.asarray(raw)
    if str(raw.dtype) == dt:                # kernels return x4 results as np.dtype(dt)
        raw = raw.view(HOST[dt])
    raw = raw.astype(np.uint32)
    codes = np.stack([(raw >> (bits * j)) & ((1 << bits) - 1) for j in range(4)], -1)
    return codes.astype(np.uint8).view(ELEM[dt]).astype(np.float64)


def random_codes(rng, shape, dt):
    """Random finite element codes packed into containers."""
    if dt.startswith("float4"):
        codes = rng.integers(0, 16, shape + (4,))
        return sum(codes[..., j].astype(np.uint32) << (4 * j) for j in range(4)).astype(np.uint16)
    vals = rng.standard_normal(shape + (4,)) * rng.choice([0.05, 1, 20], shape + (1,))
    codes = vals.astype(ELEM[dt]).view(np.uint8).astype(np.uint32)
    codes = np.where(np.isfinite(vals.astype(ELEM[dt]).astype(np.float64)), codes, 0)
    return sum(codes[..., j] << (8 * j) for j in range(4)).astype(np.uint32)


def scale_rows(P):
    p = np.arange(P)
    return 32 * (p // 32) + (p % 32) // 8


# ---- nc_matmul_mx --------------------------------------------------------------------------------------
def case_nc_matmul_mx(data):
    _, _, _, rng = _common(data)
    tgt = data.draw(V4_TARGETS)
    dto = data.draw(st.sampled_from(("float32", "bfloat16")))
    whole_psum = data.draw(st.sampled_from((False,) * 7 + (True,)))
    K = 32 if whole_psum else data.draw(st.sampled_from((32, 64, 128)))
    M = 2 * data.draw(st.integers(1, 4 if whole_psum else 64))
    # N up to the whole PSUM: 4096 fp32 / 8192 bf16 (nc_matmul_mx docs)
    N = (4096 if dto == "float32" else 8192) if whole_psum else \
        data.draw(st.one_of(st.integers(1, 64), st.integers(1, 600)))
    dts, dtm = data.draw(st.sampled_from(tuple(ELEM))), data.draw(st.sampled_from(tuple(ELEM)))
    sdt = data.draw(st.sampled_from(("float8_e8m0fnu", "uint8")))
    acc = data.draw(st.sampled_from((None, True, False)))
    compact = K == 32 and data.draw(st.booleans())
    off = 0 if compact else data.draw(st.sampled_from((0, 4, 8, 12)))
    tiled = data.draw(st.booleans())
    a, b = random_codes(rng, (K, M), dts), random_codes(rng, (K, N), dtm)
    rows = 4 if compact else 128
    # scale tiles: bytes 118..135 on the rows that hold scales, NaN (255) everywhere else, so a
    # read of an unused row would show
    sa = np.full((rows, M), 255, np.uint8)
    sb = np.full((rows, N), 255, np.uint8)
    used = np.unique(scale_rows(K)) + off
    sa[used] = rng.integers(118, 136, (len(used), M))
    sb[used] = rng.integers(118, 136, (len(used), N))

    def k(a, b, sa, sb):
        ta = load(a.view(dts))
        tb = load(b.view(dtm))
        ssa, ssb = load(sa.view(sdt))[off:], load(sb.view(sdt))[off:]
        p = nl.ndarray((M, N), dto, buffer=nl.psum)
        kw = dict(tile_position=(0, 0), tile_size=(K, 128)) if tiled else {}
        nisa.nc_matmul_mx(dst=p, stationary=ta, moving=tb, stationary_scale=ssa,
                          moving_scale=ssb, **kw)
        nisa.nc_matmul_mx(dst=p, stationary=ta, moving=tb, stationary_scale=ssa,
                          moving_scale=ssb, accumulate=acc, **kw)
        out = nl.ndarray((M, N), dto, buffer=nl.sbuf)
        for c in range(0, N, 2048):         # Vector reads of PSUM: <= 4K elements each
            e = min(c + 2048, N)
            nisa.tensor_copy(dst=out[:, c:e], src=p[:, c:e])
        return store(out)
    args = (a, b, sa, sb)
    if tgt != "trn3":
        raises(k, args, GEN4, target=tgt)
        return
    got = run(k, *args, target=tgt)
    A = unpack(a, dts) * np.exp2(sa[scale_rows(K) + off].astype(np.float64) - 127)[:, :, None]
    B = unpack(b, dtm) * np.exp2(sb[scale_rows(K) + off].astype(np.float64) - 127)[:, :, None]
    one = np.einsum("kmj,knj->mn", A, B)
    times = 1 if acc is False else 2
    bound = (4 * K + 2) * times * EPS * np.einsum("kmj,knj->mn", np.abs(A), np.abs(B))
    expect(got, one * times, dto, 1, bound, f"nc_matmul_mx {dts}x{dtm} acc={acc}")


def case_nc_matmul_mx_errors(data):
    _, _, _, rng = _common(data)
    bad = data.draw(st.sampled_from(("K96", "compact64", "offset16", "Modd", "column", "dtype",
                                     "scale_free")))
    K = {"K96": 96, "compact64": 64}.get(bad, 32)
    M = 3 if bad == "Modd" else 4
    a, b = random_codes(rng, (K, M), "float8_e4m3fn_x4"), random_codes(rng, (K, 8), "float8_e4m3fn_x4")
    # 16 rows for K=64: neither the compact form (K // 8 = 8 rows) nor the full extent (36)
    srows = 16 if bad == "compact64" else 128
    sa, sb = np.full((srows, M), 127, np.uint8), np.full((srows, 8), 127, np.uint8)

    def k(a, b, sa, sb):
        dt = "float8_e4m3fn_x4"
        ta, tb = load(a.view(dt)), load(b if bad == "dtype" else b.view(dt))
        ssa, ssb = load(sa), load(sb)
        if bad == "offset16":
            ssa = ssa[16:]
        if bad == "scale_free":
            ssb = ssb[:, :4]
        p = nl.ndarray((M, 8), nl.float32, buffer=nl.psum)
        kw = dict(tile_position=(0, 64), tile_size=(32, 64)) if bad == "column" else {}
        nisa.nc_matmul_mx(dst=p, stationary=ta, moving=tb, stationary_scale=ssa,
                          moving_scale=ssb, **kw)
        return store(to_sbuf(p))
    says = {"K96": "must be one of (32, 64, 128)", "compact64": "64 data partitions need 36",
            "offset16": "at offset 0, 4, 8 or 12", "Modd": "must be even",
            "column": "supports row tiling only", "dtype": "data must be x4-packed",
            "scale_free": "needs one scale per x4 column"}[bad]
    raises(k, (a, b, sa, sb), says, target="trn3")


# ---- quantize_mx ---------------------------------------------------------------------------------------
def quantize_reference(x, dt):
    """(P, F) values -> ((P, F/4, 4) element codes as float64 values, (P/8, F/4) scale bytes)."""
    P, F = x.shape
    g = x.astype(np.float64).reshape(P // 8, 8, F // 4, 4)
    amax = np.abs(g).max(axis=(1, 3))
    e = np.full(amax.shape, -127)
    nz = amax > 0
    e[nz] = np.floor(np.log2(amax[nz])).astype(int) - (EMAX[dt] - 1)
    e = np.clip(e, -127, 127)
    q = g / np.exp2(e)[:, None, :, None]
    q = q.astype(np.float32).astype(ELEM[dt]).astype(np.float64)
    return q.reshape(P, F // 4, 4), (e + 127).astype(np.uint8)


def case_quantize_mx(data):
    _, _, _, rng = _common(data)
    tgt = data.draw(V4_TARGETS)
    P = 32 * data.draw(st.integers(1, 4))
    F = 4 * data.draw(st.one_of(st.integers(1, 16), st.integers(1, 150)))
    sdt = data.draw(st.sampled_from(("float8_e8m0fnu", "uint8")))
    src_dt = data.draw(st.sampled_from(("bfloat16", "float16")))
    dt = data.draw(st.sampled_from(tuple(EMAX)))
    off = data.draw(st.sampled_from((0, 4, 8, 12)))
    # group magnitudes spread over many binades; some all-zero groups
    mag = np.exp2(rng.integers(-20, 12, (P // 8, 1, F // 4, 1))).astype(np.float64)
    mag[rng.random(mag.shape) < 0.1] = 0
    x = (rng.standard_normal((P // 8, 8, F // 4, 4)) * mag).reshape(P, F)
    x = x.astype(ml_dtypes.bfloat16 if src_dt == "bfloat16" else np.float16)

    def k(x):
        q = nl.ndarray((P, F // 4), dt, buffer=nl.sbuf)
        s = nl.ndarray((128, F // 4), sdt, buffer=nl.sbuf)
        nisa.memset(dst=s, value=0)
        nisa.quantize_mx(dst=q, src=load(x), dst_scale=s[off:])
        return store(q), store(s)
    if tgt != "trn3":
        raises(k, (x,), GEN4, target=tgt)
        return
    q, s = run(k, x, target=tgt)
    wq, ws = quantize_reference(x.astype(np.float64), dt)
    np.testing.assert_array_equal(unpack(q, dt), wq)
    sbytes = np.asarray(s).view(np.uint8)
    rows = np.unique(scale_rows(P)) + off
    np.testing.assert_array_equal(sbytes[rows], ws)
    others = np.setdiff1d(np.arange(128), rows)
    init = 255 if sdt == "float8_e8m0fnu" else 0       # memset 0: e8m0 has no zero (NaN byte)
    assert (sbytes[others] == init).all(), "quantize_mx wrote scale rows outside the group rows"
    # dequantized values are within half an element ulp of the source (no saturation)
    deq = unpack(q, dt) * np.exp2(ws.astype(np.float64) - 127).repeat(8, 0)[:, :, None]
    rel = {"float8_e4m3fn_x4": 2.0 ** -4, "float8_e5m2_x4": 2.0 ** -3}[dt]
    xs = x.astype(np.float64).reshape(P, F // 4, 4)
    amax = np.abs(xs).reshape(P // 8, 8, F // 4, 4).max(axis=(1, 3)).repeat(8, 0)[:, :, None]
    assert np.all(np.abs(deq - xs) <= rel * np.abs(xs) + amax * 2.0 ** -16)


def case_quantize_mx_errors(data):
    _, _, _, rng = _common(data)
    bad = data.draw(st.sampled_from(("fp4", "P48", "psum", "F6", "dst_free")))
    P, F = (48 if bad == "P48" else 32), (6 if bad == "F6" else 8)
    x = rng.standard_normal((P, F)).astype(ml_dtypes.bfloat16)

    def k(x):
        dt = "float4_e2m1fn_x4" if bad == "fp4" else "float8_e4m3fn_x4"
        q = nl.ndarray((P, 1 if bad == "dst_free" else max(F // 4, 1)), dt, buffer=nl.sbuf)
        s = nl.ndarray((P, max(F // 4, 1)), nl.uint8, buffer=nl.sbuf)
        src = load(x)
        if bad == "psum":
            ps = nl.ndarray(x.shape, x.dtype, buffer=nl.psum)
            nisa.tensor_copy(dst=ps, src=src)
            src = ps
        nisa.quantize_mx(dst=q, src=src, dst_scale=s)
        return store(q)
    says = {"fp4": "quantize_mx writes MXFP8 (no fp4)", "P48": "must be a multiple of 32",
            "psum": "needs it in SBUF", "F6": "must be a multiple of 4",
            "dst_free": "x4 elements per partition (src free / 4)"}[bad]
    raises(k, (x,), says, target="trn3")


# ---- the packed dtypes themselves ------------------------------------------------------------------------
def case_memset_x4(data):
    """x4 tiles: memset 0 clears them, DMA moves the containers bit-exactly, views reinterpret."""
    P, F, tgt, rng = _common(data, 64)
    dt = data.draw(st.sampled_from(tuple(ELEM)))
    raw = random_codes(rng, (P, F), dt)

    def k(x):
        t = load(x.view(dt))
        z = nl.ndarray(t.shape, dt, buffer=nl.sbuf)
        nisa.memset(dst=z, value=0)
        outs = []
        for tile in (t, z):
            o = nl.ndarray(tile.shape, x.dtype, buffer=nl.shared_hbm)
            nisa.dma_copy(dst=o.view(dt), src=tile)
            outs.append(o)
        return tuple(outs)
    same, zero = run(k, raw, target=tgt)
    assert same.dtype == HOST[dt]
    np.testing.assert_array_equal(same, raw)
    assert not zero.any()
    np.testing.assert_array_equal(unpack(same, dt), unpack(raw, dt))


def mx_cases():
    return {"nc_matmul_mx": case_nc_matmul_mx, "nc_matmul_mx[errors]": case_nc_matmul_mx_errors,
            "quantize_mx": case_quantize_mx, "quantize_mx[errors]": case_quantize_mx_errors,
            "memset[x4]": case_memset_x4}
