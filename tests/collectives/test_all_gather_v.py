"""``nki.collectives.all_gather_v`` on 2, 4 and 8 ranks against NumPy, and its errors.

The NKI docs: every rank broadcasts ONE chunk ``src[send_displs[0] : + send_counts[0]]`` (rows
0/1 of its metadata; only the first column is read); dst is split in n equal slots and the
chunk of the j-th rank of the rank-list lands at the start of slot j, or at recv_displs[j] with
``has_rdispls``; with ``recv_counts_known=False`` row 2 receives the counts."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nki
import nki.collectives as ncc
import nki.isa as nisa
import nki.language as nl
from device.errors import HardwareRuleError, UserKernelError

S = 6                 # elements a rank's src holds; dst slots are S wide unless told otherwise


def _hbm(x):
    t = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=t, src=x)
    return t


@nki.jit(target="trn2")
def k_agv(x, meta, n, slot, known, rdispls):
    """x: (1, S) src; meta: (rows, n) uint32. dst: (1, n * slot), filled with -1 first."""
    src = _hbm(x)
    m = _hbm(meta)
    fill = nl.ndarray((1, n * slot), x.dtype, buffer=nl.sbuf)
    nisa.memset(dst=fill, value=-1.0)
    dst = _hbm(fill)
    ncc.all_gather_v(srcs=[src], dsts=[dst], replica_group=ncc.ReplicaGroup([list(range(n))]),
                     metadata_tensor=m, recv_counts_known=known, has_rdispls=rdispls)
    return _hbm(dst), _hbm(m)


def _gather(xs, counts, displs, slot, known=False, rdispls=None, noise=0, row2=None):
    """Run on len(xs) ranks; counts/displs[r] = rank r's chunk; rdispls[r][j] = where rank r
    puts rank j's chunk. ``noise`` fills the unread columns 1.. of rows 0/1."""
    n = len(xs)
    rows = 4 if rdispls is not None else 3
    metas = []
    for r in range(n):
        m = np.zeros((rows, n), np.uint32)
        m[0], m[1] = counts[r] + noise, displs[r] + noise
        m[0, 0], m[1, 0] = counts[r], displs[r]
        m[2] = row2[r] if row2 is not None else ([counts[j] for j in range(n)] if known else 5)
        if rdispls is not None:
            m[3] = rdispls[r]
        metas.append(m)
    outs = ncc.run(k_agv, [(xs[r], metas[r], n, slot, known, rdispls is not None)
                           for r in range(n)])
    return metas, outs


def _want(xs, counts, displs, slot, at=None):
    n = len(xs)
    want = np.full(n * slot, -1.0, np.float32)
    for j in range(n):
        c, d = counts[j], displs[j]
        start = j * slot if at is None else at[j]
        want[start:start + c] = xs[j][0, d:d + c]
    return want


def _shards(n, seed=0):
    rng = np.random.default_rng(seed + n)
    return [rng.integers(-9, 9, size=(1, S)).astype(np.float32) for _ in range(n)]


@pytest.mark.parametrize("n", [2, 4, 8])
def test_each_chunk_lands_in_its_senders_slot_and_row2_gets_the_counts(n):
    xs = _shards(n)
    counts = [(r * 5) % (S + 1) for r in range(n)]             # includes 0 and S
    displs = [(S - c) // 2 for c in counts]
    metas, outs = _gather(xs, counts, displs, S, noise=3)      # columns 1.. are never read
    for r, (dst, meta) in enumerate(outs):
        np.testing.assert_array_equal(dst.reshape(-1), _want(xs, counts, displs, S))
        np.testing.assert_array_equal(meta[2], counts)
        np.testing.assert_array_equal(meta[:2], metas[r][:2])


@settings(max_examples=6, deadline=None)
@given(st.integers(2, 4).flatmap(lambda n: st.lists(
    st.tuples(st.integers(0, S), st.integers(0, S)), min_size=n, max_size=n)))
def test_run_time_counts_and_displacements(chunks):
    n = len(chunks)
    counts = [c for c, _ in chunks]
    displs = [min(d, S - c) for c, d in chunks]
    xs = _shards(n, seed=sum(counts))
    _, outs = _gather(xs, counts, displs, S + 1)               # slots wider than any chunk
    for dst, meta in outs:
        np.testing.assert_array_equal(dst.reshape(-1), _want(xs, counts, displs, S + 1))
        np.testing.assert_array_equal(meta[2], counts)


@pytest.mark.parametrize("n", [2, 4])
def test_recv_displs_place_the_chunks_packed(n):
    xs = _shards(n, seed=3)
    counts = [1 + r for r in range(n)]
    displs = [0] * n
    packed = list(np.cumsum([0] + counts[:-1]))                # rank j's chunk right after j-1
    _, outs = _gather(xs, counts, displs, S, known=True, rdispls=[packed] * n)
    for dst, meta in outs:
        np.testing.assert_array_equal(dst.reshape(-1), _want(xs, counts, displs, S, at=packed))
        np.testing.assert_array_equal(meta[2], counts)         # known: left as given


def test_a_chunk_larger_than_its_slot_is_refused():
    xs = _shards(2)
    with pytest.raises(HardwareRuleError, match=r"all_gather_v: rank 1 sends 5 elements to rank "
                       r"[01], more than its slot of 4 \(dst 8 elements / 2 ranks\)"):
        _gather(xs, [2, 5], [0, 0], 4)


def test_a_chunk_past_the_end_of_src_is_refused():
    xs = _shards(2)
    with pytest.raises(HardwareRuleError, match=r"all_gather_v: rank 0 sends src\[4:7\] "
                       r"\(send_displ 4, send_count 3\) but its src has 6 elements"):
        _gather(xs, [3, 1], [4, 0], S)


def test_wrong_known_recv_counts_are_refused():
    xs = _shards(2)
    with pytest.raises(HardwareRuleError, match=r"all_gather_v: recv_counts_known=True but rank "
                       r"0's recv_counts\[1\] is 4 while rank 1 sends it 2 elements"):
        _gather(xs, [1, 2], [0, 0], S, known=True, row2=[[1, 4], [1, 2]])


def test_recv_displs_need_a_fourth_metadata_row():
    xs = _shards(2)
    with pytest.raises(HardwareRuleError, match=r"all_gather_v: rank [01]'s metadata_tensor has 6 "
                       r"values; it must be 4 rows x 2 ranks .*has_rdispls=True reads row 3"):
        ncc.run(k_agv, [(x, np.zeros((3, 2), np.uint32), 2, S, False, True) for x in xs])


@nki.jit(target="trn2")
def k_agv_sbuf(x, meta):
    src = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=src, src=x)
    dst = nl.ndarray((1, 2 * x.shape[1]), x.dtype, buffer=nl.sbuf)
    ncc.all_gather_v(srcs=[src], dsts=[dst], replica_group=ncc.ReplicaGroup([[0, 1]]),
                     metadata_tensor=_hbm(meta))
    return _hbm(dst)


def test_sbuf_buffers_are_refused():
    xs = _shards(2)
    with pytest.raises(HardwareRuleError, match=r"all_gather_v: src \S+ is in sbuf; the "
                       r"variable-size collectives move flat element buffers in HBM"):
        ncc.run(k_agv_sbuf, [(x, np.zeros((3, 2), np.uint32)) for x in xs])


@nki.jit(target="trn2")
def k_agv_two(x, meta):
    a, b = _hbm(x), _hbm(x)
    ncc.all_gather_v(srcs=[a, b], dsts=[_hbm(x), _hbm(x)],
                     replica_group=ncc.ReplicaGroup([[0, 1]]), metadata_tensor=_hbm(meta))
    return _hbm(a)


def test_more_than_one_tensor_is_refused():
    xs = _shards(2)
    with pytest.raises(UserKernelError, match=r"all_gather_v: takes exactly one src and one dst "
                       r"tensor, got 2 and 2"):
        ncc.run(k_agv_two, [(x, np.zeros((3, 2), np.uint32)) for x in xs])


def test_float_metadata_is_refused():
    xs = _shards(2)
    with pytest.raises(HardwareRuleError, match=r"all_gather_v: metadata_tensor \S+ has dtype "
                       r"float32; counts and displacements are uint32 elements"):
        ncc.run(k_agv, [(x, np.zeros((3, 2), np.float32), 2, S, False, False) for x in xs])
