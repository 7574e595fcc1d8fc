"""DMA ``priority=``: a NeuronCore-v4 class-of-service level from 0 (highest) to 3 that changes
no byte. The newest nki-library's DeepSeek-V4 CSA kernels tag their loads 0..3; the NeuroTile
library validates the same range. Out-of-range or non-int levels are refused by name, on
``dma_copy`` and ``dma_transpose`` alike, as is any level below NeuronCore-v4."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from isa_helpers import Line, assert_same, expect_error, rand, run, store


@given(prio=st.integers(0, 3), seed=st.integers(0, 20))
def test_every_level_copies_bit_for_bit(prio, seed):
    x = rand((8, 16), "bfloat16", seed)

    def k(x):
        t = nl.ndarray((8, 16), "bfloat16", buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=x, priority=prio)
        tt = nl.ndarray((16, 8), "bfloat16", buffer=nl.sbuf)
        nisa.dma_transpose(dst=tt, src=x, priority=prio)
        out = nl.ndarray((16, 8), "bfloat16", buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=tt, priority=3 - prio)
        back = nl.ndarray((8, 16), "bfloat16", buffer=nl.shared_hbm)
        nisa.dma_copy(dst=back, src=t)
        return out, back
    out, back = run(k, x, target="trn3")
    assert_same(np.asarray(out), x.T)
    assert_same(np.asarray(back), x)


@pytest.mark.parametrize("prio", [4, -1, True, 1.5, "high"])
@pytest.mark.parametrize("op", ["dma_copy", "dma_transpose"])
def test_a_level_outside_0_to_3_is_refused_by_name(prio, op):
    x = rand((8, 16), "float32")
    L = Line()

    def k(x):
        if op == "dma_copy":
            t = nl.ndarray((8, 16), "float32", buffer=nl.sbuf)
            L.mark(); nisa.dma_copy(dst=t, src=x, priority=prio)  # noqa: E702
        else:
            t = nl.ndarray((16, 8), "float32", buffer=nl.sbuf)
            L.mark(); nisa.dma_transpose(dst=t, src=x, priority=prio)  # noqa: E702
        return store(t)
    e = expect_error(k, (x,), L, f"priority={prio!r} is not a DMA priority level",
                     "an int from 0 (highest) to 3", target="trn3")
    assert e.rule == "priority" and e.operand == "priority"


def test_dma_transpose_priority_is_v4_only():
    x = rand((8, 16), "float32")
    L = Line()

    def k(x):
        t = nl.ndarray((16, 8), "float32", buffer=nl.sbuf)
        L.mark(); nisa.dma_transpose(dst=t, src=x, priority=2)  # noqa: E702
        return store(t)
    expect_error(k, (x,), L, "priority=2 needs NeuronCore-v4", "NeuronCore-v3", target="trn2")
