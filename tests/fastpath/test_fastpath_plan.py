"""Fused PSUM groups within their declared bound, the executor switch, plans cached and reused,
inputs read in place, outputs not aliased, memory shared between tiles with disjoint lifetimes."""
from __future__ import annotations

import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device import executor, fastpath
from device.fastpath import plan_for
from device.settings import settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fastpath_helpers import check  # noqa: E402


@nki.jit
def k_tiled_matmul(a_t, b, acc_first=None):
    """out = a_t.T @ b with K tiled by 128 into one PSUM tile per (M, N) tile; out is fp32."""
    K, M = a_t.shape
    N = b.shape[1]
    out = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.shared_hbm)
    for m in range(M // 128 if M >= 128 else 1):
        mm = min(M, 128)
        acc = nl.ndarray((mm, N), dtype=nl.float32, buffer=nl.psum)
        if acc_first is not None:
            nisa.memset(dst=acc, value=acc_first)
        for k in range(K // 128):
            x = nl.ndarray((128, mm), dtype=a_t.dtype, buffer=nl.sbuf)
            y = nl.ndarray((128, N), dtype=b.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=x, src=a_t[k * 128:(k + 1) * 128, m * mm:(m + 1) * mm])
            nisa.dma_copy(dst=y, src=b[k * 128:(k + 1) * 128, :])
            nisa.nc_matmul(dst=acc, stationary=x, moving=y,
                           accumulate=True if acc_first is not None else None)
        res = nl.ndarray((mm, N), dtype=nl.float32, buffer=nl.sbuf)
        nisa.tensor_copy(dst=res, src=acc)
        nisa.dma_copy(dst=out[m * mm:(m + 1) * mm, :], src=res)
    return out


@given(kt=st.integers(1, 4), m=st.sampled_from([1, 64, 256]), n=st.integers(1, 512),
       dt=st.sampled_from(["float32", "bfloat16", "float8_e4m3"]), start=st.sampled_from(
           [None, 0.0, 3.5]), seed=st.integers(0, 99))
def test_fused_psum_groups_stay_within_the_declared_bound(kt, m, n, dt, start, seed):
    rng = np.random.default_rng(seed)
    npdt = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16,
            "float8_e4m3": ml_dtypes.float8_e4m3}[dt]
    a = (rng.standard_normal((kt * 128, m)) * 3).astype(npdt)
    b = (rng.standard_normal((kt * 128, n)) * 3).astype(npdt)
    prog = k_tiled_matmul.trace(a, b, start)
    ref = executor.run_reference(prog, [a, b])[0]
    fast = fastpath.run(prog, [a, b], mode="fast")[0][0]
    exact = fastpath.run(prog, [a, b], mode="exact")[0][0]
    assert exact.tobytes() == ref.tobytes()
    assert len(plan_for(prog, "fast").groups) == max(1, m // 128)     # one group per PSUM tile
    af, bf = np.abs(a.astype(np.float64)), np.abs(b.astype(np.float64))
    K = kt * 128
    bound = 2 * (K + 1) * 2.0 ** -24 * (af.T @ bf + abs(start or 0))
    assert np.all(np.abs(fast.astype(np.float64) - ref) <= bound)


def test_the_switch_runs_the_reference_executor(monkeypatch):
    a = np.ones((128, 128), np.float32)
    monkeypatch.setattr(fastpath, "run", lambda *a, **k: pytest.fail("fast path used"))
    monkeypatch.setenv("NEURON_EMU_EXECUTOR", "reference")
    assert settings().executor == "reference"
    np.testing.assert_array_equal(k_tiled_matmul(a, a), a.T @ a)


def test_the_switch_rejects_unknown_executors(monkeypatch):
    monkeypatch.setenv("NEURON_EMU_EXECUTOR", "turbo")
    with pytest.raises(ValueError, match="NEURON_EMU_EXECUTOR='turbo' is not an executor; use "
                                         "one of fast, exact, reference"):
        settings()


def test_plans_are_cached_with_the_program_and_reused_with_new_data():
    a = np.ones((256, 128), np.float32)
    prog = k_tiled_matmul.trace(a, a)
    p1 = plan_for(prog)
    np.testing.assert_array_equal(k_tiled_matmul(a, a), a.T @ a)
    b = np.full((256, 128), 2, np.float32)
    np.testing.assert_array_equal(k_tiled_matmul(b, a), b.T @ a)
    assert plan_for(prog) is p1
    assert plan_for(prog, "exact") is not p1


def test_inputs_are_read_in_place_and_outputs_are_fresh_arrays():
    a = np.arange(256 * 128, dtype=np.float32).reshape(256, 128) / 1000
    prog = k_tiled_matmul.trace(a, a)
    outs, mem = fastpath.run(prog, [a, a])
    assert np.shares_memory(mem.arrays[prog.inputs[0].id], a)
    assert not np.shares_memory(outs[0], a)
    outs2, _ = fastpath.run(prog, [a, a])
    assert not np.shares_memory(outs[0], outs2[0])


def test_tiles_with_disjoint_lifetimes_share_memory():
    a = np.ones((512, 128), np.float32)
    plan = plan_for(k_tiled_matmul.trace(a, a), "exact")
    tiles = [s for s in plan.facts.storages.values() if s.buffer.on_chip]
    arrays = {id(plan.onchip[s.id]) for s in tiles}
    assert len(tiles) == 10 and len(arrays) < len(tiles)


def test_dynamic_addresses_run_on_the_plan():
    @nki.jit
    def gather(table, idx):
        ids = nl.ndarray((4, 1), dtype=idx.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=ids, src=idx)
        out = nl.ndarray((4, 8), dtype=table.dtype, buffer=nl.shared_hbm)
        t = nl.ndarray((4, 8), dtype=table.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=table.ap([[8, 4], [1, 8]], vector_offset=ids, indirect_dim=0))
        nisa.dma_copy(dst=out, src=t)
        return out

    table = np.arange(80, dtype=np.float32).reshape(10, 8)
    idx = np.array([[3], [0], [9], [3]], np.int32)
    prog = gather.trace(table, idx)
    assert fastpath.analysis.unsupported_reason(prog) is None
    assert plan_for(prog) is not None
    np.testing.assert_array_equal(gather(table, idx), table[idx[:, 0]])
    check(prog, [table, idx])


def test_dynamic_reads_of_partly_written_data_keep_the_reference_executor():
    @nki.jit
    def gather_half(table, idx):
        ids = nl.ndarray((4, 1), dtype=idx.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=ids, src=idx)
        half = nl.ndarray((10, 8), dtype=table.dtype, buffer=nl.hbm)
        nisa.dma_copy(dst=half[0:5, :], src=table[0:5, :])
        out = nl.ndarray((4, 8), dtype=table.dtype, buffer=nl.shared_hbm)
        t = nl.ndarray((4, 8), dtype=table.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=half.ap([[8, 4], [1, 8]], vector_offset=ids, indirect_dim=0))
        nisa.dma_copy(dst=out, src=t)
        return out

    table = np.arange(80, dtype=np.float32).reshape(10, 8)
    idx = np.array([[3], [0], [1], [3]], np.int32)
    prog = gather_half.trace(table, idx)
    load = next(i for i in prog.instrs if i.args["src"].storage.name == "table")
    half = load.args["dst"].storage.name
    assert fastpath.analysis.unsupported_reason(prog) == \
        f"a dynamic read of partly written {half} in dma_copy"
    assert plan_for(prog) is None
    np.testing.assert_array_equal(gather_half(table, idx), table[idx[:, 0]])


def test_uninitialised_reads_warn_as_the_reference_does():
    @nki.jit
    def k(x):
        out = nl.ndarray((128, 4), dtype=nl.float32, buffer=nl.shared_hbm)
        t = nl.ndarray((128, 8), dtype=nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=t[:, 0:4], src=x)
        nisa.dma_copy(dst=out, src=t[:, 2:6])
        return out

    x = np.ones((128, 4), np.float32)
    with pytest.warns(UserWarning, match=r"read of 256 uninitialized element\(s\) of 't'"):
        y = k(x)
    assert np.isnan(y[:, 2:]).all() and (y[:, :2] == 1).all()


def test_dynamic_writes_run_on_the_plan_and_give_the_reference_bytes():
    @nki.jit(target="trn3")
    def scatter(a, idx):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a)
        ix = nl.ndarray(idx.shape, idx.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=ix, src=idx)
        nisa.tensor_scalar(dst=t.indirect(ix, num_elem=3), data=t[:, 0:3], op0=nl.multiply,
                           operand0=-1.0)
        nisa.dma_copy(dst=out, src=t)
        return out

    idx = np.array([[5], [0], [7]] + [[1]] * 13, np.uint16)
    a = np.arange(32, dtype=np.float32).reshape(2, 16)
    prog = scatter.trace(a, idx)
    assert plan_for(prog) is not None
    got = check(prog, [a, idx])[0]
    want = a.copy()
    for i, o in enumerate([5, 0, 7]):
        want[:, o] = -a[:, i]
    np.testing.assert_array_equal(got, want)
