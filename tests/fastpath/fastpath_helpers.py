"""Run one program through the reference executor and the fast path and compare what comes out.

``check(program, inputs)`` asserts: the same exception (type and message), or outputs equal byte
for byte in ``exact`` mode (and in ``fast`` mode when no ``nc_matmul`` runs), and the same
uninitialised-read warnings in the same order.
"""
from __future__ import annotations

import warnings

import numpy as np

from device import executor, fastpath
from device.settings import settings


def _outcome(fn):
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        try:
            outs = fn()
            err = None
        except Exception as e:          # noqa: BLE001 -- compared below, type and message
            outs, err = None, e
    return outs, err, [str(w.message) for w in ws]


def same_bytes(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (what, a.dtype, a.shape, b.dtype, b.shape)
    if a.tobytes() != b.tobytes():
        bad = np.argwhere(np.asarray(a != b) & ~(np.isnan(a.astype(np.float64)) &
                                                  np.isnan(b.astype(np.float64))))[:5]
        raise AssertionError(f"{what}: reference and fast path differ at {bad.tolist()}: "
                             f"{[a[tuple(i)] for i in bad]} vs {[b[tuple(i)] for i in bad]}")


def has_matmul(program) -> bool:
    """Whether an ``nc_matmul`` runs, at the top level or in a loop body (in ``fast`` mode
    each is a PSUM group run in fp32: within the bound of ``device.fastpath.groups``)."""
    return any(i.op.name == "nc_matmul" or any(b.op.name == "nc_matmul"
                                               for b in i.args.get("body", ()) or ())
               for i in program.instrs)


def check(program, inputs, modes=("exact", "fast")):
    """Compare the reference with the fast path; returns the reference outputs."""
    s = settings()
    ref, rerr, rw = _outcome(lambda: executor.run_reference(program, inputs))
    for mode in modes:
        if mode == "fast" and has_matmul(program):
            continue                      # fused groups: checked against the bound separately
        res = _outcome(lambda: fastpath.run(program, inputs, mode=mode, precise=s.precise_fp,
                                            warn_uninit=s.warn_uninit))
        outs, err, ws = res
        if outs is None and err is None:  # the program needs the reference: nothing to compare
            continue
        if rerr is not None:
            assert err is not None and type(err) is type(rerr) and str(err) == str(rerr), (
                f"{mode}: reference raised {rerr!r}, fast path {err!r}")
            continue
        assert err is None, f"{mode}: fast path raised {err!r}; the reference did not"
        outs = outs[0]
        assert len(outs) == len(ref)
        for k, (a, b) in enumerate(zip(ref, outs)):
            same_bytes(a, b, f"{mode} output {k} of {program.name}")
        assert ws == rw, f"{mode}: warnings differ:\n{rw}\nvs\n{ws}"
    if rerr is not None:
        raise rerr
    return ref


def checking_run(original):
    """A stand-in for ``device.executor.run`` that checks every program it is asked to run."""
    def run(program, inputs, memory=None, return_memory=False):
        if memory is None:
            check(program, inputs)
        return original(program, inputs, memory=memory, return_memory=return_memory)
    return run
