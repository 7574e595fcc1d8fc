"""NEURON_EMU_FILL: new on-chip tensors hold NaN / 4 by default (uninitialised reads show) or zero
(``zero``: the NKI library's own simulator, whose goldens expect never-written padding to read 0;
the library runner's ``--zero-fill``). Reads of unwritten memory still warn either way."""
import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import UninitializedReadWarning
from device.settings import settings


def _half_written():
    @nki.jit
    def k(a):
        t = nl.ndarray((4, 8), nl.float32, buffer=nl.sbuf)
        i = nl.ndarray((4, 8), nl.int32, buffer=nl.sbuf)
        nisa.dma_copy(dst=t[:, 0:4], src=a)
        nisa.dma_copy(dst=i[:, 0:4], src=a.ap([[4, 4], [1, 4]], dtype=nl.int32))
        out = nl.ndarray((4, 8), nl.float32, buffer=nl.shared_hbm)
        iout = nl.ndarray((4, 8), nl.int32, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=t)
        nisa.dma_copy(dst=iout, src=i)
        return out, iout
    return k


@pytest.mark.parametrize("executor", ["fast", "reference"])
@pytest.mark.parametrize("fill,want_f,want_i", [("zero", 0.0, 0), ("sentinel", np.nan, 4), (None, np.nan, 4)])
def test_unwritten_elements_read_the_fill(monkeypatch, fill, want_f, want_i, executor):
    if fill is None:
        monkeypatch.delenv("NEURON_EMU_FILL", raising=False)
    else:
        monkeypatch.setenv("NEURON_EMU_FILL", fill)
    monkeypatch.setenv("NEURON_EMU_EXECUTOR", executor)
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    with pytest.warns(UninitializedReadWarning):
        out, iout = _half_written()(a)
    np.testing.assert_array_equal(out[:, :4], a)
    np.testing.assert_array_equal(out[:, 4:], np.full((4, 4), want_f, np.float32))
    np.testing.assert_array_equal(iout[:, 4:], np.full((4, 4), want_i, np.int32))


def test_an_unknown_fill_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("NEURON_EMU_FILL", "ones")
    with pytest.raises(ValueError, match="NEURON_EMU_FILL='ones' is not a fill; use one of sentinel, zero"):
        settings()
