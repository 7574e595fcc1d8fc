"""nl.load_transpose2d is priced as the DMA engines' 2-D transpose (CM 2.6), not as one
descriptor per element; an ordinary strided copy of the same permuted view still is."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import nki
import nki.language as nl
from device.errors import HardwareRuleError
from device.program import Program
from device.timing import schedule


def _one_dma(target, rows, cols, dtype, transpose2d):
    p = Program("k", target)
    src = p.alloc((rows, cols), dtype, "hbm", name="x", loc=None)
    dst = p.alloc((cols, rows), dtype, "sbuf", name="t", loc=None)
    args = {"transpose2d": True} if transpose2d else {}
    p.emit("dma_copy", dst=dst, src=src.permute((1, 0)), loc=None, **args)
    return schedule(p)


@given(st.sampled_from(["trn1", "trn2", "trn3"]), st.sampled_from([128, 512, 2048]),
       st.sampled_from([32, 64, 128]), st.sampled_from(["float32", "bfloat16"]))
def test_transpose2d_costs_far_less_than_an_element_strided_copy(target, rows, cols, dtype):
    engine = _one_dma(target, rows, cols, dtype, True)
    strided = _one_dma(target, rows, cols, dtype, False)
    assert engine.total_ns < strided.total_ns
    # one descriptor per SBUF partition row, not one per element
    assert engine.dma_rows == cols
    assert strided.dma_rows == rows * cols


def test_transpose_rate_follows_the_arch_factor():
    """trn1's load_transpose2d runs at a quarter of the copy rate, trn2's at 90% (CM 2.6)."""
    def ratio(target):
        p = Program("k", target)
        src = p.alloc((4096, 128), "bfloat16", "hbm", name="x", loc=None)
        dst = p.alloc((128, 4096), "bfloat16", "sbuf", name="t", loc=None)
        p.emit("dma_copy", dst=dst, src=src.permute((1, 0)), transpose2d=True, loc=None)
        q = Program("k", target)
        src2 = q.alloc((128, 4096), "bfloat16", "hbm", name="x", loc=None)
        dst2 = q.alloc((128, 4096), "bfloat16", "sbuf", name="t", loc=None)
        q.emit("dma_copy", dst=dst2, src=src2, loc=None)
        return schedule(p).dma_engine_ns / schedule(q).dma_engine_ns
    # same descriptors and row sizes: the engine time differs by the transpose factor only
    assert ratio("trn1") == pytest.approx(4.0)
    assert ratio("trn2") == pytest.approx(1 / 0.9)


def test_load_transpose2d_emits_the_engine_transpose_and_matches_numpy():
    @nki.jit
    def k(x):
        t = nl.load_transpose2d(x)
        out = nl.ndarray(t.shape, dtype=t.dtype, buffer=nl.shared_hbm)
        nl.store(out, t)
        return out
    x = np.random.default_rng(0).standard_normal((256, 96)).astype(np.float32)
    np.testing.assert_array_equal(k(x), x.T)
    prog = k.trace(x)
    dmas = [i for i in prog.instrs if i.args.get("transpose2d")]
    assert len(dmas) == 1


def test_transpose2d_with_a_wrong_dst_shape_is_refused():
    p = Program("k", "trn2")
    src = p.alloc((64, 32), "float32", "hbm", name="x", loc=None)
    dst = p.alloc((16, 128), "float32", "sbuf", name="t", loc=None)
    with pytest.raises(HardwareRuleError, match=r"transpose2d copies a permuted 2-D src"):
        p.emit("dma_copy", dst=dst, src=src.permute((1, 0)), transpose2d=True, loc=None)
