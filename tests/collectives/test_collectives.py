"""``nki.collectives`` on 2, 4 and 8 emulated ranks, each collective against NumPy; plus the
errors (mismatch, deadlock) and the NeuronLink cost model."""
import numpy as np
import pytest

import nki
import nki.collectives as ncc
import nki.isa as nisa
import nki.language as nl
from device.collectives import CollectiveDeadlockError, CollectiveMismatchError

from source_errors import line_of

P, F = 4, 6
RANKS = [2, 4, 8]


def _world(n):
    return ncc.ReplicaGroup([list(range(n))])


def _shards(n, shape=(P, F), seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed + n)
    return [rng.integers(-8, 8, size=shape).astype(dtype) for _ in range(n)]


def _load(x, shape=None):
    t = nl.ndarray(shape or x.shape, x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=x)
    return t


def _store(t):
    out = nl.ndarray(t.shape, t.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=t)
    return out


def _hbm(x):
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=x)
    return out


@nki.jit(target="trn2")
def k_all_reduce(x, n, op):
    t = _load(x)
    r = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
    ncc.all_reduce(srcs=[t], dsts=[r], replica_group=_world(n), op=op)
    return _store(r)


@pytest.mark.parametrize("n", RANKS)
@pytest.mark.parametrize("op,ref", [(nl.add, np.sum), (nl.maximum, np.max), (nl.minimum, np.min)])
def test_all_reduce(n, op, ref):
    xs = _shards(n)
    for out in ncc.run(k_all_reduce, [(x, n, op) for x in xs]):
        np.testing.assert_array_equal(out, ref(np.stack(xs), axis=0))


@pytest.mark.parametrize("n", [2, 4])
def test_all_reduce_with_two_cores_per_rank(n):
    """LNC=2: core c of every rank meets core c of the others; both cores write the shared out."""
    xs = _shards(n)
    for out in ncc.run(k_all_reduce[2], [(x, n, nl.add) for x in xs]):
        np.testing.assert_array_equal(out, np.sum(np.stack(xs), axis=0))


@nki.jit(target="trn2")
def k_all_gather(x, n):
    t = _load(x)
    g = nl.ndarray((x.shape[0], n * x.shape[1]), x.dtype, buffer=nl.sbuf)
    ncc.all_gather(srcs=[t], dsts=[g], replica_group=_world(n), collective_dim=1)
    return _store(g)


@nki.jit(target="trn2")
def k_all_gather_hbm(x, n):
    src = nl.ndarray(x.shape, x.dtype, buffer=nl.hbm)          # collectives never touch kernel
    nisa.dma_copy(dst=src, src=x)                              # inputs/outputs directly
    g = nl.ndarray((n * x.shape[0], x.shape[1]), x.dtype, buffer=nl.hbm)
    ncc.all_gather(srcs=[src], dsts=[g], replica_group=_world(n), collective_dim=0)
    out = nl.ndarray(g.shape, x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=g)
    return out


@pytest.mark.parametrize("n", RANKS)
def test_all_gather_on_sbuf_and_hbm(n):
    xs = _shards(n)
    for out in ncc.run(k_all_gather, [(x, n) for x in xs]):
        np.testing.assert_array_equal(out, np.concatenate(xs, axis=1))
    for out in ncc.run(k_all_gather_hbm, [(x, n) for x in xs]):
        np.testing.assert_array_equal(out, np.concatenate(xs, axis=0))


@nki.jit(target="trn2")
def k_reduce_scatter(x, n):
    t = _load(x)
    r = nl.ndarray((x.shape[0], x.shape[1] // n), x.dtype, buffer=nl.sbuf)
    ncc.reduce_scatter(srcs=[t], dsts=[r], replica_group=_world(n), op=nl.add, collective_dim=1)
    return _store(r)


@pytest.mark.parametrize("n", RANKS)
def test_reduce_scatter(n):
    xs = _shards(n, shape=(P, 2 * n))
    total = np.sum(np.stack(xs), axis=0)
    for r, out in enumerate(ncc.run(k_reduce_scatter, [(x, n) for x in xs])):
        np.testing.assert_array_equal(out, np.split(total, n, axis=1)[r])


@nki.jit(target="trn2")
def k_all_to_all(x, n):
    t = _load(x)
    r = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
    ncc.all_to_all(srcs=[t], dsts=[r], replica_group=_world(n), collective_dim=1)
    return _store(r)


@pytest.mark.parametrize("n", RANKS)
def test_all_to_all(n):
    xs = _shards(n, shape=(P, 3 * n))
    for r, out in enumerate(ncc.run(k_all_to_all, [(x, n) for x in xs])):
        want = np.concatenate([np.split(x, n, axis=1)[r] for x in xs], axis=1)
        np.testing.assert_array_equal(out, want)


@nki.jit(target="trn2")
def k_all_to_all_v(x, meta, n, rdispls):
    t = _hbm(x)
    m = _hbm(meta)
    z = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
    nisa.memset(dst=z, value=0.0)
    r = _hbm(z)
    ncc.all_to_all_v(srcs=[t], dsts=[r], replica_group=_world(n), metadata_tensor=m,
                     has_rdispls=rdispls)
    return _hbm(r)


@pytest.mark.parametrize("n", RANKS)
@pytest.mark.parametrize("rdispls", [False, True])
def test_all_to_all_v_moves_run_time_sized_pieces(n, rdispls):
    xs = _shards(n, shape=(1, n * F))
    send = [[1 + (r + j) % F for j in range(n)] for r in range(n)]         # rank r -> peer j
    metas = []
    for r in range(n):
        recv = [send[j][r] for j in range(n)]
        m = np.array([send[r], [j * F for j in range(n)], recv, [j * F for j in range(n)]],
                     np.uint32)
        metas.append(m)
    outs = ncc.run(k_all_to_all_v, [(xs[r], metas[r], n, rdispls) for r in range(n)])
    for r, out in enumerate(outs):
        want = np.zeros(n * F, np.float32)
        for j in range(n):            # recv_displs here equal the slots (n equal slots of dst)
            c = send[j][r]
            want[j * F:j * F + c] = xs[j][0, r * F:r * F + c]
        np.testing.assert_array_equal(out.reshape(-1), want)


@nki.jit(target="trn2")
def k_permute(x, pairs):
    src = nl.ndarray(x.shape, x.dtype, buffer=nl.hbm)
    dst = nl.ndarray(x.shape, x.dtype, buffer=nl.hbm)
    nisa.dma_copy(dst=src, src=x)
    nisa.dma_copy(dst=dst, src=x)                 # ranks nobody sends to keep their own data
    ncc.collective_permute(srcs=[src], dsts=[dst], source_target_pairs=pairs)
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=dst)
    return out


@pytest.mark.parametrize("n", RANKS)
def test_collective_permute_explicit_pairs(n):
    xs = _shards(n)
    pairs = tuple((r, (r * 3 + 1) % n) for r in range(0, n, 2))           # a partial shuffle
    outs = ncc.run(k_permute, [(x, pairs) for x in xs])
    for r in range(n):
        src = [s for s, t in pairs if t == r]
        np.testing.assert_array_equal(outs[r], xs[src[0]] if src else xs[r])


@nki.jit(target="trn2")
def k_ring(x, n, reduce):
    t = _load(x)
    r = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
    if reduce:
        ncc.collective_permute_implicit_reduce([[t]], [[t]], [[r]], replica_group=_world(n),
                                               op=nl.add)
    else:
        ncc.collective_permute_implicit([[t]], [[r]], replica_group=_world(n))
    return _store(r)


@pytest.mark.parametrize("n", RANKS)
@pytest.mark.parametrize("reduce", [False, True])
def test_implicit_ring_permute(n, reduce):
    xs = _shards(n)
    for r, out in enumerate(ncc.run(k_ring, [(x, n, reduce) for x in xs])):
        prev = xs[(r - 1) % n]
        np.testing.assert_array_equal(out, 2 * prev if reduce else prev)


@nki.jit(target="trn2")
def k_rank_ids(x, n):
    """Row 0: rank_id(); row 1..n: the ring rank processed at iteration k (register stores)."""
    out = nl.ndarray((1, n + 1), nl.int32, buffer=nl.shared_hbm)
    ids = nl.ndarray((1, n + 1), nl.int32, buffer=nl.sbuf)
    nisa.register_store(ids[:, 0:1], ncc.rank_id())
    for k in range(n):
        reg = ncc.collective_permute_implicit_current_processing_rank_id(k, _world(n))
        nisa.register_store(ids[:, k + 1:k + 2], reg)
    nisa.dma_copy(dst=out, src=ids)
    return out


@pytest.mark.parametrize("n", RANKS)
def test_rank_ids_are_run_time_registers(n):
    x = np.zeros((1, 1), np.float32)
    outs = ncc.run(k_rank_ids, [(x, n)] * n)
    for r, out in enumerate(outs):
        assert out[0].tolist() == [r] + [(r - k) % n for k in range(n)]
    assert len(k_rank_ids._cache) >= 1 and len({id(p) for p in k_rank_ids._cache.values()}) <= 3


@pytest.mark.parametrize("n", [2, 4])
def test_replica_groups_run_independently(n):
    rg = ncc.ReplicaGroup.from_partition_op(2 * n, ncc.rg_partition_op.mod, 2)
    assert rg.groups == (tuple(range(0, 2 * n, 2)), tuple(range(1, 2 * n, 2)))

    @nki.jit(target="trn2")
    def k(x):
        t = _load(x)
        r = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
        ncc.all_reduce(srcs=[t], dsts=[r], replica_group=rg, op=nl.add)
        return _store(r)
    xs = _shards(2 * n)
    outs = ncc.run(k, [(x,) for x in xs])
    for r, out in enumerate(outs):
        np.testing.assert_array_equal(out, sum(xs[q] for q in range(r % 2, 2 * n, 2)))


# ---- errors ----------------------------------------------------------------------------------
@nki.jit(target="trn2")
def k_mismatch(x, rank):
    t = _load(x)
    r = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
    if rank == 1:
        ncc.all_gather(srcs=[t], dsts=[r], replica_group=_world(2), collective_dim=1)
    else:
        ncc.all_reduce(srcs=[t], dsts=[r], replica_group=_world(2), op=nl.add)
    return _store(r)


def test_a_mismatched_collective_names_each_rank_and_line():
    x = np.zeros((P, F), np.float32)
    with pytest.raises(CollectiveMismatchError) as info:
        ncc.run(k_mismatch, [(x, 0), (x, 1)])
    text = str(info.value)
    f, gather_line = line_of(k_mismatch, "ncc.all_gather(")
    _, reduce_line = line_of(k_mismatch, "ncc.all_reduce(")
    assert "collective #0 does not match across ranks [0, 1]" in text
    assert f"rank 0: all_reduce op=add" in text and f":{reduce_line}" in text.split("rank 1")[0]
    assert f"rank 1: all_gather" in text and f":{gather_line}" in text.split("rank 1")[1]


@nki.jit(target="trn2")
def k_too_big_group(x):
    t = _load(x)
    r = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
    ncc.all_reduce(srcs=[t], dsts=[r], replica_group=_world(4), op=nl.add)
    return _store(r)


def test_a_collective_waiting_for_missing_ranks_is_a_deadlock_naming_every_rank():
    x = np.zeros((P, F), np.float32)
    with pytest.raises(CollectiveDeadlockError) as info:
        ncc.run(k_too_big_group, [(x,), (x,)])
    text = str(info.value)
    _, line = line_of(k_too_big_group, "ncc.all_reduce(")
    for r in (0, 1):
        assert f"rank {r} is blocked at all_reduce" in text and f":{line}): waits for rank(s) [2, 3]" in text


@nki.jit(target="trn2")
def k_extra_collective(x, rank):
    t = _load(x)
    r = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
    ncc.all_reduce(srcs=[t], dsts=[r], replica_group=_world(2), op=nl.add)
    if rank == 0:
        ncc.all_reduce(srcs=[r], dsts=[t], replica_group=_world(2), op=nl.add)
    return _store(r)


def test_a_rank_that_finishes_early_is_reported():
    x = np.zeros((P, F), np.float32)
    with pytest.raises(CollectiveDeadlockError,
                       match=r"(?s)rank 0 is blocked at all_reduce .*waits for rank\(s\) \[1\] to "
                             r"reach collective #1.*rank 1 has finished its program"):
        ncc.run(k_extra_collective, [(x, 0), (x, 1)])


def test_bad_arguments():
    from device.errors import HardwareRuleError, UserKernelError
    x = np.zeros((P, F), np.float32)

    @nki.jit(target="trn2")
    def overlap(x):
        t = _load(x)
        ncc.all_reduce(srcs=[t], dsts=[t], replica_group=ncc.ReplicaGroup([[0, 1], [1, 2]]),
                       op=nl.add)
        return _store(t)
    with pytest.raises(HardwareRuleError, match=r"rank-lists \[\[0, 1\], \[1, 2\]\] overlap"):
        ncc.run(overlap, [(x,)] * 3)

    @nki.jit(target="trn2")
    def mixed(x):
        t = _load(x)
        ncc.all_reduce(srcs=[x], dsts=[t], replica_group=_world(2), op=nl.add)
        return _store(t)
    with pytest.raises(HardwareRuleError, match="must all be in HBM or all in SBUF"):
        ncc.run(mixed, [(x,)] * 2)
    @nki.jit(target="trn2")
    def io_in(x):
        g = nl.ndarray(x.shape, x.dtype, buffer=nl.hbm)
        ncc.all_reduce(srcs=[x], dsts=[g], replica_group=_world(2), op=nl.add)
        return _store(_load(g))
    with pytest.raises(HardwareRuleError, match="x is a kernel input; collectives cannot read or "
                                                "write the kernel's input/output tensors"):
        ncc.run(io_in, [(x,)] * 2)

    @nki.jit(target="trn2")
    def io_out(x):
        src = nl.ndarray(x.shape, x.dtype, buffer=nl.hbm)
        nisa.dma_copy(dst=src, src=x)
        out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm, name="out")
        ncc.all_gather(srcs=[src], dsts=[out], replica_group=_world(1), collective_dim=0)
        return out
    with pytest.raises(HardwareRuleError, match="out is returned by the kernel"):
        ncc.run(io_out, [(x,)])
    with pytest.raises(UserKernelError, match="ReplicaGroup takes a list of rank lists"):
        ncc.ReplicaGroup(3)
    with pytest.raises(HardwareRuleError, match=r"rank \d receives 24 elements \[4, 6\] but dst has 8 \[4, 2\]"):
        ncc.run(k_all_reduce_wrong_dst, [(x,), (x,)])


@nki.jit(target="trn2")
def k_all_reduce_wrong_dst(x):
    t = _load(x)
    r = nl.ndarray((x.shape[0], 2), x.dtype, buffer=nl.sbuf)
    ncc.all_reduce(srcs=[t], dsts=[r], replica_group=_world(2), op=nl.add)
    return _store(r)


# ---- timing -------------------------------------------------------------------------------------
def test_collective_cost_follows_ring_formulas_and_link_bandwidth():
    from device.arch import COLLECTIVE_LINKS, get_arch
    from device.collectives import collective_cost_ns
    x = np.zeros((128, 1024), np.float32)              # 512 KiB per rank
    B = x.nbytes
    for n in RANKS:
        prog = k_all_reduce.trace(x, n, nl.add)
        ins = next(i for i in prog.instrs if i.op.name == "collective")
        link = COLLECTIVE_LINKS["trn2"]
        want = 2 * (n - 1) * link.hop_ns + 2 * (n - 1) / n * B / link.rank_bytes_per_ns
        assert collective_cost_ns(ins, get_arch("trn2")) == pytest.approx(want)
    small = k_all_reduce.profile(np.zeros((128, 64), np.float32), 8, nl.add).total_ns
    big = k_all_reduce.profile(x, 8, nl.add).total_ns
    assert big > small
    assert COLLECTIVE_LINKS["trn3"].rank_bytes_per_ns > COLLECTIVE_LINKS["trn2"].rank_bytes_per_ns
