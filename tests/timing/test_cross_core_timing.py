"""The timing model makes a core wait for its partner at a core_barrier (LNC=2)."""
import numpy as np

import nki
import nki.isa as nisa
import nki.language as nl
from device.timing import schedule


def _kernel(barrier: bool):
    def kernel(a):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        pid = nl.program_id(0)
        t = nl.ndarray((128, a.shape[1]), a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a[pid * 128:(pid + 1) * 128])
        if pid == 0:                        # core 0 does much more work before the barrier
            for _ in range(40):
                nisa.activation(dst=t, op=nl.exp, data=t)
            nisa.dma_copy(dst=out[0:128], src=t)       # ... and publishes it through `out`
        if barrier:
            nisa.core_barrier(out, (0, 1))
        nisa.tensor_scalar(dst=t, data=t, op0=nl.multiply, operand0=2.0)   # after the barrier
        nisa.dma_copy(dst=out[pid * 128:(pid + 1) * 128], src=t)
        return out
    return nki.jit(kernel, target="trn2")


def _after_barrier_start(prog, tl, core):
    idx = [i.index for i in prog.instrs
           if i.op.name == "tensor_scalar" and i.args.get("_core", 0) == core][0]
    return next(e.start for e in tl.events if e.index == idx)


def test_core_waits_for_partner_at_barrier():
    a = np.zeros((256, 512), np.float32)
    with_b = _kernel(True)[2].trace(a)
    without = _kernel(False)[2].trace(a)
    tb, tn = schedule(with_b), schedule(without)
    last_act = max(e.end for e in tb.events
                   if with_b.instrs[e.index].op.name == "activation")
    # (the barrier orders core 0's write of `out` before everything core 1 does after it)
    # core 1's post-barrier work starts only after core 0's activations are done
    assert _after_barrier_start(with_b, tb, 1) >= last_act
    assert _after_barrier_start(without, tn, 1) < last_act
    assert tb.total_ns >= tn.total_ns
