"""A large kernel run gives its freed host memory back: glibc keeps freed heap pages (and raises
its mmap threshold after large frees), so one nki-library cumsum over 160 MB left the process
at 1.1 GB with nothing referencing it, and under ``ulimit -v`` the runner's next kernels failed
to allocate even small arrays (cumsum sweep in one process at 6 GB: 20 of 38 passed before the
trim, 33 after)."""
import numpy as np

import nki
import nki.isa as nisa
import nki.language as nl
from nki import host_memory


@nki.jit
def doubled(a):
    """out = 2 * a, through SBUF in 128-row tiles."""
    rows, cols = a.shape
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    for r in range(rows // 128):
        t = nl.ndarray((128, cols), a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a[r * 128:(r + 1) * 128, :])
        nisa.tensor_scalar(dst=t, data=t, op0=nl.multiply, operand0=2.0)
        nisa.dma_copy(dst=out[r * 128:(r + 1) * 128, :], src=t)
    return out


def _recording_trim(monkeypatch):
    calls = []
    monkeypatch.setattr(host_memory, "_trim", lambda pad: calls.append(pad) or 1)
    return calls


def test_small_runs_do_not_trim(monkeypatch):
    calls = _recording_trim(monkeypatch)
    assert host_memory.release_freed_memory(0) is False
    assert host_memory.release_freed_memory(host_memory.TRIM_ABOVE - 1) is False
    a = np.ones((256, 64), np.float32)                       # 64 KB in, 64 KB out
    np.testing.assert_array_equal(doubled(a), 2 * a)
    assert calls == []


def test_a_large_run_trims_once_after_its_memory_is_dropped(monkeypatch):
    calls = _recording_trim(monkeypatch)
    rows = 128 * 8
    cols = host_memory.TRIM_ABOVE // (rows * 4 * 2) + 128  # in + out just above the threshold
    a = np.random.default_rng(0).standard_normal((rows, cols)).astype(np.float32)
    np.testing.assert_array_equal(doubled(a), 2 * a)
    assert calls == [0]


def test_without_glibc_nothing_is_trimmed(monkeypatch):
    monkeypatch.setattr(host_memory, "_trim", False)          # looked up and not available
    assert host_memory.release_freed_memory(host_memory.TRIM_ABOVE) is False
