"""Every schedule in a rule's space() lowers to a program that computes the graph.

Matmul and stream schedules only regroup work (each output element sums the same K tiles in the
same order), so every candidate must give the *same bits* as the default, which itself matches
the NumPy reference. Reduction chunks change the order of partial sums, so those are compared
with the reference within tolerance. space() never yields an illegal schedule, and its first
candidate is always the default.
"""
import dataclasses
import warnings

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

from device.arch import get_arch
from device.executor import run
from lowering import Graph, TensorType, broadcast_binary, evaluate, lower_graph, plan
from lowering.lower import (FusedMatmulSchedule, IllegalSchedule, MatmulProblem, MatmulSchedule,
                            ReduceProblem, ReduceSchedule, StreamSchedule, from_key)
from neuron.testing import assert_close

NP = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}


def execute(g, xs, target, schedules=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(lower_graph(g, target, schedules=schedules), xs)


def same_bits(a, b):
    for x, y in zip(a, b):
        assert np.ascontiguousarray(x).tobytes() == np.ascontiguousarray(y).tobytes()


def data(rng, shape, dt):
    return (rng.standard_normal(shape) * 0.5).astype(NP[dt])


LAYOUT_DEFAULTS = {"stationary": "lhs", "rhs_load": "dma", "lhs_load": "dma", "axis": "free",
                   "resident": False, "split": ()}


def pick(draw, space):
    """Any schedule of ``space``; a coin first decides whether to draw among those that set a
    layout knob to a non-default value (a small part of each space: drawn uniformly, 20
    examples would rarely reach them)."""
    special = [s for s in space if any(getattr(s, k, d) != d for k, d in LAYOUT_DEFAULTS.items())]
    if special and draw.draw(st.booleans(), label="layout knob"):
        return draw.draw(st.sampled_from(special))
    return draw.draw(st.sampled_from(space))


def dot_graph(B, M, K, N, dt, epilogue=False, rhs_t=False, lhs_t=False):
    """[B,] M x K @ K x N (rhs_t: the rhs lies [B,] N x K, as k in q @ k^T; lhs_t: the lhs lies
    [B,] K x M, as x in x^T @ y)."""
    g = Graph("mm")
    lead = (B,) if B else ()
    x = g.param(TensorType(lead + ((K, M) if lhs_t else (M, K)), dt), "x")
    w = g.param(TensorType(lead + ((N, K) if rhs_t else (K, N)), dt), "w")
    bd = [0] if B else []
    y = g.add_op("dot", [x, w], {"lhs_contract": [len(lead) + int(not lhs_t)],
                                 "rhs_contract": [len(lead) + int(rhs_t)],
                                 "lhs_batch": bd, "rhs_batch": bd})
    if epilogue:
        b = g.param(TensorType((N,), dt), "b")
        y = g.add_op("tanh", [broadcast_binary(g, "add", y, b)])
    g.set_outputs([y])
    return g


@given(st.integers(0, 2), st.integers(1, 300), st.integers(1, 400), st.integers(1, 700),
       st.sampled_from(["float32", "bfloat16"]), st.sampled_from(["inf2", "trn2"]),
       st.booleans(), st.sampled_from(["mk,kn", "mk,nk", "km,kn"]), st.integers(0, 10 ** 6),
       st.data())
def test_any_matmul_schedule_matches_numpy(B, M, K, N, dt, target, epilogue, layout, seed, draw):
    g = dot_graph(B, M, K, N, dt, epilogue, rhs_t=layout == "mk,nk", lhs_t=layout == "km,kn")
    (group,) = plan(g)
    arch = get_arch(target)
    space = group.schedule_class().space(group.problem(), arch)
    assert space[0] == group.default_schedule(arch)
    sched = pick(draw, space)
    rng = np.random.default_rng(seed)
    xs = [data(rng, tuple(p.type.shape), dt) for p in g.params]
    base = execute(g, xs, target)
    got = execute(g, xs, target, {group.key: sched})
    if sched.stationary == "lhs":
        same_bits(base, got)
    # stationary='rhs' sums each K tile as b^T a^T: the same fp64 products in another order,
    # rounded once per tile, so it is compared with the reference only
    ref = evaluate(g, *xs)
    assert_close(got[0].reshape(ref[0].shape), ref[0], rtol=2e-2 if dt == "bfloat16" else 1e-4,
                 atol=2e-2 if dt == "bfloat16" else 1e-4)


@given(st.sampled_from(["exp", "tanh", "negate", "add", "maximum", "log1p"]),
       st.integers(1, 300), st.integers(1, 900), st.sampled_from(["float32", "bfloat16"]),
       st.integers(0, 10 ** 6), st.data())
def test_any_stream_schedule_gives_the_same_bits(opcode, R, C, dt, seed, draw):
    g = Graph("ew")
    x = g.param(TensorType((R, C), dt), "x")
    y = g.param(TensorType((R, C), dt), "y")
    r = g.add_op(opcode, [x, y] if opcode in ("add", "maximum") else [x])
    g.set_outputs([g.add_op("multiply", [r, y])])      # a fused two-op group
    (group,) = plan(g)
    assert group.fused and group.schedule_class() is StreamSchedule
    arch = get_arch("inf2")
    sched = pick(draw, StreamSchedule.space(group.problem(), arch))
    rng = np.random.default_rng(seed)
    xs = [np.abs(data(rng, (R, C), dt)), data(rng, (R, C), dt)]
    same_bits(execute(g, xs, "inf2"), execute(g, xs, "inf2", {group.key: sched}))


@given(st.sampled_from(["add", "max", "min"]), st.integers(1, 200), st.integers(1, 9000),
       st.integers(0, 10 ** 6), st.data())
def test_any_reduce_schedule_matches_numpy(kind, R, C, seed, draw):
    g = Graph("red")
    x = g.param(TensorType((R, C), "float32"), "x")
    g.set_outputs([g.add_op("reduce", [x], {"dims": [1], "kind": kind})])
    (group,) = plan(g)
    sched = pick(draw, ReduceSchedule.space(group.problem(), get_arch("inf2")))
    xs = [data(np.random.default_rng(seed), (R, C), "float32")]
    got = execute(g, xs, "inf2", {group.key: sched})
    assert_close(got[0].reshape(R), evaluate(g, *xs)[0], rtol=1e-5, atol=1e-4)


@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 9000),
       st.sampled_from(["bfloat16", "float32"]), st.sampled_from(["inf2", "trn2", "trn3"]))
def test_space_is_legal_and_starts_with_the_default(M, K, N, dt, target):
    arch = get_arch(target)
    prob = MatmulProblem(1, M * 37, K * 53, N, dt)
    space = MatmulSchedule.space(prob, arch)
    assert space[0] == MatmulSchedule.default(prob, arch)
    assert len(set(space)) == len(space)
    assert all(s.check(prob, arch) is None for s in space[1:])
    for s in MatmulSchedule.candidates(prob, arch):          # everything else says why
        if s not in space:
            assert isinstance(s.check(prob, arch), str)


def test_illegal_schedules_are_refused_with_the_reason():
    arch = get_arch("trn1")
    prob = MatmulProblem(1, 4096, 8192, 8192, "bfloat16")
    assert "PSUM banks" in MatmulSchedule(m_group=16).check(prob, arch)
    assert "SBUF" in MatmulSchedule(m_group=8, lhs_chunk=8192, n_tile=512).check(
        MatmulProblem(1, 4096, 16384, 8192, "bfloat16"), arch)
    assert "moving free size" in MatmulSchedule(n_tile=1024).check(prob, arch)
    g = dot_graph(0, 256, 256, 256, "bfloat16")
    (group,) = plan(g)
    with pytest.raises(IllegalSchedule, match="moving free size"):
        lower_graph(g, "trn1", schedules={group.key: MatmulSchedule(n_tile=1024)})
    with pytest.raises(IllegalSchedule, match="takes a MatmulSchedule"):
        lower_graph(g, "trn1", schedules={group.key: StreamSchedule()})


def test_schedule_keys_round_trip_and_group_keys_are_structural():
    s = FusedMatmulSchedule(order="n", n_group=2, n_tile=256)
    assert from_key(s.key()) == s
    a, b = dot_graph(0, 64, 32, 48, "float32"), dot_graph(0, 64, 32, 48, "float32")
    assert plan(a)[0].key == plan(b)[0].key                    # same structure, same key
    assert plan(a)[0].key != plan(dot_graph(0, 64, 32, 49, "float32"))[0].key
    assert plan(a)[0].key.startswith("matmul-")


def test_swapped_stationary_is_offered_for_skinny_matmuls_and_saves_pe_time():
    arch = get_arch("trn2")
    skinny = MatmulProblem(1, 64, 4096, 8192, "float32")
    space = MatmulSchedule.space(skinny, arch)
    swapped = [s for s in space if s.stationary == "rhs"]
    assert swapped and all(s.order == "n" for s in swapped)
    assert "order 'n' only" in MatmulSchedule("m", stationary="rhs").check(skinny, arch)
    assert "not 'lhs' or 'rhs'" in MatmulSchedule(stationary="both").check(skinny, arch)
    square = MatmulProblem(1, 512, 512, 512, "bfloat16")       # nothing to gain: not offered
    assert not any(s.stationary == "rhs" for s in MatmulSchedule.space(square, arch))
    assert MatmulSchedule().key() == MatmulSchedule(stationary="lhs").key()   # default keys kept
    assert from_key(swapped[0].key()) == swapped[0]
    g = dot_graph(0, 64, 300, 700, "float32")
    (group,) = plan(g)
    prog = lower_graph(g, "trn2", schedules={group.key: MatmulSchedule("n", stationary="rhs")})
    mms = [i for i in prog.instrs if i.op.name == "nc_matmul"]
    assert {tuple(i.args["stationary"].shape) for i in mms} >= {(128, 128)}   # rhs held
    assert all(i.args["moving"].shape[1] == 64 for i in mms)                  # lhsT streamed
    rng = np.random.default_rng(0)
    xs = [data(rng, (64, 300), "float32"), data(rng, (300, 700), "float32")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = run(prog, xs)
    assert_close(got[0], evaluate(g, *xs)[0], rtol=1e-5, atol=1e-5)


@given(st.lists(st.integers(1, 40), min_size=1, max_size=3), st.integers(1, 300),
       st.sampled_from(["add", "max"]), st.sampled_from(["float32", "bfloat16"]),
       st.integers(0, 2), st.integers(1, 2), st.integers(0, 10 ** 6), st.data())
def test_any_reduce_axis_matches_numpy(dims_sizes, lead, kind, dt, first, count, seed, draw):
    """Any block of axes reduced, with any schedule of the space (axis='partition' included when
    it applies): the result matches the reference."""
    shape = tuple([lead] + dims_sizes)
    first = min(first, len(shape) - 1)
    dims = list(range(first, min(first + count, len(shape))))
    g = Graph("red")
    x = g.param(TensorType(shape, dt), "x")
    g.set_outputs([g.add_op("reduce", [x], {"dims": dims, "kind": kind})])
    (group,) = plan(g)
    arch = get_arch("inf2")
    space = ReduceSchedule.space(group.problem(), arch)
    assert all(s.check(group.problem(), arch) is None for s in space)
    sched = pick(draw, space)
    xs = [data(np.random.default_rng(seed), shape, dt)]
    got = execute(g, xs, "inf2", {group.key: sched})
    ref = evaluate(g, *xs)[0]
    tol = 2e-2 if dt == "bfloat16" else 1e-4
    assert_close(got[0].reshape(ref.shape), ref, rtol=tol, atol=tol)


def test_reduce_partition_axis_is_offered_only_where_it_applies():
    arch = get_arch("inf2")
    column_sum = ReduceProblem(512, 4096, 4, "add", "float32", inner=512)
    assert ReduceSchedule(axis="partition") in ReduceSchedule.space(column_sum, arch)
    why = {p.kind + p.dtype + str(p.inner): ReduceSchedule(axis="partition").check(p, arch)
           for p in (ReduceProblem(512, 4096, 4, "max", "float32", 512),
                     ReduceProblem(512, 4096, 4, "add", "int32", 512),
                     ReduceProblem(512, 4096, 4, "add", "float32", 1))}
    assert "a max reduction cannot" in why["maxfloat32512"]
    assert "the operand is int32" in why["addint32512"]
    assert "innermost" in why["addfloat321"]
    assert "not 'free' or 'partition'" in ReduceSchedule(axis="rows").check(column_sum, arch)
    assert ReduceSchedule().key() == '{"chunk": 4096, "kind": "reduce"}'
    s = ReduceSchedule(axis="partition")
    assert from_key(s.key()) == s
    g = Graph("colsum")
    x = g.param(TensorType((4096, 512), "float32"), "x")
    g.set_outputs([g.add_op("reduce", [x], {"dims": [0], "kind": "add"})])
    (group,) = plan(g)
    prog = lower_graph(g, "inf2", schedules={group.key: s})
    names = [i.op.name for i in prog.instrs]
    assert names.count("nc_matmul") == 32 and "tensor_reduce" not in names
    xs = [data(np.random.default_rng(6), (4096, 512), "float32")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = run(prog, xs)[0]
    assert_close(got.reshape(512), evaluate(g, *xs)[0], rtol=1e-5, atol=1e-4)


def test_split_points_are_knobs_of_fused_groups():
    from lowering.lower.fusion import split_parts
    g = Graph("bias")
    x = g.param(TensorType((4096, 16), "float32"), "x")
    b = g.param(TensorType((16,), "float32"), "b")
    g.set_outputs([g.add_op("exp", [broadcast_binary(g, "add", x, b)])])
    (group,) = plan(g)
    prob = group.problem()
    assert prob.edges == 2
    space = StreamSchedule.space(prob, get_arch("inf2"))
    splits = [s.split for s in space if s.split]
    assert splits == [(True, False), (False, True), (True, True)]
    assert [[op.opcode for op in p] for p in split_parts(group, (True, False))] == \
        [["broadcast"], ["add", "exp"]]
    assert [[op.opcode for op in p] for p in split_parts(group, (False, True))] == \
        [["broadcast", "add"], ["exp"]]
    assert "2 booleans" in StreamSchedule(split=(True,)).check(prob, get_arch("inf2"))
    s = StreamSchedule(split=(True, False))
    assert from_key(s.key()) == s and "split" not in StreamSchedule().key()
    prog = lower_graph(g, "inf2", schedules={group.key: s})
    loads = [i for i in prog.instrs if i.op.name == "dma_copy"]
    fused = [i for i in lower_graph(g, "inf2").instrs if i.op.name == "dma_copy"]
    assert len(loads) < len(fused)        # flat [128, 2048] tiles once the bias is materialised
    xs = [data(np.random.default_rng(1), (4096, 16), "float32"),
          data(np.random.default_rng(2), (16,), "float32")]
    same_bits(execute(g, xs, "inf2"), execute(g, xs, "inf2", {group.key: s}))
    mm = dot_graph(0, 64, 32, 48, "float32", epilogue=True)
    (group,) = plan(mm)
    fs = FusedMatmulSchedule.space(group.problem(), get_arch("inf2"))
    assert any(s.split and s.split[0] for s in fs)             # the dot alone, then its epilogue
    assert not FusedMatmulSchedule(split=(True, True, True)).closed_form


def sum_of_squares(R, C, dt, kind="add", second_user=False):
    g = Graph("sumsq")
    x = g.param(TensorType((R, C), dt), "x")
    b = g.param(TensorType((C,), dt), "b")
    y = broadcast_binary(g, "subtract", x, b)
    sq = g.add_op("multiply", [y, y])
    r = g.add_op("reduce", [sq], {"dims": [1], "kind": kind})
    g.set_outputs([r, sq] if second_user else [r])
    return g


@given(st.integers(1, 300), st.integers(1, 5000), st.sampled_from(["float32", "bfloat16"]),
       st.sampled_from(["add", "max", "min"]), st.booleans(), st.integers(0, 10 ** 6), st.data())
def test_any_resident_reduce_schedule_gives_the_same_bits(R, C, dt, kind, shared, seed, draw):
    """A reduce paired with its producer (whose value may be read elsewhere too): every
    schedule of the space gives the bits of the same chunking through HBM (residency changes
    where the tiles come from, not the order of the sums; a different chunk may, so results
    are compared with the reference within tolerance)."""
    g = sum_of_squares(R, C, dt, kind, second_user=shared)
    group = plan(g)[-1]
    assert [op.opcode for op in group.ops] == ["multiply", "reduce"]
    assert len(group.outputs) == 1 + shared
    arch = get_arch("inf2")
    space = group.schedule_class().space(group.problem(), arch)
    assert space[0] == group.default_schedule(arch) and not space[0].resident
    sched = pick(draw, space)
    rng = np.random.default_rng(seed)
    xs = [data(rng, (R, C), dt), data(rng, (C,), dt)]
    got = execute(g, xs, "inf2", {group.key: sched})
    via_hbm = dataclasses.replace(sched, resident=False)
    same_bits(execute(g, xs, "inf2", {group.key: via_hbm}), got)
    if sched.chunk == space[0].chunk:
        same_bits(execute(g, xs, "inf2"), got)
    for got, ref in zip(got, evaluate(g, *xs)):
        tol = 2e-2 if dt == "bfloat16" else 1e-4
        assert_close(got.reshape(ref.shape), ref, rtol=tol, atol=tol)


def test_resident_reduce_pairs_with_its_producer_and_keeps_the_value_on_chip():
    from lowering.lower.fused_schedules import FusedReduceProblem, FusedReduceSchedule
    ops = lambda g: [[op.opcode for op in grp.ops] for grp in plan(g)]  # noqa: E731
    assert ops(sum_of_squares(64, 32, "float32")) == [["broadcast", "subtract"],
                                                      ["multiply", "reduce"]]
    shared = plan(sum_of_squares(64, 32, "float32", second_user=True))[-1]
    assert shared.stores == (shared.ops[0].result,) and "store %v" in shared.text
    assert ["reduce"] in ops(sum_of_squares(64, 32, "int32"))        # integer reduce: its own
    arch = get_arch("inf2")
    prob = FusedReduceProblem(2048, 8192, 4, "add", "float32", 1, tiles=24)
    big = FusedReduceSchedule(chunk=16384, resident=True)
    assert "exceed" in big.check(prob, arch) and big not in FusedReduceSchedule.space(prob, arch)
    assert "axis='free'" in FusedReduceSchedule(axis="partition", resident=True).check(prob, arch)
    s = FusedReduceSchedule(resident=True)
    assert from_key(s.key()) == s and "resident" not in FusedReduceSchedule().key()
    g = sum_of_squares(2048, 1024, "float32")
    group = plan(g)[-1]
    on, off, default = (lower_graph(g, "trn1", schedules=sch) for sch in (
        {group.key: FusedReduceSchedule(resident=True)},
        {group.key: FusedReduceSchedule(resident=False)}, None))
    assert str(off) == str(default)                       # the default: the two loops via HBM
    hbm = lambda p: [s.shape for s in p.storages if not s.buffer.on_chip and s.kind == "tile"]  # noqa
    assert (2048, 1024) in hbm(off) and hbm(on).count((2048, 1024)) == hbm(off).count((2048, 1024)) - 1


def test_the_tuner_finds_the_layout_knobs():
    from lowering.tune import tune
    cases = [(sum_of_squares(1024, 512, "float32", second_user=u), lambda s: s.resident)
             for u in (False, True)]
    col = Graph("colsum")
    x = col.param(TensorType((1024, 256), "float32"), "x")
    col.set_outputs([col.add_op("reduce", [x], {"dims": [0], "kind": "add"})])
    cases.append((col, lambda s: s.axis == "partition"))
    for g, want in cases:
        plan_ = tune(g, "inf2", db=False)
        best = plan_.results[-1]
        assert want(best.schedule) and best.ns < best.default_ns and best.verified


def test_rhs_lying_n_by_k_is_transposed_on_the_pe_when_asked():
    arch = get_arch("trn1")
    g = dot_graph(2, 200, 130, 300, "bfloat16", rhs_t=True)
    (group,) = plan(g)
    prob = group.problem()
    assert prob.rhs_t and not plan(dot_graph(2, 200, 130, 300, "bfloat16"))[0].problem().rhs_t
    pe = [s for s in MatmulSchedule.space(prob, arch) if s.rhs_load == "pe"]
    assert pe and not pe[0].closed_form and from_key(pe[0].key()) == pe[0]
    plain = plan(dot_graph(0, 64, 32, 48, "float32"))[0].problem()
    assert "this one is [K, N]" in MatmulSchedule(rhs_load="pe").check(plain, arch)
    assert "not 'dma' or 'pe'" in MatmulSchedule(rhs_load="sp").check(prob, arch)
    prog = lower_graph(g, "trn1", schedules={group.key: pe[0]})
    default = lower_graph(g, "trn1")
    element_rows = lambda p: [i for i in p.instrs if i.op.name == "dma_copy"  # noqa: E731
                              and i.args["src"].pattern[-1][0] != 1]  # innermost stride
    assert element_rows(default) and not element_rows(prog)   # no element-sized DMA rows
    rng = np.random.default_rng(5)
    xs = [data(rng, (2, 200, 130), "bfloat16"), data(rng, (2, 300, 130), "bfloat16")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same_bits(run(prog, xs), run(default, xs))              # exact transposes: same tiles


def test_lhs_lying_k_by_m_is_loaded_as_lhsT_when_asked():
    arch = get_arch("trn1")
    g = dot_graph(0, 200, 300, 100, "float32", lhs_t=True)
    (group,) = plan(g)
    prob = group.problem()
    assert prob.lhs_t and not prob.rhs_t
    direct = [s for s in MatmulSchedule.space(prob, arch) if s.lhs_load == "direct"]
    assert direct and not direct[0].closed_form and from_key(direct[0].key()) == direct[0]
    plain = plan(dot_graph(0, 64, 32, 48, "float32"))[0].problem()
    assert "this one is [M, K]" in MatmulSchedule(lhs_load="direct").check(plain, arch)
    assert "not 'dma' or 'direct'" in MatmulSchedule(lhs_load="pe").check(prob, arch)
    prog = lower_graph(g, "trn1", schedules={group.key: direct[0]})
    names = [i.op.name for i in prog.instrs]
    assert "nc_transpose" not in names and "nc_transpose" in [
        i.op.name for i in lower_graph(g, "trn1").instrs]
    xs = [data(np.random.default_rng(3), (300, 200), "float32"),
          data(np.random.default_rng(4), (300, 100), "float32")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same_bits(run(prog, xs), execute(g, xs, "trn1"))
