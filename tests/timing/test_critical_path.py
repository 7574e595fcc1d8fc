"""Properties of the timing model's explanation: the roofline bound, the critical path, early exit."""
import math

import pytest
from hypothesis import given, strategies as st

from device.critical_path import explain
from device.profile import profile
from device.program import Program
from device.roofline import roofline
from device.timing import CAUSES, schedule

OPS = ("load", "store", "exp", "copy", "add", "matmul", "matmul32", "wide")


def _program(choices, target, dtype):
    """Random programs over a few tiles: loads/stores of several row sizes, ACT/DVE work, bf16 or
    fp32 matmuls into PSUM and its eviction."""
    p = Program("k", target)
    hbm = p.alloc((128, 2048), dtype, "hbm", name="x", loc=None)
    t = [p.alloc((128, 512), dtype, "sbuf", name=f"t{i}", loc=None) for i in range(3)]
    wide = p.alloc((128, 2048), dtype, "sbuf", name="wide", loc=None)
    w = p.alloc((128, 128), dtype, "sbuf", name="w", loc=None)
    w32 = p.alloc((128, 128), "float32", "sbuf", name="w32", loc=None)
    m32 = p.alloc((128, 512), "float32", "sbuf", name="m32", loc=None)
    ps = p.alloc((128, 512), "float32", "psum", name="ps", loc=None)
    for op, a, b in choices:
        if op == "load":
            p.emit("dma_copy", dst=t[a], src=hbm[:, b * 512:(b + 1) * 512], loc=None)
        elif op == "wide":
            p.emit("dma_copy", dst=wide, src=hbm, loc=None)
        elif op == "store":
            p.emit("dma_copy", dst=hbm[:, a * 512:(a + 1) * 512], src=t[b], loc=None)
        elif op == "exp":
            p.emit("activation", dst=t[a], op="exp", data=t[b], loc=None)
        elif op == "copy":
            p.emit("tensor_copy", dst=t[a], src=ps, loc=None)
        elif op == "add":
            p.emit("tensor_tensor", dst=t[a], data1=t[a], data2=t[b], op="add", loc=None)
        elif op == "matmul":
            p.emit("nc_matmul", dst=ps, stationary=w, moving=t[b], loc=None)
        else:
            p.emit("nc_matmul", dst=ps, stationary=w32, moving=m32, loc=None)
    return p


choice = st.tuples(st.sampled_from(OPS), st.integers(0, 2), st.integers(0, 2))
programs = st.builds(_program, st.lists(choice, min_size=1, max_size=30),
                     st.sampled_from(["trn1", "trn2", "trn3"]),
                     st.sampled_from(["bfloat16", "float32"]))


@given(programs)
def test_modelled_time_is_at_least_the_roofline_bound(p):
    tl = schedule(p)
    r = roofline(p)
    assert tl.total_ns >= r.total_ns * (1 - 1e-9)
    assert tl.total_ns >= r.compute_ns and tl.total_ns >= r.memory_ns * (1 - 1e-9)


@given(programs)
def test_critical_path_sums_to_the_total(p):
    tl = schedule(p)
    cp = explain(tl, p)
    assert math.isclose(sum(cp.by_category.values()), tl.total_ns, rel_tol=1e-9, abs_tol=1e-6)
    assert all(v >= 0 for v in cp.by_category.values())
    steps = cp.steps
    assert steps and all(s.busy_ns >= 0 and s.gap_ns >= 0 for s in steps)
    assert all(a.end <= b.start + 1e-6 or a.event < b.event for a, b in zip(steps, steps[1:]))
    assert all(s.cause in CAUSES for s in steps)
    per_ins = sum(r[3] for r in explain(tl, p, top=10**9).by_instruction)
    rest = cp.launch_ns + cp.tail_ns + cp.by_category.get("start-up", 0.0)
    assert math.isclose(per_ins + rest, tl.total_ns, rel_tol=1e-9, abs_tol=1e-6)


@given(programs, st.floats(0.0, 2.0))
def test_early_exit_says_exactly_whether_the_bound_is_exceeded(p, frac):
    full = schedule(p, keep_events=False)
    bound = full.total_ns * frac
    cut = schedule(p, keep_events=False, bound_ns=bound)
    assert cut.over_bound == (full.total_ns > bound)
    if not cut.over_bound:
        assert cut.total_ns == full.total_ns
    else:
        assert bound < cut.total_ns <= full.total_ns


def _chain(n_mm, evict):
    p = Program("chain", "trn1")
    x = p.alloc((128, 512), "bfloat16", "hbm", name="x", loc=None)
    a = p.alloc((128, 512), "bfloat16", "sbuf", name="a", loc=None)
    w = p.alloc((128, 128), "bfloat16", "sbuf", name="w", loc=None)
    ps = p.alloc((128, 512), "float32", "psum", name="ps", loc=None)
    o = p.alloc((128, 512), "float32", "sbuf", name="o", loc=None)
    p.emit("dma_copy", dst=a, src=x, loc=None)
    p.emit("memset", dst=w, value=1.0, loc=None)
    for _ in range(n_mm):
        p.emit("nc_matmul", dst=ps, stationary=w, moving=a, loc=None)
    if evict:
        p.emit("tensor_copy", dst=o, src=ps, loc=None)
    return p


def test_explanation_names_the_load_then_the_matmuls():
    p = _chain(8, evict=True)
    cp = explain(schedule(p), p)
    assert [s.op for s in cp.steps] == ["dma_copy"] + ["nc_matmul"] * 8 + ["tensor_copy"]
    assert cp.steps[1].cause == "data" and cp.steps[2].cause == "engine"
    assert cp.by_category["PE busy"] > 0 and cp.by_category["DMA transfer busy"] > 0
    assert "DMA fixed cost" in cp.by_category and "launch overhead" in cp.by_category


def test_profile_report_prints_the_critical_path():
    p = _chain(4, evict=True)
    r = profile(p)
    text = str(r)
    assert "critical path" in text and "heaviest" in text
    assert r.critical_path().total_ns == r.total_ns
    assert "_critical" not in r.to_dict()


def test_explain_without_events_says_how_to_get_them():
    p = _chain(2, evict=False)
    cp = explain(schedule(p, keep_events=False), p)
    assert cp.steps == [] and "keep_events=True" in cp.notes[0]
    assert math.isclose(sum(cp.by_category.values()), cp.total_ns)


def test_arch_override_prices_the_same_program_on_another_target():
    from device.arch import get_arch
    p = _chain(64, evict=True)
    on2 = schedule(p, get_arch("trn2"))
    assert on2.arch.name == "trn2" and schedule(p).arch.name == "trn1"
    assert on2.total_ns != schedule(p).total_ns


def test_ridge_point_uses_the_documented_peaks():
    """CM 2.7: 92 TFLOPS / ~410 GB/s = ~222 FLOP/B on trn1 (not the sustained stream rate)."""
    r = profile(_chain(1, evict=False))
    assert r.ridge_point == pytest.approx(222, rel=0.05)


@pytest.mark.parametrize("target,word", [("trn1", "calibrated: E constants fitted"),
                                         ("trn2", "partly calibrated"), ("trn3", "uncalibrated")])
def test_report_says_how_far_the_target_is_calibrated(target, word):
    p = Program("k", target)
    x = p.alloc((128, 512), "float32", "hbm", name="x", loc=None)
    t = p.alloc((128, 512), "float32", "sbuf", name="t", loc=None)
    p.emit("dma_copy", dst=t, src=x, loc=None)
    r = profile(p)
    assert word in r.calibration and word in str(r) and r.to_dict()["calibration"] == r.calibration
