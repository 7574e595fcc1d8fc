"""Batched PSUM groups (device.fastpath.batches) against the reference executor.

Random matmul programs: tiles loaded from input slices (forwardable), from an HBM scratch the
program writes (not forwardable), reloaded or overwritten between and inside groups, groups of 1-3
members over tile slices with every accumulate flag, evictions, and evicted results fed back into
operand tiles (a data dependency a batch must not cross). The values are small integers, so every
product and sum is exact in fp32 and any summation order gives the same bytes: the fast path
must match the reference byte for byte, whatever it batches, forwards or skips.
"""
from __future__ import annotations

import random
import warnings
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
from hypothesis import given, settings as hsettings, strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device import executor, fastpath
from device.fastpath import batches as B
from device.fastpath import plan_for
from device.errors import NeuronError
from device.program import Program

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fastpath_helpers import same_bytes  # noqa: E402

NP = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}


class _MM:
    def __init__(self, r):
        self.r = r
        self.P = r.choice([32, 64])
        self.W = 96
        self.p = p = Program("batches")
        self.dts = [r.choice(["float32", "bfloat16"]) for _ in range(2)]
        self.x = [p.alloc((4 * self.P, self.W), dt, "hbm", name=f"x{k}", kind="input")
                  for k, dt in enumerate(self.dts)]
        p.inputs += [x.storage for x in self.x]
        self.scratch = p.alloc((self.P, self.W), "float32", "hbm", name="scratch")
        self.tiles = []
        self.nout = 0

    def output(self, v):
        o = self.p.alloc(v.shape, v.dtype, "shared_hbm", name=f"o{self.nout}")
        self.nout += 1
        self.p.outputs.append(o.storage)
        self.p.emit("dma_copy", dst=o, src=v)

    def load(self, tile=None):
        """Load a tile (fresh, or overwrite one) from an input slice or from the scratch."""
        r, P = self.r, self.P
        if tile is None:
            k = r.randrange(2)
            tile = self.p.alloc((P, r.choice([32, 64, 96])), self.dts[k], "sbuf")
            self.tiles.append(tile)
        F = tile.shape[1]
        if r.random() < 0.2 and tile.dtype == "float32":
            self.p.emit("dma_copy", dst=tile, src=self.scratch[:, 0:F])
            return tile
        k = [i for i in range(2) if self.dts[i] == tile.dtype]
        x = self.x[k[0]] if k else self.x[0]
        if x.dtype != tile.dtype:
            self.p.emit("dma_copy", dst=tile, src=x[0:P, 0:F])
            return tile
        row, col = r.randrange(4) * P, r.randrange(self.W - F + 1)
        self.p.emit("dma_copy", dst=tile, src=x[row:row + P, col:col + F])
        return tile

    def operand(self, width):
        t = self.r.choice(self.tiles) if self.tiles and self.r.random() < 0.7 else self.load()
        width = min(width, t.shape[1])
        c = self.r.randrange(t.shape[1] - width + 1)
        return t[:, c:c + width]

    def group(self):
        r = self.r
        M, N = r.choice([16, 32, 64]), r.choice([16, 32, 64, 96])
        ps = self.p.alloc((M, N), "float32", "psum")
        if r.random() < 0.25:
            self.p.emit("memset", dst=ps, value=r.choice([0.0, 2.0]))
        for k in range(r.randint(1, 3)):
            if r.random() < 0.3:
                self.load()                               # a load inside the group
            s, v = self.operand(M), self.operand(N)
            acc = r.choice([None, None, True]) if k else r.choice([None, False, True])
            if s.shape[1] == M and v.shape[1] == N:
                try:
                    self.p.emit("nc_matmul", dst=ps[:, 0:N], stationary=s, moving=v,
                                accumulate=acc)
                except NeuronError:                       # e.g. fp32 paired with bf16
                    pass
        out = self.p.alloc((M, N), "float32", "sbuf")
        self.p.emit("tensor_copy", dst=out, src=ps)
        self.output(out)
        what = r.random()
        if what < 0.15 and self.tiles:                   # a result fed back into an operand
            t = r.choice(self.tiles)
            if t.shape[1] >= N and M == self.P:
                self.p.emit("tensor_scalar", dst=t[:, 0:N], data=out, op0="greater_equal",
                            operand0=0.0)
        elif what < 0.3 and M <= self.P:                 # the scratch rewritten
            self.p.emit("dma_copy", dst=self.scratch[0:M, 0:N], src=out)
        elif what < 0.45 and self.tiles:                 # a tile reloaded between groups
            self.load(r.choice(self.tiles))


@st.composite
def matmul_programs(draw):
    g = _MM(random.Random(draw(st.integers(0, 2**32))))
    ones = g.p.alloc((g.P, g.W), "float32", "sbuf")
    g.p.emit("memset", dst=ones, value=1.0)
    g.p.emit("dma_copy", dst=g.scratch, src=ones)
    for _ in range(draw(st.integers(1, 8))):
        g.group()
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    ins = [rng.integers(-1, 2, x.shape).astype(NP[x.dtype]) for x in g.x]
    return g.p, ins


@hsettings(max_examples=60)
@given(case=matmul_programs())
def test_batched_groups_give_the_reference_bytes_on_exact_values(case):
    program, inputs = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")               # uninitialised PSUM: both give sentinels
        ref = executor.run_reference(program, inputs)
        fast = fastpath.run(program, inputs, mode="fast")[0]
    for k, (a, b) in enumerate(zip(ref, fast)):
        same_bytes(a, b, f"output {k}")


@nki.jit
def k_tiled(lhsT, rhs):
    K, M = lhsT.shape
    N = rhs.shape[1]
    out = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.shared_hbm)
    for m in range(M // 128):
        for n in range(N // 256):
            acc = nl.ndarray((128, 256), dtype=nl.float32, buffer=nl.psum)
            for k in range(K // 128):
                a = nl.ndarray((128, 128), dtype=lhsT.dtype, buffer=nl.sbuf)
                b = nl.ndarray((128, 256), dtype=rhs.dtype, buffer=nl.sbuf)
                nisa.dma_copy(dst=a, src=lhsT[k * 128:(k + 1) * 128, m * 128:(m + 1) * 128])
                nisa.dma_copy(dst=b, src=rhs[k * 128:(k + 1) * 128, n * 256:(n + 1) * 256])
                nisa.nc_matmul(dst=acc, stationary=a, moving=b)
            res = nl.ndarray((128, 256), dtype=nl.float32, buffer=nl.sbuf)
            nisa.tensor_copy(dst=res, src=acc)
            nisa.dma_copy(dst=out[m * 128:(m + 1) * 128, n * 256:(n + 1) * 256], src=res)
    return out


def test_a_tiled_kernel_is_one_batch_reading_its_inputs_and_skipping_its_loads():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((384, 256)).astype(ml_dtypes.bfloat16)
    b = rng.standard_normal((384, 512)).astype(ml_dtypes.bfloat16)
    prog = k_tiled.trace(a, b)
    plan = plan_for(prog)
    assert [len(x.ends) for x in plan.batches] == [4]          # 2 M tiles x 2 N tiles
    assert len(plan.dead) == 4 * 3 * 2                         # every tile load forwarded
    assert plan_for(prog, "exact").batches == []
    got = k_tiled(a, b)
    want = a.astype(np.float64).T @ b.astype(np.float64)
    bound = 2 * 385 * 2.0 ** -24 * (np.abs(a.astype(np.float64)).T @ np.abs(b.astype(np.float64)))
    assert np.all(np.abs(got - want) <= bound + np.abs(want) * 2.0 ** -24)


def test_a_batch_stops_where_an_operand_is_rewritten():
    p = Program("rewrite")
    x = p.alloc((128, 64), "float32", "hbm", name="x", kind="input")
    p.inputs.append(x.storage)
    t = p.alloc((128, 64), "float32", "sbuf")
    u = p.alloc((128, 64), "float32", "sbuf")
    p.emit("dma_copy", dst=t, src=x)
    p.emit("tensor_copy", dst=u, src=t)               # not a DMA from an input: not forwarded
    for step in range(3):
        ps = p.alloc((64, 64), "float32", "psum")
        p.emit("nc_matmul", dst=ps, stationary=u, moving=t)
        o = p.alloc((64, 64), "float32", "shared_hbm")
        p.outputs.append(o.storage)
        ev = p.alloc((64, 64), "float32", "sbuf")
        p.emit("tensor_copy", dst=ev, src=ps)
        p.emit("dma_copy", dst=o, src=ev)
        if step == 1:
            p.emit("tensor_scalar", dst=u, data=u, op0="multiply", operand0=2.0)
    plan = plan_for(p)
    e = sorted(plan.groups)
    assert [b.ends for b in plan.batches] == [e[:2], e[2:]]      # the rewrite of u splits it
    xs = np.arange(128 * 64, dtype=np.float32).reshape(128, 64) % 7 - 3
    for a, b in zip(executor.run_reference(p, [xs]), fastpath.run(p, [xs])[0]):
        same_bytes(a, b, "output")


def test_batches_respect_the_staging_cap(monkeypatch):
    monkeypatch.setattr(B, "MAX_BATCH_FLOATS", 384 * 128 + 384 * 256 + 128 * 256)
    a = np.ones((384, 256), np.float32)
    b = np.ones((384, 512), np.float32)
    prog = k_tiled.trace(a, b)
    plan = fastpath.Plan(prog, "fast", True)
    assert [len(x.ends) for x in plan.batches] == [1, 1, 1, 1]
    np.testing.assert_array_equal(plan.run([a, b])[0][0], a.T @ b)
