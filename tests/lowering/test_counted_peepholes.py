"""The counted-loop body peepholes (lowering/lower/rules/counted.py): a window copied into an HBM
scratch tensor and read once is read directly (``forward_copies``), and only when that cannot
change what the reader sees; the loop gives the same bytes either way."""
from __future__ import annotations

import types
import warnings

import numpy as np
import pytest

from device.executor import run_reference
from device.isa.control import VirtualRegister
from device.program import Program
from lowering.lower.rules.loop_peepholes import forward_copies


def _program(case):
    """for t in 0..3: tile = x[t] (through scratch T); acc += tile; out = acc."""
    p = Program("fwd")
    x = p.alloc((4, 2, 8), "float32", "hbm", name="x", kind="input")
    p.inputs.append(x.storage)
    acc = p.alloc((2, 8), "float32", "sbuf", name="acc")
    p.emit("memset", dst=acc, value=0.0)
    reg = VirtualRegister("t", readonly=True)
    saved, p.instrs = p.instrs, []
    T = p.alloc((1, 2, 8), "bfloat16" if case == "converts" else "float32", "shared_hbm",
                name="T")
    p.emit("dma_copy", dst=T, src=x.ap([[16, 1], [8, 2], [1, 8]], scalar_offset=reg,
                                       indirect_dim=0))
    if case == "source_written":
        p.emit("dma_copy", dst=x[0], src=acc)
    tile = p.alloc((2, 8), "float32", "sbuf", name="tile")
    p.emit("dma_copy", dst=tile, src=T.reshape((2, 8)))
    if case == "read_twice":
        p.emit("dma_copy", dst=acc, src=T.reshape((2, 8)))
    p.emit("tensor_tensor", dst=acc, data1=acc, data2=tile, op="add")
    body, p.instrs = p.instrs, saved
    return p, body, reg, T, x, acc


def _finish(p, body, reg, acc):
    p.emit("fori_loop", reg=reg, lower=0, upper=4, step=1, body=body,
           _reads=[v for b in body for v in b.reads()],
           _writes=[v for b in body for v in b.writes()])
    out = p.alloc((2, 8), "float32", "shared_hbm", name="out")
    p.emit("dma_copy", dst=out, src=acc)
    p.outputs.append(out.storage)
    return p


@pytest.mark.parametrize("case", ["plain", "source_written", "read_twice", "converts", "kept"])
def test_a_window_read_once_is_read_directly(case):
    x = np.arange(64, dtype=np.float32).reshape(4, 2, 8) / 8
    results = []
    for forward in (False, True):
        p, body, reg, T, xv, acc = _program(case)
        n = len(body)
        if forward:
            lw = types.SimpleNamespace(p=p, arch=p.arch)
            forward_copies(lw, body, keep={T.storage.id} if case == "kept" else set())
            done = case == "plain"
            assert len(body) == n - done
            assert (T.storage.id in {s.id for s in p.storages}) == (not done)
            if done:
                assert body[0].args["src"].storage is xv.storage and body[0].args["src"].dyn
        results.append(run_reference(_finish(p, body, reg, acc), [x.copy()])[0])
    assert results[0].tobytes() == results[1].tobytes()
    if case == "plain":
        np.testing.assert_array_equal(results[1], x.sum(axis=0))



def _state_program(case, transform=True):
    """A loop carrying state s (HBM) through tile R: acc += R; s = f(...) where f reads R
    ('reads_tile'), or not ('producer'); 'early_read' touches R before its load,
    'tile_rewritten' writes R between the load and the store."""
    from lowering.lower.rules.loop_peepholes import state_on_chip
    p = Program("state")
    x = p.alloc((2, 8), "float32", "hbm", name="x", kind="input")
    p.inputs.append(x.storage)
    s = p.alloc((2, 8), "float32", "shared_hbm", name="s")
    acc = p.alloc((2, 8), "float32", "sbuf", name="acc")
    p.emit("dma_copy", dst=s, src=x)
    p.emit("memset", dst=acc, value=0.0)
    saved, p.instrs = p.instrs, []
    R = p.alloc((2, 8), "float32", "sbuf", name="R")
    W = p.alloc((2, 8), "float32", "sbuf", name="W")
    if case == "early_read":
        p.emit("tensor_copy", dst=W, src=R)
    p.emit("dma_copy", dst=R, src=s)
    p.emit("tensor_tensor", dst=acc, data1=acc, data2=R, op="add")
    if case == "tile_rewritten":
        p.emit("tensor_scalar", dst=R, data=R, op0="add", operand0=1.0)
    if case == "reads_tile":
        p.emit("tensor_scalar", dst=W, data=R, op0="multiply", operand0=0.5)
    else:
        p.emit("activation", dst=W, op="tanh", data=acc)
    p.emit("dma_copy", dst=s, src=W)
    body, p.instrs = p.instrs, saved
    moved = state_on_chip(types.SimpleNamespace(p=p, arch=p.arch), body, s) if transform else None
    if moved is not None:
        p.emit("dma_copy", dst=moved[0], src=moved[1])
    p.emit("fori_loop", reg=VirtualRegister("t", readonly=True), lower=0, upper=3, step=1,
           body=body, _reads=[v for b in body for v in b.reads()],
           _writes=[v for b in body for v in b.writes()])
    if moved is not None:
        p.emit("dma_copy", dst=moved[1], src=moved[0])
    out = p.alloc((2, 8), "float32", "shared_hbm", name="out")
    p.emit("dma_copy", dst=out, src=acc)
    p.outputs += [out.storage, s.storage]
    return p, body, moved, R


@pytest.mark.parametrize("case, moved, n", [("reads_tile", True, 3), ("producer", True, 2),
                                            ("early_read", False, 5),
                                            ("tile_rewritten", False, 5)])
def test_a_state_stays_in_its_tile_only_when_no_trip_sees_the_difference(case, moved, n):
    prog, body, got, R = _state_program(case)
    assert (got is not None) == moved and len(body) == n
    if case == "producer":                      # the tanh writes the state tile itself
        assert body[-1].op.name == "activation" and body[-1].args["dst"].storage is R.storage
    if case == "reads_tile":                    # tensor_scalar reads R: it keeps writing W
        assert body[-1].op.name == "dma_copy" and body[-1].args["dst"].storage is R.storage
    x = np.linspace(-2, 2, 16, dtype=np.float32).reshape(2, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # early_read reads R before anything wrote it
        want = run_reference(_state_program(case, transform=False)[0], [x])
        res = run_reference(prog, [x])
    for a, b in zip(res, want):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
