"""nc_stream_shuffle reads only the src partitions its mask selects: replicating the first 16
partitions of an index tile across a quadrant (the nki-library MLA sparse-attention pattern)
needs no write to partitions 16-31, while a mask naming an unwritten partition still warns.
Both executors (the reference and the fast path's static analysis) must say the same."""
import warnings

import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import UninitializedReadWarning

REPLICATE = [k % 16 for k in range(32)]


def _replicate(mask, rows_written=16, P=128):
    @nki.jit(target="trn3")
    def kernel(idx):
        t = nl.ndarray((P, idx.shape[1]), idx.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t[0:rows_written, :], src=idx[0:rows_written, :])
        nisa.nc_stream_shuffle(dst=t[0:32, :], src=t[0:32, :], shuffle_mask=mask)
        for quad in range(1, P // 32):                 # copy quadrant 0 to the others
            nisa.dma_copy(dst=t[quad * 32:quad * 32 + 32, :], src=t[0:32, :])
        out = nl.ndarray(t.shape, t.dtype, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=t)
        return out
    return kernel


@pytest.mark.parametrize("executor", ["reference", "fast"])
def test_replicating_16_partitions_reads_only_those(monkeypatch, executor):
    monkeypatch.setenv("NEURON_EMU_EXECUTOR", executor)
    idx = np.random.default_rng(1).integers(0, 4096, (16, 5)).astype(np.uint16)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UninitializedReadWarning)
        got = _replicate(REPLICATE)(idx)
    np.testing.assert_array_equal(got, np.tile(idx, (8, 1)))


@pytest.mark.parametrize("executor", ["reference", "fast"])
def test_a_mask_naming_an_unwritten_partition_still_warns(monkeypatch, executor):
    monkeypatch.setenv("NEURON_EMU_EXECUTOR", executor)
    idx = np.arange(16 * 5, dtype=np.uint16).reshape(16, 5)
    mask = list(REPLICATE)
    mask[3] = 20                                       # partition 20 was never written
    with pytest.warns(UninitializedReadWarning,
                      match=r"read of 5 uninitialized element\(s\) of 't'.*test_shuffle_reads.py"):
        got = _replicate(mask)(idx)
    np.testing.assert_array_equal(got[[0, 1, 2, 4]], idx[[0, 1, 2, 4]])


@pytest.mark.parametrize("executor", ["reference", "fast"])
def test_lanes_left_alone_keep_dst(monkeypatch, executor):
    monkeypatch.setenv("NEURON_EMU_EXECUTOR", executor)
    idx = np.arange(32 * 3, dtype=np.uint16).reshape(32, 3)
    mask = [255] * 16 + list(range(16))              # dst[16+k] = src[k]; dst[0:16] unchanged
    got = _replicate(mask, rows_written=32, P=32)(idx)
    want = idx.copy()
    want[16:] = idx[:16]
    np.testing.assert_array_equal(got, want)
