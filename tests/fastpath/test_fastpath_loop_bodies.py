"""Loop bodies on the plan (``device.fastpath.kernels_loop``): the decoded ``fori_loop`` sets its
register as the reference does (any bounds, steps, register bounds, zero trips), and in ``fast``
mode the body's matmuls run in fp32 within the bound declared in ``device.fastpath.groups``."""
from __future__ import annotations

import sys
from pathlib import Path

import ml_dtypes
import numpy as np
from hypothesis import given, strategies as st

from device import executor, fastpath
from device.fastpath import plan_for
from device.isa.control import VirtualRegister
from device.program import Program

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fastpath_helpers import check, same_bytes  # noqa: E402


def _emit_loop(p, reg, lower, upper, step, build):
    saved, p.instrs = p.instrs, []
    build()
    body, p.instrs = p.instrs, saved
    p.emit("fori_loop", reg=reg, lower=lower, upper=upper, step=step, body=body,
           _reads=[v for b in body for v in b.reads()],
           _writes=[v for b in body for v in b.writes()])


def _counter_program(lo, hi, step, hi_in_register):
    """out[k] = the register's value in the k-th iteration, for k < 8 (a sliding window written
    at the trip number's offset), and a running sum of the register values."""
    p = Program("count")
    out = p.alloc((1, 8), "int32", "shared_hbm", name="out")
    tot = p.alloc((1, 1), "int32", "sbuf", name="tot")
    cur = p.alloc((1, 1), "int32", "sbuf", name="cur")
    p.emit("memset", dst=tot, value=0)
    p.emit("memset", dst=cur, value=-7)
    p.emit("dma_copy", dst=out, src=cur.ap([[0, 1], [0, 8]]))
    upper = hi
    if hi_in_register:
        upper = VirtualRegister("hi")
        p.emit("register_move", dst=upper, src=hi)
    reg = VirtualRegister("i", readonly=True)

    def body():
        p.emit("register_store", dst=cur, src=reg)
        p.emit("tensor_tensor", dst=tot, data1=tot, data2=cur, op="add", engine="POOL")
    _emit_loop(p, reg, lo, upper, step, body)
    res = p.alloc((1, 1), "int32", "shared_hbm", name="res")
    p.emit("dma_copy", dst=res, src=tot)
    p.outputs += [res.storage]
    return p


@given(lo=st.integers(-5, 5), trips=st.integers(0, 6), step=st.integers(1, 3),
       hi_in_register=st.booleans())
def test_a_decoded_fori_loop_sets_its_register_as_the_reference(lo, trips, step, hi_in_register):
    hi = lo + trips * step - (step > 1 and trips > 0)      # an upper bound between two steps too
    prog = _counter_program(lo, hi, step, hi_in_register)
    if trips:
        assert plan_for(prog) is not None
    got = check(prog, [])[0]
    assert int(got.reshape(-1)[0]) == sum(range(lo, hi, step))


def _matmul_loop(kt, m, n, dt):
    """acc[m, n] = sum over kt iterations of a[k-tile].T @ b[k-tile], with accumulate=None (the
    group opens in the first iteration) and a second matmul per iteration that overwrites a
    scratch tile (accumulate=False), added in fp32 by the vector engine."""
    p = Program("mm")
    a = p.alloc((kt * 128, m), dt, "hbm", name="a", kind="input")
    b = p.alloc((kt * 128, n), dt, "hbm", name="b", kind="input")
    p.inputs += [a.storage, b.storage]
    acc = p.alloc((m, n), "float32", "psum", name="acc")
    side = p.alloc((m, n), "float32", "sbuf", name="side")
    p.emit("memset", dst=side, value=0.0)
    reg = VirtualRegister("k", readonly=True)

    def body():
        x = p.alloc((128, m), dt, "sbuf")
        y = p.alloc((128, n), dt, "sbuf")
        p.emit("dma_copy", dst=x, src=a.ap([[m, 128], [1, m]], scalar_offset=reg, indirect_dim=0))
        p.emit("dma_copy", dst=y, src=b.ap([[n, 128], [1, n]], scalar_offset=reg, indirect_dim=0))
        p.emit("nc_matmul", dst=acc, stationary=x, moving=y)
        one = p.alloc((m, n), "float32", "psum")
        p.emit("nc_matmul", dst=one, stationary=x, moving=y, accumulate=False)
        p.emit("tensor_tensor", dst=side, data1=side, data2=one, op="add")
    _emit_loop(p, reg, 0, kt * 128, 128, body)
    out = p.alloc((m, n), "float32", "shared_hbm", name="out")
    o2 = p.alloc((m, n), "float32", "shared_hbm", name="o2")
    t = p.alloc((m, n), "float32", "sbuf")
    p.emit("tensor_copy", dst=t, src=acc)
    p.emit("dma_copy", dst=out, src=t)
    p.emit("dma_copy", dst=o2, src=side)
    p.outputs += [out.storage, o2.storage]
    return p


@given(kt=st.integers(1, 3), m=st.sampled_from([1, 8, 128]), n=st.integers(1, 48),
       dt=st.sampled_from(["float32", "bfloat16"]), seed=st.integers(0, 99))
def test_body_matmuls_in_fast_mode_stay_within_the_declared_bound(kt, m, n, dt, seed):
    rng = np.random.default_rng(seed)
    npdt = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}[dt]
    a = rng.standard_normal((kt * 128, m)).astype(npdt)
    b = rng.standard_normal((kt * 128, n)).astype(npdt)
    prog = _matmul_loop(kt, m, n, dt)
    ref = check(prog, [a, b], modes=("exact",))        # exact mode: the reference's bytes
    fast = fastpath.run(prog, [a, b], mode="fast")[0]
    # per iteration one fp32 group of K = 128 onto the running sum: the groups bound, summed
    # over the iterations (|old| <= the sum of the earlier products' magnitudes)
    mag = np.abs(a.astype(np.float64)).T @ np.abs(b.astype(np.float64))
    bound = 2 * 129 * kt * 2.0 ** -24 * mag
    for got, want in zip(fast, ref):
        assert np.all(np.abs(got.astype(np.float64) - want) <= bound)


def test_a_body_matmul_whose_products_overflow_keeps_the_reference_rounding():
    """fp32 BLAS would fuse an overflowing product into a finite sum; the reference's product
    is inf (and inf - inf is NaN): such a matmul runs at the reference's rounding points."""
    a, b = np.zeros((128, 8), np.float32), np.zeros((128, 16), np.float32)
    a[0], b[0] = -1.5e19, 2e19          # -3e38, then a product past fp32's 3.4e38: an FMA
    a[1], b[1] = 2e19, 2e19             # onto -3e38 gives 1e38, the reference inf
    prog = _matmul_loop(1, 8, 16, "float32")
    ref = executor.run_reference(prog, [a, b])
    fast = fastpath.run(prog, [a, b], mode="fast")[0]
    assert np.isposinf(ref[0]).all()
    for got, want in zip(fast, ref):
        same_bytes(want, got, "overflowing body matmul")


def _rewritten_moving(after: str):
    """side += x.T @ y for 2 iterations, where y grows past the overflow threshold after the
    first matmul: scaled by a later body instruction, or reloaded by a later loop-invariant
    DMA (run in the first iteration only, but after the matmul read the old y)."""
    p = Program("mm_rewrite")
    a = p.alloc((128, 8), "float32", "hbm", name="a", kind="input")
    b = p.alloc((128, 16), "float32", "hbm", name="b", kind="input")
    big = p.alloc((128, 16), "float32", "hbm", name="big", kind="input")
    p.inputs += [a.storage, b.storage, big.storage]
    x, y = p.alloc((128, 8), "float32", "sbuf"), p.alloc((128, 16), "float32", "sbuf")
    side = p.alloc((8, 16), "float32", "sbuf")
    p.emit("dma_copy", dst=x, src=a)
    p.emit("dma_copy", dst=y, src=b)
    p.emit("memset", dst=side, value=0.0)
    reg = VirtualRegister("k", readonly=True)

    def body():
        one = p.alloc((8, 16), "float32", "psum")
        p.emit("nc_matmul", dst=one, stationary=x, moving=y, accumulate=False)
        p.emit("tensor_tensor", dst=side, data1=side, data2=one, op="add")
        if after == "scaled":
            p.emit("tensor_scalar", dst=y, data=y, op0="multiply", operand0=1e10)
        else:
            p.emit("dma_copy", dst=y, src=big)
    _emit_loop(p, reg, 0, 2, 1, body)
    out = p.alloc((8, 16), "float32", "shared_hbm")
    p.emit("dma_copy", dst=out, src=side)
    p.outputs.append(out.storage)
    return p


def test_the_overflow_check_follows_an_operand_rewritten_after_the_matmul():
    """The magnitude of an operand is reused across iterations only when nothing rewrites it
    after the matmul first read it (``fixed_operands``): here the second iteration's products
    overflow (the reference's inf), which a stale magnitude would have missed (an FMA'd 1e38)."""
    a = np.zeros((128, 8), np.float32)
    a[0], a[1] = -1.5e19, 2e19
    b = np.zeros((128, 16), np.float32)
    b[0], b[1] = 2e9, 2e9
    for after in ("scaled", "loaded"):
        prog = _rewritten_moving(after)
        body = prog.instrs[-2].args["body"]
        from device.fastpath.invariant import invariant_positions
        from device.fastpath.kernels_loop import fixed_operands
        assert fixed_operands(body, invariant_positions(body)) == {0: frozenset(
            {body[0].args["stationary"].storage.id})}
        ref = executor.run_reference(prog, [a, b, b * 1e10])[0]
        fast = fastpath.run(prog, [a, b, b * 1e10], mode="fast")[0][0]
        assert np.isposinf(ref).all() and np.isposinf(fast).all(), after
