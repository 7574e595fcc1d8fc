"""``nisa.core_barrier`` ordering, per-core engine state, and the deadlock error.

The executor runs the two cores in lock-step (one instruction each in turn), as they run on the
device: without a barrier, a core that reads a shared tensor before the other core (slower by a
few instructions) has written its part sees the NaN sentinel; with the barrier it waits.
"""
import warnings

import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import HardwareRuleError, UserKernelError
from device.executor import CoreDeadlockError
from neuron import CrossCoreRaceWarning

from source_errors import expect_error, line_of


def _exchange_through_hbm(barrier: bool, core_1_lags: int = 0):
    def kernel(a):
        """Each core writes its row block of a shared scratch tensor, then reads the other's;
        core 1 reaches its write ``core_1_lags`` instructions after core 0 reaches its own."""
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        scratch = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        pid = nl.program_id(0)
        r = a.shape[0] // 2
        t = nl.ndarray((r, a.shape[1]), a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a[pid * r:(pid + 1) * r])
        nisa.tensor_scalar(dst=t, data=t, op0=nl.multiply, operand0=10.0)
        for _ in range(core_1_lags * pid):
            nisa.tensor_scalar(dst=t, data=t, op0=nl.multiply, operand0=1.0)
        nisa.dma_copy(dst=scratch[pid * r:(pid + 1) * r], src=t)
        if barrier:
            nisa.core_barrier(scratch, (0, 1))
        other = 1 - pid
        nisa.dma_copy(dst=t, src=scratch[other * r:(other + 1) * r])
        nisa.dma_copy(dst=out[pid * r:(pid + 1) * r], src=t)
        return out
    return nki.jit(kernel, target="trn2")


A = np.arange(8 * 6, dtype=np.float32).reshape(8, 6)


def test_core_barrier_makes_each_core_see_the_others_writes():
    out = _exchange_through_hbm(True)[2](A)
    np.testing.assert_array_equal(out, np.concatenate([A[4:], A[:4]]) * 10)


def test_without_the_barrier_core_0_reads_before_core_1_wrote():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = _exchange_through_hbm(False, core_1_lags=3)[2](A)
    assert np.isnan(out[:4]).all()                         # core 0 read the sentinel
    np.testing.assert_array_equal(out[4:], A[:4] * 10)     # core 0 wrote before core 1 read
    # the barrier makes the lagging core's write visible all the same
    out = _exchange_through_hbm(True, core_1_lags=3)[2](A)
    np.testing.assert_array_equal(out, np.concatenate([A[4:], A[:4]]) * 10)


@nki.jit(target="trn2")
def read_early_write_late(a, cache):
    """Both cores read the same rows of a shared (input) cache first and overwrite them last,
    with no barrier: the shape of a kernel that loads a cache window at its start and scatters
    new rows into the cache at its end (nki-library swa_fused_cte, kv head replicated)."""
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    pid = nl.program_id(0)
    r = a.shape[0] // 2
    seen = nl.ndarray((r, a.shape[1]), a.dtype, buffer=nl.sbuf)
    new = nl.ndarray((r, a.shape[1]), a.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=seen, src=cache[0:r])
    nisa.dma_copy(dst=new, src=a[0:r])
    for _ in range(3):
        nisa.tensor_scalar(dst=new, data=new, op0=nl.add, operand0=1.0)
    nisa.dma_copy(dst=cache[0:r], src=new)
    nisa.dma_copy(dst=out[pid * r:(pid + 1) * r], src=seen)
    return out, cache


def test_cores_start_together_so_an_early_read_precedes_the_other_cores_late_write():
    cache = -np.arange(8 * 6, dtype=np.float32).reshape(8, 6)
    # the kernel races on purpose (the shape under test), so the lint must say so (a fresh
    # Kernel: the warning comes with a trace, and another test may have traced this one)
    with pytest.warns(CrossCoreRaceWarning, match=r"core 0 writes shared HBM tensor 'cache'.*"
                      r"core 1 reads the same bytes"):
        out, cache_out = nki.jit(read_early_write_late.fn, target="trn2")[2](A, cache.copy())
    # each core read the cache as it was before either core wrote it, as on the device (running
    # core 0 to its end first would have shown core 1 core 0's new rows)
    np.testing.assert_array_equal(out, np.concatenate([cache[:4], cache[:4]]))
    np.testing.assert_array_equal(cache_out[:4], A[:4] + 3)
    np.testing.assert_array_equal(cache_out[4:], cache[4:])


def test_the_two_cores_of_each_rank_start_together_in_a_multi_rank_run_too():
    import nki.collectives as ncc
    cache = -np.arange(8 * 6, dtype=np.float32).reshape(8, 6)
    with warnings.catch_warnings():      # the race is reported once per trace (the test above)
        warnings.simplefilter("ignore", CrossCoreRaceWarning)
        results = ncc.run(read_early_write_late[2], [(A + r, cache.copy()) for r in range(2)])
    for r, (out, cache_out) in enumerate(results):
        np.testing.assert_array_equal(out, np.concatenate([cache[:4], cache[:4]]))
        np.testing.assert_array_equal(cache_out[:4], A[:4] + r + 3)


def test_core_barrier_is_refused_on_neuroncore_v2_and_at_lnc1():
    k = _exchange_through_hbm(True)
    where = line_of(k, "nisa.core_barrier(")
    e = expect_error(lambda: nki.jit(k.fn, target="trn1")[2](A), HardwareRuleError, where=where,
                     says=("core_barrier needs NeuronCore-v3 or later", "target trn1 is "
                           "NeuronCore-v2"))
    assert e.rule == "generation"
    e = expect_error(lambda: k(A), HardwareRuleError, where=where,
                     says=("cores=(0, 1) names core 1 but this kernel runs with LNC=1",))
    assert e.rule == "lnc"


def _exchange_through_hbm_ordered_by(where):
    def kernel(a):
        """As above, but the barrier's handle is a tile in ``where`` rather than the scratch."""
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        scratch = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        pid = nl.program_id(0)
        r = a.shape[0] // 2
        t = nl.ndarray((r, a.shape[1]), a.dtype, buffer=nl.sbuf)
        handle = nl.ndarray((1, 1), nl.int32, buffer=where)
        nisa.dma_copy(dst=t, src=a[pid * r:(pid + 1) * r])
        nisa.dma_copy(dst=scratch[pid * r:(pid + 1) * r], src=t)
        nisa.core_barrier(data=handle, cores=[0, 1])
        nisa.dma_copy(dst=t, src=scratch[(1 - pid) * r:(2 - pid) * r])
        nisa.dma_copy(dst=out[pid * r:(pid + 1) * r], src=t)
        return out
    return nki.jit(kernel, target="trn2")


def test_core_barrier_on_an_sbuf_tile_orders_the_cores_too():
    # the NKI library's MoE kernels pass an SBUF tile as the barrier's data
    out = _exchange_through_hbm_ordered_by(nl.sbuf)[2](A)
    np.testing.assert_array_equal(out, np.concatenate([A[4:], A[:4]]))


@pytest.mark.parametrize("where", ["psum", "hbm"])
def test_core_barrier_data_must_be_memory_both_cores_share(where):
    k = _exchange_through_hbm_ordered_by(getattr(nl, where))
    e = expect_error(lambda: k[2](A), HardwareRuleError, where=line_of(k, "core_barrier("),
                     says=(f"is in {where}", "nl.shared_hbm (or an SBUF tile)"))
    assert (e.rule, e.operand, e.value, e.limit) == ("buffer", "data", where, "shared_hbm or sbuf")


def test_core_barrier_over_one_core_may_be_written_as_a_bare_int():
    @nki.jit(target="trn2")
    def one_core(a):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a)
        nisa.dma_copy(dst=out, src=t)
        nisa.core_barrier(out, (0))             # noqa: the library's spelling of cores=(0,)
        return out
    np.testing.assert_array_equal(one_core(A), A)


@nki.jit(target="trn2")
def mismatched_sync(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    pid = nl.program_id(0)
    t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    u = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=a)
    if pid == 0:
        nisa.core_barrier(out, (0, 1))
    else:
        nisa.sendrecv(src=t, dst=u, send_to_rank=0, recv_from_rank=0, pipe_id=0)
    nisa.dma_copy(dst=out, src=t)
    return out


def test_deadlock_names_both_waiting_instructions_and_their_lines():
    f, barrier_line = line_of(mismatched_sync, "core_barrier(")
    _, send_line = line_of(mismatched_sync, "nisa.sendrecv(")
    e = expect_error(lambda: mismatched_sync[2](A), CoreDeadlockError, where=(f, barrier_line),
                     says=("deadlock: no core of this LNC program can make progress",
                           f"core 0 is blocked at core_barrier (test_barrier_and_deadlock.py:"
                           f"{barrier_line}): waits for core 1 to reach core_barrier #1",
                           f"core 1 is blocked at sendrecv (test_barrier_and_deadlock.py:"
                           f"{send_line}): waits for core 0 to reach a sendrecv on pipe 0",
                           "nisa.core_barrier(out, (0, 1))"))
    assert isinstance(e, UserKernelError)


@nki.jit(target="trn2")
def extra_barrier(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    pid = nl.program_id(0)
    nisa.core_barrier(out, (0, 1))
    if pid == 1:
        nisa.core_barrier(out, (0, 1))      # core 0 never reaches a second barrier
    return out


def test_deadlock_when_the_other_core_has_finished():
    expect_error(lambda: extra_barrier[2](A), CoreDeadlockError,
                 where=line_of(extra_barrier, "core_barrier(", 1),
                 says=("core 0 has finished its program (1 instructions)",
                       "core 1 is blocked at core_barrier", "core_barrier #2"))


@nki.jit(target="trn2")
def accumulate_across_barrier(a):
    """Each core sums its rows on ScalarE's accumulators in two halves around a barrier."""
    out = nl.ndarray((a.shape[0], 2), nl.float32, buffer=nl.shared_hbm)
    pid = nl.program_id(0)
    f = a.shape[1] // 2
    x = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    y = nl.ndarray((a.shape[0], f), a.dtype, buffer=nl.sbuf)
    res = nl.ndarray((a.shape[0], 1), nl.float32, buffer=nl.sbuf)
    nisa.dma_copy(dst=x, src=a)
    nisa.tensor_scalar(dst=x, data=x, op0=nl.multiply, operand0=float(pid + 1))
    nisa.activation(dst=y, op=nl.copy, data=x[:, :f], reduce_op=nl.add,
                    reduce_cmd=nisa.reduce_cmd.reset_reduce)
    nisa.core_barrier(out, (0, 1))
    nisa.activation(dst=y, op=nl.copy, data=x[:, f:], reduce_op=nl.add, reduce_res=res,
                    reduce_cmd=nisa.reduce_cmd.reduce)
    nisa.dma_copy(dst=out[:, pid:pid + 1], src=res)
    return out


def test_engine_accumulators_belong_to_each_core():
    a = np.arange(4 * 6, dtype=np.float32).reshape(4, 6)
    s = a.sum(axis=1)
    np.testing.assert_allclose(accumulate_across_barrier[2](a), np.stack([s, 2 * s], 1))


def _exchange_in_loop(trips: int):
    def kernel(a):
        """Each iteration: each core adds its block to a shared scratch, waits for the other at
        a barrier inside the device loop, then reads the other's block back into its own."""
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        scratch = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        pid = nl.program_id(0)
        r = a.shape[0] // 2
        t = nl.ndarray((r, a.shape[1]), a.dtype, buffer=nl.sbuf)
        u = nl.ndarray((r, a.shape[1]), a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a[pid * r:(pid + 1) * r])

        def body(i):
            nisa.dma_copy(dst=scratch[pid * r:(pid + 1) * r], src=t)
            nisa.core_barrier(scratch, (0, 1))
            nisa.dma_copy(dst=u, src=scratch[(1 - pid) * r:(2 - pid) * r])
            nisa.core_barrier(scratch, (0, 1))          # both have read before the next write
            nisa.tensor_tensor(dst=t, data1=t, data2=u, op=nl.add)
        nl.fori_loop(0, trips, body)
        nisa.dma_copy(dst=out[pid * r:(pid + 1) * r], src=t)
        return out
    return nki.jit(kernel, target="trn2")


@pytest.mark.parametrize("trips", [1, 3])
def test_a_barrier_inside_a_device_loop_orders_the_cores_every_iteration(trips):
    # t0, t1 -> both t0 + t1 after one trip, then doubling: 2^(trips-1) * (t0 + t1) on both
    both = A[:4] + A[4:]
    want = np.concatenate([both, both]) * 2 ** (trips - 1)
    np.testing.assert_array_equal(_exchange_in_loop(trips)[2](A), want)


def test_a_barrier_only_one_core_reaches_inside_a_loop_is_a_deadlock_naming_both():
    @nki.jit(target="trn2")
    def in_loop(a):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        pid = nl.program_id(0)

        def body(i):
            if pid == 0:
                nisa.core_barrier(out, (0, 1))
        nl.fori_loop(0, 2, body)
        return out

    e = expect_error(lambda: in_loop[2](A), CoreDeadlockError,
                     where=line_of(in_loop, "nl.fori_loop("),
                     says=("deadlock", "waits for core 1 to reach core_barrier #1",
                           "at core_barrier", "inside the loop"))
    assert f"test_barrier_and_deadlock.py:{line_of(in_loop, 'core_barrier(')[1]}" in str(e)
