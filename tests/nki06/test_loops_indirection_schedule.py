"""``nl.dynamic_range`` with register bounds, ``.indirect()`` tensor indirection (v4), and
scheduling edges (``kernel.with_schedule``, ``NkiInstruction.depends_on``), against NumPy."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import HardwareRuleError, UserKernelError

from source_errors import expect_error, line_of


@nki.jit
def repeat_add(a, count):
    """acc = a * count[0], with the trip count read from HBM into a register at run time."""
    out = nl.ndarray(a.shape, nl.float32, buffer=nl.shared_hbm)
    t = nl.ndarray(a.shape, nl.float32, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=a)
    acc = nl.ndarray(a.shape, nl.float32, buffer=nl.sbuf)
    nisa.memset(dst=acc, value=0.0)
    c = nl.ndarray((1, 1), nl.int32, buffer=nl.sbuf)
    nisa.dma_copy(dst=c, src=count)
    reg = nisa.register_alloc()
    nisa.register_load(reg, c)
    for _ in nl.dynamic_range(0, reg, 1):
        nisa.tensor_tensor(dst=acc, data1=acc, data2=t, op=nl.add)
    nisa.dma_copy(dst=out, src=acc)
    return out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@given(n=st.integers(0, 5))
def test_dynamic_range_with_a_register_bound_runs_the_trip_count_read_at_run_time(n):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    count = np.array([[n]], np.int32)
    np.testing.assert_array_equal(repeat_add(a, count), n * a)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_dynamic_range_traces_one_device_loop_and_int_bounds_unroll():
    a = np.zeros((3, 4), np.float32)
    prog = repeat_add.trace(a, np.zeros((1, 1), np.int32))
    loops = [i for i in prog.instrs if i.op.name == "fori_loop"]
    assert len(loops) == 1 and [b.op.name for b in loops[0].args["body"]] == ["tensor_tensor"]
    with pytest.warns(DeprecationWarning, match="use nl.fori_loop"):
        assert list(nl.dynamic_range(1, 7, 2)) == [1, 3, 5]


@nki.jit
def bad_step(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    reg = nisa.register_alloc(2)
    for _ in nl.dynamic_range(0, reg, 0):
        pass
    return out


@nki.jit
def python_on_register(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    reg = nisa.register_alloc(2)
    for i in nl.dynamic_range(0, reg):
        if i:
            pass
    return out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_dynamic_range_errors():
    a = np.zeros((2, 2), np.float32)
    expect_error(lambda: bad_step(a), UserKernelError, where=line_of(bad_step, "nl.dynamic_range"),
                 says=("step must be a compile-time positive int, got 0",))
    with pytest.raises(TypeError, match="has no value while tracing"):
        python_on_register(a)
    with pytest.raises(UserKernelError, match="stop must be an int or a VirtualRegister, got str"):
        nl.dynamic_range(0, "8")


# ---- tensor indirection --------------------------------------------------------------------
def _gather_kernel(target, n_out, scatter=False):
    @nki.jit(target=target)
    def kernel(a, idx):
        out = nl.ndarray((a.shape[0], n_out if not scatter else a.shape[1]), a.dtype,
                         buffer=nl.shared_hbm)
        t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a)
        ix = nl.ndarray(idx.shape, idx.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=ix, src=idx)
        if scatter:                               # t[:, offsets] = -(first n_out columns)
            nisa.tensor_scalar(dst=t.indirect(ix, num_elem=n_out), data=t[:, 0:n_out],
                               op0=nl.multiply, operand0=-1.0)
            nisa.dma_copy(dst=out, src=t)
        else:                                      # dense = t[:, offsets] * 2
            d = nl.ndarray((a.shape[0], n_out), a.dtype, buffer=nl.sbuf)
            nisa.tensor_scalar(dst=d, data=t.indirect(ix, num_elem=n_out), op0=nl.multiply,
                               operand0=2.0)
            nisa.dma_copy(dst=out, src=d)
        return out
    return kernel


def _offsets(idx, p, n, group=16):
    per_group = idx.shape[0] != group
    return np.array([[idx[(16 * (r // 16) if per_group else 0) + i % group, i // group]
                      for i in range(n)] for r in range(p)])


@given(p=st.integers(1, 64), f=st.integers(2, 40), n=st.integers(1, 32), shared=st.booleans(),
       seed=st.integers(0, 99))
def test_indirect_gather_reads_the_offsets_per_partition_group(p, f, n, shared, seed):
    rng = np.random.default_rng(seed)
    rows = 16 if shared else 16 * -(-p // 16)
    idx = rng.integers(0, f, size=(rows, -(-n // 16))).astype(np.uint16)
    a = rng.standard_normal((p, f)).astype(np.float32)
    off = _offsets(idx, p, n)
    want = 2 * np.take_along_axis(a, off, axis=1)
    np.testing.assert_array_equal(_gather_kernel("trn3", n)(a, idx), want)


def test_indirect_scatter_writes_the_chosen_columns():
    idx = np.array([[5], [0], [7]] + [[1]] * 13, np.uint16)          # 16 rows, 1 column
    a = np.arange(32, dtype=np.float32).reshape(2, 16)
    want = a.copy()
    for i, o in enumerate([5, 0, 7]):
        want[:, o] = -a[:, i]
    np.testing.assert_array_equal(_gather_kernel("trn3", 3, scatter=True)(a, idx), want)


def test_indirect_errors():
    a = np.zeros((16, 8), np.float32)
    k = _gather_kernel("trn2", 4)
    e = expect_error(lambda: k(a, np.zeros((16, 1), np.uint16)), HardwareRuleError,
                     where=line_of(k, "nisa.tensor_scalar(dst=d"),
                     says=("uses tensor indirection", "NeuronCore-v4 (trn3)", "NeuronCore-v3"))
    assert e.rule == "generation"
    k3 = _gather_kernel("trn3", 4)
    with pytest.raises(HardwareRuleError, match=r"offset 9 .* outside the 8 free elements"):
        k3(a, np.full((16, 1), 9, np.uint16))
    with pytest.raises(HardwareRuleError, match="num_elem=40 but the index holds 16 offsets"):
        _gather_kernel("trn3", 40)(a, np.zeros((16, 1), np.uint16))
    with pytest.raises(HardwareRuleError, match="the index has 8 rows; it needs 16"):
        k3(a, np.zeros((8, 1), np.uint16))
    with pytest.raises(HardwareRuleError, match="must be an integer SBUF tensor"):
        k3(a, np.zeros((16, 1), np.float32))


# ---- scheduling edges ----------------------------------------------------------------------
@nki.jit(target="trn2")
def three_ops(t):
    """recip, plus1 and a square have no data dependency on each other (the scheduling guide's
    shape); their sum is the result."""
    x = nl.ndarray(t.shape, t.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=x, src=t)
    a = nl.ndarray(t.shape, t.dtype, buffer=nl.sbuf)
    b = nl.ndarray(t.shape, t.dtype, buffer=nl.sbuf)
    c = nl.ndarray(t.shape, t.dtype, buffer=nl.sbuf)
    nisa.reciprocal(dst=a, data=x, name="recip")
    nisa.tensor_scalar(dst=b, data=x, op0=nl.add, operand0=1.0, name="plus1")
    nisa.activation(dst=c, data=x, op=nl.square, name="sq")
    nisa.tensor_tensor(dst=a, data1=a, data2=b, op=nl.add, name="sum1")
    nisa.tensor_tensor(dst=a, data1=a, data2=c, op=nl.add)
    out = nl.ndarray(t.shape, t.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=a)
    return out


def _order(prog):
    return [i.name for i in prog.instrs if i.name]


def test_with_schedule_orders_named_instructions_and_keeps_results():
    t = np.random.default_rng(0).random((128, 256)).astype(np.float32) + 0.5
    want = 1 / t + (t + 1) + t * t
    assert _order(three_ops.trace(t)) == ["recip", "plus1", "sq", "sum1"]
    s = three_ops.with_schedule([("recip", ["plus1", "sq"])])     # recip after both: moves down
    assert _order(s.trace(t)) == ["plus1", "sq", "recip", "sum1"]
    np.testing.assert_allclose(s(t), want, rtol=1e-6)
    np.testing.assert_allclose(three_ops(t), want, rtol=1e-6)      # the original is unchanged
    assert _order(three_ops.trace(t)) == ["recip", "plus1", "sq", "sum1"]


def test_a_schedule_edge_delays_the_consumer_in_the_timing_model():
    from device.timing import schedule
    t = np.zeros((128, 2048), np.float32)

    def span(kernel, name):
        prog = kernel.trace(t)
        ev = {e.index: e for e in schedule(prog).events}
        ins = next(i for i in prog.instrs if i.name == name)
        return ev[ins.index].start, ev[ins.index].end
    # "sq" (ScalarE) overlaps "plus1" (VectorE); the edge makes it start after plus1 has ended
    assert span(three_ops, "sq")[0] < span(three_ops, "plus1")[1]
    tied = three_ops.with_schedule([("sq", "plus1")])
    assert span(tied, "sq")[0] >= span(tied, "plus1")[1]


def test_depends_on_orders_instructions():
    @nki.jit(target="trn2")
    def k(t):
        x = nl.ndarray(t.shape, t.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=x, src=t)
        a = nl.ndarray(t.shape, t.dtype, buffer=nl.sbuf)
        b = nl.ndarray(t.shape, t.dtype, buffer=nl.sbuf)
        first = nisa.tensor_scalar(dst=a, data=x, op0=nl.add, operand0=1.0, name="first")
        second = nisa.activation(dst=b, data=x, op=nl.exp, name="second")
        assert first.depends_on(second, kind=nisa.dependency.schedule) is first
        nisa.tensor_tensor(dst=a, data1=a, data2=b, op=nl.add)
        out = nl.ndarray(t.shape, t.dtype, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=a)
        return out
    t = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    assert _order(k.trace(t)) == ["second", "first"]
    np.testing.assert_allclose(k(t), t + 1 + np.exp(t), rtol=1e-5)


def test_schedule_errors_name_the_problem():
    t = np.ones((4, 4), np.float32)
    with pytest.raises(UserKernelError, match=r"no instruction is named 'nope' \(named "
                                              r"instructions: plus1, recip, sq, sum1\)"):
        three_ops.with_schedule([("recip", "nope")])(t)
    with pytest.raises(UserKernelError, match="each edge is a pair"):
        three_ops.with_schedule([("recip",)])
    with pytest.raises(UserKernelError, match="expected a list of"):
        three_ops.with_schedule("recip")
    with pytest.raises(UserKernelError, match="cannot depend on itself"):
        three_ops.with_schedule([("sq", "sq")])(t)
    # recip after sum1 is impossible: sum1 reads what recip writes
    e = expect_error(lambda: three_ops.with_schedule([("recip", "sum1")])(t), UserKernelError,
                     where=line_of(three_ops, 'name="recip"'),
                     says=("contradicts a data dependency", "tensor_tensor at"))
    assert "sum1" in str(e)
