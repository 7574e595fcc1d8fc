"""Kernel outputs in private HBM (``nl.hbm``), accepted since NKI 2.29 (the nki-library's
linear_scan returns them, and its tests run at LNC=2 on trn2).

At LNC=1 a private output is just the output. At LNC=2 each core has its own copy; the caller
gets one array, so the copies must agree after the run, else an error names the output and the
cores (one output cannot hold two answers; shared_hbm is the spelling for split work).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import UserKernelError


@nki.jit(target="trn2")
def scaled_copy_to_private(a, k):
    """out = a * k, written by every core into its own nl.hbm copy (core-independent)."""
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.hbm, name="scaled")
    t = nl.ndarray(a.shape, nl.float32, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=a)
    nisa.tensor_scalar(dst=t, data=t, op0=nl.multiply, operand0=float(k))
    nisa.dma_copy(dst=out, src=t)
    return out


@nki.jit(target="trn2")
def two_private_outputs(a):
    """(a + 1, row sums): a tuple of private outputs, like linear_scan's (result, final_state)."""
    rows, cols = a.shape
    plus = nl.ndarray(a.shape, a.dtype, buffer=nl.hbm)
    sums = nl.ndarray((rows, 1), nl.float32, buffer=nl.hbm)
    t = nl.ndarray(a.shape, nl.float32, buffer=nl.sbuf)
    s = nl.ndarray((rows, 1), nl.float32, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=a)
    nisa.tensor_reduce(dst=s, op=nl.add, data=t, axis=1)
    nisa.tensor_scalar(dst=t, data=t, op0=nl.add, operand0=1.0)
    nisa.dma_copy(dst=plus, src=t)
    nisa.dma_copy(dst=sums, src=s)
    return plus, sums


@nki.jit(target="trn2")
def core_dependent_private(a):
    """Each core writes a + its program id: the two private copies differ under LNC=2."""
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.hbm, name="diverged")
    t = nl.ndarray(a.shape, nl.float32, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=a)
    nisa.tensor_scalar(dst=t, data=t, op0=nl.add, operand0=float(nl.program_id(0)))
    nisa.dma_copy(dst=out, src=t)
    return out


@settings(max_examples=8, deadline=None)
@given(rows=st.integers(1, 128), cols=st.integers(1, 64), k=st.sampled_from([-2.0, 0.5, 3.0]),
       lnc=st.sampled_from([1, 2]))
def test_private_output_is_the_result(rows, cols, k, lnc):
    a = np.random.default_rng(rows * 131 + cols).standard_normal((rows, cols)).astype(np.float32)
    kern = scaled_copy_to_private if lnc == 1 else scaled_copy_to_private[2]
    np.testing.assert_allclose(kern(a, k), a * np.float32(k), rtol=1e-6)


@pytest.mark.parametrize("lnc", [1, 2])
def test_tuple_of_private_outputs(lnc):
    a = np.arange(24, dtype=np.float32).reshape(4, 6)
    kern = two_private_outputs if lnc == 1 else two_private_outputs[2]
    plus, sums = kern(a)
    np.testing.assert_array_equal(plus, a + 1)
    np.testing.assert_array_equal(sums, a.sum(axis=1, keepdims=True))


def test_private_output_agreeing_under_lnc2_is_fine_at_lnc1_too():
    a = np.ones((8, 8), np.float32)
    np.testing.assert_array_equal(core_dependent_private(a), a)      # one core: program id 0


def test_diverging_private_copies_under_lnc2_are_an_error():
    with pytest.raises(UserKernelError) as e:
        core_dependent_private[2](np.ones((8, 8), np.float32))
    msg = str(e.value)
    for part in ("core_dependent_private", "output #0", "diverged", "private HBM",
                 "core 0 and core 1", "nl.shared_hbm"):
        assert part in msg, (part, msg)


def test_mixed_private_and_shared_returns_are_refused():
    @nki.jit(target="trn2")
    def mixed(a):
        if nl.program_id(0) == 0:
            out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm, name="shared_one")
        else:
            out = nl.ndarray(a.shape, a.dtype, buffer=nl.hbm, name="private_one")
        nisa.dma_copy(dst=out, src=a)
        return out
    with pytest.raises(UserKernelError) as e:
        mixed[2](np.ones((4, 4), np.float32))
    assert "output #0" in str(e.value) and "core 1" in str(e.value)


def test_different_return_counts_under_lnc2_are_refused():
    @nki.jit(target="trn2")
    def uneven(a):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=a)
        return (out,) if nl.program_id(0) == 0 else (out, out)
    with pytest.raises(UserKernelError, match="same number of tensors; core 0 returned 1, core 1 2"):
        uneven[2](np.ones((4, 4), np.float32))
