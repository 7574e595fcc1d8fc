"""Reading memory nobody wrote: the read yields sentinels (NaN for floats, 4 for ints) and a warning
that names the tensor and the user's line (attributed to that line, not to the emulator)."""
import os
import warnings

import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device.memory import UninitializedReadWarning
from rules_helpers import marker_line, ones


def forgetful(dtype):
    @nki.jit
    def kernel(a):
        out = nl.ndarray((128, 8), dtype, buffer=nl.shared_hbm)
        acc = nl.ndarray((128, 8), dtype, buffer=nl.sbuf, name="acc")  # <- alloc
        nisa.memset(dst=acc[:, 0:4], value=1)
        nisa.dma_copy(dst=out, src=acc)  # <- read
        return out
    return kernel


@pytest.mark.parametrize("dtype, sentinel", [(nl.float32, np.nan), (nl.bfloat16, np.nan),
                                             (nl.int32, 4), (nl.uint8, 4)])
def test_unwritten_memory_reads_as_sentinels_with_a_warning(dtype, sentinel):
    k = forgetful(dtype)
    with pytest.warns(UninitializedReadWarning) as record:
        res = k(ones(4, 4))
    np.testing.assert_array_equal(res[:, :4].astype(np.float32), 1.0)
    np.testing.assert_array_equal(res[:, 4:].astype(np.float32), sentinel)
    assert len(record) == 1
    w = record[0]
    file, read_line = marker_line(k, "read")
    _, alloc_line = marker_line(k, "alloc")
    base = os.path.basename(file)
    text = str(w.message)
    assert "512 uninitialized element(s) of tensor 'acc'" in text
    assert f"allocated at {base}:{alloc_line}" in text and f"at {base}:{read_line}" in text
    assert (os.path.samefile(w.filename, file), w.lineno) == (True, read_line)


def test_no_warning_when_everything_read_was_written():
    @nki.jit
    def kernel(a):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a)
        nisa.dma_copy(dst=out, src=t)
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("error", UninitializedReadWarning)
        np.testing.assert_array_equal(kernel(ones(128, 8)), ones(128, 8))
