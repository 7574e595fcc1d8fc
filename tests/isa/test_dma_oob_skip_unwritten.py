"""Rows an indirect DMA skips with ``oob_mode=skip`` are not written: their destination keeps its
old contents (stale data on the device, the fill value here), so a later read of them is an
uninitialized read and is reported -- by both executors. (The newest library's MoE kernels gather
a block of routed tokens with padding index -1 into an SBUF tile; reading the padded rows of a
tile nothing zeroed is what this catches.)"""
import warnings

import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import UninitializedReadWarning
from nki.isa import oob_mode

TABLE = np.arange(40, dtype=np.float32).reshape(10, 4)
IDX = np.array([[0], [1], [-1], [3], [-1], [5], [6], [7]], np.int32)   # two rows out of bounds


def _gather(zero_first):
    @nki.jit(target="trn2")
    def kern(table, idx):
        ix = nl.ndarray((8, 1), dtype=nl.int32, buffer=nl.sbuf)
        nisa.dma_copy(dst=ix, src=idx)
        rows = nl.ndarray((8, 4), dtype=nl.float32, buffer=nl.sbuf, name="gathered")
        if zero_first:
            nisa.memset(dst=rows, value=0.0)
        src = table.ap([[4, 8], [1, 4]], offset=0, vector_offset=ix, indirect_dim=0)
        nisa.dma_copy(dst=rows, src=src, oob_mode=oob_mode.skip)
        out = nl.ndarray((8, 4), dtype=nl.float32, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=rows)
        return out
    return kern


def _run(kern):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = np.asarray(kern(TABLE, IDX))
    return out, [w for w in caught if issubclass(w.category, UninitializedReadWarning)]


@pytest.mark.parametrize("executor", ["fast", "reference"])
def test_skipped_rows_stay_unwritten(executor, monkeypatch):
    monkeypatch.setenv("NEURON_EMU_EXECUTOR", executor)
    out, warned = _run(_gather(zero_first=False))
    kept = IDX[:, 0] >= 0
    np.testing.assert_array_equal(out[kept], TABLE[IDX[kept, 0]])
    assert np.isnan(out[~kept]).all()                    # the fill value, never written
    assert len(warned) == 1
    msg = str(warned[0].message)
    assert "read of 8 uninitialized element(s)" in msg and "'gathered'" in msg


@pytest.mark.parametrize("executor", ["fast", "reference"])
def test_zeroed_tile_keeps_zeros_in_skipped_rows_without_a_warning(executor, monkeypatch):
    monkeypatch.setenv("NEURON_EMU_EXECUTOR", executor)
    out, warned = _run(_gather(zero_first=True))
    want = np.where((IDX >= 0), TABLE[np.maximum(IDX[:, 0], 0)], 0.0)
    np.testing.assert_array_equal(out, want)
    assert warned == []
