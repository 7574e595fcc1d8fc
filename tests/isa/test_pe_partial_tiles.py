"""nc_matmul PE tiling with a tile_size that is not a PE tile size (32/64/128).

The newest nki-library output_projection_tkg passes its contraction size as the row tile size
(``tile_size=(d_size, 32|64)`` with d_size such as 13, 65 or 117); such a tile occupies the
smallest PE tile that holds it, and the matmul is an ordinary one on the selected rows/columns.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import HardwareRuleError


def _tiled(K, M, cols, row_size, target):
    def k(a, b):
        at = nl.ndarray((K, M), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=at, src=a)
        bt = nl.ndarray((K, 96), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=bt, src=b)
        res = nl.ndarray((128, 96), nl.float32, buffer=nl.psum)
        outs = []
        for c in range(128 // cols):
            nisa.nc_matmul(res[c * cols:c * cols + M, :], at, bt, tile_position=(0, c * cols),
                           tile_size=(row_size, cols))
            o = nl.ndarray((M, 96), nl.float32, buffer=nl.sbuf)
            nisa.tensor_copy(dst=o, src=res[c * cols:c * cols + M, :])
            h = nl.ndarray((M, 96), nl.float32, buffer=nl.shared_hbm)
            nisa.dma_copy(dst=h, src=o)
            outs.append(h)
        return tuple(outs)
    return nki.jit(k, target=target)


@given(K=st.integers(1, 128), cols=st.sampled_from((32, 64, 128)), data=st.data())
def test_row_tile_of_any_contraction_size_is_an_ordinary_matmul(K, cols, data):
    M = data.draw(st.integers(1, cols))
    rng = np.random.default_rng(K * 7 + M)
    a = rng.standard_normal((K, M)).astype(np.float32)
    b = rng.standard_normal((K, 96)).astype(np.float32)
    for tile in _tiled(K, M, cols, K, "trn2")(a, b):
        np.testing.assert_allclose(np.asarray(tile), a.T @ b, rtol=1e-5, atol=1e-4)


def test_contraction_65_like_output_projection_tkg():
    rng = np.random.default_rng(65)
    a = rng.standard_normal((65, 32)).astype(np.float32)
    b = rng.standard_normal((65, 96)).astype(np.float32)
    for tile in _tiled(65, 32, 32, 65, "trn2")(a, b):
        np.testing.assert_allclose(np.asarray(tile), a.T @ b, rtol=1e-5, atol=1e-4)


def test_row_tile_larger_than_the_array_is_rejected():
    with pytest.raises(HardwareRuleError, match=r"tile_size row size 129 is not a PE tile size "
                       r"on trn2: \(32, 64, 128\)"):
        _tiled(64, 32, 32, 129, "trn2")(np.zeros((64, 32), np.float32),
                                         np.zeros((64, 96), np.float32))


def test_operands_must_fit_the_given_row_size():
    with pytest.raises(HardwareRuleError, match=r"operands \(K=70, M=32\) do not fit tile_size "
                       r"\(65, 32\)"):
        _tiled(70, 32, 32, 65, "trn2")(np.zeros((70, 32), np.float32),
                                        np.zeros((70, 96), np.float32))
