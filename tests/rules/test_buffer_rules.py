"""Buffer legality per instruction (GpSimd and PSUM, two PSUM inputs, DMA and PSUM, TensorE
operands), kernel outputs in shared_hbm, and list arguments. One test per rule."""
import inspect

import numpy as np

import nki
import nki.isa as nisa
import nki.language as nl
from rules_helpers import expect_rule, marker_line, ones


@nki.jit
def gpsimd_reads_psum(a):
    out = nl.ndarray((128, 8), nl.float32, buffer=nl.shared_hbm)
    p = nl.ndarray((128, 8), nl.float32, buffer=nl.psum, name="acc")
    s = nl.ndarray((128, 8), nl.float32, buffer=nl.sbuf)
    nisa.memset(dst=p, value=1.0)
    nisa.tensor_copy(dst=s, src=p, engine=nisa.gpsimd_engine)  # <- copy
    nisa.dma_copy(dst=out, src=s)
    return out


def test_gpsimd_cannot_access_psum():
    expect_rule(lambda: gpsimd_reads_psum(ones(4, 4)), rule="buffer", operand="src", value="psum",
                limit="sbuf", where=marker_line(gpsimd_reads_psum, "copy"),
                says=("'src' (acc) is in PSUM", "GpSimd tensor_copy cannot access PSUM"))


def test_engine_choice_never_sends_psum_operands_to_gpsimd():
    @nki.jit
    def kernel(a):
        out = nl.ndarray((128, 8), nl.int32, buffer=nl.shared_hbm)
        p = nl.ndarray((128, 8), nl.int32, buffer=nl.psum)
        s = nl.ndarray((128, 8), nl.int32, buffer=nl.sbuf)
        nisa.memset(dst=p, value=3)
        nisa.memset(dst=s, value=4)
        nisa.tensor_tensor(dst=s, data1=p, data2=s, op=nl.add)   # int add: GpSimd unless PSUM
        nisa.dma_copy(dst=out, src=s)
        return out
    np.testing.assert_array_equal(kernel(ones(4, 4)), np.full((128, 8), 7, np.int32))
    prog = kernel.trace(ones(4, 4))
    assert [i.engine for i in prog.instrs if i.op.name == "tensor_tensor"] == ["DVE"]


@nki.jit
def two_psum_inputs(a):
    out = nl.ndarray((128, 8), nl.float32, buffer=nl.shared_hbm)
    p = nl.ndarray((128, 8), nl.float32, buffer=nl.psum)
    q = nl.ndarray((128, 8), nl.float32, buffer=nl.psum)
    s = nl.ndarray((128, 8), nl.float32, buffer=nl.sbuf)
    nisa.memset(dst=p, value=1.0)
    nisa.memset(dst=q, value=1.0)
    nisa.tensor_tensor(dst=s, data1=p, data2=q, op=nl.add)  # <- op
    nisa.dma_copy(dst=out, src=s)
    return out


def test_at_most_one_psum_input():
    expect_rule(lambda: two_psum_inputs(ones(4, 4)), rule="psum-two-inputs", operand="data2",
                value="psum", limit="one PSUM input", where=marker_line(two_psum_inputs, "op"),
                says=("both in PSUM",))


@nki.jit
def dma_from_psum(a):
    out = nl.ndarray((128, 8), nl.float32, buffer=nl.shared_hbm)
    p = nl.ndarray((128, 8), nl.float32, buffer=nl.psum, name="acc")
    nisa.memset(dst=p, value=1.0)
    nisa.dma_copy(dst=out, src=p)  # <- dma
    return out


def test_dma_never_reads_psum():
    expect_rule(lambda: dma_from_psum(ones(4, 4)), rule="buffer", operand="src", value="psum",
                limit="hbm or sbuf", where=marker_line(dma_from_psum, "dma"),
                says=("'src' (acc) is in PSUM", "DMA cannot access PSUM"))


@nki.jit
def dma_into_psum(a):
    p = nl.ndarray((128, 8), nl.float32, buffer=nl.psum, name="acc")
    nisa.dma_copy(dst=p, src=a)  # <- dma
    return a


def test_dma_never_writes_psum():
    expect_rule(lambda: dma_into_psum(ones(128, 8)), rule="buffer", operand="dst", value="psum",
                limit="hbm or sbuf", where=marker_line(dma_into_psum, "dma"),
                says=("'dst' (acc) is in PSUM",))


@nki.jit
def matmul_moving_in_psum(a):
    out = nl.ndarray((4, 4), nl.float32, buffer=nl.shared_hbm)
    st = nl.ndarray((128, 64), nl.bfloat16, buffer=nl.sbuf)
    mv = nl.ndarray((128, 64), nl.bfloat16, buffer=nl.psum, name="mv")
    ps = nl.ndarray((64, 64), nl.float32, buffer=nl.psum)
    nisa.nc_matmul(dst=ps, stationary=st, moving=mv)  # <- mm
    return out


def test_matmul_operands_come_from_sbuf():
    expect_rule(lambda: matmul_moving_in_psum(ones(4, 4)), rule="buffer", operand="moving",
                value="psum", limit="SBUF", where=marker_line(matmul_moving_in_psum, "mm"),
                says=("'moving' (mv) is in PSUM", "TensorE nc_matmul needs it in SBUF"))


@nki.jit
def matmul_into_sbuf(a):
    out = nl.ndarray((4, 4), nl.float32, buffer=nl.shared_hbm)
    st = nl.ndarray((128, 64), nl.bfloat16, buffer=nl.sbuf)
    mv = nl.ndarray((128, 64), nl.bfloat16, buffer=nl.sbuf)
    res = nl.ndarray((64, 64), nl.float32, buffer=nl.sbuf, name="res")
    nisa.nc_matmul(dst=res, stationary=st, moving=mv)  # <- mm
    return out


def test_matmul_result_goes_to_psum():
    expect_rule(lambda: matmul_into_sbuf(ones(4, 4)), rule="buffer", operand="dst", value="sbuf",
                limit="PSUM", where=marker_line(matmul_into_sbuf, "mm"),
                says=("'dst' (res) is in SBUF",))


@nki.jit
def iota_into_psum(a):
    p = nl.ndarray((128, 8), nl.int32, buffer=nl.psum, name="idx")
    nisa.iota(dst=p, pattern=[[1, 8]], offset=0)  # <- iota
    return a


def test_iota_writes_sbuf_only():
    expect_rule(lambda: iota_into_psum(ones(4, 4)), rule="buffer", operand="dst", value="psum",
                limit="SBUF", where=marker_line(iota_into_psum, "iota"),
                says=("'dst' (idx) is in PSUM",))


@nki.jit
def returns_sbuf(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf, name="result")  # <- alloc
    nisa.dma_copy(dst=out, src=a)
    return out


def test_outputs_must_be_in_hbm():
    # private HBM (nl.hbm) outputs are accepted since NKI 2.29: tests/multicore/test_private_hbm_outputs.py
    expect_rule(lambda: returns_sbuf(ones(4, 4)), rule="output-buffer", operand="result",
                value="sbuf", limit="shared_hbm", where=marker_line(returns_sbuf, "alloc"),
                says=("returned tensor result is in sbuf", "nl.shared_hbm"))


@nki.jit
def takes_sizes(a, sizes):
    return a


def test_list_arguments_are_refused():
    line = inspect.currentframe().f_lineno + 1
    call = lambda: takes_sizes(ones(4, 4), [1, 2])  # noqa: E731
    expect_rule(call, rule="list-argument", operand="sizes", value="list", limit="tuple",
                where=(__file__, line), says=("argument 'sizes'", "pass a tuple"))
    assert takes_sizes(ones(4, 4), (1, 2)).shape == (4, 4)


def test_iota_pattern_has_at_most_four_pairs():
    import inspect
    import numpy as np
    import pytest
    import nki
    import nki.isa as nisa
    import nki.language as nl
    from device.errors import HardwareRuleError

    @nki.jit
    def k(a):
        t = nl.ndarray((128, 32), nl.int32, buffer=nl.sbuf)
        nisa.iota(dst=t, pattern=[[1, 2]] * 5, offset=0)  # <- iota
        return a
    with pytest.raises(HardwareRuleError) as e:
        k(np.zeros((2, 2), np.float32))
    assert e.value.rule == "access-pattern" and "5 [step, num] pairs" in str(e.value)
    src, start = inspect.getsourcelines(k.fn)
    assert e.value.loc.line == start + next(j for j, l in enumerate(src) if "# <- iota" in l)
