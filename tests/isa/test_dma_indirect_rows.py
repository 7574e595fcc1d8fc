"""Indirect DMA rows: a (P, k) vector_offset is read column by column (NKI's gather-transpose:
``flat = indices.T.flatten()[:rows]``), and a dma_compute scatter read-modify-write adds repeated
rows one after the other (with a lint when two non-zero rows meet)."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from device.errors import DuplicateScatterWarning, HardwareRuleError
from isa_helpers import Line, assert_same, expect_error, load, rand, run, store


@settings(max_examples=15)
@given(R=st.integers(2, 300), F=st.sampled_from([8, 32, 128]), k=st.integers(2, 6),
       groups=st.integers(1, 8), seed=st.integers(0, 99))
def test_gather_transpose_reads_2d_indices_column_by_column(R, F, k, groups, seed):
    n = min(16 * groups, 128 * k)                 # rows gathered: a multiple of 16, <= 128 * k
    table = rand((R, F), "bfloat16", seed)
    idx = np.random.default_rng(seed).integers(0, R, (128, k)).astype(np.uint32)

    def kern(table, idx):
        out = nl.ndarray((F, n), "bfloat16", buffer=nl.sbuf)
        src = table.ap([[F, n], [1, F]], vector_offset=load(idx), indirect_dim=0)
        nisa.dma_transpose(dst=out, src=src, axes=(1, 0))
        return store(out)
    want = table[idx.T.reshape(-1)[:n]].T
    assert_same(run(kern, table, idx, target="trn2"), np.ascontiguousarray(want))


def test_dma_copy_gather_reads_2d_indices_column_by_column():
    table = rand((50, 4), "float32", 3)
    idx = np.arange(128 * 2, dtype=np.int32).reshape(128, 2) % 50

    def kern(table, idx):
        out = nl.ndarray((256, 4), "float32", buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=table.ap([[4, 256], [1, 4]], vector_offset=load(idx),
                                            indirect_dim=0))
        return out
    assert_same(run(kern, table, idx), table[idx.T.reshape(-1)])


def test_too_few_offsets_in_a_2d_index_tensor_is_refused_by_shape():
    table, idx = rand((50, 4), "float32"), np.zeros((16, 2), np.int32)
    L = Line()

    def kern(table, idx):
        out = nl.ndarray((64, 4), "float32", buffer=nl.sbuf)
        ix = load(idx)
        L.mark(); nisa.dma_copy(dst=out, src=table.ap([[4, 64], [1, 4]], vector_offset=ix, indirect_dim=0))  # noqa: E702,E501
        return store(out)
    err = expect_error(kern, (table, idx), L, "vector_offset tensor", "has shape (16, 2)",
                       "expected (64, 1)", kind=HardwareRuleError)
    assert err.rule == "dynamic-offset"


def _scatter_add(base, upd, idx):
    P, F = upd.shape

    def kern(base, upd, idx):
        out = nl.ndarray(base.shape, "float32", buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=base)
        rows = out.ap([[F, P], [1, F]], vector_offset=load(idx), indirect_dim=0)
        nisa.dma_compute(dst=rows, srcs=[rows, load(upd)], reduce_op=nl.add)
        return out
    return run(kern, base, upd, idx)


@settings(max_examples=20)
@given(R=st.integers(1, 12), P=st.integers(1, 64), F=st.integers(1, 9), seed=st.integers(0, 99))
def test_scatter_rmw_adds_repeated_rows_in_order(R, P, F, seed):
    base = rand((R, F), "float32", seed)
    upd = rand((P, F), "float32", seed + 1)
    idx = np.random.default_rng(seed).integers(0, R, (P, 1)).astype(np.int32)
    want = base.astype(np.float64)
    np.add.at(want, idx[:, 0], upd.astype(np.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateScatterWarning)
        got = _scatter_add(base, upd, idx)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_zero_rows_sharing_an_index_add_nothing_and_do_not_warn():
    # the padding idiom of the NKI library's deformable-attention backward: unused partitions
    # point at row 0 with zero data; the one real update of row 0 must survive them
    base = rand((6, 4), "float32", 1)
    upd = np.zeros((8, 4), np.float32)
    upd[2] = 1.5
    idx = np.zeros((8, 1), np.int32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicateScatterWarning)
        got = _scatter_add(base, upd, idx)
    want = base.copy()
    want[0] += 1.5
    assert_same(got, want)


def test_two_nonzero_rows_sharing_an_index_warn_by_name():
    base = rand((6, 4), "float32", 1)
    upd = rand((3, 4), "float32", 2, lo=1.0, hi=2.0)
    idx = np.array([[5], [1], [5]], np.int32)
    with pytest.warns(DuplicateScatterWarning, match=r"1 row\(s\) received more than one non-zero "
                      r"contribution .*unique_indices=True"):
        got = _scatter_add(base, upd, idx)
    want = base.copy()
    want[5] += upd[0] + upd[2]
    want[1] += upd[1]
    np.testing.assert_allclose(got, want, rtol=1e-6)
