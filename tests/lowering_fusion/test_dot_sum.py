"""Two dots summed in one PSUM accumulation group (lowering/lower/dot_sum.py): the fused program
gives the op-by-op program's bytes on the reference executor, pairs that would round differently
stay unfused, and the group has its own schedule (legal space, tunable keys)."""
from __future__ import annotations

import warnings

import ml_dtypes
import numpy as np
from hypothesis import given, settings as hsettings, strategies as st

from device.arch import get_arch
from device.executor import run, run_reference
from lowering import lower_graph, plan
from lowering.ir.graph import Graph
from lowering.ir.types import TensorType
from lowering.lower.dot_sum import DotSumSchedule

_NP = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}


def _cell(B, M, K1, K2, N, dt, epilogue, swap):
    """epilogue(x @ wx + h @ wh) (batched over B when B > 0); ``swap``: the add's operands
    in the other order."""
    g = Graph("cell")
    lead = (B,) if B else ()
    ps = [g.param(TensorType(lead + s, dt), n) for s, n in
          [((M, K1), "x"), ((K1, N), "wx"), ((M, K2), "h"), ((K2, N), "wh")]]
    attrs = {"lhs_contract": [len(lead) + 1], "rhs_contract": [len(lead)]}
    if B:
        attrs.update(lhs_batch=[0], rhs_batch=[0])
    d1 = g.add_op("dot", ps[:2], attrs)
    d2 = g.add_op("dot", ps[2:], attrs)
    s = g.add_op("add", [d2, d1] if swap else [d1, d2])
    g.set_outputs([g.add_op(epilogue, [s]) if epilogue else s])
    return g, ps


@hsettings(max_examples=25, deadline=None)
@given(B=st.sampled_from([0, 0, 2]), M=st.sampled_from([1, 8, 130]), K1=st.integers(1, 300),
       K2=st.integers(1, 300), N=st.sampled_from([5, 128, 600]),
       dt=st.sampled_from(["float32", "bfloat16"]), epilogue=st.sampled_from([None, "tanh", "exp"]),
       swap=st.booleans(), seed=st.integers(0, 99))
def test_a_dot_sum_gives_the_unfused_bytes(B, M, K1, K2, N, dt, epilogue, swap, seed):
    g, ps = _cell(B, M, K1, K2, N, dt, epilogue, swap)
    groups = [[op.opcode for op in grp.ops] for grp in plan(g)]
    fused = min(K1, K2) <= 128 and dt == "float32"   # bf16 dots give bf16 results here
    summed = ["dot", "dot", "add"] + ([epilogue] if epilogue else [])
    assert (groups == [summed]) == fused, groups
    rng = np.random.default_rng(seed)
    xs = [(rng.standard_normal(tuple(p.type.shape)) * 0.5).astype(_NP[dt]) for p in ps]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = run_reference(lower_graph(g, "trn1"), xs)
        b = run_reference(lower_graph(g, "trn1", fuse=False), xs)
        fast = run(lower_graph(g, "trn1"), xs)
    for x, y, f in zip(a, b, fast):
        assert x.tobytes() == y.tobytes()
        np.testing.assert_allclose(f.astype(np.float64), x.astype(np.float64), rtol=1e-5,
                                   atol=1e-5 * max(K1, K2))


def test_an_f32_sum_of_bf16_dots_accumulates_in_one_group_and_the_space_is_legal():
    """bf16 operands with fp32 results (preferred_element_type) pair too; the group's schedule
    space is its own (n_tile choices), every candidate lowers to the same bytes."""
    g = Graph("cell")
    x = g.param(TensorType((8, 200), "bfloat16"), "x")
    wx = g.param(TensorType((200, 300), "bfloat16"), "wx")
    h = g.param(TensorType((8, 64), "bfloat16"), "h")
    wh = g.param(TensorType((64, 300), "bfloat16"), "wh")
    mm = {"lhs_contract": [1], "rhs_contract": [0], "out_dtype": "float32"}
    d1 = g.add_op("dot", [x, wx], mm)
    d2 = g.add_op("dot", [h, wh], mm)
    g.set_outputs([g.add_op("tanh", [g.add_op("add", [d1, d2])])])
    (grp,) = plan(g)
    arch = get_arch("trn1")
    space = DotSumSchedule.space(grp.problem(), arch)
    assert grp.schedule_class() is DotSumSchedule and [s.n_tile for s in space] == [512, 256, 128]
    assert (grp.problem().K1, grp.problem().K2) == (200, 64)
    rng = np.random.default_rng(0)
    xs = [(rng.standard_normal(tuple(p.type.shape)) * 0.5).astype(ml_dtypes.bfloat16)
          for p in (x, wx, h, wh)]
    want = run_reference(lower_graph(g, "trn1", fuse=False), xs)[0]
    for s in space:
        prog = lower_graph(g, "trn1", schedules={grp.key: s})
        mms = [i for i in prog.instrs if i.op.name == "nc_matmul"]
        assert len(mms) == 3 * -(-300 // s.n_tile)          # K1: 2 tiles, K2: 1, per N tile
        assert run_reference(prog, xs)[0].tobytes() == want.tobytes()
