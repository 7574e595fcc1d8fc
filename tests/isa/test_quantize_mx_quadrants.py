"""quantize_mx's scales live in the quadrant of the x4 data they describe (dst), which may start in
another quadrant than src: the NKI library's quantize_mxfp8 quantizes a K-remainder tile read from
partition 0 into data and scales at partition 64."""
import ml_dtypes
import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device import dtypes as D
from device.errors import HardwareRuleError
from device.isa.mx import quantize


def _kernel(dst_p0, scale_p0):
    @nki.jit(target="trn3")
    def k(src):
        P, F = src.shape
        s = nl.ndarray((P, F), src.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=s, src=src)
        d = nl.ndarray((128, F // 4), nl.float8_e4m3fn_x4, buffer=nl.sbuf)
        sc = nl.ndarray((128, F // 4), nl.uint8, buffer=nl.sbuf)
        nisa.memset(dst=sc, value=0)
        nisa.quantize_mx(dst=d[dst_p0:dst_p0 + P], src=s, dst_scale=sc[scale_p0:scale_p0 + P])
        od = nl.ndarray((P, F // 4), nl.float8_e4m3fn_x4, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=od, src=d[dst_p0:dst_p0 + P])
        osc = nl.ndarray((128, F // 4), nl.uint8, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=osc, src=sc)
        return od, osc
    return k


@pytest.mark.parametrize("dst_p0,slot", [(64, 0), (64, 4), (32, 12), (0, 8)])
def test_data_and_scales_in_another_quadrant_than_src(dst_p0, slot):
    src = np.random.default_rng(dst_p0 + slot).normal(0, 2, (32, 16)).astype(ml_dtypes.bfloat16)
    data, scales = _kernel(dst_p0, dst_p0 + slot)(src)
    want_data, want_scale = quantize(src.astype(np.float64), "float8_e4m3fn_x4")
    np.testing.assert_array_equal(D.raw_bits(data), want_data)
    rows = dst_p0 + slot + np.arange(4)
    np.testing.assert_array_equal(scales[rows], want_scale)
    assert not np.delete(scales, rows, axis=0).any()


def test_scales_outside_the_data_quadrant_are_refused():
    src = np.zeros((32, 16), ml_dtypes.bfloat16)
    with pytest.raises(HardwareRuleError, match=r"mx-scale-layout: .*'dst_scale' starts at partition "
                       r"0; scales must start in the quadrant of 'dst' \(partition 64\)"):
        _kernel(64, 0)(src)


def test_a_compact_scale_view_receives_the_quadrant_rows():
    # 128 partitions: a 16-row dst_scale view names rows 0-3, 32-35, 64-67, 96-99 of its tile
    @nki.jit(target="trn3")
    def k(src):
        s = nl.ndarray((128, 16), src.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=s, src=src)
        d = nl.ndarray((128, 4), nl.float8_e5m2_x4, buffer=nl.sbuf)
        sc = nl.ndarray((128, 4), nl.uint8, buffer=nl.sbuf)
        nisa.memset(dst=sc, value=0)
        nisa.quantize_mx(dst=d, src=s, dst_scale=sc[0:16])
        osc = nl.ndarray((128, 4), nl.uint8, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=osc, src=sc)
        return osc
    src = np.random.default_rng(9).normal(0, 3, (128, 16)).astype(ml_dtypes.bfloat16)
    scales = k(src)
    _, want = quantize(src.astype(np.float64), "float8_e5m2_x4")
    rows = (np.arange(16) // 4) * 32 + np.arange(16) % 4
    np.testing.assert_array_equal(scales[rows], want)
    assert not np.delete(scales, rows, axis=0).any()
