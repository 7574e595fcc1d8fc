"""``CrossCoreRaceWarning`` and replicated code: a ``[2]``-grid kernel that does not split some
work by ``nl.program_id`` runs it identically on both cores. A core that reads bytes it has
itself just written, while the other core rewrites them with the same instruction from the same
shared-HBM source, reads the same values whatever the timing -- no race. The nki-library's CSA
tensor-parallel all-reduce is this shape (stage the input into a named shared buffer, run the
collective, copy the result out, all on both cores).

The same line is not enough: when the written values can differ between the cores (a source
that depends on the program id, or a per-core SBUF tile) the read is still reported.
"""
import warnings

import numpy as np

import nki
import nki.collectives as ncc
import nki.isa as nisa
import nki.language as nl
from nki.collectives import ReplicaGroup
from nki.core_races import CrossCoreRaceWarning

A = np.arange(16 * 8, dtype=np.float32).reshape(16, 8)


def _races(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = call()
    return out, [str(w.message) for w in caught if issubclass(w.category, CrossCoreRaceWarning)]


def test_stage_in_and_copy_out_on_both_cores_is_not_a_race():
    def kernel(a):
        """Both cores stage the input into one named buffer and copy it out (no program_id)."""
        stage = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm, name="stage")
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=stage, src=a)
        nisa.dma_copy(dst=out, src=stage)
        return out
    out, races = _races(lambda: nki.jit(kernel, target="trn2")[2](A))
    assert races == []
    np.testing.assert_array_equal(out, A)


def test_collective_replicated_on_both_cores_of_each_rank_is_not_a_race():
    def kernel(x, replica_group):
        src = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm, name="src")
        dst = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm, name="dst")
        out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=src, src=x)
        ncc.all_reduce(dsts=[dst], srcs=[src], op=nl.add, replica_group=replica_group)
        nisa.dma_copy(dst=out, src=dst)
        return out
    parts = [A, 2 * A + 1]
    rg = ReplicaGroup([[0, 1]])
    outs, races = _races(lambda: ncc.run(nki.jit(kernel, target="trn2")[2],
                                         [{"x": p, "replica_group": rg} for p in parts]))
    assert races == []
    for o in outs:
        o = o[0] if isinstance(o, (list, tuple)) else o
        np.testing.assert_array_equal(np.asarray(o), parts[0] + parts[1])


def test_same_line_with_a_per_core_source_is_still_a_race():
    def kernel(a):
        """Both cores run the same store, but of their own rows: the values differ."""
        out = nl.ndarray((8, a.shape[1]), a.dtype, buffer=nl.shared_hbm)
        scratch = nl.ndarray((8, a.shape[1]), a.dtype, buffer=nl.shared_hbm, name="scratch")
        pid = nl.program_id(0)
        nisa.dma_copy(dst=scratch, src=a[pid * 8:(pid + 1) * 8])
        nisa.dma_copy(dst=out, src=scratch)
        return out
    _, races = _races(lambda: nki.jit(kernel, target="trn2")[2](A))
    assert len(races) == 1
    assert "'scratch'" in races[0] and "reads" in races[0], races[0]


def test_same_line_from_a_per_core_sbuf_tile_is_still_a_race():
    def kernel(a):
        """The stored tile lives in each core's own SBUF (here: the core's own rows)."""
        out = nl.ndarray((8, a.shape[1]), a.dtype, buffer=nl.shared_hbm)
        scratch = nl.ndarray((8, a.shape[1]), a.dtype, buffer=nl.shared_hbm, name="scratch")
        pid = nl.program_id(0)
        t = nl.ndarray((8, a.shape[1]), a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a[pid * 8:(pid + 1) * 8])
        nisa.dma_copy(dst=scratch, src=t)
        nisa.dma_copy(dst=out, src=scratch)
        return out
    _, races = _races(lambda: nki.jit(kernel, target="trn2")[2](A))
    assert len(races) == 1
    assert "'scratch'" in races[0] and "reads" in races[0], races[0]
