"""On the graph path every instruction carries where it came from: the HLO/MLIR instruction (and
its line), the JAX source line when the export has debug info, or the nl.* call's line."""
import re
import sys
from pathlib import Path

import numpy as np

import neuron
import nki.language as nl

HLO = """HloModule m, entry_computation_layout={(f32[4,8]{1,0}, f32[8,16]{1,0})->f32[4,16]{1,0}}

ENTRY main.1 {
  x.1 = f32[4,8]{1,0} parameter(0)
  w.1 = f32[8,16]{1,0} parameter(1)
  dot.7 = f32[4,16]{1,0} dot(x.1, w.1), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  ROOT exp.9 = f32[4,16]{1,0} exponential(dot.7)
}
"""


def instr_locs(text):
    return [line.split("  # ")[1] for line in text.splitlines()
            if "  # " in line and not line.lstrip().startswith("alloc")]


def test_imported_hlo_instructions_name_their_hlo_instruction_and_line(tmp_path):
    path = tmp_path / "model.hlo"
    path.write_text(HLO)
    locs = instr_locs(neuron.load_hlo(path).lower())
    assert locs and set(locs) <= {"dot.7 @ model.hlo:6", "exp.9 @ model.hlo:7"}
    assert "exp.9 @ model.hlo:7" in locs and "dot.7 @ model.hlo:6" in locs


def test_from_jax_instructions_point_at_the_jax_lines():
    import jax.numpy as jnp

    def f(x, w):
        y = x @ w
        return jnp.exp(y)
    first = f.__code__.co_firstlineno
    locs = instr_locs(neuron.from_jax(f).lower(np.ones((4, 8), np.float32),
                                               np.ones((8, 16), np.float32)))
    here = Path(__file__).name
    assert any(loc.endswith(f"@ {here}:{first + 1}") and "dot_general" in loc for loc in locs)
    assert any(loc.endswith(f"@ {here}:{first + 2}") and "exponential" in loc for loc in locs)


@neuron.jit
def model(x, w):
    h = nl.matmul(x, w)
    return nl.exp(h)


def test_jit_model_instructions_point_at_their_nl_lines():
    text = str(model.trace(np.ones((128, 64), np.float32), np.ones((64, 32), np.float32)))
    lines = {int(m.group(1)) for m in re.finditer(r"test_source_locations\.py:(\d+)", text)}
    first = model.fn.__code__.co_firstlineno + 1     # the line after @neuron.jit
    assert lines == {first + 1, first + 2}           # the matmul line and the exp line


def test_rule_errors_on_the_graph_path_name_the_hlo_instruction(tmp_path):
    path = tmp_path / "sorted.hlo"
    path.write_text("""HloModule m

lt {
  a = s64[] parameter(0)
  b = s64[] parameter(1)
  ROOT c = pred[] compare(a, b), direction=LT
}

ENTRY main.1 {
  x.1 = s64[4,16]{1,0} parameter(0)
  ROOT so.9 = s64[4,16]{1,0} sort(x.1), dimensions={1}, to_apply=lt
}
""")
    f = neuron.load_hlo(path)
    try:
        f.lower()
    except Exception as e:                            # noqa: BLE001 - the message is the test
        assert "int64" in str(e) and "so.9 @ sorted.hlo:11" in str(e), str(e)
    else:
        raise AssertionError("sort has no lowering for int64 keys; lowering must refuse it")
