"""The calibrated VectorE two-input rule (CM 2.3) and in-place SBUF reuse in the timing model."""
import pytest
from hypothesis import given, strategies as st

from device.arch import get_arch
from device.program import Program
from device.timing import schedule

KiB = 1024
TRN1 = get_arch("trn1")


def _tensor_tensor_ns(n, dtype="float32", second="sbuf", target="trn1"):
    """Cost (ns) of one tensor_tensor over [128, n] tiles; ``second``: buffer of data2."""
    p = Program("tt", target)
    a = p.alloc((128, n), dtype, "sbuf", name="a", loc=None)
    b = p.alloc((128, n), dtype, second, name="b", loc=None)
    d = p.alloc((128, n), dtype, "sbuf", name="d", loc=None)
    ins = p.emit("tensor_tensor", dst=d, data1=a, data2=b, op="multiply", loc=None)
    return ins.op.cost(ins, p.arch)


def _dve_ns(cycles):
    return cycles / TRN1.dve_clock_ghz


@pytest.mark.parametrize("n", [64, 256, 512])
def test_small_fp32_inputs_stream_together(n):
    """Up to 2 KiB per partition per input (512 fp32) both SBUF inputs cost one pass."""
    assert _tensor_tensor_ns(n) == pytest.approx(_dve_ns(max(TRN1.min_ii_cycles, n)))


@pytest.mark.parametrize("n", [513, 1024, 8192])
def test_large_fp32_inputs_cost_the_two_input_passes(n):
    assert TRN1.dve_dual_stream_bytes == 2 * KiB and 1 < TRN1.dve_two_input_passes <= 2
    assert _tensor_tensor_ns(n) == pytest.approx(_dve_ns(TRN1.dve_two_input_passes * n))


@given(st.integers(513, 16384))
def test_psum_or_16bit_inputs_stay_at_one_pass(n):
    one = _dve_ns(n)
    assert _tensor_tensor_ns(min(n, 2048), second="psum") == pytest.approx(_dve_ns(min(n, 2048)))
    assert _tensor_tensor_ns(n, dtype="bfloat16") == pytest.approx(one)


def test_cost_steps_once_at_the_threshold_per_element():
    """Per element the cost jumps where a tile passes 2 KiB per partition and is flat on each side."""
    per = {n: _tensor_tensor_ns(n) / n for n in (256, 512, 1024, 4096)}
    assert per[256] == pytest.approx(per[512])
    assert per[1024] == pytest.approx(per[4096])
    assert per[1024] / per[512] == pytest.approx(TRN1.dve_two_input_passes)


COLS = 50 * KiB // 4          # fp32 [128, 12800] = 50 KiB per partition; three fit in 176 KiB


def _reuse_program(keep_a):
    """p, a live; b = a * p (a read for the last time unless ``keep_a``); then a 50 KiB load x.
    Program-order demand stays at 150 KiB (no spills); the load only finds room at once if b
    took a's space."""
    prog = Program("reuse", "trn1")
    src = prog.alloc((128, COLS), "float32", "hbm", name="src", loc=None)
    out = prog.alloc((128, COLS), "float32", "hbm", name="out", loc=None)
    p, a, b, x = (prog.alloc((128, COLS), "float32", "sbuf", name=n, loc=None) for n in "pabx")
    prog.emit("memset", dst=p, value=1.0, loc=None)                                  # 0
    prog.emit("memset", dst=a, value=2.0, loc=None)                                  # 1
    prog.emit("tensor_tensor", dst=b, data1=a, data2=p, op="multiply", loc=None)     # 2
    if keep_a:
        prog.emit("dma_copy", dst=out, src=a, loc=None)       # a lives on: b needs fresh space
    prog.emit("dma_copy", dst=x, src=src, loc=None)
    prog.emit("tensor_tensor", dst=b, data1=b, data2=x, op="add", loc=None)
    prog.emit("tensor_tensor", dst=b, data1=b, data2=p, op="add", loc=None)     # p lives on
    prog.emit("dma_copy", dst=out, src=b, loc=None)
    return prog


def test_output_reuses_the_space_of_an_input_that_dies():
    reuse = schedule(_reuse_program(keep_a=False))
    assert reuse.spill_count == 0 and reuse.sbuf_wait_ns == 0
    load = next(e for e in reuse.events if e.engine.startswith("DMA"))
    tt = next(e for e in reuse.events if e.index == 2)
    assert load.start < tt.end                   # the load overlaps the multiply


def test_no_reuse_while_the_input_is_still_read():
    keep = schedule(_reuse_program(keep_a=True))
    assert keep.spill_count == 0 and keep.sbuf_wait_ns > 0
    reuse = schedule(_reuse_program(keep_a=False))
    assert keep.makespan_ns > reuse.makespan_ns


def _dve_rate(op, dtype, bufs, target="trn2"):
    from device.isa.costs import elems_per_cycle
    p = Program("r", target)
    vs = [p.alloc((128, 512), dtype if b != "psum" else "float32", b, name=f"v{k}", loc=None)
          for k, b in enumerate(bufs)]
    return elems_per_cycle(p.arch, "DVE", *vs, op=op)


@pytest.mark.parametrize("op,dtype,bufs,rate", [
    ("tensor_copy", "bfloat16", ("sbuf", "sbuf"), 4.0),     # D:A3: 4x, 16-bit SBUF unit stride
    ("tensor_scalar", "bfloat16", ("sbuf", "psum"), 1.0),    # psum operand here is fp32: no mode
    ("tensor_scalar", "float32", ("sbuf", "sbuf"), 2.0),     # "256 elem/cycle other types"
    ("tensor_scalar", "float32", ("sbuf", "psum"), 1.0),
    ("tensor_tensor", "bfloat16", ("sbuf", "sbuf", "sbuf"), 2.0),
    ("tensor_tensor", "float32", ("sbuf", "sbuf", "psum"), 1.0),
    ("tensor_reduce", "bfloat16", ("sbuf", "sbuf"), 1.0),     # no perf mode documented
])
def test_trn2_vector_perf_mode_follows_the_documented_conditions(op, dtype, bufs, rate):
    assert _dve_rate(op, dtype, bufs) == rate
    assert _dve_rate(op, dtype, bufs, target="trn1") == 1.0          # NC-v2: no perf mode


def test_trn2_bf16_copy_with_psum_side_gets_2x():
    from device.isa.costs import elems_per_cycle
    p = Program("r", "trn2")
    a = p.alloc((128, 512), "bfloat16", "sbuf", name="a", loc=None)
    b = p.alloc((128, 512), "bfloat16", "psum", name="b", loc=None)
    assert elems_per_cycle(p.arch, "DVE", a, b, op="tensor_copy") == 2.0
