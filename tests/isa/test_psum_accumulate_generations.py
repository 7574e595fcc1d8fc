"""``accumulate=None`` after a non-matmul write to PSUM, per generation.

nc_matmul docs: None "auto-detect[s] based on whether this PSUM location was previously written";
on NeuronCore-v2/v3 accumulating onto PSUM a non-matmul instruction wrote is undefined. So on v4
(trn3) a memset or an in-place rescale of an accumulator keeps it accumulating (the nki-library's
attention_mxfp8_tkg rescales its PSUM output accumulator between chunks and relies on this),
while on v2/v3 the emulator lets such a write start a new group. Both executors must agree
(checked through tests/fastpath/fastpath_helpers.checking_run).
"""
import sys
from pathlib import Path

import numpy as np
import pytest

import nki.isa as nisa
import nki.language as nl
from device import executor
from isa_helpers import load, rand, run, store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fastpath"))
from fastpath_helpers import checking_run  # noqa: E402


@pytest.fixture
def both_executors():
    original = executor.run
    executor.run = checking_run(original)
    yield
    executor.run = original


def _rescale_between(a, b, x, y):
    """psum = a.T @ x; psum *= 2 (Vector Engine, in place); psum (accumulate=None) b.T @ y."""
    def k(a, b, x, y):
        p = nl.ndarray((a.shape[1], x.shape[1]), nl.float32, buffer=nl.psum)
        nisa.nc_matmul(dst=p, stationary=load(a), moving=load(x))
        nisa.tensor_scalar(dst=p, data=p, op0=nl.multiply, operand0=2.0)
        nisa.nc_matmul(dst=p, stationary=load(b), moving=load(y))
        o = nl.ndarray(p.shape, nl.float32, buffer=nl.sbuf)
        nisa.tensor_copy(dst=o, src=p)
        return store(o)
    return k


@pytest.mark.parametrize("target, keeps", [("trn3", True), ("trn2", False)])
def test_rescaled_accumulator(both_executors, target, keeps):
    a, b = rand((16, 8), "float32", 1), rand((16, 8), "float32", 2)
    x, y = rand((16, 12), "float32", 3), rand((16, 12), "float32", 4)
    got = np.asarray(run(_rescale_between(a, b, x, y), a, b, x, y, target=target), np.float64)
    first = a.astype(np.float64).T @ x
    second = b.astype(np.float64).T @ y
    want = 2 * first + second if keeps else second
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("target, keeps", [("trn3", True), ("trn2", False)])
def test_memset_then_matmul(both_executors, target, keeps):
    a, x = rand((16, 8), "float32", 5), rand((16, 12), "float32", 6)

    def k(a, x):
        p = nl.ndarray((8, 12), nl.float32, buffer=nl.psum)
        nisa.memset(dst=p, value=3.0)
        nisa.nc_matmul(dst=p, stationary=load(a), moving=load(x))
        o = nl.ndarray(p.shape, nl.float32, buffer=nl.sbuf)
        nisa.tensor_copy(dst=o, src=p)
        return store(o)
    got = np.asarray(run(k, a, x, target=target), np.float64)
    prod = a.astype(np.float64).T @ x
    np.testing.assert_allclose(got, prod + 3.0 if keeps else prod, rtol=1e-5, atol=1e-4)


def test_explicit_accumulate_false_still_overwrites_on_v4(both_executors):
    a, x = rand((16, 8), "float32", 7), rand((16, 12), "float32", 8)

    def k(a, x):
        p = nl.ndarray((8, 12), nl.float32, buffer=nl.psum)
        nisa.memset(dst=p, value=3.0)
        nisa.nc_matmul(dst=p, stationary=load(a), moving=load(x), accumulate=False)
        o = nl.ndarray(p.shape, nl.float32, buffer=nl.sbuf)
        nisa.tensor_copy(dst=o, src=p)
        return store(o)
    got = np.asarray(run(k, a, x, target="trn3"), np.float64)
    np.testing.assert_allclose(got, a.astype(np.float64).T @ x, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("target, keeps", [("trn3", True), ("trn2", False)])
def test_ranks_follow_the_same_rule(target, keeps):
    """nki.collectives.run (device.collectives.run_ranks) prices nothing differently: each rank's
    PSUM follows its target's rule, as a one-rank call does."""
    import nki
    import nki.collectives as ncc
    a, b = rand((16, 8), "float32", 1), rand((16, 8), "float32", 2)
    x, y = rand((16, 12), "float32", 3), rand((16, 12), "float32", 4)
    body = _rescale_between(a, b, x, y)
    kern = nki.jit(body, platform_target=target)
    outs = ncc.run(kern, [(a, b, x, y), (a, b, x, y)], target=target)
    first = a.astype(np.float64).T @ x
    second = b.astype(np.float64).T @ y
    want = 2 * first + second if keeps else second
    for got in outs:
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-5, atol=1e-4)
