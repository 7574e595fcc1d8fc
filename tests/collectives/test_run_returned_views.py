"""nki.collectives.run returns each rank's outputs shaped like the views the kernel returned,
as a one-rank call does (ring_attention_fwd returns ``o.reshape((b, h, s, d))``)."""
import numpy as np
import pytest

import nki
import nki.collectives as ncc
import nki.isa as nisa
import nki.language as nl


@nki.jit
def gather_then_reshape(x):
    n = 4
    src = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm, name="src")
    dst = nl.ndarray((n * x.shape[0], x.shape[1]), dtype=x.dtype, buffer=nl.shared_hbm, name="dst")
    out = nl.ndarray((n * x.shape[0], x.shape[1]), dtype=x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=src, src=x)
    ncc.all_gather(srcs=[src], dsts=[dst], replica_group=ncc.ReplicaGroup([[0, 1, 2, 3]]),
                   collective_dim=0)
    nisa.dma_copy(dst=out, src=dst)
    return out.reshape((n, x.shape[0], x.shape[1])), out[2:6, :]


def test_run_shapes_outputs_like_the_returned_views():
    xs = [np.arange(24, dtype=np.float32).reshape(4, 6) + 100 * r for r in range(4)]
    whole = np.concatenate(xs, axis=0)
    outs = ncc.run(gather_then_reshape, [(x,) for x in xs])
    for r in range(4):
        a, b = outs[r]
        assert a.shape == (4, 4, 6)
        np.testing.assert_array_equal(a, whole.reshape(4, 4, 6))
        assert b.shape == (4, 6)
        np.testing.assert_array_equal(b, whole[2:6])


@pytest.mark.parametrize("lnc", [1, 2])
def test_run_and_single_rank_call_agree_on_shapes(lnc):
    @nki.jit
    def k(x):
        o = nl.ndarray((4, 8), dtype=x.dtype, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=o, src=x)
        return o.reshape((2, 2, 8))
    x = np.arange(32, dtype=np.float32).reshape(4, 8)
    one = k(x)
    kern = nki.jit(k.fn)[lnc] if lnc > 1 else k
    for got in ncc.run(kern, [(x,), (x,)]):
        assert got.shape == one.shape == (2, 2, 8)
        np.testing.assert_array_equal(got, x.reshape(2, 2, 8))
