"""Device loops (fori_loop / while_loop) on the fast path: the loop's own ``run`` over decoded
body steps, checked against the reference executor byte for byte (outputs and warnings)."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
from hypothesis import given, strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device import fastpath
from device.fastpath import plan_for
from device.fastpath.invariant import invariant_positions
from device.isa.control import VirtualRegister
from device.program import Program

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fastpath_helpers import check  # noqa: E402


@nki.jit
def k_loop_matmul(a_t, b, scale):
    """out = scale * (a_t.T @ b): K tiles loaded at a register offset and accumulated into one
    PSUM tile by matmuls with accumulate=None (a group opened in the first iteration only)."""
    K, M = a_t.shape
    N = b.shape[1]
    out = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.shared_hbm)
    acc = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.psum)

    def body(i):
        x = nl.ndarray((128, M), dtype=a_t.dtype, buffer=nl.sbuf)
        y = nl.ndarray((128, N), dtype=b.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=x, src=a_t.ap([[M, 128], [1, M]], scalar_offset=i, indirect_dim=0))
        nisa.dma_copy(dst=y, src=b.ap([[N, 128], [1, N]], scalar_offset=i, indirect_dim=0))
        nisa.nc_matmul(dst=acc, stationary=x, moving=y)
    nl.fori_loop(0, K, body, step=128)
    res = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.sbuf)
    nisa.activation(dst=res, op=nl.copy, data=acc, scale=scale)
    nisa.dma_copy(dst=out, src=res)
    return out


@given(kt=st.integers(1, 3), m=st.sampled_from([1, 32, 128]), n=st.integers(1, 64),
       dt=st.sampled_from(["float32", "bfloat16"]), seed=st.integers(0, 99))
def test_a_fori_loop_accumulating_matmuls_gives_the_reference_bytes(kt, m, n, dt, seed):
    rng = np.random.default_rng(seed)
    npdt = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}[dt]
    a = rng.standard_normal((kt * 128, m)).astype(npdt)
    b = rng.standard_normal((kt * 128, n)).astype(npdt)
    prog = k_loop_matmul.trace(a, b, 0.5)
    plan = plan_for(prog)
    assert plan is not None
    loop = next(i for i, ins in enumerate(prog.instrs) if ins.op.name == "fori_loop")
    j = next(j for j, b in enumerate(prog.instrs[loop].args["body"]) if b.op.name == "nc_matmul")
    assert (plan.facts.mm_add[(loop, j, 0)], plan.facts.mm_add[(loop, j, 1)]) == (False, True)
    ref = check(prog, [a, b])
    want = 0.5 * (a.astype(np.float64).T @ b.astype(np.float64))
    np.testing.assert_allclose(ref[0], want, rtol=1e-4, atol=1e-3)


@nki.jit
def k_countdown(x, n):
    """A while loop driven by a counter tile: doubles x n times (n read at run time)."""
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    t = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=x)
    cnt = nl.ndarray((1, 1), dtype=nl.int32, buffer=nl.sbuf)
    nisa.dma_copy(dst=cnt, src=n)
    one = nl.full((1, 1), 1, dtype=nl.int32)
    r = nisa.register_alloc()
    nisa.register_load(r, cnt)

    def body(reg):
        nisa.tensor_scalar(dst=t, data=t, op0=nl.multiply, operand0=2.0)
        nisa.tensor_tensor(dst=cnt, data1=cnt, data2=one, op=nl.subtract)
        nisa.register_load(reg, cnt)
        return reg
    nl.while_loop(r, body)
    nisa.dma_copy(dst=out, src=t)
    return out


def test_a_while_loop_runs_on_the_plan_with_its_trip_count_read_at_run_time():
    x = np.arange(128 * 4, dtype=np.float32).reshape(128, 4) / 7
    for n in (0, 1, 5):
        nn = np.array([[n]], np.int32)
        prog = k_countdown.trace(x, nn)
        assert plan_for(prog) is not None
        ref = check(prog, [x, nn])
        np.testing.assert_array_equal(ref[0], x * 2.0 ** n)


@nki.jit
def k_sum_rows(x, n):
    """Adds n (read at run time) row tiles of x into a PSUM-free accumulator written only by
    the loop: with n = 0 the accumulator is never written, which the reference warns about."""
    out = nl.ndarray((128, x.shape[1]), dtype=x.dtype, buffer=nl.shared_hbm)
    acc = nl.ndarray((128, x.shape[1]), dtype=x.dtype, buffer=nl.sbuf)
    hi = nisa.register_alloc()
    cnt = nl.ndarray((1, 1), dtype=nl.int32, buffer=nl.sbuf)
    nisa.dma_copy(dst=cnt, src=n)
    nisa.register_load(hi, cnt)

    def body(i):
        t = nl.ndarray((128, x.shape[1]), dtype=x.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=x.ap([[x.shape[1], 128], [1, x.shape[1]]], scalar_offset=i,
                                      indirect_dim=0))
        nisa.tensor_copy(dst=acc, src=t)
    nl.fori_loop(0, hi, body, step=128)
    nisa.dma_copy(dst=out, src=acc)
    return out


def test_a_loop_that_does_not_run_reruns_on_the_reference():
    x = np.arange(256 * 3, dtype=np.float32).reshape(256, 3)
    for n in (0, 128, 256):
        nn = np.array([[n]], np.int32)
        prog = k_sum_rows.trace(x, nn)
        loop = next(i for i, ins in enumerate(prog.instrs) if ins.op.name == "fori_loop")
        assert plan_for(prog).facts.needs_trips == {loop}
        assert (fastpath.run(prog, [x, nn]) is None) == (n == 0)
        ref = check(prog, [x, nn])
        if n:
            np.testing.assert_array_equal(ref[0], x[n - 128:n])
        else:
            assert np.isnan(ref[0]).all()


@nki.jit
def k_carried(x):
    """The body reads a tile only the body writes, later in the iteration (loop-carried)."""
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    t = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.sbuf)
    c = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=x)

    def body(i):
        nisa.tensor_tensor(dst=t, data1=t, data2=c, op=nl.add)
        nisa.tensor_copy(dst=c, src=t)
    nl.fori_loop(0, 3, body)
    nisa.dma_copy(dst=out, src=t)
    return out


@nki.jit
def k_partial_after_loop(x):
    """A tile half written inside the loop is read after it, and a warning comes before the
    loop (so a rerun when the loop does not run would repeat it)."""
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    t = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.sbuf)
    u = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=x)
    nisa.dma_copy(dst=out, src=u)                  # an uninitialised read before the loop

    def body(i):
        nisa.tensor_copy(dst=u[:, 0:2], src=t[:, 0:2])
    nl.fori_loop(0, 2, body)
    nisa.tensor_copy(dst=u[:, 2:4], src=t[:, 2:4])
    nisa.dma_copy(dst=out, src=u)
    return out


def test_loops_the_analysis_cannot_follow_keep_the_reference_executor():
    x = np.ones((128, 4), np.float32)
    carried = k_carried.trace(x)
    assert fastpath.analysis.unsupported_reason(carried) == \
        "fori_loop whose body reads uninitialised data"
    partial = k_partial_after_loop.trace(x)
    u = partial.instrs[-1].args["src"].storage.name         # the tile stored at the end
    assert fastpath.analysis.unsupported_reason(partial) == \
        f"{u} is used after a loop that writes part of it"
    for prog in (carried, partial):
        assert plan_for(prog) is None
        check(prog, [x])


# ---- loop-invariant instructions (device.fastpath.invariant) ------------------------------------
def _loop_program(seed, trips, P=32, F=8):
    """A fori_loop whose body mixes invariant work (from the input, from constants) with
    loop-carried updates, over overlapping column slices of four tiles."""
    r = random.Random(seed)
    p = Program("loop")
    x = p.alloc((P, F), "float32", "hbm", name="x", kind="input")
    p.inputs.append(x.storage)
    tiles = [p.alloc((P, F), "float32", "sbuf") for _ in range(4)]
    for t in tiles:
        p.emit("dma_copy", dst=t, src=x)
    saved, p.instrs = p.instrs, []

    def view(t):
        if r.random() < 0.5:
            return t
        a = r.randrange(F // 2)
        return t[:, a:a + F // 2]

    def pair():
        d, s = r.choice(tiles), r.choice(tiles + [x])
        if r.random() < 0.5:
            return d, s
        a, b = r.randrange(F // 2), r.randrange(F // 2)
        return d[:, a:a + F // 2], s[:, b:b + F // 2]

    for _ in range(r.randint(1, 10)):
        kind = r.choice(["load", "copy", "tt", "ts", "memset", "pred"])
        d, s = pair()
        if kind == "load":
            p.emit("dma_copy", dst=d, src=s)
        elif kind == "copy" and s.storage is not x.storage:
            p.emit("tensor_copy", dst=d, src=s)
        elif kind == "tt" and s.storage is not x.storage:
            t = r.choice(tiles)
            p.emit("tensor_tensor", dst=d, data1=s, data2=t[:, 0:d.shape[1]],
                   op=r.choice(["add", "multiply", "maximum", "subtract"]))
        elif kind == "ts" and s.storage is not x.storage:
            p.emit("tensor_scalar", dst=d, data=s, op0=r.choice(["multiply", "add"]),
                   operand0=r.choice([0.5, 2.0, -1.0]))
        elif kind == "memset":
            p.emit("memset", dst=view(r.choice(tiles)), value=r.choice([0.0, 1.0]))
        elif kind == "pred" and s.storage is not x.storage:
            m = p.alloc(d.shape, "uint8", "sbuf")
            p.emit("tensor_scalar", dst=m, data=s, op0="greater", operand0=0.0)
            p.emit("tensor_copy_predicated", dst=d, src=s, predicate=m)
    body, p.instrs = p.instrs, saved
    reads = [v for b in body for v in b.reads()]
    writes = [v for b in body for v in b.writes()]
    p.emit("fori_loop", reg=VirtualRegister("i", readonly=True), lower=0, upper=trips, step=1,
           body=body, _reads=reads, _writes=writes)
    for t in tiles:
        o = p.alloc((P, F), "float32", "shared_hbm")
        p.outputs.append(o.storage)
        p.emit("dma_copy", dst=o, src=t)
    return p, body


@given(seed=st.integers(0, 2**32), trips=st.integers(0, 4), data_seed=st.integers(0, 99))
def test_loop_invariant_instructions_are_skipped_without_changing_a_byte(seed, trips, data_seed):
    prog, body = _loop_program(seed, trips)
    x = np.random.default_rng(data_seed).standard_normal((32, 8)).astype(np.float32)
    check(prog, [x])


def test_invariant_positions_of_a_small_body():
    p = Program("k")
    x = p.alloc((32, 8), "float32", "hbm", name="x", kind="input")
    t, u, acc = (p.alloc((32, 8), "float32", "sbuf") for _ in range(3))
    for name, args in [("dma_copy", dict(dst=t, src=x)),                           # invariant
                       ("tensor_scalar", dict(dst=t, data=t, op0="multiply", operand0=2.0)),
                       ("tensor_tensor", dict(dst=acc, data1=acc, data2=t, op="add")),
                       ("tensor_copy", dict(dst=u, src=acc))]:                    # carried
        p.emit(name, **args)
    body = p.instrs
    assert invariant_positions(body) == {0, 1}
