"""Malformed reducer and comparator regions are refused by name, with the instruction's line
(issue 9: the fuzzer's seed-2/3 runs reached TypeErrors and IndexErrors inside the argmax probe
and the region evaluator, which only the importer's catch-all turned into an error)."""
from __future__ import annotations

import numpy as np
import pytest

import neuron
from lowering import HloImportError

ARGMAX = """HloModule am
pick {
  v0 = f32[] parameter(0)
  i0 = s32[] parameter(1)
  v1 = f32[] parameter(2)
  i1 = s32[] parameter(3)
  ge = pred[] compare(v0, v1), direction=GE
  bv = f32[] select(ge, v0, v1)
  eq = pred[] compare(v0, v1), direction=EQ
  lowi = s32[] minimum(i0, i1)
  si = s32[] select(ge, i0, i1)
  bi = s32[] select(eq, lowi, si)
  ROOT out = (f32[], s32[]) tuple(bv, bi)
}
ENTRY main {
  x = f32[3,5] parameter(0)
  ids = s32[3,5] iota(), iota_dimension=1
  lo = f32[] constant(-inf)
  zero = s32[] constant(0)
  r = (f32[3], s32[3]) reduce(x, ids, lo, zero), dimensions={1}, to_apply=pick
  ROOT k = s32[3] get-tuple-element(r), index=1
}
"""


def test_the_well_formed_tie_breaking_reducer_is_an_argmax():
    x = np.array([[1, 3, 3, 0, 2], [5, 5, 5, 5, 5], [-1, -2, -3, 4, 4]], np.float32)
    f = neuron.load_hlo(ARGMAX)
    np.testing.assert_array_equal(f(x), [1, 0, 3])
    np.testing.assert_array_equal(f.reference(x), [1, 0, 3])


@pytest.mark.parametrize("old,new", [
    ("compare(v0, v1), direction=EQ", "compare(v0), direction=EQ"),        # one operand
    ("select(ge, i0, i1)", "select(ge, i0, i1, i0)"),                      # four operands
    ("select(ge, v0, v1)", "select(ge, v0)"),                              # two operands
    ("minimum(i0, i1)", "minimum(i0)"),
    ("tuple(bv, bi)", "tuple(bv, nowhere)"),                               # undefined root
    ("lowi = s32[] minimum(i0, i1)", "lowi = pred[] not(ge, eq)"),
    ("bi = s32[] select(eq, lowi, si)", "bi = s32[] select(eq, lowi, bi)"),  # uses itself
])
def test_a_malformed_argmax_reducer_is_refused_with_its_line(old, new):
    assert old in ARGMAX
    with pytest.raises(HloImportError, match="variadic reduce 'r' .* is not supported.*reducer "
                                             "ops: ") as info:
        neuron.load_hlo(ARGMAX.replace(old, new, 1))
    assert info.value.line == 20
    assert not getattr(info.value, "unvalidated", False)


WINDOW = """HloModule w
sum {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
ENTRY main {
  x = f32[4,6] parameter(0)
  z = f32[] constant(0)
  ROOT r = f32[4,6] reduce-window(x, z), window={size=2x2 pad=0_1x0_1}, to_apply=sum
}
"""

SORT = """HloModule s
less {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT lt = pred[] compare(a, b), direction=LT
}
ENTRY main {
  x = f32[3,8] parameter(0)
  ROOT r = f32[3,8] sort(x), dimensions={1}, to_apply=less
}
"""


@pytest.mark.parametrize("text,old,new,says,line", [
    (WINDOW, "add(a, b)", "add()", "reduce-window 'r': to_apply must be a single add", 10),
    (WINDOW, "add(a, b)", "add(a, b, a)", "reduce-window 'r': to_apply must be a single add", 10),
    (SORT, "compare(a, b)", "compare(a)", "sort 'r': the comparator must be a < or >", 9),
])
def test_a_malformed_combiner_or_comparator_is_refused_with_its_line(text, old, new, says, line):
    x = np.arange(24, dtype=np.float32).reshape(4, 6) if text is WINDOW else None
    neuron.load_hlo(text)                                  # the well-formed one imports
    if x is not None:
        f = neuron.load_hlo(text)
        np.testing.assert_allclose(f(x), f.reference(x))
    with pytest.raises(HloImportError, match=says) as info:
        neuron.load_hlo(text.replace(old, new, 1))
    assert info.value.line == line
    assert not getattr(info.value, "unvalidated", False)
