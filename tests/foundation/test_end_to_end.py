"""Issue 2 'done means': tile kernels, whole-tensor models and imported HLO share one path."""
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

import neuron
import nki
import nki.isa as nisa
import nki.language as nl

bf16 = ml_dtypes.bfloat16


@nki.jit
def tensor_add_kernel(a_input, b_input):
    """256x1024 add in [128, 512] tiles with affine_range, dma_copy and tensor_tensor."""
    c_output = nl.ndarray(a_input.shape, dtype=a_input.dtype, buffer=nl.shared_hbm)
    M, N = a_input.shape
    TILE_M, TILE_N = 128, 512
    for m in nl.affine_range(M // TILE_M):
        for n in nl.affine_range(N // TILE_N):
            a_tile = nl.ndarray((TILE_M, TILE_N), dtype=a_input.dtype, buffer=nl.sbuf)
            b_tile = nl.ndarray((TILE_M, TILE_N), dtype=b_input.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=a_tile, src=a_input[m * TILE_M:(m + 1) * TILE_M, n * TILE_N:(n + 1) * TILE_N])
            nisa.dma_copy(dst=b_tile, src=b_input[m * TILE_M:(m + 1) * TILE_M, n * TILE_N:(n + 1) * TILE_N])
            c_tile = nl.ndarray((TILE_M, TILE_N), dtype=a_input.dtype, buffer=nl.sbuf)
            nisa.tensor_tensor(dst=c_tile, data1=a_tile, data2=b_tile, op=nl.add)
            nisa.dma_copy(dst=c_output[m * TILE_M:(m + 1) * TILE_M, n * TILE_N:(n + 1) * TILE_N], src=c_tile)
    return c_output


@nki.jit
def matmul_tiled(lhsT, rhs):
    """[K, M]^T @ [K, N] with K accumulated in one PSUM bank over several tiles."""
    K, M = lhsT.shape
    _, N = rhs.shape
    result = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.shared_hbm)
    for m in nl.affine_range(M // 128):
        for n in nl.affine_range(N // 512):
            res_psum = nl.ndarray((128, 512), dtype=nl.float32, buffer=nl.psum)
            for k in nl.affine_range(K // 128):
                lhsT_tile = nl.ndarray((128, 128), dtype=lhsT.dtype, buffer=nl.sbuf)
                rhs_tile = nl.ndarray((128, 512), dtype=rhs.dtype, buffer=nl.sbuf)
                nisa.dma_copy(dst=lhsT_tile, src=lhsT[k * 128:(k + 1) * 128, m * 128:(m + 1) * 128])
                nisa.dma_copy(dst=rhs_tile, src=rhs[k * 128:(k + 1) * 128, n * 512:(n + 1) * 512])
                nisa.nc_matmul(dst=res_psum, stationary=lhsT_tile, moving=rhs_tile)
            res_sb = nl.ndarray((128, 512), dtype=nl.float32, buffer=nl.sbuf)
            nisa.tensor_copy(dst=res_sb, src=res_psum)
            nisa.dma_copy(dst=result[m * 128:(m + 1) * 128, n * 512:(n + 1) * 512], src=res_sb)
    return result


def test_tensor_add_tile_kernel_matches_numpy_both_ways():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 1024)).astype(np.float16)
    b = rng.standard_normal((256, 1024)).astype(np.float16)
    expect = (a.astype(np.float32) + b.astype(np.float32)).astype(np.float16)
    out = tensor_add_kernel(a, b)
    assert out.dtype == np.float16 and out.shape == (256, 1024)
    np.testing.assert_array_equal(out, expect)         # fp32 add rounded once to fp16: exact
    np.testing.assert_array_equal(nki.simulate(tensor_add_kernel)(a, b), expect)


def test_tiled_matmul_bf16_psum_accumulation_matches_numpy():
    rng = np.random.default_rng(1)
    lhsT = rng.standard_normal((512, 256)).astype(bf16)      # K = 4 tiles of 128
    rhs = rng.standard_normal((512, 1024)).astype(bf16)
    expect = lhsT.astype(np.float32).T @ rhs.astype(np.float32)
    for run in (matmul_tiled, nki.simulate(matmul_tiled)):
        out = run(lhsT, rhs)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-4)


@neuron.jit
def exp_matmul_model(x, w):
    return nl.exp(nl.matmul(x, w))


def test_whole_tensor_model_odd_shapes():
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((200, 300)) * 0.05).astype(np.float32)
    w = (rng.standard_normal((300, 700)) * 0.05).astype(np.float32)
    out = exp_matmul_model(x, w)
    assert isinstance(out, np.ndarray) and out.shape == (200, 700)
    np.testing.assert_allclose(out, np.exp(x @ w), rtol=1e-5)
    text = exp_matmul_model.lower(x, w)
    assert "= dot(%x, %w)" in text and "= exp(" in text and "nc_matmul[PE]" in text


def _jax_f(x, w, b):
    import jax.numpy as jnp
    return jnp.exp(x @ w + b)


@neuron.jit
def exp_affine_model(x, w, b):
    return nl.exp(nl.add(nl.matmul(x, w), b))


def test_hlo_import_matches_jax_and_the_dsl_graph():
    import jax
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((200, 300)) * 0.05).astype(np.float32)
    w = (rng.standard_normal((300, 700)) * 0.05).astype(np.float32)
    b = (rng.standard_normal((700,)) * 0.1).astype(np.float32)
    text = jax.jit(_jax_f).lower(x, w, b).as_text(dialect="hlo")
    f = neuron.load_hlo(text)
    out = f(x, w, b)
    np.testing.assert_allclose(out, np.asarray(jax.jit(_jax_f)(x, w, b)), rtol=2e-5, atol=1e-6)
    imported = str(f.graph)
    dsl = exp_affine_model.lower(x, w, b).split("\n\n")[0]

    def ops(text):
        return [line.split("=", 1)[1].split("(")[0].strip() for line in text.splitlines()
                if line.strip().startswith("%")]
    assert ops(imported) == ops(dsl) == ["dot", "broadcast", "add", "exp"]
    np.testing.assert_allclose(exp_affine_model(x, w, b), out, rtol=1e-6)


@given(m=st.integers(1, 300), n=st.integers(1, 700),
       dtype=st.sampled_from([np.float32, np.float16, bf16]))
def test_property_elementwise_model(m, n, dtype):
    rng = np.random.default_rng(m * 1000 + n)
    a = rng.standard_normal((m, n)).astype(dtype)
    b = rng.standard_normal((m, n)).astype(dtype)

    @neuron.jit
    def f(a, b):
        return nl.multiply(nl.add(a, b), a)
    out = f(a, b)
    ref = ((a.astype(np.float32) + b.astype(np.float32)).astype(dtype).astype(np.float32)
           * a.astype(np.float32)).astype(dtype)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, ref)     # each op rounds once to dtype, like the engines


@given(m=st.integers(1, 260), k=st.integers(1, 300), n=st.integers(1, 600),
       dtype=st.sampled_from([np.float32, bf16]))
def test_property_matmul_model(m, k, n, dtype):
    rng = np.random.default_rng(m + 7 * k + 13 * n)
    x = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((k, n)).astype(dtype)

    @neuron.jit
    def f(x, w):
        return nl.matmul(x, w)
    out = f(x, w)
    ref = x.astype(np.float32) @ w.astype(np.float32)
    np.testing.assert_allclose(out.astype(np.float32), ref.astype(dtype).astype(np.float32),
                               rtol=1e-2 if dtype is bf16 else 1e-5, atol=1e-3 * np.sqrt(k))


@given(kt=st.integers(1, 4), mt=st.integers(1, 2), nt=st.integers(1, 2),
       dtype=st.sampled_from([bf16, np.float16, np.float32]))
def test_property_matmul_tile_kernel(kt, mt, nt, dtype):
    rng = np.random.default_rng(kt * 100 + mt * 10 + nt)
    lhsT = rng.standard_normal((128 * kt, 128 * mt)).astype(dtype)
    rhs = rng.standard_normal((128 * kt, 512 * nt)).astype(dtype)
    out = matmul_tiled(lhsT, rhs)
    ref = lhsT.astype(np.float64).T @ rhs.astype(np.float64)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-3)
