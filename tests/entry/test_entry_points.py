"""Ways into the emulator that match NKI: ``nki.simulate``, ``NKI_SIMULATOR``, the platform-target
override, ``NKI_PRECISE_FP``, in-place inputs, and NumPy / JAX arrays in and out."""
import ml_dtypes
import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl


def add_body(a, b):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    x = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    y = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=x, src=a)
    nisa.dma_copy(dst=y, src=b)
    nisa.tensor_tensor(dst=x, data1=x, data2=y, op=nl.add)
    nisa.dma_copy(dst=out, src=x)
    return out


add = nki.jit(add_body)
rng = np.random.default_rng(0)
A = rng.standard_normal((128, 64)).astype(np.float32)
B = rng.standard_normal((128, 64)).astype(np.float32)


def test_simulate_wraps_a_kernel_or_a_plain_function():
    np.testing.assert_allclose(nki.simulate(add)(A, B), A + B, rtol=1e-6)
    np.testing.assert_allclose(nki.simulate(add_body)(A, B), A + B, rtol=1e-6)
    assert isinstance(nki.simulate(add_body), nki.Kernel)


def test_nki_simulator_env_is_accepted_and_changes_nothing(monkeypatch):
    monkeypatch.setenv("NKI_SIMULATOR", "1")
    np.testing.assert_allclose(add(A, B), A + B, rtol=1e-6)
    from device.settings import settings
    assert settings().simulator is True


SEEN = []


def report_target(a):
    """Returns its input; records what the kernel saw at trace time."""
    SEEN.append((nisa.get_nc_version(), nl.tile_size.pmax, nl.tile_size.sbuf_fmax_bytes,
                 nl.tile_size.psum_bank_fmax, nl.tile_size.psum_num_banks))
    return a


@pytest.mark.parametrize("target, gen, sbuf", [
    ("trn1", 2, 176 * 1024), ("inf2", 2, 176 * 1024), ("gen2", 2, 176 * 1024),
    ("trn2", 3, 208 * 1024), ("gen3", 3, 208 * 1024), ("trn3", 4, 240 * 1024),
    ("gen4", 4, 240 * 1024)])
def test_platform_target_override_selects_the_generation(monkeypatch, target, gen, sbuf):
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", target)
    SEEN.clear()
    k = nki.jit(report_target)
    k(A)
    assert SEEN == [(nisa.nc_version(gen), 128, sbuf, 512, 8)]
    assert nl.tile_size.sbuf_fmax_bytes == sbuf              # outside a kernel too
    assert k.trace(A).arch.gen == gen


def test_default_target_is_inferentia2(monkeypatch):
    monkeypatch.delenv("NEURON_PLATFORM_TARGET_OVERRIDE", raising=False)
    assert nki.jit(report_target).trace(A).arch.name == "inf2"


def test_trace_cache_key_includes_the_target(monkeypatch):
    k = nki.jit(add_body)
    programs = {}
    for target in ("trn1", "trn2", "trn3", "trn1"):
        monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", target)
        np.testing.assert_allclose(k(A, B), A + B, rtol=1e-6)
        programs.setdefault(target, k.trace(A, B))
        assert k.trace(A, B) is programs[target]              # cached per target
    assert len(k._cache) == 3
    assert [p.arch.name for p in programs.values()] == ["trn1", "trn2", "trn3"]


@nki.jit
def through_bf16(a):
    out = nl.ndarray(a.shape, nl.float32, buffer=nl.shared_hbm)
    t = nl.ndarray(a.shape, nl.bfloat16, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=a)                # fp32 -> bf16
    nisa.dma_copy(dst=out, src=t)              # bf16 -> fp32
    return out


@pytest.mark.parametrize("precise", ["1", "0", None])
def test_nki_precise_fp(monkeypatch, precise):
    if precise is None:
        monkeypatch.delenv("NKI_PRECISE_FP", raising=False)    # the default is 1
    else:
        monkeypatch.setenv("NKI_PRECISE_FP", precise)
    x = np.array([[1 + 2 ** -10, 3.14159265, -1e-3, 65504.5]], np.float32)
    res = through_bf16(x)
    if precise == "0":
        np.testing.assert_array_equal(res, x)                     # stored as fp32: exact
    else:
        np.testing.assert_array_equal(res, x.astype(ml_dtypes.bfloat16).astype(np.float32))
        assert not np.array_equal(res, x)


@nki.jit
def scale_in_place(a, factor):
    t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=a)
    nisa.tensor_scalar(dst=t, data=t, op0=nl.multiply, operand0=factor)
    nisa.dma_copy(dst=a, src=t)


def test_inputs_modified_in_place_are_copied_back():
    a = A.copy()
    assert scale_in_place(a, 3.0) is None
    np.testing.assert_allclose(a, 3 * A, rtol=1e-6)
    b = B.copy()
    add(b, A)                                   # a kernel that does not write its inputs
    np.testing.assert_array_equal(b, B)


@nki.jit
def sum_and_difference(a, b):
    s = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    d = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    x = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    y = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=x, src=a)
    nisa.dma_copy(dst=y, src=b)
    r = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    nisa.tensor_tensor(dst=r, data1=x, data2=y, op=nl.add)
    nisa.dma_copy(dst=s, src=r)
    nisa.tensor_tensor(dst=r, data1=x, data2=y, op=nl.subtract)
    nisa.dma_copy(dst=d, src=r)
    return s, d


def test_numpy_in_numpy_out_with_tuples():
    s, d = sum_and_difference(A, B)
    assert type(s) is np.ndarray and s.dtype == np.float32 and s.shape == A.shape
    np.testing.assert_allclose(s, A + B, rtol=1e-6)
    np.testing.assert_allclose(d, A - B, rtol=1e-6)


def test_jax_arrays_in_jax_arrays_out():
    import jax
    import jax.numpy as jnp
    a, b = jnp.asarray(A), jnp.asarray(B.astype(ml_dtypes.bfloat16).astype(np.float32))
    out = add(a, b)
    assert isinstance(out, jax.Array) and out.dtype == jnp.float32 and out.shape == A.shape
    np.testing.assert_allclose(np.asarray(out), np.asarray(a) + np.asarray(b), rtol=1e-6)
    s, d = sum_and_difference(a, b)
    assert isinstance(s, jax.Array) and isinstance(d, jax.Array)
    np.testing.assert_allclose(np.asarray(d), np.asarray(a) - np.asarray(b), rtol=1e-6)
    h = jnp.asarray(A, dtype=jnp.bfloat16)
    out16 = nki.jit(add_body)(h, h)
    assert isinstance(out16, jax.Array) and out16.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(out16, np.float32),
                                  (np.asarray(h, np.float32) * 2).astype(ml_dtypes.bfloat16)
                                  .astype(np.float32))
