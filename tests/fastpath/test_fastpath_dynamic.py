"""Scalar run-time offsets on the fast path (``device.fastpath.kernels_dynamic``): DMAs whose
window moves with a loop register or an offset tensor give the reference's bytes, and an
address out of bounds gives the reference's error (``oob_mode=error``) or no transfer (skip)."""
from __future__ import annotations

import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

from device.errors import HardwareRuleError
from device.fastpath import plan_for
from device.fastpath.kernels_dynamic import DYNAMIC_KERNELS
from device.isa.control import VirtualRegister
from device.program import Program

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fastpath_helpers import check  # noqa: E402

_NP = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16, "int32": np.int32}


def _window_program(R, C, n, lo, hi, src_dt, tile_dt, oob, via_tensor, write_back, shift,
                    fill_tile=True):
    """for i in [lo, hi): tile = x[i + shift : i + shift + n] (a scalar-offset read);
    acc += tile; optionally out[i : i + n] = tile (a scalar-offset write into a copy of x)."""
    p = Program("window")
    x = p.alloc((R, C), src_dt, "hbm", name="x", kind="input")
    p.inputs.append(x.storage)
    acc = p.alloc((n, C), "float32", "sbuf", name="acc")
    p.emit("memset", dst=acc, value=0.0)
    out = p.alloc((R, C), src_dt, "shared_hbm", name="out")
    p.emit("dma_copy", dst=out, src=x)
    reg = VirtualRegister("i", readonly=True)
    tile = p.alloc((n, C), tile_dt, "sbuf", name="tile")
    if fill_tile:                               # what a skipped transfer leaves in place
        p.emit("memset", dst=tile, value=0.0)
    saved, p.instrs = p.instrs, []
    off = reg
    if via_tensor:
        off = p.alloc((1, 1), "int32", "sbuf", name="off")
        p.emit("register_store", dst=off, src=reg)
    src = x.ap([[C, n], [1, C]], offset=shift * C, scalar_offset=off, indirect_dim=0)
    p.emit("dma_copy", dst=tile, src=src, oob_mode=oob)
    p.emit("tensor_tensor", dst=acc, data1=acc, data2=tile, op="add")
    if write_back:
        p.emit("dma_copy", dst=out.ap([[C, n], [1, C]], scalar_offset=off, indirect_dim=0),
               src=tile, oob_mode=oob)
    body, p.instrs = p.instrs, saved
    p.emit("fori_loop", reg=reg, lower=lo, upper=hi, step=1, body=body,
           _reads=[v for b in body for v in b.reads()],
           _writes=[v for b in body for v in b.writes()])
    res = p.alloc((n, C), "float32", "shared_hbm", name="res")
    p.emit("dma_copy", dst=res, src=acc)
    p.outputs += [res.storage, out.storage]
    return p


@given(R=st.integers(2, 12), C=st.integers(1, 6), n=st.integers(1, 3), lo=st.integers(-2, 3),
       trips=st.integers(1, 12), dts=st.sampled_from([("float32", "float32"),
                                                      ("float32", "bfloat16"),
                                                      ("bfloat16", "float32"),
                                                      ("int32", "float32")]),
       oob=st.sampled_from(["error", "skip"]), via_tensor=st.booleans(),
       write_back=st.booleans(), shift=st.integers(-1, 1), seed=st.integers(0, 99))
def test_scalar_offset_windows_give_the_reference_bytes_and_errors(
        R, C, n, lo, trips, dts, oob, via_tensor, write_back, shift, seed):
    src_dt, tile_dt = dts
    prog = _window_program(R, C, n, lo, lo + trips, src_dt, tile_dt, oob, via_tensor,
                           write_back, shift)
    plan = plan_for(prog)
    assert plan is not None
    body = prog.instrs[-2].args["body"]
    dyn = [b for b in body if b.op.name == "dma_copy"]
    plan.ctx.idx = None
    assert all(DYNAMIC_KERNELS["dma_copy"](b, plan.ctx) is not None for b in dyn)
    x = (np.random.default_rng(seed).standard_normal((R, C)) * 8).astype(_NP[src_dt])
    in_bounds = lo + shift >= 0 and lo + trips - 1 + shift + n <= R and \
        (not write_back or (lo >= 0 and lo + trips - 1 + n <= R))
    if oob == "error" and not in_bounds:
        with pytest.raises(HardwareRuleError, match="access-out-of-bound"):
            check(prog, [x])
        return
    acc, out = check(prog, [x])
    if oob == "error":                          # every window in bounds: the plain sum
        want = sum(x[i + shift:i + shift + n].astype(_NP[tile_dt]).astype(np.float32)
                   for i in range(lo, lo + trips))
        np.testing.assert_allclose(acc, want, rtol=1e-5, atol=1e-5)


def test_a_register_window_is_read_without_the_generic_path(monkeypatch):
    """The kernel (not the entry's ``run``) moves an in-bounds window; only an out-of-bounds
    one reaches the entry's ``run``."""
    from device.isa import dma_extra
    prog = _window_program(8, 4, 2, 0, 7, "float32", "float32", "skip", False, True, 0)
    calls = []
    real = dma_extra.dma_copy_dynamic
    monkeypatch.setattr(dma_extra, "dma_copy_dynamic",
                        lambda i, mem: (calls.append(i), real(i, mem))[1])
    x = np.arange(32, dtype=np.float32).reshape(8, 4)
    acc, out = check(prog, [x])
    ref_calls = len(calls)                       # the reference: 2 DMAs x 7 iterations
    assert ref_calls >= 14
    np.testing.assert_array_equal(acc, sum(x[i:i + 2] for i in range(7)))
    calls.clear()
    from device.fastpath import run
    run(prog, [x])
    assert calls == []
    prog = _window_program(8, 4, 2, 0, 8, "float32", "float32", "skip", False, False, 0)
    calls.clear()
    acc = run(prog, [x])[0][0]
    assert len(calls) == 1                       # the last window (rows 7..8) is skipped:
    np.testing.assert_array_equal(acc, sum(x[i:i + 2] for i in range(7)) + x[6:8])  # tile kept


def test_a_skipping_dma_into_an_unwritten_tile_keeps_the_reference_executor():
    """A skipped transfer leaves its destination as it was: the plan's facts (which treat the
    DMA as a write) would be wrong for a tile nothing wrote before, so the reference runs it
    (and warns about the uninitialised read, as it should)."""
    from device.fastpath.analysis import unsupported_reason
    prog = _window_program(4, 2, 1, -1, 2, "float32", "float32", "skip", False, False, 0,
                           fill_tile=False)
    assert unsupported_reason(prog) == "a dma_copy with oob_mode=skip into partly written tile"
    assert plan_for(prog) is None
    x = np.ones((4, 2), np.float32)
    assert np.isnan(check(prog, [x])[0]).all()
    from device import executor
    with pytest.warns(UserWarning, match="uninitialized element"):
        executor.run(prog, [x])
