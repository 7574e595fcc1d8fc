"""Raw access patterns (``.ap``) are checked when an instruction uses them, not when built."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from isa_helpers import Line, assert_same, expect_error, load, rand, run, store


@given(R=st.integers(1, 8), F=st.integers(1, 16), seed=st.integers(0, 20))
def test_an_overrunning_ap_that_no_instruction_uses_is_not_an_error(R, F, seed):
    # each iteration builds the window of row r before a guard; the last one is past the tensor
    a = rand((R, F), "float32", seed)

    def k(a):
        t = nl.ndarray((R, F), "float32", buffer=nl.sbuf)
        for r in range(R + 1):
            row = a.ap([[F, 1], [1, F]], offset=r * F)
            if r < R:
                nisa.dma_copy(dst=t[r:r + 1, :], src=row)
        return store(t)
    assert_same(run(k, a), a)


def test_an_overrunning_ap_used_by_an_instruction_is_an_error_at_that_line():
    a = rand((4, 6), "float32", 0)
    L = Line()

    def k(a):
        src = load(a)
        win = src.ap([[6, 4], [1, 6]], offset=2)      # rows 0..3 shifted by 2: 2 past the end
        out = nl.ndarray((4, 6), "float32", buffer=nl.sbuf)
        L.mark(); nisa.tensor_copy(dst=out, src=win)  # noqa: E702
        return store(out)
    e = expect_error(k, (a,), L, "access-out-of-bound", "operand 'src'", "[2, 25]", "which has 24")
    assert (e.operand, e.value, e.limit) == ("src", (2, 25), 24)


def test_an_overrunning_ap_on_hbm_is_an_error_at_the_dma():
    a = rand((3, 5), "float32", 1)
    L = Line()

    def k(a):
        t = nl.ndarray((3, 5), "float32", buffer=nl.sbuf)
        L.mark(); nisa.dma_copy(dst=t, src=a.ap([[5, 3], [1, 5]], offset=-1))  # noqa: E702
        return store(t)
    expect_error(k, (a,), L, "access-out-of-bound", "[-1, 13]", "which has 15")


@pytest.mark.parametrize("executor", ["fast", "reference"])
@given(R=st.integers(1, 6), C=st.integers(1, 5), col=st.data())
def test_a_wider_dtype_ap_reads_whole_storage_elements_up_to_the_last(executor, R, C, col):
    # bf16 storage read as int32 (two bf16 per element), one column at a time, up to the
    # tensor's last element: in bounds, initialised, and the bits of both halves
    import os
    import warnings
    c = col.draw(st.integers(0, C - 1))
    a = rand((R, 2 * C), "bfloat16", R * 7 + C)

    def k(a):
        t = nl.ndarray((R, 1), "int32", buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a.ap([[C, R], [1, 1]], offset=c, dtype="int32"))
        return store(t)
    before = os.environ.get("NEURON_EMU_EXECUTOR")
    os.environ["NEURON_EMU_EXECUTOR"] = executor
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")          # no uninitialised-read warning either
            got = run(k, a, target="trn2")
    finally:
        if before is None:
            os.environ.pop("NEURON_EMU_EXECUTOR")
        else:
            os.environ["NEURON_EMU_EXECUTOR"] = before
    assert_same(got, a.view("int32")[:, c:c + 1])
