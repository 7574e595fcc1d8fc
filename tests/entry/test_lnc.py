"""``kernel[2](...)``: LNC=2 runs the kernel as two NeuronCores that share HBM.

Each core sees ``nl.program_id(0)`` = 0 or 1 and ``nl.num_programs()`` = 2; a kernel-level
``shared_hbm`` tensor is one tensor seen by both, so the two cores can each write their half of the
output. The traced program holds both instruction streams, each instruction tagged with its core.
"""
import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import UserKernelError


@nki.jit
def double_by_halves(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    n = nl.num_programs()
    pid = nl.program_id(0)
    rows = a.shape[0] // n
    t = nl.ndarray((rows, a.shape[1]), a.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=a[pid * rows:(pid + 1) * rows])
    nisa.tensor_scalar(dst=t, data=t, op0=nl.add, operand0=float(pid))   # mark who wrote it
    nisa.tensor_tensor(dst=t, data1=t, data2=t, op=nl.add)
    nisa.dma_copy(dst=out[pid * rows:(pid + 1) * rows], src=t)
    return out


A = np.arange(128 * 8, dtype=np.float32).reshape(128, 8)


@pytest.mark.parametrize("lnc", [1, 2])
def test_each_core_writes_its_half_of_a_shared_output(lnc):
    k = double_by_halves if lnc == 1 else double_by_halves[lnc]
    want = 2 * A
    if lnc == 2:
        want[64:] += 2                        # core 1 added its program id before doubling
    np.testing.assert_array_equal(k(A), want)
    np.testing.assert_array_equal(nki.simulate(k)(A), want)


def test_both_cores_are_traced_into_one_distinguishable_program():
    prog = double_by_halves[2].trace(A)
    assert prog.info.lnc == 2
    (a0, b0), (a1, b1) = prog.info.core_ranges
    assert (a0, b1) == (0, len(prog.instrs)) and b0 == a1 == len(prog.instrs) // 2
    assert [i.args["_core"] for i in prog.instrs] == [0] * b0 + [1] * (b1 - a1)
    # the same statements on both cores, with their own SBUF tiles and the same shared output
    assert [i.loc.line for i in prog.instrs[:b0]] == [i.loc.line for i in prog.instrs[a1:]]
    sbuf = {c: {v.storage.id for i in prog.instrs[a:b] for v in i.reads() + i.writes()
                if v.on_chip} for c, (a, b) in enumerate(prog.info.core_ranges)}
    assert sbuf[0] and sbuf[1] and not sbuf[0] & sbuf[1]
    assert len(prog.outputs) == 1 and prog.outputs[0].buffer == nl.shared_hbm
    assert prog.inputs[0].buffer == nl.shared_hbm
    assert double_by_halves.trace(A).info.lnc == 1
    assert "_core" not in double_by_halves.trace(A).instrs[0].args


def test_lnc_degree_is_one_integer_1_or_2():
    for bad in (0, 3, 8):
        with pytest.raises(UserKernelError, match=f"kernel\\[{bad}\\].*must be 1 or 2"):
            double_by_halves[bad]
    with pytest.raises(UserKernelError, match="exactly one LNC degree"):
        double_by_halves[1, 2]


@nki.jit
def diverging(a):
    if nl.program_id(0) == 0:
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    else:
        out = nl.ndarray((1, 1), a.dtype, buffer=nl.shared_hbm)
    return out


def test_cores_must_allocate_the_same_shared_tensors():
    with pytest.raises(UserKernelError, match="core 1 allocated shared_hbm #0 \\[1, 1\\]"):
        diverging[2](A)
