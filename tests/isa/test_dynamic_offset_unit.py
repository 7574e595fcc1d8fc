"""The unit of a run-time ``.ap(scalar_offset=..., indirect_dim=k)`` offset is the stride of dim k in
the tensor ``.ap`` is called on: prod(shape[k+1:]) for a whole tensor (the NKI docs' formula), and the
view's own stride for a sliced or permuted view. nki-library's attention_tkg (dynamic flash attention)
offsets a permuted view of its block table on dim 0 in single elements. Checked against NumPy."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from isa_helpers import Line, expect_error, load, run, store


def _table(R, C, seed):
    return np.random.default_rng(seed).standard_normal((R, C)).astype(np.float32)


@st.composite
def whole_case(draw):
    R, C = draw(st.integers(2, 12)), draw(st.integers(1, 9))
    a = draw(st.integers(1, R))
    s = draw(st.integers(0, R - a))
    return R, C, a, s


@given(case=whole_case(), seed=st.integers(0, 20))
def test_whole_tensor_offset_counts_rows(case, seed):
    R, C, a, s = case
    table = _table(R, C, seed)

    def k(table, off):
        d = nl.ndarray((a, C), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=d, src=table.ap([[C, a], [1, C]], scalar_offset=load(off), indirect_dim=0))
        return store(d)
    np.testing.assert_array_equal(run(k, table, np.array([[s]], np.int32)), table[s:s + a])


@st.composite
def permuted_case(draw):
    R, C = draw(st.integers(1, 10)), draw(st.integers(2, 12))
    a = draw(st.integers(1, C))
    s = draw(st.integers(0, C - a))
    b = draw(st.integers(1, R))
    return R, C, a, b, s


@given(case=permuted_case(), seed=st.integers(0, 20))
def test_permuted_view_offset_moves_by_the_views_stride(case, seed):
    R, C, a, b, s = case
    table = _table(R, C, seed)

    def k(table, off):
        v = table.permute((1, 0))                     # [C, R]; dim 0 has stride 1
        assert v.get_pattern() == [[1, C], [C, R]]
        d = nl.ndarray((a, b), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=d, src=v.ap([[1, a], [C, b]], scalar_offset=load(off), indirect_dim=0))
        return store(d)
    got = run(k, table, np.array([[s]], np.int32))
    np.testing.assert_array_equal(got, table[:b, s:s + a].T)


@given(case=whole_case(), seed=st.integers(0, 20), w=st.integers(1, 3))
def test_column_slice_keeps_the_full_row_stride(case, seed, w):
    R, C, a, s = case
    C = max(C, w)
    table = _table(R, C, seed)

    def k(table, off):
        v = table[:, 0:w]                             # stride of dim 0 is still C
        d = nl.ndarray((a, w), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=d, src=v.ap([[C, a], [1, w]], scalar_offset=load(off), indirect_dim=0))
        return store(d)
    np.testing.assert_array_equal(run(k, table, np.array([[s]], np.int32)), table[s:s + a, 0:w])


def test_block_table_fold_offset_as_attention_tkg_loads_it():
    """The library's pattern: table [B, F*128] viewed [128, F, B] (permute of a reshape), a zero-
    stride resize dim inserted, and a fold start given in elements on dim 0."""
    B, F, P, rf = 2, 4, 8, 2
    table = np.arange(B * F * P, dtype=np.int32).reshape(B, F * P)
    fold0, n = 1, 2

    def k(table, off):
        view = table.reshape((B, F, P)).slice(1, 0, n).permute([2, 1, 0])      # [P, n, B]
        pat = view.get_pattern()
        pat = pat[:1] + [[0, rf]] + pat[1:]
        d = nl.ndarray((P, rf, n, B), nl.int32, buffer=nl.sbuf)
        nisa.dma_copy(dst=d, src=view.ap(pattern=pat, scalar_offset=load(off), indirect_dim=0))
        return store(d)
    got = run(k, table, np.array([[fold0 * P]], np.int32))
    want = table.reshape(B, F, P)[:, fold0:fold0 + n, :].transpose(2, 1, 0)     # [P, n, B]
    np.testing.assert_array_equal(got, np.broadcast_to(want[:, None], (P, rf, n, B)))


def test_an_offset_past_the_end_of_a_permuted_view_names_the_tensor():
    table = _table(3, 5, 0)
    L = Line()

    def k(table, off):
        v = table.permute((1, 0))
        d = nl.ndarray((4, 3), nl.float32, buffer=nl.sbuf)
        L.mark(); nisa.dma_copy(dst=d, src=v.ap([[1, 4], [5, 3]], scalar_offset=load(off), indirect_dim=0))  # noqa: E702,E501
        return store(d)
    # offset 2 in elements: the last row reads element 2 + 3 + 10 = 15 of a 15-element table
    expect_error(k, (table, np.array([[2]], np.int32)), L, "access-out-of-bound")
