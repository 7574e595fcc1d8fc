"""The reference executor frees each tile after the last instruction that names it
(device.lifetimes), so its host memory follows the live data, not the program's length.

LNC=2 kernels always run on the reference executor, which is why the tests here are mostly
two-core kernels: tiles both cores name, barriers that park a core, loops that resume.
"""
import tracemalloc

import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device import executor
from device.lifetimes import lifetimes
from device.memory import Memory
from device.program import Program

TILE = (128, 512)                     # 256 KiB of fp32 (+ 64 KiB of written mask) per tile


def _chain(n: int) -> Program:
    """acc = sum of n fresh tiles, each loaded from x: n tiles that die one after the other."""
    p = Program("chain")
    x = p.alloc(TILE, "float32", "hbm", name="x", kind="input")
    p.inputs.append(x.storage)
    o = p.alloc(TILE, "float32", "shared_hbm", name="o")
    p.outputs.append(o.storage)
    acc = p.alloc(TILE, "float32", "sbuf", name="acc")
    p.emit("memset", dst=acc, value=0.0)
    for i in range(n):
        t = p.alloc(TILE, "float32", "sbuf", name=f"t{i}")
        p.emit("dma_copy", dst=t, src=x)
        p.emit("tensor_tensor", dst=acc, data1=acc, data2=t, op=np.add)
    p.emit("dma_copy", dst=o, src=acc)
    return p


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_of_a_long_program_of_independent_tiles_stays_bounded():
    x = np.random.default_rng(0).standard_normal(TILE).astype(np.float32)
    short, long = _chain(4), _chain(160)            # 160 tiles held at once would be 50 MB
    for p in (short, long):
        executor.run_reference(p, [x])              # lifetimes worked out (and cached) here
    got = []
    p_short = _peak(lambda: executor.run_reference(short, [x]))
    p_long = _peak(lambda: got.append(executor.run_reference(long, [x])[0]))
    np.testing.assert_allclose(got[0], x * 160, rtol=1e-5)
    tile = np.prod(TILE) * 5                         # the data and its written mask
    assert p_long < p_short + 2 * tile, (p_short, p_long)
    assert p_long < 12 * tile


def test_a_callers_own_memory_keeps_every_tile():
    p = _chain(3)
    mem = Memory()
    executor.run_reference(p, [np.ones(TILE, np.float32)], memory=mem)
    kept = {st.name for st in p.storages if st.id in mem.arrays}
    assert {"t0", "t1", "t2", "acc"} <= kept


def test_a_view_keeps_its_storage_alive_and_dynamic_offsets_name_their_tensor():
    p = Program("k", "trn2")
    x = p.alloc((128, 8), "float32", "hbm", name="x", kind="input")
    p.inputs.append(x.storage)
    o = p.alloc((128, 4), "float32", "shared_hbm", name="o")
    p.outputs.append(o.storage)
    t = p.alloc((128, 8), "float32", "sbuf", name="t")
    u = p.alloc((128, 4), "float32", "sbuf", name="u")
    p.emit("dma_copy", dst=t, src=x)                     # 0
    p.emit("tensor_copy", dst=u, src=t[:, 0:4])          # 1: a slice of t
    p.emit("tensor_copy", dst=u, src=t[:, 4:8])          # 2: t's last use, through a view
    p.emit("dma_copy", dst=o, src=u)                     # 3
    dies = {pc: sorted(s.name for s in sts) for pc, sts in lifetimes(p).dies[0].items()}
    assert dies == {2: ["t"], 3: ["u"]}                  # inputs and outputs are never freed
    out = executor.run_reference(p, [np.arange(128 * 8, dtype=np.float32).reshape(128, 8)])[0]
    np.testing.assert_array_equal(out, np.arange(128 * 8).reshape(128, 8)[:, 4:8])


def test_touching_a_freed_tile_is_reported_as_an_emulator_bug_not_read_as_sentinels():
    p = _chain(1)
    mem = Memory()
    t0 = next(st for st in p.storages if st.name == "t0")
    mem.flat(t0)
    mem.free(t0)
    with pytest.raises(RuntimeError, match=r"emulator bug: t0 .* used after the instruction "
                                           r"device.lifetimes found to be its last use"):
        mem.flat(t0)


def _lnc2_chain(n: int, barrier_every: int):
    """Each core sums n fresh tiles of its half of ``a``; the cores meet at a barrier every
    ``barrier_every`` tiles, and both name one shared tile ``both`` (freed after the later)."""
    def kernel(a):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        pid = nl.program_id(0)
        r = a.shape[0] // 2
        acc = nl.ndarray((r, a.shape[1]), a.dtype, buffer=nl.sbuf)
        flag = nl.ndarray((1, 1), nl.int32, buffer=nl.shared_hbm)
        nisa.memset(dst=acc, value=0.0)
        for i in range(n):
            t = nl.ndarray((r, a.shape[1]), a.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=t, src=a[pid * r:(pid + 1) * r])
            nisa.tensor_tensor(dst=acc, data1=acc, data2=t, op=nl.add)
            if (i + 1) % barrier_every == 0:
                nisa.core_barrier(flag, (0, 1))
        nisa.dma_copy(dst=out[pid * r:(pid + 1) * r], src=acc)
        return out
    return nki.jit(kernel, target="trn2")[2]


def test_lnc2_kernel_with_barriers_frees_dead_tiles_and_stays_right():
    a = np.random.default_rng(1).standard_normal((256, 512)).astype(np.float32)
    short, long = _lnc2_chain(4, 2), _lnc2_chain(64, 2)    # 64 x 2 cores x 320 KiB = 40 MiB
    short(a), long(a)                                       # traced and run once
    got = []
    p_short = _peak(lambda: short(a))
    p_long = _peak(lambda: got.append(long(a)))
    np.testing.assert_allclose(got[0], a * 64, rtol=1e-5)
    tile = 128 * 512 * 5
    assert p_long < p_short + 6 * tile, (p_short, p_long)


def test_a_storage_two_cores_name_is_freed_after_both_have_used_it():
    k = _lnc2_chain(2, 1)
    prog = k.trace(np.zeros((256, 512), np.float32))
    lt = lifetimes(prog)
    flag = next(st for st in prog.storages if st.buffer.name == "shared_hbm"
                and st.shape == (1, 1))
    assert lt.users[flag.id] == 2                    # each core's last barrier is a last use
    assert all(any(flag in sts for sts in lt.dies[c].values()) for c in (0, 1))


def test_inputs_no_instruction_writes_are_read_in_place_and_written_ones_are_copied():
    p = Program("k")
    x = p.alloc(TILE, "float32", "hbm", name="x", kind="input")
    y = p.alloc(TILE, "float32", "hbm", name="y", kind="input")
    p.inputs += [x.storage, y.storage]
    o = p.alloc(TILE, "float32", "shared_hbm", name="o")
    p.outputs.append(o.storage)
    t = p.alloc(TILE, "float32", "sbuf", name="t")
    p.emit("dma_copy", dst=t, src=x)
    p.emit("dma_copy", dst=y, src=t)                 # the kernel overwrites its input y
    p.emit("dma_copy", dst=o, src=y)
    assert lifetimes(p).read_only == {x.storage.id}
    xs = np.random.default_rng(2).standard_normal(TILE).astype(np.float32)
    ys = np.zeros(TILE, np.float32)
    outs, mem = executor.run_reference(p, [xs, ys], return_memory=True)
    assert np.shares_memory(mem.arrays[x.storage.id], xs)          # no copy of x
    assert not np.shares_memory(mem.arrays[y.storage.id], ys)      # y is the kernel's copy
    np.testing.assert_array_equal(outs[0], xs)
    assert not ys.any()                                            # the caller's y untouched
    assert not mem.arrays[x.storage.id].flags.writeable


def _psum_tile_per_iteration(trips: int, lnc: int):
    """Each device-loop iteration allocates a PSUM tile, accumulates two matmuls into it
    (accumulate=None) and adds it to an SBUF total: every iteration starts a new group."""
    def kernel(x, y):
        out = nl.ndarray((x.shape[1], y.shape[1]), nl.float32, buffer=nl.shared_hbm)
        a = nl.ndarray((128, 2, x.shape[1]), x.dtype, buffer=nl.sbuf)
        b = nl.ndarray((128, 2, y.shape[1]), y.dtype, buffer=nl.sbuf)
        for k in range(2):
            nisa.dma_copy(dst=a[:, k, :], src=x[k * 128:(k + 1) * 128, :])
            nisa.dma_copy(dst=b[:, k, :], src=y[k * 128:(k + 1) * 128, :])
        total = nl.ndarray((x.shape[1], y.shape[1]), nl.float32, buffer=nl.sbuf)
        nisa.memset(dst=total, value=0.0)

        def body(i):
            ps = nl.ndarray((x.shape[1], y.shape[1]), nl.float32, buffer=nl.psum)
            for k in range(2):
                nisa.nc_matmul(dst=ps, stationary=a[:, k, :], moving=b[:, k, :])
            nisa.tensor_tensor(dst=total, data1=total, data2=ps, op=nl.add)
        nl.fori_loop(0, trips, body)
        if nl.program_id(0) == 0:
            nisa.dma_copy(dst=out, src=total)
        return out
    k = nki.jit(kernel, target="trn2")
    return k[2] if lnc == 2 else k


@pytest.mark.parametrize("lnc", [1, 2])
def test_a_psum_tile_allocated_in_a_device_loop_body_starts_a_new_group_each_iteration(lnc):
    rng = np.random.default_rng(3)
    x = rng.integers(-3, 4, (256, 64)).astype(np.float32)
    y = rng.integers(-3, 4, (256, 32)).astype(np.float32)
    want = 3 * (x.T @ y)                                   # not (1 + 2 + 3) * x.T @ y
    k = _psum_tile_per_iteration(3, lnc)
    np.testing.assert_array_equal(k(x, y), want)
    prog = k.trace(x, y)
    np.testing.assert_array_equal(executor.run_reference(prog, [x, y])[0], want)
