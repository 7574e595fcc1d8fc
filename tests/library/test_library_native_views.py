"""Kernels in the style of the newest NKI library (2026-05): native NkiTensor views instead of the
library's TensorView, run on the emulator and compared with NumPy.

* A block-diagonal cyclic-shift matrix built from ``nl.shared_identity_matrix`` with raw ``.ap``
  patterns (partition stride read back with ``get_pattern``), then applied through the PE: the
  newest top-k and RoPE kernels rotate data across partitions this way.
* A contiguous load followed by per-tile PE transposes through PSUM into a permuted destination,
  with the keyword view chains of the newest norm kernels
  (``slice(dim=, start=, end=)``, ``reshape_dim(dim=, shape=)``, ``permute(dims=)``,
  ``flatten_dims(start_dim=, end_dim=)``).
"""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import nki
import nki.isa as nisa
import nki.language as nl


@nki.jit
def shift_rows_kernel(x, block, blocks, shift, negate):
    """out[b*block + i] = s * x[b*block + (i - shift) % block], s = -1 on the rows that wrapped
    when ``negate`` (the rotate-half sign of RoPE)."""
    n, f = x.shape
    data = nl.ndarray((n, f), dtype=x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=data, src=x)
    eye = nl.shared_identity_matrix(n, dtype=nl.float32)
    p_step = eye.get_pattern()[0][0]
    rot = nl.ndarray((n, n), dtype=nl.float32, buffer=nl.sbuf)
    blocked = rot.reshape((n, blocks, block))
    # the PE applies stationary.T: column j of `rot` lists where output row j reads from, so
    # build the inverse shift; columns [0, keep) take identity columns keep.., the rest wrap
    back = (-shift) % block
    keep = block - back
    if keep > 0:
        src = eye.ap(pattern=[[p_step, n], [block, blocks], [1, keep]], offset=back)
        if negate and back > 0:
            nisa.tensor_scalar(dst=blocked[:, :, 0:keep], data=src, op0=nl.multiply, operand0=-1.0)
        else:
            nisa.tensor_copy(dst=blocked[:, :, 0:keep], src=src)
    if back > 0:
        nisa.tensor_copy(dst=blocked[:, :, keep:block],
                         src=eye.ap(pattern=[[p_step, n], [block, blocks], [1, back]], offset=0))
    acc = nl.ndarray((n, f), dtype=nl.float32, buffer=nl.psum)
    nisa.nc_matmul(dst=acc, stationary=rot, moving=data)
    res = nl.ndarray((n, f), dtype=x.dtype, buffer=nl.sbuf)
    nisa.tensor_copy(dst=res, src=acc)
    out = nl.ndarray((n, f), dtype=x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=res)
    return out


def shift_rows_numpy(x, block, blocks, shift, negate):
    out = np.empty_like(x)
    for b in range(blocks):
        for i in range(block):
            src = (i - shift) % block
            wrapped = negate and (shift % block) and i < shift % block
            out[b * block + i] = -x[b * block + src] if wrapped else x[b * block + src]
    return out


@settings(max_examples=12, deadline=None)
@given(st.integers(2, 16), st.integers(1, 4), st.integers(0, 40), st.booleans(), st.integers(0, 99))
def test_block_cyclic_shift_through_the_pe(block, blocks, shift, negate, seed):
    x = np.random.default_rng(seed).standard_normal((block * blocks, 24)).astype(np.float32)
    want = shift_rows_numpy(x, block, blocks, shift % block, negate)
    np.testing.assert_array_equal(shift_rows_kernel(x, block, blocks, shift % block, negate), want)


@nki.jit
def tokens_to_partitions_kernel(x):
    """[B, S, H] in HBM -> out[h0, t, h1] = x.flatten(0,1)[t, h0 * H1 + h1], via one contiguous
    load per 128-token tile and one PE transpose per h1 column (the norm kernels' layout)."""
    B, S, H = x.shape
    T, H0 = B * S, 128
    H1 = H // H0
    flat = x.flatten_dims(start_dim=0, end_dim=1)                       # [T, H]
    out_sb = nl.ndarray((H0, T, H1), dtype=x.dtype, buffer=nl.sbuf)
    for t0 in range(0, T, 128):
        tt = min(128, T - t0)
        rows = nl.ndarray((tt, H), dtype=x.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=rows, src=flat.slice(dim=0, start=t0, end=t0 + tt))
        by_col = rows.reshape_dim(dim=1, shape=[H0, H1])                  # [tt, H0, H1]
        dst = out_sb.slice(dim=1, start=t0, end=t0 + tt).permute(dims=[0, 2, 1])  # [H0, H1, tt]
        for j in range(H1):
            ps = nl.ndarray((H0, tt), dtype=nl.float32, buffer=nl.psum)
            nisa.nc_transpose(dst=ps, data=by_col.slice(dim=2, start=j, end=j + 1).squeeze_dim(dim=2))
            nisa.tensor_copy(dst=dst.select(dim=1, index=j), src=ps)
    out = nl.ndarray((H0, T, H1), dtype=x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=out_sb)
    return out


@settings(max_examples=6, deadline=None)
@given(st.integers(1, 3), st.integers(1, 70), st.sampled_from([128, 256, 512]), st.integers(0, 9))
def test_contiguous_load_then_pe_transpose_layout(B, S, H, seed):
    x = np.random.default_rng(seed).standard_normal((B, S, H)).astype(np.float32)
    want = x.reshape(B * S, 128, H // 128).transpose(1, 0, 2)
    np.testing.assert_array_equal(tokens_to_partitions_kernel(x), want)
