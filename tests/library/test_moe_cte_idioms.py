"""Data-movement idioms of the newest NKI library MoE context-encoding kernels (2.32+ shard-on-I /
shard-on-block and their shared helpers), written in our own words and checked against NumPy:

* a block's token ids ``ids[b*B:(b+1)*B]`` land in SBUF as a (128, B/128) tile, token ``t*128+p`` at
  partition ``p``, column ``t``, in ONE strided ``dma_copy`` on the hardware DGE -- with a static
  offset, or with the block index read at run time from an SBUF scalar (``scalar_offset`` over a
  2-D reshape, ``indirect_dim=0``);
* a bf16 zero tile made by ``memset`` through its float32 ``view`` (half as many, twice as wide
  elements), and the error when the row is an odd number of bf16 values;
* an fp32 HBM accumulator cast back to the bf16 output by one HBM-to-HBM ``dma_copy``, which rounds
  to nearest even as NumPy/ml_dtypes does.
"""
import ml_dtypes
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import UserKernelError

from source_errors import expect_error, line_of

P = 128


def _token_tile_kernel(n_tiles, dynamic):
    B = P * n_tiles

    @nki.jit
    def token_tile(ids, block):
        out = nl.ndarray((P, n_tiles), dtype=nl.int32, buffer=nl.shared_hbm)
        tile = nl.ndarray((P, n_tiles), dtype=nl.int32, buffer=nl.sbuf)
        dst = tile.ap(pattern=[[n_tiles, P], [1, n_tiles]])
        if dynamic:
            b = nl.ndarray((1, 1), dtype=nl.int32, buffer=nl.sbuf)
            nisa.dma_copy(dst=b, src=block)
            rows = ids.reshape((ids.shape[0] // B, B))
            src = rows.ap(pattern=[[1, P], [P, n_tiles]], offset=0, scalar_offset=b, indirect_dim=0)
        else:
            src = ids.ap(pattern=[[1, P], [P, n_tiles]], offset=block * B)
        nisa.dma_copy(dst=dst, src=src, dge_mode=nisa.dge_mode.hwdge)
        nisa.dma_copy(dst=out, src=tile)
        return out
    return token_tile


@given(n_tiles=st.sampled_from([1, 2, 4]), n_blocks=st.integers(1, 4), pick=st.integers(0, 3),
       dynamic=st.booleans(), seed=st.integers(0, 3))
def test_block_token_ids_are_transposed_onto_partitions_by_one_strided_dma(n_tiles, n_blocks, pick,
                                                                           dynamic, seed):
    B = P * n_tiles
    block = pick % n_blocks
    ids = np.random.default_rng(seed).integers(0, 10_000, n_blocks * B).astype(np.int32)
    arg = np.array([[block]], np.int32) if dynamic else block
    got = _token_tile_kernel(n_tiles, dynamic)(ids, arg)
    want = ids[block * B:(block + 1) * B].reshape(n_tiles, P).T
    np.testing.assert_array_equal(got, want)


def _zero_through_view(width):
    @nki.jit
    def zeros(x):
        out = nl.ndarray((P, width), dtype=nl.bfloat16, buffer=nl.shared_hbm)
        z = nl.ndarray((P, width), dtype=nl.bfloat16, buffer=nl.sbuf)
        nisa.dma_copy(dst=z, src=x)                       # non-zero garbage first
        nisa.memset(z.view(nl.float32), value=0.0)
        nisa.dma_copy(dst=out, src=z)
        return out
    return zeros


@given(half_width=st.integers(1, 40))
def test_memset_of_the_float32_view_zeroes_every_bf16_element(half_width):
    width = 2 * half_width
    x = (np.arange(P * width, dtype=np.float32).reshape(P, width) + 1).astype(ml_dtypes.bfloat16)
    got = _zero_through_view(width)(x)
    assert got.dtype == ml_dtypes.bfloat16 and got.shape == (P, width)
    assert not np.any(got.astype(np.float32))


def test_float32_view_of_an_odd_bf16_row_is_refused_at_the_users_line():
    k = _zero_through_view(7)
    x = np.ones((P, 7), ml_dtypes.bfloat16)
    expect_error(lambda: k(x), UserKernelError, where=line_of(k, "z.view(nl.float32)"),
                 says=("view(float32)", "7 x 2 B", "not a multiple of 4 B"))


@nki.jit
def _cast_back(x):
    acc = nl.ndarray(x.shape, dtype=nl.float32, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=acc, src=x)
    out = nl.ndarray(x.shape, dtype=nl.bfloat16, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=acc)
    return out


@given(rows=st.integers(1, 200), cols=st.integers(1, 80), seed=st.integers(0, 3))
def test_fp32_accumulator_is_cast_to_bf16_by_an_hbm_to_hbm_copy(rows, cols, seed):
    x = np.random.default_rng(seed).standard_normal((rows, cols)).astype(np.float32) * 1e3
    got = _cast_back(x)
    assert got.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(got.astype(np.float32),
                                  x.astype(ml_dtypes.bfloat16).astype(np.float32))
