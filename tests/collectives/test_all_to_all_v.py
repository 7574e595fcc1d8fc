"""``nki.collectives.all_to_all_v`` placement and metadata write-back, against NumPy.

Without ``has_rdispls`` the destination is split in n equal slots and the piece from the j-th
rank of the rank-list lands at the start of slot j (nki-library's a2av kernels read source j at
row j*T of an (EP*T, H) buffer). With ``recv_counts_known=False`` the counts received are written
into row 2 of the metadata, which kernels copy out after the collective."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nki
import nki.collectives as ncc
import nki.isa as nisa
import nki.language as nl
from device.errors import HardwareRuleError

T, H = 4, 3          # rows per slot, elements per row


def _hbm_copy(x, dtype=None):
    t = nl.ndarray(x.shape, dtype or x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=t, src=x)
    return t


@nki.jit(target="trn2")
def k_a2av_rows(x, meta, n, known, dst_rows):
    """x: (n*T, H) rows for peer j at rows [j*T, ...); meta: (3, n) uint32 in elements."""
    send = _hbm_copy(x)
    m = _hbm_copy(meta)
    recv = nl.ndarray((dst_rows, x.shape[1]), x.dtype, buffer=nl.shared_hbm)
    zero = nl.ndarray((dst_rows, x.shape[1]), x.dtype, buffer=nl.sbuf)
    nisa.memset(dst=zero, value=0.0)
    nisa.dma_copy(dst=recv, src=zero)
    ncc.all_to_all_v(srcs=[send], dsts=[recv], replica_group=ncc.ReplicaGroup([list(range(n))]),
                     metadata_tensor=m, recv_counts_known=known, has_rdispls=False)
    return _hbm_copy(recv), _hbm_copy(m)


def _run(counts, known=False, dst_rows=None, row2=None):
    """counts[r][j] = rows rank r sends to peer j (taken from rows [j*T, j*T + c)); row 2 of
    the metadata is 7s (the runtime overwrites it) or, when ``known``, the true recv counts."""
    n = len(counts)
    rng = np.random.default_rng(n)
    xs = [rng.integers(-9, 9, size=(n * T, H)).astype(np.float32) for _ in range(n)]
    if row2 is None:
        row2 = [[counts[j][r] * H for j in range(n)] if known else [7] * n for r in range(n)]
    metas = [np.array([[c * H for c in counts[r]], [j * T * H for j in range(n)], row2[r]],
                      np.uint32) for r in range(n)]
    outs = ncc.run(k_a2av_rows, [(xs[r], metas[r], n, known, dst_rows or n * T)
                                 for r in range(n)])
    return xs, metas, outs


def _expected(xs, counts, r):
    n = len(counts)
    want = np.zeros((n * T, H), np.float32)
    for j in range(n):
        c = counts[j][r]
        want[j * T:j * T + c] = xs[j][r * T:r * T + c]
    return want


@settings(max_examples=4, deadline=None)
@given(st.integers(2, 4).flatmap(
    lambda n: st.lists(st.lists(st.integers(0, T), min_size=n, max_size=n), min_size=n,
                       max_size=n)))
def test_pieces_land_in_equal_slots_and_row2_gets_received_counts(counts):
    xs, metas, outs = _run(counts)
    for r, (recv, meta) in enumerate(outs):
        np.testing.assert_array_equal(recv, _expected(xs, counts, r))
        np.testing.assert_array_equal(meta[2], [counts[j][r] * H for j in range(len(counts))])
        np.testing.assert_array_equal(meta[:2], metas[r][:2])


def test_recv_counts_known_leaves_the_metadata_alone():
    counts = [[1, 2], [3, 0]]
    xs, metas, outs = _run(counts, known=True)
    for r, (recv, meta) in enumerate(outs):
        np.testing.assert_array_equal(recv, _expected(xs, counts, r))
        np.testing.assert_array_equal(meta, metas[r])


def test_wrong_known_recv_counts_are_refused():
    with pytest.raises(HardwareRuleError, match=r"all_to_all_v: recv_counts_known=True but rank "
                       r"0's recv_counts\[1\] is 9 while rank 1 sends it 6 elements"):
        _run([[1, 1], [2, 1]], known=True, row2=[[3, 9], [3, 3]])


def test_a_send_past_the_end_of_src_is_refused():
    with pytest.raises(HardwareRuleError, match=r"all_to_all_v: rank 0 sends src\[12:27\] "
                       r"\(send_displ 12, send_count 15\) but its src has 24 elements"):
        _run([[1, 5], [1, 1]])


def test_a_piece_larger_than_its_slot_is_refused():
    with pytest.raises(HardwareRuleError, match=r"rank 1 sends 15 elements to rank 0, more than "
                       r"its slot of 12 \(dst 24 elements / 2 ranks\)"):
        _run([[1, 1], [5, 1]], dst_rows=2 * T)


def test_dst_that_does_not_split_in_equal_slots_is_refused():
    with pytest.raises(HardwareRuleError, match=r"without has_rdispls dst is split in 2 equal "
                       r"slots, one per rank, but dst has 15 elements"):
        _run([[1, 1], [1, 1]], dst_rows=5)


@nki.jit(target="trn2")
def k_a2av_bad_meta(x, meta):
    send = _hbm_copy(x)
    m = _hbm_copy(meta)
    recv = _hbm_copy(x)
    ncc.all_to_all_v(srcs=[send], dsts=[recv], replica_group=ncc.ReplicaGroup([[0, 1]]),
                     metadata_tensor=m, has_rdispls=True)
    return _hbm_copy(recv)


def test_metadata_without_recv_displs_row_is_refused_with_has_rdispls():
    x = np.zeros((2 * T, H), np.float32)
    meta = np.zeros((3, 2), np.uint32)
    with pytest.raises(HardwareRuleError, match=r"metadata_tensor has 6 values; it must be 4 "
                       r"rows x 2 ranks .*has_rdispls=True reads row 3"):
        ncc.run(k_a2av_bad_meta, [(x, meta), (x, meta)])
