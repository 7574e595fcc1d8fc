"""MX x4 data on the host: ``device.dtypes.host_x4`` tags the raw container (uint32 / uint16) with
its element type, and a kernel takes such an array as an HBM tensor of that x4 dtype (its bits
unchanged), so MX weights can be passed as fp8x4 rather than as anonymous uint32 words."""
import ml_dtypes
import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device import dtypes as D
from device.errors import HardwareRuleError


def _quantized_matmul():
    @nki.jit(target="trn3")
    def kernel(w, w_scale, x, x_scale):
        seen.append(str(w.dtype))
        wt = nl.ndarray(w.shape, w.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=wt, src=w)
        xt = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=xt, src=x)
        ws = nl.ndarray(w_scale.shape, nl.uint8, buffer=nl.sbuf)
        nisa.dma_copy(dst=ws, src=w_scale)
        xs = nl.ndarray(x_scale.shape, nl.uint8, buffer=nl.sbuf)
        nisa.dma_copy(dst=xs, src=x_scale)
        p = nl.ndarray((x.shape[1], w.shape[1]), nl.float32, buffer=nl.psum)
        nisa.nc_matmul_mx(dst=p, stationary=xt, moving=wt, stationary_scale=xs, moving_scale=ws)
        o = nl.ndarray(p.shape, nl.float32, buffer=nl.sbuf)
        nisa.tensor_copy(dst=o, src=p)
        out = nl.ndarray(p.shape, nl.float32, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=o)
        return out
    seen = []
    return kernel, seen


def test_a_host_x4_argument_is_an_x4_tensor_with_its_bits():
    rng = np.random.default_rng(3)
    K, M, N = 32, 16, 8
    wv = rng.uniform(-4, 4, (K, N, 4)).astype(ml_dtypes.float8_e4m3fn).astype(np.float32)
    xv = rng.uniform(-4, 4, (K, M, 4)).astype(ml_dtypes.float8_e4m3fn).astype(np.float32)
    w = D.pack_x4(wv, "float8_e4m3fn_x4").view(D.host_x4("float8_e4m3fn_x4"))
    x = D.pack_x4(xv, "float8_e4m3fn_x4").view(D.host_x4("float8_e4m3fn_x4"))
    one = np.full((K, N), 127, np.uint8), np.full((K, M), 127, np.uint8)   # scale 2**0
    kernel, seen = _quantized_matmul()
    got = kernel(w, one[0], x, one[1])
    assert seen == ["float8_e4m3fn_x4"]
    np.testing.assert_allclose(got, np.einsum("kmj,knj->mn", xv, wv), rtol=1e-6)


def test_host_x4_names_the_type_and_refuses_other_dtypes():
    d = D.host_x4("float4_e2m1fn_x4")
    assert D.normalize(d) == "float4_e2m1fn_x4" and d.itemsize == 2 and "x4" in str(d)
    with pytest.raises(TypeError, match="host_x4 needs an MX x4 dtype .* got 'bfloat16'"):
        D.host_x4("bfloat16")


def test_plain_uint32_stays_uint32_and_other_structured_dtypes_are_refused():
    @nki.jit(target="trn3")
    def kernel(a):
        seen.append(str(a.dtype))
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a)
        nisa.dma_copy(dst=out, src=t)
        return out
    seen = []
    kernel(np.zeros((2, 4), np.uint32))
    assert seen == ["uint32"]
    odd = np.zeros((2, 4), np.uint32).view(np.dtype((np.uint32, [("mine", np.uint32)])))
    with pytest.raises(HardwareRuleError, match="argument 'a' of kernel has dtype"):
        kernel(odd)
