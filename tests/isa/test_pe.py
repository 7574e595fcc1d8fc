"""TensorE: fp8 double_row perf mode, bit-exact transpose mode, nc_transpose on PE and Vector."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from isa_helpers import (FLOATS, FP8, Line, assert_same, expect_error, f32, load, parts, rand,
                         rnd, run, store)


@given(P=parts, M=st.integers(1, 128), N=st.integers(1, 67), st_dt=st.sampled_from(FP8),
       mv_dt=st.sampled_from(FP8))
def test_matmul_double_row_fp8_on_trn2(P, M, N, st_dt, mv_dt):
    a, b = rand((P, 2, M), st_dt, 1, -2, 2), rand((P, 2, N), mv_dt, 2, -2, 2)

    def k(a, b):
        ps = nl.ndarray((M, N), "float32", buffer=nl.psum)
        nisa.nc_matmul(dst=ps, stationary=load(a), moving=load(b),
                       perf_mode=nisa.matmul_perf_mode.double_row)
        out = nl.ndarray((M, N), "float32", buffer=nl.sbuf)
        nisa.tensor_copy(dst=out, src=ps)
        return store(out)
    want = (f32(a).reshape(2 * P, M).astype(np.float64).T @ f32(b).reshape(2 * P, N)).astype(
        np.float32)
    np.testing.assert_allclose(run(k, a, b, target="trn2"), want, rtol=1e-6, atol=1e-6)


def test_matmul_double_row_checks():
    a8, b16 = rand((128, 2, 4), "float8_e4m3"), rand((128, 2, 4), "bfloat16")
    L = Line()

    def k(a, b):
        ps = nl.ndarray((4, 4), "float32", buffer=nl.psum)
        L.mark(); nisa.nc_matmul(dst=ps, stationary=load(a), moving=load(b), perf_mode=nisa.matmul_perf_mode.double_row)  # noqa: E702,E501
        return ps
    expect_error(k, (a8, a8), L, "perf-mode", "NeuronCore-v3 or newer", target="inf2")
    expect_error(k, (a8, b16), L, "double_row needs fp8 inputs", target="trn2")
    flat = rand((128, 8), "float8_e4m3")

    def k2(a):
        ps = nl.ndarray((4, 4), "float32", buffer=nl.psum)
        L.mark(); nisa.nc_matmul(dst=ps, stationary=load(a), moving=load(a), perf_mode=nisa.matmul_perf_mode.double_row)  # noqa: E702,E501
        return ps
    expect_error(k2, (flat,), L, "laid out [P, 2, F]", target="trn2")


@given(P=parts, F=st.integers(1, 128), dt=st.sampled_from(["bfloat16", "float16", "float32"]))
def test_matmul_transpose_mode_is_bit_exact_on_trn2(P, F, dt):
    x = rand((P, F), dt, 3)
    x[0, 0] = np.nan
    if P > 1:
        x[P - 1, F - 1] = np.inf

    def k(x):
        ident = nl.shared_identity_matrix(P, dtype=dt)
        idt = load(ident) if ident.buffer != nl.sbuf else ident
        ps = nl.ndarray((F, P), dt, buffer=nl.psum)
        nisa.nc_matmul(dst=ps, stationary=load(x), moving=idt, is_transpose=True)
        out = nl.ndarray((F, P), dt, buffer=nl.sbuf)
        nisa.tensor_copy(dst=out, src=ps)
        return store(out)
    got = run(k, x, target="trn2")
    assert got.tobytes() == np.ascontiguousarray(x.T).tobytes()


def test_matmul_transpose_mode_on_inf2_is_an_ordinary_matmul():
    x = rand((4, 3), "float32", 4)
    x[1, 1] = np.nan

    def k(x):
        ident = nl.shared_identity_matrix(4, dtype="float32")
        idt = load(ident) if ident.buffer != nl.sbuf else ident
        ps = nl.ndarray((3, 4), "float32", buffer=nl.psum)
        nisa.nc_matmul(dst=ps, stationary=load(x), moving=idt, is_transpose=True)
        out = nl.ndarray((3, 4), "float32", buffer=nl.sbuf)
        nisa.tensor_copy(dst=out, src=ps)
        return store(out)
    got = run(k, x, target="inf2")
    assert np.isnan(got[1]).all()                 # NaN * 0 spreads along the row on v2
    assert np.isnan(got).sum() == 4


@given(P=st.integers(1, 128), F=st.integers(1, 128), dt=st.sampled_from(FLOATS + FP8))
def test_nc_transpose_tensor_engine(P, F, dt):
    x = rand((P, F), dt, 5)

    def k(x):
        ps = nl.ndarray((F, P), dt, buffer=nl.psum)
        nisa.nc_transpose(dst=ps, data=load(x), engine=nisa.engine.tensor)
        out = nl.ndarray((F, P), dt, buffer=nl.sbuf)
        nisa.tensor_copy(dst=out, src=ps)
        return store(out)
    assert_same(run(k, x, target="trn2"), np.ascontiguousarray(x.T))


@given(P=st.integers(1, 32), F=st.integers(1, 32), dt=st.sampled_from(FLOATS + ["int32"]),
       tgt=st.sampled_from(["inf2", "trn2"]))
def test_nc_transpose_vector_engine(P, F, dt, tgt):
    x = rand((P, F), dt, 6)

    def k(x):
        out = nl.ndarray((F, P), dt, buffer=nl.sbuf)
        nisa.nc_transpose(dst=out, data=load(x), engine=nisa.engine.vector)
        return store(out)
    assert_same(run(k, x, target=tgt), np.ascontiguousarray(x.T))


def test_nc_transpose_limits():
    x = rand((40, 8), "float32")
    L = Line()

    def k(x):
        out = nl.ndarray((8, 40), "float32", buffer=nl.sbuf)
        L.mark(); nisa.nc_transpose(dst=out, data=load(x), engine=nisa.engine.vector)  # noqa: E702
        return store(out)
    expect_error(k, (x,), L, "transpose-size", "32x32")

    def k2(x):
        out = nl.ndarray((8, 40), "bfloat16", buffer=nl.psum)
        L.mark(); nisa.nc_transpose(dst=out, data=load(x), engine=nisa.engine.tensor)  # noqa: E702
        return out
    expect_error(k2, (x,), L, "dst dtype bfloat16 must equal data dtype float32")


def test_matmul_rejects_mixed_e4m3_flavours_on_trn3():
    a, b = rand((8, 4), "float8_e4m3"), rand((8, 4), "float8_e4m3fn")
    L = Line()

    def k(a, b):
        ps = nl.ndarray((4, 4), "float32", buffer=nl.psum)
        L.mark(); nisa.nc_matmul(dst=ps, stationary=load(a), moving=load(b))  # noqa: E702
        return ps
    expect_error(k, (a, b), L, "cannot be mixed", target="trn3")


def test_fp32_matmul_reference():
    a, b = rand((16, 8), "float32", 7), rand((16, 5), "float32", 8)

    def k(a, b):
        ps = nl.ndarray((8, 5), "float32", buffer=nl.psum)
        nisa.nc_matmul(dst=ps, stationary=load(a), moving=load(b))
        out = nl.ndarray((8, 5), "bfloat16", buffer=nl.sbuf)
        nisa.tensor_copy(dst=out, src=ps)
        return store(out)
    want = (a.astype(np.float64).T @ b.astype(np.float64)).astype(np.float32)
    assert_same(run(k, a, b), rnd(want, "bfloat16"))


def test_matmul_perf_mode_value_strings_and_refusal():
    """The nki-library passes perf_mode as the enum's value string ('double_row' / 'none'): both
    spellings run like the members; any other value is refused with its rule, not run as a plain
    matmul."""
    a, b = rand((64, 2, 8), "float8_e4m3", 5, -2, 2), rand((64, 2, 16), "float8_e5m2", 6, -2, 2)

    def k(a, b, pm):
        ps = nl.ndarray((8, 16), "float32", buffer=nl.psum)
        nisa.nc_matmul(dst=ps, stationary=load(a), moving=load(b), perf_mode=pm)
        out = nl.ndarray((8, 16), "float32", buffer=nl.sbuf)
        nisa.tensor_copy(dst=out, src=ps)
        return store(out)
    want = (f32(a).reshape(128, 8).astype(np.float64).T @ f32(b).reshape(128, 16)).astype(np.float32)
    for pm in ("double_row", nisa.matmul_perf_mode.double_row):
        np.testing.assert_allclose(run(lambda a, b: k(a, b, pm), a, b, target="trn2"), want,
                                   rtol=1e-6, atol=1e-6)
    flat_a, flat_b = rand((64, 8), "bfloat16", 7), rand((64, 16), "bfloat16", 8)
    want2 = (f32(flat_a).astype(np.float64).T @ f32(flat_b)).astype(np.float32)
    for pm in ("none", nisa.matmul_perf_mode.none, None):
        np.testing.assert_allclose(run(lambda a, b: k(a, b, pm), flat_a, flat_b, target="trn2"),
                                   want2, rtol=1e-6, atol=1e-6)
    L = Line()

    def bad(a, b):
        ps = nl.ndarray((8, 16), "float32", buffer=nl.psum)
        L.mark(); nisa.nc_matmul(dst=ps, stationary=load(a), moving=load(b), perf_mode="double_row_gen3")  # noqa: E702,E501
        return ps
    expect_error(bad, (a, b), L, "perf-mode", "'double_row_gen3'", "'none' / 'double_row'", target="trn2")
