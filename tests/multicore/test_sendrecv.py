"""``nisa.sendrecv`` between the two cores of ``kernel[2]`` (NeuronCore-v3+), against NumPy.

Each core sends its ``src`` tile to the other core's ``dst`` and receives the other core's tile;
the executor runs core 0 until its sendrecv has to wait, then core 1, then core 0 again.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import HardwareRuleError

from source_errors import expect_error, line_of


@nki.jit(target="trn2")
def swap_halves(a):
    """Core k loads column block k, swaps it with the other core, stores it in block k."""
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    pid = nl.program_id(0)
    h = a.shape[1] // 2
    mine = nl.ndarray((a.shape[0], h), a.dtype, buffer=nl.sbuf)
    theirs = nl.ndarray((a.shape[0], h), a.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=mine, src=a[:, pid * h:(pid + 1) * h])
    nisa.sendrecv(src=mine, dst=theirs, send_to_rank=1 - pid, recv_from_rank=1 - pid, pipe_id=0)
    nisa.dma_copy(dst=out[:, pid * h:(pid + 1) * h], src=theirs)
    return out


@given(p=st.integers(1, 128), h=st.integers(1, 40),
       dtype=st.sampled_from([np.float32, np.float16, np.int32, np.uint8]))
def test_sendrecv_exchanges_the_two_cores_tiles(p, h, dtype):
    a = (np.arange(p * 2 * h) % 251).astype(dtype).reshape(p, 2 * h)
    out = swap_halves[2](a)
    np.testing.assert_array_equal(out, np.concatenate([a[:, h:], a[:, :h]], axis=1))


@nki.jit(target="trn2")
def sum_over_cores(a, rounds):
    """All-reduce by repeated exchange: each round adds what the other core holds (pipes 0, 1)."""
    out = nl.ndarray((a.shape[0], a.shape[1] // 2), a.dtype, buffer=nl.shared_hbm)
    pid = nl.program_id(0)
    h = a.shape[1] // 2
    acc = nl.ndarray((a.shape[0], h), a.dtype, buffer=nl.sbuf)
    got = nl.ndarray((a.shape[0], h), a.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=acc, src=a[:, pid * h:(pid + 1) * h])
    for r in range(rounds):
        nisa.sendrecv(src=acc, dst=got, send_to_rank=1 - pid, recv_from_rank=1 - pid,
                      pipe_id=r % 2, dma_engine=nisa.dma_engine.gpsimd_dma)
        nisa.tensor_tensor(dst=acc, data1=acc, data2=got, op=nl.add)
    if pid == 0:
        nisa.dma_copy(dst=out, src=acc)
    return out


@pytest.mark.parametrize("rounds", [1, 2, 3])
def test_repeated_exchanges_on_two_pipes(rounds):
    a = np.random.default_rng(rounds).standard_normal((64, 16)).astype(np.float32)
    x0, x1 = a[:, :8].astype(np.float64), a[:, 8:].astype(np.float64)
    for _ in range(rounds):
        x0, x1 = x0 + x1, x1 + x0
    np.testing.assert_allclose(sum_over_cores[2](a, rounds), x0, rtol=1e-5)


def test_gpsimd_dma_sendrecv_runs_on_gpsimd_and_dma_sendrecv_on_the_queues():
    a = np.zeros((64, 16), np.float32)
    prog = sum_over_cores[2].trace(a, 1)
    assert {i.engine for i in prog.instrs if i.op.name == "sendrecv"} == {"POOL"}
    prog = swap_halves[2].trace(a)
    assert {i.engine for i in prog.instrs if i.op.name == "sendrecv"} == {"DMA"}


def test_sendrecv_is_refused_on_neuroncore_v2():
    k = nki.jit(swap_halves.fn, target="inf2")
    e = expect_error(lambda: k[2](np.zeros((4, 4), np.float32)), HardwareRuleError,
                     where=line_of(swap_halves, "nisa.sendrecv("),
                     says=("generation: sendrecv needs NeuronCore-v3 or later",
                           "target inf2 is NeuronCore-v2"))
    assert (e.rule, e.operand, e.value) == ("generation", "target", "inf2")


def test_sendrecv_needs_two_cores():
    expect_error(lambda: swap_halves(np.zeros((4, 4), np.float32)), HardwareRuleError,
                 where=line_of(swap_halves, "nisa.sendrecv("),
                 says=("send_to_rank=1 names core 1 but this kernel runs with LNC=1",
                       "kernel[2](...)"))


@nki.jit(target="trn2")
def mismatched(a, width):
    out = nl.ndarray((4, 4), a.dtype, buffer=nl.shared_hbm)
    pid = nl.program_id(0)
    s = nl.ndarray((4, width), nl.float32, buffer=nl.sbuf)
    d = nl.ndarray((4, 4), nl.float16, buffer=nl.sbuf)
    nisa.sendrecv(src=s, dst=d, send_to_rank=1 - pid, recv_from_rank=1 - pid, pipe_id=0)
    return out


def test_sendrecv_src_and_dst_must_agree():
    e = expect_error(lambda: mismatched[2](np.zeros((4, 4), np.float32), 4), HardwareRuleError,
                     where=line_of(mismatched, "nisa.sendrecv("),
                     says=("src is float32 but dst is float16",))
    assert e.rule == "dtype"


@nki.jit(target="trn2")
def big_gpsimd(a):
    out = nl.ndarray((4, 4), a.dtype, buffer=nl.shared_hbm)
    pid = nl.program_id(0)
    s = nl.ndarray((4, 300), nl.float32, buffer=nl.sbuf)
    d = nl.ndarray((4, 300), nl.float32, buffer=nl.sbuf)
    nisa.sendrecv(src=s, dst=d, send_to_rank=1 - pid, recv_from_rank=1 - pid, pipe_id=0,
                  dma_engine=nisa.dma_engine.gpsimd_dma)
    return out


def test_gpsimd_dma_size_limit():
    e = expect_error(lambda: big_gpsimd[2](np.zeros((4, 4), np.float32)), HardwareRuleError,
                     where=line_of(big_gpsimd, "nisa.sendrecv("),
                     says=("1200 bytes per partition", "limit for 32-bit data is 1024"))
    assert (e.rule, e.value, e.limit) == ("gpsimd-dma-size", 1200, 1024)


@nki.jit(target="trn2")
def legacy_flag(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    pid = nl.program_id(0)
    s = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    d = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=s, src=a)
    nisa.tensor_scalar(dst=s, data=s, op0=nl.add, operand0=float(pid))
    nisa.sendrecv(s, d, 1 - pid, 1 - pid, 3, use_gpsimd_dma=True)     # positional + legacy flag
    if pid == 0:
        nisa.dma_copy(dst=out, src=d)
    return out


def test_positional_arguments_and_legacy_gpsimd_flag():
    a = np.arange(32, dtype=np.float32).reshape(4, 8)
    np.testing.assert_array_equal(legacy_flag[2](a), a + 1)      # core 0 received core 1's tile
    prog = legacy_flag[2].trace(a)
    assert "sendrecv[POOL]" in str(prog) and "pipe_id=3" in str(prog)
