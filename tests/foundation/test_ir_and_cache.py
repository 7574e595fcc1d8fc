"""Tracing caches per signature; device programs and graphs print as stable text."""
import numpy as np

import nki
import nki.isa as nisa
import nki.language as nl
from device.program import Program
from device.timing import schedule

CALLS = []


@nki.jit
def scale(a, factor):
    CALLS.append(1)
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    t = nl.load(a)
    nl.store(out, nl.multiply(t, factor))
    return out


def test_trace_once_per_signature():
    CALLS.clear()
    a = np.ones((4, 8), np.float32)
    for _ in range(3):
        np.testing.assert_array_equal(scale(a, 2.0), a * 2)
    assert len(CALLS) == 1                       # same shapes, dtypes, constants: cached
    scale(a, 3.0)                                # a new constant is a new program
    scale(np.ones((4, 16), np.float32), 2.0)     # a new shape too
    scale(a.astype(np.float16), 2.0)             # and a new dtype
    assert len(CALLS) == 4
    np.testing.assert_array_equal(scale(a + 1, 2.0), (a + 1) * 2)   # values never specialise
    assert len(CALLS) == 4


def test_program_prints_stable_text():
    p = Program("k", "trn2")
    a = p.alloc((128, 4), "float32", "hbm", name="a", kind="input")
    p.inputs.append(a.storage)
    t = p.alloc((128, 4), "bfloat16", "sbuf", name="t")
    p.emit("dma_copy", dst=t, src=a, loc=None)
    p.emit("activation", dst=t, op="exp", data=t, loc=None)
    text = str(p).splitlines()
    assert text[0] == "program k(a: float32[128,4]) (target trn2) {"
    assert text[1] == "  alloc sbuf.t : bfloat16[128,4]"
    assert text[2].startswith("  dma_copy[DMA] dst=sbuf.t{0;[4,128],[1,4]} src=hbm.a{0;[4,128],[1,4]}")
    assert text[3].startswith("  activation[ACT] dst=sbuf.t{0;[4,128],[1,4]} op=exp data=sbuf.t")
    assert "test_ir_and_cache.py" in text[2]         # each instruction carries its source line


def _fresh_trace(a):
    # a new jit object each time: no trace cache, so the program is built from scratch
    return nki.jit(scale.fn).trace(a, 2.0)


def test_same_kernel_traced_twice_prints_identical_text():
    a = np.ones((128, 64), np.float32)
    first, second = str(_fresh_trace(a)), str(_fresh_trace(a))
    assert first == second
    assert "shared_hbm.t0" in first and "sbuf.t1" in first   # numbered per program, from 0


def test_timing_model_orders_and_overlaps():
    a = np.ones((128, 1024), np.float32)
    prog = scale.trace(a, 2.0)
    t = schedule(prog)
    assert t.total_ns > 0
    for eng, busy in t.busy_ns.items():
        assert 0 <= busy <= t.total_ns, eng
    assert t.busy_ns["DMA"] > 0 and t.busy_ns["DVE"] > 0
