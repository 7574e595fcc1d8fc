"""The fast path against the reference executor, byte for byte (device.fastpath).

* every row of the nki.isa sweep table (every public instruction, random shapes, dtypes, engines
  and generations) is re-run with ``device.executor.run`` replaced by a checker that runs each
  program through both executors and compares outputs and warnings;
* random programs built directly on the device program: strided, offset and broadcast views,
  unrolled loop bodies (fresh tiles per iteration, so on-chip arrays get shared), in-place updates,
  dtype conversions, uninitialised reads, partial output writes and PSUM accumulation groups;
* fused PSUM groups (``fast`` mode) stay within the bound stated in ``device.fastpath.groups``.
"""
from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

from device import executor, fastpath
from device.errors import NeuronError
from device.program import Program

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sweep"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastpath_helpers import check, checking_run  # noqa: E402
from isa_table import ISA_CASES  # noqa: E402


@pytest.mark.parametrize("name", sorted(ISA_CASES))
@given(data=st.data())
def test_isa_sweep_row_runs_the_same_on_both_executors(name, data):
    original = executor.run
    executor.run = checking_run(original)
    try:
        ISA_CASES[name](data)
    finally:
        executor.run = original


# ---- random programs --------------------------------------------------------------------------
DTS = ("float32", "bfloat16", "float16", "int32")
ALU = ("add", "subtract", "multiply", "maximum", "minimum", "divide", "is_ge", "abs_max")
ACTS = ("exp", "tanh", "square", "copy", "relu", "sigmoid", "rsqrt", "gelu")
REDS = ("add", "maximum", "minimum", "multiply")


def _values(rng, shape, dt):
    x = (rng.standard_normal(shape) * rng.choice([1, 4, 100])).astype(np.float32)
    if rng.random() < 0.3:
        x[rng.random(shape) < 0.05] = rng.choice([0.0, np.inf, -np.inf, np.nan])
    if dt == "int32":
        return np.rint(np.nan_to_num(x, posinf=7, neginf=-7)).astype(np.int32)
    return x.astype({"bfloat16": ml_dtypes.bfloat16, "float16": np.float16}.get(dt, np.float32))


class _Gen:
    """Draws a program step by step; illegal draws are dropped (the verifier says so).

    Each step's choices come from a ``random.Random`` seeded by one hypothesis draw, so a loop
    body is unrolled by replaying the same seeds on fresh tiles (as a traced Python loop does).
    """

    def __init__(self, P, F):
        self.P, self.F = P, F
        self.p = Program("random")
        self.tiles = []
        self.observed = []               # tiles stored to outputs besides self.tiles
        self.r = random.Random(0)

    def choice(self, seq):
        return seq[self.r.randrange(len(seq))]

    def coin(self):
        return self.r.random() < 0.5

    def num(self):
        return float(np.float32(self.r.uniform(-3, 3)))

    def tile(self, dt=None, buf="sbuf", F=None):
        v = self.p.alloc((self.P, F or self.F), dt or self.choice(DTS), buf)
        self.tiles.append(v)
        return v

    def view(self, v, W):
        """A width-W view of tile v: a slice with a random start and step, or a broadcast column."""
        F = v.shape[1]
        if F == 1 and W != 1 and self.coin():
            return v.broadcast_to((v.shape[0], W))
        if W > F:
            return None
        step = self.r.randint(1, max(1, (F - 1) // (W - 1)) if W > 1 else 1)
        start = self.r.randint(0, F - 1 - step * (W - 1))
        return v[:, start:start + step * (W - 1) + 1:step]

    def src(self, W):
        """An operand: usually an existing tile, sometimes a fresh never-written one."""
        if not self.tiles or self.r.randrange(10) == 0:
            self.tile()
        return self.view(self.choice(self.tiles), W)

    def dst(self, W):
        if self.tiles and self.r.randrange(4) == 0:                   # in place / overwrite
            return self.view(self.choice(self.tiles), W)
        return self.view(self.tile(F=self.choice([W, self.F])), W)

    def emit(self, opname, **args):
        if any(a is None for k, a in args.items() if k in ("dst", "src", "data", "data1",
                                                             "data2", "stationary", "moving")):
            return
        try:
            self.p.emit(opname, **args)
        except NeuronError:
            pass

    def column(self):
        c = self.p.alloc((self.P, 1), "float32", "sbuf")
        self.emit("tensor_reduce", dst=c, op="maximum", data=self.src(self.F) or self.tiles[0],
                  axis=1, negate=self.coin())
        return c

    def loop(self, seeds, trips):
        for _ in range(trips):
            for seed in seeds:
                self.r = random.Random(seed)
                self.step()

    def step(self):
        W = self.r.randint(1, self.F)
        fam = self.choice(["tt", "tt", "ts", "ts", "act", "act", "reduce", "copy", "memset",
                           "recip", "transpose", "matmul", "iota", "scan", "dma", "stt"])
        if fam == "tt":
            self.emit("tensor_tensor", dst=self.dst(W), data1=self.src(W), data2=self.src(W),
                      op=self.choice(ALU))
        elif fam == "ts":
            o0 = self.column() if self.coin() else self.num()
            two = self.coin()
            self.emit("tensor_scalar", dst=self.dst(W), data=self.src(W),
                      op0=self.choice(ALU[:6]), operand0=o0, reverse0=self.coin(),
                      op1=self.choice(ALU[:6]) if two else None,
                      operand1=self.num() if two else None, reverse1=self.coin())
        elif fam == "stt":
            self.emit("scalar_tensor_tensor", dst=self.dst(W), data=self.src(W),
                      op0=self.choice(ALU[:6]), operand0=self.column() if self.coin() else
                      self.num(), reverse0=self.coin(), op1=self.choice(ALU[:6]),
                      operand1=self.src(W), reverse1=self.coin())
        elif fam == "act":
            red = self.coin()
            rr = self.p.alloc((self.P, 1), "float32", "sbuf") if red else None
            self.emit("activation", dst=self.dst(W), op=self.choice(ACTS), data=self.src(W),
                      bias=self.column() if self.coin() else None,
                      scale=self.choice([1.0, -0.5, 2.0]), reduce_op="add" if red else None,
                      reduce_res=rr, reduce_cmd=self.choice(["reset_reduce", "reduce"])
                      if red else "idle")
            if rr is not None:
                self.tiles.append(rr)
        elif fam == "reduce":
            d = self.p.alloc((self.P, 1), self.choice(DTS), "sbuf")
            self.emit("tensor_reduce", dst=d, op=self.choice(REDS), data=self.src(W), axis=1,
                      negate=self.coin())
            self.tiles.append(d)
        elif fam == "copy":
            self.emit("tensor_copy", dst=self.dst(W), src=self.src(W))
        elif fam == "memset":
            self.emit("memset", dst=self.dst(W), value=self.choice([0.0, 1.5, -2.0, 3.0]))
        elif fam == "recip":
            self.emit("reciprocal", dst=self.dst(W), data=self.src(W))
        elif fam == "transpose":
            src = self.src(W)
            if src is not None and self.P == W and W <= 32:
                d = self.tile(src.dtype, F=W)
                self.emit("nc_transpose", dst=d, data=src)
        elif fam == "matmul":
            self.matmul_group()
        elif fam == "iota":
            self.emit("iota", dst=self.tile("float32", F=W), pattern=[[1, W]],
                      offset=self.r.randint(-5, 5), channel_multiplier=W)
        elif fam == "scan":
            self.emit("tensor_tensor_scan", dst=self.dst(W), data0=self.src(W), data1=self.src(W),
                      initial=self.num(), op0=self.choice(ALU[:5]), op1=self.choice(ALU[:5]),
                      reverse0=self.coin(), reverse1=self.coin())
        else:                            # SBUF -> SBUF DMA, with conversion
            self.emit("dma_copy", dst=self.dst(W), src=self.src(W))

    def matmul_group(self):
        """1-3 matmuls into one PSUM tile, then evicted to SBUF."""
        N = self.r.randint(1, self.F)
        M = self.choice(sorted({1, min(self.P, self.F)}))
        kind = self.choice(["float32", "bfloat16", "float16"])
        ps = self.p.alloc((M, N), "float32", "psum")
        for k in range(self.r.randint(1, 3)):
            a, b = self.tile(kind, F=M), self.tile(kind, F=N)
            self.emit("tensor_copy", dst=a, src=self.src(M))
            self.emit("tensor_copy", dst=b, src=self.src(N))
            acc = self.choice([None, None, True, False]) if k else self.choice([None, None, False])
            self.emit("nc_matmul", dst=ps, stationary=a, moving=b, accumulate=acc)
        out = self.p.alloc((M, N), self.choice(["float32", "bfloat16"]), "sbuf")
        self.emit("tensor_copy", dst=out, src=ps)
        self.observed.append(out)
        if M == self.P:
            self.tiles.append(out)


@st.composite
def programs(draw):
    P = draw(st.sampled_from([1, 32, 128]))
    F = draw(st.integers(1, 24))
    g = _Gen(P, F)
    p = g.p
    g.x = p.alloc((P, F), "float32", "hbm", name="x", kind="input")
    g.y = p.alloc((P, F), "bfloat16", "hbm", name="y", kind="input")
    p.inputs += [g.x.storage, g.y.storage]
    outs = [p.alloc((P, F), dt, "shared_hbm", name=f"out{k}") for k, dt in
            enumerate(("float32", "bfloat16"))]
    p.outputs += [o.storage for o in outs]
    g.emit("dma_copy", dst=g.tile("float32"), src=g.x)
    g.emit("dma_copy", dst=g.tile("bfloat16"), src=g.y)
    for _ in range(draw(st.integers(1, 3))):              # loop bodies, unrolled
        seeds = draw(st.lists(st.integers(0, 2**32), min_size=1, max_size=8))
        g.loop(seeds, draw(st.integers(1, 3)))
    g.r = random.Random(draw(st.integers(0, 2**32)))
    for o in outs:                                        # whole or partial stores
        W = g.r.randint(1, F)
        g.emit("dma_copy", dst=g.view(o, W) if g.coin() else o[:, 0:W], src=g.src(W))
    for t in g.tiles + [t for t in g.observed if t.shape[0] != P]:   # every tile is observed
        o = p.alloc(t.shape, t.dtype, "shared_hbm")
        p.outputs.append(o.storage)
        g.emit("dma_copy", dst=o, src=t)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return p, [_values(rng, (P, F), "float32"), _values(rng, (P, F), "bfloat16")]


@given(case=programs())
def test_random_programs_give_the_reference_bytes(case):
    program, inputs = case
    check(program, inputs)


@given(case=programs())
def test_random_programs_without_precise_fp(case):
    old = os.environ.get("NKI_PRECISE_FP")
    os.environ["NKI_PRECISE_FP"] = "0"
    try:
        program, inputs = case
        check(program, inputs, modes=("exact",))
    finally:
        if old is None:
            del os.environ["NKI_PRECISE_FP"]
        else:
            os.environ["NKI_PRECISE_FP"] = old
