"""Every new instruction has a cost the timing model can schedule, following CM 2.3."""
import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device.arch import get_arch
from device.isa.costs import elems_per_cycle
from device.timing import schedule
from isa_helpers import load, rand, store


def _kernel(a, b, idx):
    t, u = load(a), load(b)
    y = nl.ndarray((128, 64), "float32", buffer=nl.sbuf)
    col = nl.ndarray((128, 1), "float32", buffer=nl.sbuf)
    nisa.scalar_tensor_tensor(dst=y, data=t, op0=nl.add, operand0=1.0, op1=nl.multiply, operand1=u)
    nisa.tensor_tensor_scan(dst=y, data0=t, data1=u, initial=0.0, op0=nl.multiply, op1=nl.add)
    nisa.reciprocal(dst=y, data=t)
    nisa.tensor_scalar_reduce(dst=y, data=t, op0=nl.add, operand0=1.0, reduce_op=nl.add, reduce_res=col)  # noqa: E501
    nisa.tensor_scalar_cumulative(dst=y, src=t, op0=nl.add, op1=nl.add, imm0=0.0)
    st = nl.ndarray((128, 6), "float32", buffer=nl.sbuf)
    nisa.bn_stats(dst=st, data=t)
    mv = nl.ndarray((128, 2), "float32", buffer=nl.sbuf)
    nisa.bn_aggr(dst=mv, data=st)
    m8 = nl.ndarray((128, 8), "float32", buffer=nl.sbuf)
    nisa.max8(dst=m8, src=t)
    pr = nl.ndarray((1, 64), "float32", buffer=nl.sbuf)
    nisa.tensor_partition_reduce(dst=pr, op=nl.add, data=t)
    g = nl.ndarray((128, 64), "float32", buffer=nl.sbuf)
    nisa.nc_n_gather(dst=g, data=t, indices=load(idx))
    tr = nl.ndarray((64, 128), "float32", buffer=nl.sbuf)
    nisa.dma_transpose(dst=tr, src=a)
    out = nl.ndarray((128, 64), "float32", buffer=nl.sbuf)
    nisa.dma_compute(dst=out, srcs=[a, b], reduce_op=nl.add)
    return store(y)


@pytest.mark.parametrize("target", ["inf2", "trn2"])
def test_new_instructions_are_priced(target):
    a, b = rand((128, 64), "float32", 1), rand((128, 64), "float32", 2)
    idx = np.zeros((128, 64), np.uint32)
    prog = nki.jit(_kernel, target=target).trace(a, b, idx)
    tl = schedule(prog)
    arch = get_arch(target)
    assert tl.total_ns > 0
    by_op = {}
    for ev in tl.events:
        by_op.setdefault(prog.instrs[ev.index].op.name, []).append(ev.end - ev.start)
    for name in ("scalar_tensor_tensor", "tensor_tensor_scan", "reciprocal", "bn_stats",
                 "tensor_partition_reduce", "dma_transpose", "dma_compute"):
        assert max(by_op[name]) > 0, name
    # reciprocal on VectorE is ~8x the cost of a one-pass stream op (CM 2.3: max(64, 8N))
    ins = next(i for i in prog.instrs if i.op.name == "reciprocal")
    n_cyc = ins.op.cost(ins, arch) * arch.dve_clock_ghz
    rate = elems_per_cycle(arch, "DVE", ins.args["dst"], ins.args["data"], op="reciprocal")
    assert rate == (1.0 if arch.dve_perf_mode else arch.dve_elems_per_cycle_32bit)  # no perf mode
    assert n_cyc == pytest.approx(max(arch.min_ii_cycles, 8 * 64 / rate))


def test_nc_version_follows_the_target():
    seen = []

    def k(a):
        seen.append(nisa.get_nc_version())
        return store(load(a))
    a = rand((2, 2), "float32")
    nki.jit(k, target="trn2")(a)
    nki.jit(k, target="inf2")(a)
    assert seen == [nisa.nc_version.gen3, nisa.nc_version.gen2]
