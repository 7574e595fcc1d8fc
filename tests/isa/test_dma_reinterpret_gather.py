"""An indirect DMA through ``.ap(dtype=...)``: the vector offset counts rows of the tensor ``.ap``
is called on, whatever dtype reads the bytes (nki-library's permute_routed_tokens gathers bf16
affinities as pairs of fp8 bytes), against NumPy byte views."""
import ml_dtypes
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from isa_helpers import Line, expect_error, load, run, store


@given(R=st.integers(1, 24), W=st.integers(1, 4), P=st.integers(1, 32), seed=st.integers(0, 50))
def test_rows_of_bf16_gathered_as_bytes(R, W, P, seed):
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((R, W)).astype(ml_dtypes.bfloat16)
    idx = rng.integers(0, R, (P, 1)).astype(np.int32)

    def k(table, idx):
        d = nl.ndarray((P, 2 * W), nl.uint8, buffer=nl.sbuf)
        nisa.dma_copy(dst=d, src=table.ap([[2 * W, P], [1, 2 * W]], vector_offset=load(idx),
                                          indirect_dim=0, dtype=nl.uint8))
        return store(d)
    want = table.view(np.uint8).reshape(R, 2 * W)[idx[:, 0]]
    np.testing.assert_array_equal(run(k, table, idx), want)


def test_a_row_that_is_not_whole_elements_of_the_new_dtype_is_refused():
    table = np.arange(6, dtype=np.uint8).reshape(6, 1)
    idx = np.array([[1], [3]], np.int32)
    L = Line()

    def k(table, idx):
        d = nl.ndarray((2, 1), nl.bfloat16, buffer=nl.sbuf)
        L.mark(); v = table.ap([[1, 2], [1, 1]], vector_offset=load(idx), indirect_dim=0, dtype=nl.bfloat16)  # noqa: E702,E501
        nisa.dma_copy(dst=d, src=v)
        return store(d)
    expect_error(k, (table, idx), L, "a vector_offset row of")
