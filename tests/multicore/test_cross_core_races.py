"""``CrossCoreRaceWarning``: under LNC=2, shared-HBM bytes touched by both cores with no sync.

The emulator runs the cores in lock-step, so an unordered pair of accesses gets one fixed order
here while the hardware's order depends on timing. The nki-library's own
``folded_load_store_dst`` test kernel (both cores zero-fill the whole output, then each stores
its rows) is this pattern.
"""
import os
import warnings

import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import KernelLintWarning
from nki.core_races import CrossCoreRaceWarning, find_races

from source_errors import line_of

A = np.arange(16 * 8, dtype=np.float32).reshape(16, 8)


def _fill_then_store(barrier: bool):
    def kernel(a):
        """Both cores zero the whole output, then each stores its own half of the rows."""
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        z = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
        nisa.memset(z, 0.0)
        nisa.dma_copy(dst=out, src=z)
        if barrier:
            nisa.core_barrier(out, (0, 1))
        pid = nl.program_id(0)
        r = a.shape[0] // 2
        t = nl.ndarray((r, a.shape[1]), a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a[pid * r:(pid + 1) * r])
        nisa.dma_copy(dst=out[pid * r:(pid + 1) * r], src=t)
        return out
    return nki.jit(kernel, target="trn2")


def _run(k, *args, lnc=2):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = k[lnc](*args)
    return out, [w for w in caught if issubclass(w.category, CrossCoreRaceWarning)]


def test_zero_fill_by_both_cores_then_stores_is_a_race_named_with_both_lines():
    k = _fill_then_store(barrier=False)
    out, races = _run(k, A)
    assert len(races) == 1
    w = races[0]
    fill_file, fill_line = line_of(k, "nisa.dma_copy(dst=out, src=z)")
    _, store_line = line_of(k, "nisa.dma_copy(dst=out[pid")
    msg = str(w.message)
    assert os.path.samefile(w.filename, fill_file) and w.lineno == fill_line   # core 1's access
    for part in ("under LNC=2", "core 0 writes shared HBM tensor 'out'", f":{store_line})",
                 "core 1 writes the same bytes", f":{fill_line})", "no nisa.core_barrier",
                 "depends on which core gets there first"):
        assert part in msg, (part, msg)
    assert issubclass(CrossCoreRaceWarning, KernelLintWarning)
    assert "lock-step" in msg
    # in lock-step both zero fills run before either store: the intended result, this time
    np.testing.assert_array_equal(out, A)


def test_a_core_barrier_between_fill_and_store_orders_them_and_silences_the_lint():
    out, races = _run(_fill_then_store(barrier=True), A)
    assert races == []
    np.testing.assert_array_equal(out, A)


def test_the_race_can_be_made_an_error():
    k = _fill_then_store(barrier=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KernelLintWarning)
        with pytest.raises(CrossCoreRaceWarning):
            k[2](A)


def _rows(step_of_core):
    def kernel(a):
        """Core p writes the rows ``step_of_core(p)`` selects (a strided or blocked view)."""
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        pid = nl.program_id(0)
        t = nl.ndarray((8, a.shape[1]), a.dtype, buffer=nl.sbuf)
        start, step = step_of_core(pid)
        nisa.dma_copy(dst=t, src=a[start:start + 7 * step + 1:step])
        nisa.dma_copy(dst=out[start:start + 7 * step + 1:step], src=t)
        return out
    return nki.jit(kernel, target="trn2")


@pytest.mark.parametrize("layout", [
    lambda p: (8 * p, 1),                   # each core its own block of rows
    lambda p: (p, 2),                       # even / odd rows: the spans overlap, the bytes do not
], ids=["blocks", "interleaved"])
def test_disjoint_rows_are_no_race(layout):
    out, races = _run(_rows(layout), A)
    assert races == []
    np.testing.assert_array_equal(out, A)


def test_the_same_store_by_both_cores_from_one_line_is_not_reported_on_its_own():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KernelLintWarning)     # the odd rows stay unwritten
        _, races = _run(_rows(lambda p: (0, 2)), A)
    assert races == []


def test_a_read_of_rows_the_other_core_writes_is_a_race_too():
    def kernel(a):
        """Each core publishes its half in scratch, then reads the other's half (no barrier)."""
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        scratch = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        pid = nl.program_id(0)
        t = nl.ndarray((8, a.shape[1]), a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a[pid * 8:(pid + 1) * 8])
        nisa.dma_copy(dst=scratch[pid * 8:(pid + 1) * 8], src=t)
        nisa.dma_copy(dst=t, src=scratch[(1 - pid) * 8:(2 - pid) * 8])
        nisa.dma_copy(dst=out[pid * 8:(pid + 1) * 8], src=t)
        return out
    k = nki.jit(kernel, target="trn2")
    _, races = _run(k, A)
    assert len(races) == 1
    msg = str(races[0].message)
    assert "'scratch'" in msg and ("core 0 reads" in msg or "core 1 reads" in msg), msg


def test_single_core_programs_are_not_analysed():
    out, races = _run(_fill_then_store(barrier=False), A, lnc=1)
    assert races == []
    np.testing.assert_array_equal(out[:8], A[:8])          # program 0 only: rows 8.. stay zero
    np.testing.assert_array_equal(out[8:], 0)


def test_find_races_returns_the_storage_and_both_instructions():
    k = _fill_then_store(barrier=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CrossCoreRaceWarning)
        program = k[2].trace(A)
    (st, (i0, w0), (i1, w1)), = find_races(program)
    assert st.name == program.outputs[0].name
    assert (w0, w1) == (True, True)
    assert {i0.args["_core"], i1.args["_core"]} == {0, 1}
    assert i0.op.name == i1.op.name == "dma_copy"
