"""Properties of the timing model: monotone in the program, overlapping across engines."""
import math

from hypothesis import given, strategies as st

from device.program import Program
from device.timing import schedule

OPS = ("load", "exp", "copy", "add", "matmul", "store")


def _program(choices, target="trn1"):
    """A program over a few tiles from a list of (op, tile a, tile b) choices."""
    p = Program("k", target)
    hbm = p.alloc((128, 512), "bfloat16", "hbm", name="x", loc=None)
    t = [p.alloc((128, 512), "bfloat16", "sbuf", name=f"t{i}", loc=None) for i in range(3)]
    w = p.alloc((128, 128), "bfloat16", "sbuf", name="w", loc=None)
    ps = p.alloc((128, 512), "float32", "psum", name="ps", loc=None)
    for op, a, b in choices:
        if op == "load":
            p.emit("dma_copy", dst=t[a], src=hbm, loc=None)
        elif op == "store":
            p.emit("dma_copy", dst=hbm, src=t[a], loc=None)
        elif op == "exp":
            p.emit("activation", dst=t[a], op="exp", data=t[b], loc=None)
        elif op == "copy":
            p.emit("tensor_copy", dst=t[a], src=ps, loc=None)
        elif op == "add":
            p.emit("tensor_tensor", dst=t[a], data1=t[a], data2=t[b], op="add", loc=None)
        else:
            p.emit("nc_matmul", dst=ps, stationary=w, moving=t[b], loc=None)
    return p


choice = st.tuples(st.sampled_from(OPS), st.integers(0, 2), st.integers(0, 2))


@given(st.lists(choice, min_size=1, max_size=25), choice, st.sampled_from(["trn1", "trn2"]))
def test_adding_an_instruction_never_lowers_the_total(prog, extra, target):
    before = schedule(_program(prog, target)).total_ns
    after = schedule(_program(prog + [extra], target)).total_ns
    assert after >= before


@given(st.integers(1, 6), st.integers(1, 6), st.sampled_from(["trn1", "inf2", "trn2"]))
def test_independent_engines_overlap(n_act, n_dve, target):
    """ScalarE work on one tile and VectorE work on another run at the same time."""
    def build(na, nd):
        p = Program("k", target)
        a = p.alloc((128, 512), "float32", "sbuf", name="a", loc=None)
        b = p.alloc((128, 512), "float32", "sbuf", name="b", loc=None)
        c = p.alloc((128, 512), "float32", "sbuf", name="c", loc=None)
        for _ in range(na):
            p.emit("activation", dst=a, op="exp", data=a, loc=None)
        for _ in range(nd):
            p.emit("tensor_tensor", dst=b, data1=b, data2=c, op="add", loc=None)
        return p
    both = schedule(build(n_act, n_dve)).makespan_ns
    alone = schedule(build(n_act, 0)).makespan_ns + schedule(build(0, n_dve)).makespan_ns
    assert both < alone
    assert math.isclose(both, max(schedule(build(n_act, 0)).makespan_ns,
                                  schedule(build(0, n_dve)).makespan_ns), rel_tol=1e-9)


def test_dependent_chain_pays_overhead_and_latency():
    """Each instruction that reads its predecessor's result waits for it and pays the static
    instruction overhead (CM 2.4); independent ones stream back to back."""
    def build(dependent):
        p = Program("k", "trn1")
        a = p.alloc((128, 512), "float32", "sbuf", name="a", loc=None)
        b = p.alloc((128, 512), "float32", "sbuf", name="b", loc=None)
        for i in range(4):
            src = a if dependent else b
            dst = a if dependent else p.alloc((128, 512), "float32", "sbuf", name=f"o{i}", loc=None)
            p.emit("activation", dst=dst, op="exp", data=src, loc=None)
        return p
    dep, ind = schedule(build(True)), schedule(build(False))
    arch = dep_arch = build(True).arch
    per = (arch.static_overhead_cycles + arch.latency_cycles("ACT")) / dep_arch.act_clock_ghz
    assert dep.busy_ns["ACT"] > ind.busy_ns["ACT"]
    assert math.isclose(dep.makespan_ns - ind.makespan_ns, 3 * per, rel_tol=1e-6)


def test_psum_banks_are_a_resource():
    """Nine live PSUM tiles cannot all be written before the first is evicted."""
    p = Program("k", "trn1")
    w = p.alloc((128, 128), "bfloat16", "sbuf", name="w", loc=None)
    x = p.alloc((128, 512), "bfloat16", "sbuf", name="x", loc=None)
    o = p.alloc((128, 512), "float32", "sbuf", name="o", loc=None)
    h = p.alloc((128, 512), "float32", "hbm", name="h", loc=None)
    p.emit("dma_copy", dst=o, src=h, loc=None)     # evictions into o wait for this slow load
    tiles = []
    for i in range(16):
        ps = p.alloc((128, 512), "float32", "psum", name=f"ps{i}", loc=None)
        p.emit("nc_matmul", dst=ps, stationary=w, moving=x, loc=None)
        tiles.append(ps)
        if i >= 7:                       # keep at most 8 tiles live in program order
            p.emit("tensor_copy", dst=o, src=tiles[i - 7], loc=None)
    t = schedule(p)
    ninth = next(e for e in t.events if p.instrs[e.index].op.name == "nc_matmul"
                 and p.instrs[e.index].args["dst"].storage.name == "ps8")
    first_evict = next(e for e in t.events if p.instrs[e.index].op.name == "tensor_copy")
    assert ninth.start >= first_evict.end
    assert t.psum_bank_wait_ns > 0


def test_dma_time_follows_bytes_and_hbm_cap():
    arch = Program("k", "trn1").arch

    def load(cols):
        p = Program("k", "trn1")
        h = p.alloc((128, cols), "float32", "hbm", name="h", loc=None)
        s = p.alloc((128, cols), "float32", "sbuf", name="s", loc=None)
        p.emit("dma_copy", dst=s, src=h, loc=None)
        return schedule(p)
    small, big = load(512), load(8192)
    assert big.makespan_ns > small.makespan_ns
    # a big load is capped by the core's HBM share
    assert big.makespan_ns >= 128 * 8192 * 4 / arch.hbm_share_bytes_per_ns
    assert big.hbm_read == 128 * 8192 * 4 and big.hbm_write == 0
