"""A data move into SBUF carries "never written" along instead of warning (Memcheck's rule):
kernels copy whole padded tiles of which only some rows were written. The warning comes when an
instruction computes with those elements, or when a move puts them in HBM, at that line."""
import os
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device.memory import UninitializedReadWarning
from rules_helpers import marker_line


def padded_copy(rows, use):
    """Write ``rows`` of a 32-row tile, copy the whole tile twice within SBUF, then ``use`` it:
    'store' the written rows, 'compute' on every row, or 'spill' every row to HBM."""
    @nki.jit
    def kernel(a):
        out = nl.ndarray((rows if use == "store" else 32, 4), a.dtype, buffer=nl.shared_hbm)
        t = nl.ndarray((32, 4), a.dtype, buffer=nl.sbuf, name="t")
        nisa.dma_copy(dst=t[0:rows], src=a[0:rows])
        u = nl.ndarray((32, 4), a.dtype, buffer=nl.sbuf, name="u")
        nisa.dma_copy(dst=u, src=t)  # <- whole tile
        w = nl.ndarray((32, 4), a.dtype, buffer=nl.sbuf, name="w")
        nisa.dma_copy(dst=w, src=u)
        if use == "store":
            nisa.dma_copy(dst=out, src=w[0:rows])
        elif use == "compute":
            v = nl.ndarray((32, 4), a.dtype, buffer=nl.sbuf)
            nisa.tensor_scalar(dst=v, data=w, op0=nl.multiply, operand0=2.0)  # <- compute
            nisa.dma_copy(dst=out, src=v)
        else:
            nisa.dma_copy(dst=out, src=w)  # <- spill
        return out
    return kernel


@pytest.mark.parametrize("mode", ["exact", "fast", "reference"])
@given(rows=st.integers(1, 31))
def test_copying_a_padded_tile_within_sbuf_does_not_warn(mode, rows):
    a = np.arange(128, dtype=np.float32).reshape(32, 4)
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        mp.setenv("NEURON_EMU_EXECUTOR", mode)
        warnings.simplefilter("error", UninitializedReadWarning)
        out = padded_copy(rows, "store")(a)
    np.testing.assert_array_equal(out, a[:rows])


@pytest.mark.parametrize("use, line_marker", [("compute", "compute"), ("spill", "spill")])
@pytest.mark.parametrize("mode", ["exact", "fast", "reference"])
def test_using_the_carried_padding_warns_there(use, line_marker, mode, monkeypatch):
    monkeypatch.setenv("NEURON_EMU_EXECUTOR", mode)
    k = padded_copy(24, use)
    with pytest.warns(UninitializedReadWarning) as record:
        out = k(np.ones((32, 4), np.float32))
    assert np.isnan(out[24:]).all() and not np.isnan(out[:24]).any()
    uninit = [w for w in record if w.category is UninitializedReadWarning]
    assert len(uninit) == 1, [str(w.message) for w in uninit]
    file, line = marker_line(k, line_marker)
    text = str(uninit[0].message)
    assert "32 uninitialized element(s) of tensor 'w'" in text, text      # 8 rows x 4
    assert f"at {os.path.basename(file)}:{line}" in text
    assert (os.path.samefile(uninit[0].filename, file), uninit[0].lineno) == (True, line)


@nki.jit(target="trn2")
def exchange_padded(a):
    """Each core writes 20 of 32 rows, sends the whole tile, and stores the other core's rows."""
    out = nl.ndarray((2 * 20, 4), a.dtype, buffer=nl.shared_hbm)
    pid = nl.program_id(0)
    mine = nl.ndarray((32, 4), a.dtype, buffer=nl.sbuf)
    theirs = nl.ndarray((32, 4), a.dtype, buffer=nl.sbuf, name="theirs")
    nisa.dma_copy(dst=mine[0:20], src=a[pid * 20:(pid + 1) * 20])
    nisa.sendrecv(src=mine, dst=theirs, send_to_rank=1 - pid, recv_from_rank=1 - pid, pipe_id=0)
    nisa.dma_copy(dst=out[pid * 20:(pid + 1) * 20], src=theirs[0:20])
    return out


def test_sendrecv_of_a_padded_tile_carries_the_padding():
    a = np.arange(160, dtype=np.float32).reshape(40, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UninitializedReadWarning)
        out = exchange_padded[2](a)
    np.testing.assert_array_equal(out, np.concatenate([a[20:], a[:20]]))
