"""PSUM banks and SBUF bytes inside device loops: a body's tiles are live between their own uses,
not all at once (a device loop is one instruction whose footprint is its whole body)."""
import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import HardwareRuleError

from source_errors import expect_error, line_of

N_TILES = 9                     # one more tile than the PSUM has banks (1 KB each,
#                                 so only the bank count, not the 16 KB, is exceeded)


def _kernel(keep_all_live: bool):
    def kernel(a):
        """Each iteration transposes a 128x128 block N_TILES times, one fresh PSUM tile each."""
        out = nl.ndarray((128, 128), nl.float32, buffer=nl.shared_hbm)
        x = nl.ndarray((128, 128), nl.float32, buffer=nl.sbuf)
        acc = nl.ndarray((128, 128), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=x, src=a)
        nisa.memset(dst=acc, value=0.0)
        ident = nl.shared_identity_matrix(128, dtype=nl.float32)

        def body(i):
            tiles = []
            for _ in range(N_TILES):
                t = nl.ndarray((128, 256), nl.float32, buffer=nl.psum)   # a bank of its own
                nisa.nc_matmul(dst=t[:, 0:128], stationary=x, moving=ident,
                               accumulate=False)
                if not keep_all_live:
                    nisa.tensor_tensor(dst=acc, data1=acc, data2=t[:, 0:128], op=nl.add)
                tiles.append(t)
            if keep_all_live:                   # every tile is read after all were written
                for t in tiles:
                    nisa.tensor_tensor(dst=acc, data1=acc, data2=t[:, 0:128], op=nl.add)
        nl.fori_loop(0, 2, body)
        nisa.dma_copy(dst=out, src=acc)
        return out
    return nki.jit(kernel, target="trn2")


A = np.random.default_rng(0).uniform(-1, 1, (128, 128)).astype(np.float32)


def test_tiles_used_one_after_another_in_a_loop_body_share_the_banks():
    got = _kernel(False)(A)
    np.testing.assert_allclose(got, 2 * N_TILES * A.T, rtol=1e-5)


def test_tiles_live_together_in_a_loop_body_still_exceed_the_banks():
    k = _kernel(True)
    e = expect_error(lambda: k(A), HardwareRuleError,
                     where=line_of(k, "t = nl.ndarray((128, 256)"),
                     says=(f"{N_TILES} PSUM banks are live", "the PSUM has 8 banks",
                           "Live PSUM tiles:", "float32[128,256] allocated at"))
    assert (e.rule, e.value, e.limit) == ("psum-banks", N_TILES, 8)


@pytest.mark.parametrize("outside", [True, False])
def test_a_tile_from_outside_the_loop_stays_live_through_the_whole_body(outside):
    # 8 tiles allocated before the loop and read at the body's start are live for all of it, so
    # one more tile allocated late in the body is a ninth bank; allocated in the body, they free
    def kernel(a):
        out = nl.ndarray((128, 128), nl.float32, buffer=nl.shared_hbm)
        x = nl.ndarray((128, 128), nl.float32, buffer=nl.sbuf)
        acc = nl.ndarray((128, 128), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=x, src=a)
        nisa.memset(dst=acc, value=0.0)
        ident = nl.shared_identity_matrix(128, dtype=nl.float32)
        pre = [nl.ndarray((128, 256), nl.float32, buffer=nl.psum) for _ in range(8)] if outside \
            else None

        def body(i):
            tiles = pre or [nl.ndarray((128, 256), nl.float32, buffer=nl.psum) for _ in range(8)]
            for t in tiles:
                nisa.nc_matmul(dst=t[:, 0:128], stationary=x, moving=ident,
                               accumulate=False)
                nisa.tensor_tensor(dst=acc, data1=acc, data2=t[:, 0:128], op=nl.add)
            late = nl.ndarray((128, 256), nl.float32, buffer=nl.psum)
            nisa.nc_matmul(dst=late[:, 0:128], stationary=x, moving=ident,
                               accumulate=False)
            nisa.tensor_tensor(dst=acc, data1=acc, data2=late[:, 0:128], op=nl.add)
        nl.fori_loop(0, 2, body)
        nisa.dma_copy(dst=out, src=acc)
        return out
    k = nki.jit(kernel, target="trn2")
    if outside:
        with pytest.raises(HardwareRuleError, match="9 PSUM banks are live"):
            k(A)
    else:
        np.testing.assert_allclose(k(A), 18 * A.T, rtol=1e-5)


def test_sbuf_tiles_used_one_after_another_in_a_loop_body_fit():
    # eight 64 KB-per-partition tiles, 512 KB in all, far beyond the SBUF, but one at a time
    def kernel(a):
        out = nl.ndarray((128, 128), nl.float32, buffer=nl.shared_hbm)
        acc = nl.ndarray((128, 128), nl.float32, buffer=nl.sbuf)
        nisa.memset(dst=acc, value=0.0)

        def body(i):
            for _ in range(8):
                big = nl.ndarray((128, 16384), nl.float32, buffer=nl.sbuf)
                nisa.dma_copy(dst=big[:, 0:128], src=a)
                nisa.tensor_tensor(dst=acc, data1=acc, data2=big[:, 0:128], op=nl.add)
        nl.fori_loop(0, 2, body)
        nisa.dma_copy(dst=out, src=acc)
        return out
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # and no spill either
        got = nki.jit(kernel, target="trn2")(A)
    np.testing.assert_allclose(got, 16 * A, rtol=1e-6)
