"""A ring all-gather fused with a matmul (the idea of the nki-samples ring tutorial, our code).

Rank r holds a row block X_r (m x K) of the activations and a column block W_r (K x n_local) of
the weights. Every rank needs Y[:, r-block] = X @ W_r for the full X, so the X blocks travel round
the ring: at step s a rank multiplies the block it currently holds (which came from rank
``current_processing_rank_id(s)``) and, at the same time, forwards that block to its successor
with ``collective_permute_implicit``. Two HBM buffers alternate so the incoming block never
overwrites the one being multiplied. The product lands in slot ``src`` of the output through a
run-time ``scalar_offset`` (the rank id is a register, not a Python int).
"""
import numpy as np
import pytest

import nki
import nki.collectives as ncc
import nki.isa as nisa
import nki.language as nl


@nki.jit(target="trn2")
def ring_allgather_matmul(x_block, w_block, ring):
    m, k = x_block.shape
    n_local = w_block.shape[1]
    ranks = len(ring.groups[0])
    kt = nl.tile_size.pmax
    slots = nl.ndarray((ranks, m, n_local), x_block.dtype, buffer=nl.shared_hbm)
    bufs = [nl.ndarray((m, k), x_block.dtype, buffer=nl.hbm, name=f"ring{j}") for j in (0, 1)]
    nisa.dma_copy(dst=bufs[0], src=x_block)
    w_tiles = []                                  # the weights stay put: load them once
    for j in range(k // kt):
        w = nl.ndarray((kt, n_local), w_block.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=w, src=w_block[j * kt:(j + 1) * kt, :])
        w_tiles.append(w)
    for step in range(ranks):
        held, incoming = bufs[step % 2], bufs[(step + 1) % 2]
        src = ncc.collective_permute_implicit_current_processing_rank_id(step, ring)
        if step + 1 < ranks:                      # forward what we hold while we multiply it
            ncc.collective_permute_implicit([[held]], [[incoming]], ring)
        acc = nl.ndarray((m, n_local), nl.float32, buffer=nl.psum)
        for j in range(k // kt):
            xt = nl.ndarray((kt, m), x_block.dtype, buffer=nl.sbuf)
            nisa.dma_transpose(dst=xt, src=held[:, j * kt:(j + 1) * kt])
            nisa.nc_matmul(dst=acc, stationary=xt, moving=w_tiles[j])
        y = nl.ndarray((m, n_local), x_block.dtype, buffer=nl.sbuf)
        nisa.tensor_copy(dst=y, src=acc)
        nisa.dma_copy(dst=slots.ap([[n_local, m], [1, n_local]], offset=0, scalar_offset=src,
                                   indirect_dim=0), src=y)
    return slots


@pytest.mark.parametrize("ranks", [2, 4, 8])
def test_ring_allgather_matmul_matches_numpy(ranks):
    rng = np.random.default_rng(ranks)
    m, k, n_local = 16, 256, 32
    x = rng.standard_normal((ranks * m, k)).astype(np.float32)
    w = rng.standard_normal((k, ranks * n_local)).astype(np.float32)
    ring = ncc.ReplicaGroup([list(range(ranks))])
    args = [(x[r * m:(r + 1) * m], w[:, r * n_local:(r + 1) * n_local], ring)
            for r in range(ranks)]
    outs = ncc.run(ring_allgather_matmul, args)
    full = x.astype(np.float64) @ w.astype(np.float64)
    for r, slots in enumerate(outs):
        got = slots.reshape(ranks * m, n_local)            # slot s = X_s @ W_r
        np.testing.assert_allclose(got, full[:, r * n_local:(r + 1) * n_local], rtol=1e-4,
                                   atol=1e-3)


def test_the_ring_overlaps_transfer_and_matmul_in_the_timing_model():
    """The permute runs on the collective queue while TensorE multiplies the held block."""
    from device.timing import schedule
    ranks, m, k, n_local = 8, 128, 512, 512
    ring = ncc.ReplicaGroup([list(range(ranks))])
    prog = ring_allgather_matmul.trace(np.zeros((m, k), np.float32),
                                       np.zeros((k, n_local), np.float32), ring)
    events = {e.index: e for e in schedule(prog).events}
    perm = [i for i in prog.instrs if i.op.name == "collective"]
    mm = [i for i in prog.instrs if i.op.name == "nc_matmul"]
    assert len(perm) == ranks - 1 and len(mm) == ranks * (k // 128)
    per_step = k // 128
    for s in range(1, ranks - 1):                    # step s forwards while step s multiplies
        p = events[perm[s].index]
        step_mm = [events[i.index] for i in mm[s * per_step:(s + 1) * per_step]]
        assert p.start < max(e.end for e in step_mm) and min(e.start for e in step_mm) < p.end
