"""nki.language.opcode: the operator tokens as a module (newer library kernels import from it)."""
import sys
from pathlib import Path

import numpy as np
import pytest

import nki.isa as nisa
import nki.language as nl
import nki.language.opcode as opcode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "isa"))
from isa_helpers import assert_same, load, rand, run, store  # noqa: E402


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "maximum", "minimum", "exp",
                                  "less_equal", "greater_equal", "copy", "bitwise_and"])
def test_opcode_names_are_the_nl_tokens(name):
    assert getattr(opcode, name) is getattr(nl, name)
    assert name in opcode.__all__


def test_opcode_has_no_stray_names():
    with pytest.raises(ImportError):
        from nki.language.opcode import not_an_op  # noqa: F401


def test_range_select_reduce_with_opcode_maximum():
    """The attention kernels' spelling: reduce_op=opcode.maximum, compared with NumPy."""
    P, F, start = 8, 40, 7
    x = rand((P, F), "float32", 3)
    b0 = np.zeros((P, 1), np.float32)
    b1 = (np.arange(P, dtype=np.float32) * 4 + 10).reshape(P, 1)

    def k(x, b0, b1):
        out = nl.ndarray((P, F), "float32", buffer=nl.sbuf)
        rr = nl.ndarray((P, 1), "float32", buffer=nl.sbuf)
        nisa.range_select(dst=out, on_true_tile=load(x), comp_op0=nl.greater_equal,
                          comp_op1=nl.less_equal, bound0=load(b0), bound1=load(b1),
                          reduce_op=opcode.maximum, reduce_res=rr,
                          reduce_cmd=nisa.reduce_cmd.reset_reduce, range_start=start)
        return store(out), store(rr)
    idx = (start + np.arange(F, dtype=np.float32)).reshape(1, -1)
    y = np.where((idx >= b0) & (idx <= b1), x, np.float32(-3.4028235e38)).astype(np.float32)
    got, red = run(k, x, b0, b1, target="trn2")
    assert_same(got, y)
    assert_same(red, y.max(axis=1, keepdims=True))
