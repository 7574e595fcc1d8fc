"""The variable-size collectives and unwritten memory: only the element ranges the metadata sends
are checked for uninitialised reads (a send buffer is usually filled only up to its counts), and
only what arrives is marked written in dst (slots nobody filled still warn when read)."""
import warnings

import numpy as np
import pytest

import nki
import nki.collectives as ncc
import nki.isa as nisa
import nki.language as nl
from device.errors import HardwareRuleError, UninitializedReadWarning

from source_errors import line_of

S = 8                # send buffer elements per rank; dst = 2 slots of S


def _hbm(x):
    t = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=t, src=x)
    return t


@nki.jit(target="trn2")
def k_partial(x, meta, filled):
    """Only the first ``filled`` elements of the send buffer are written; dst is not pre-filled."""
    send = nl.ndarray((1, S), x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=send[:, 0:filled], src=x[:, 0:filled])
    recv = nl.ndarray((1, 2 * S), x.dtype, buffer=nl.shared_hbm)
    ncc.all_to_all_v(srcs=[send], dsts=[recv], replica_group=ncc.ReplicaGroup([[0, 1]]),  # a2av
                     metadata_tensor=_hbm(meta))
    out = nl.ndarray((1, 2 * S), x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=recv)                                                      # copy
    return out


def _run(counts, filled):
    """counts[r] = (to rank 0, to rank 1) taken from src[0:c0] and src[c0:c0+c1]."""
    xs = [np.arange(S, dtype=np.float32)[None] + 10 * r for r in range(2)]
    metas = [np.array([[c0, c1], [0, c0], [0, 0]], np.uint32) for c0, c1 in counts]
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        outs = ncc.run(k_partial, [(xs[r], metas[r], filled) for r in range(2)])
    return xs, outs, [w for w in got if issubclass(w.category, UninitializedReadWarning)]


def test_sending_only_the_written_part_does_not_warn_and_arrivals_are_exact():
    xs, outs, warned = _run([(2, 3), (1, 4)], filled=5)
    for r, out in enumerate(outs):
        for j, (c0, c1) in enumerate([(2, 3), (1, 4)]):
            lo, c = (0, c0) if r == 0 else (c0, c1)
            np.testing.assert_array_equal(out[0, j * S:j * S + c], xs[j][0, lo:lo + c])
    # nothing warns about the send buffers; the final copy reads the unfilled dst slots
    lines = {w.lineno for w in warned}
    assert line_of(k_partial, "# copy")[1] in lines and line_of(k_partial, "# a2av")[1] not in lines
    msgs = [str(w.message) for w in warned if w.lineno == line_of(k_partial, "# copy")[1]]
    assert any("read of 13 uninitialized element(s)" in m for m in msgs)    # rank 0: 16 - (2 + 1)
    assert any("read of 9 uninitialized element(s)" in m for m in msgs)     # rank 1: 16 - (3 + 4)


def test_sending_unwritten_elements_warns_at_the_collective():
    _, _, warned = _run([(2, 3), (1, 4)], filled=3)
    at = [str(w.message) for w in warned if w.lineno == line_of(k_partial, "# a2av")[1]]
    assert at and any("read of 2 uninitialized element(s)" in m for m in at)


@nki.jit(target="trn2")
def k_meta_rows_01(x, meta01, known):
    """The metadata's row 2 is never written (as nki-library's build_all_to_all_v_metadata)."""
    send = _hbm(x)
    m = nl.ndarray((3, 2), nl.uint32, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=m[0:2, :], src=meta01)
    z = nl.ndarray((1, 2 * S), x.dtype, buffer=nl.sbuf)
    nisa.memset(dst=z, value=0.0)
    recv = _hbm(z)
    ncc.all_to_all_v(srcs=[send], dsts=[recv], replica_group=ncc.ReplicaGroup([[0, 1]]),  # a2av
                     metadata_tensor=m, recv_counts_known=known)
    return _hbm(recv), _hbm(m)


@pytest.mark.parametrize("known", [False, True])
def test_unwritten_recv_counts_row_warns_only_when_it_is_read(known):
    x = np.arange(S, dtype=np.float32)[None]
    meta01 = np.array([[3, 3], [0, S // 2]], np.uint32)     # 3: not the int fill value 4
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        try:
            outs = ncc.run(k_meta_rows_01, [(x, meta01, known), (x, meta01, known)])
        except HardwareRuleError as e:   # row 2 holds the emulator's fill, not the counts sent
            assert "recv_counts_known=True but rank" in str(e)
            outs = None
    at = [w for w in got if issubclass(w.category, UninitializedReadWarning)
          and w.lineno == line_of(k_meta_rows_01, "# a2av")[1]]
    if known:
        assert at and outs is None
    else:
        assert not at
        for _, meta in outs:
            np.testing.assert_array_equal(meta[2], [3, 3])
