"""Evaluation jobs: small picklable work items for any ``concurrent.futures.Executor``.

A job is a pickled standalone group (its graph, a few KB) plus schedule keys; the worker
re-lowers and prices in its own process (``import lowering`` gives it every rule) and returns
numbers only. The driver alone writes the database. A job that fails (a worker crash, a lost
process) is retried once in the driver's own process, so a crash costs its chunk, never the run.

    >>> price_chunk(*job_args(None, [], "inf2", "fast"))
    []
"""
from __future__ import annotations

import pickle
from concurrent.futures import Executor

from device.arch import get_arch

from ..lower.schedule import from_key
from .pricer import price_fast, price_full, price_truncated

CHUNK = 16


def job_args(sa, schedule_keys, target, how):
    return (pickle.dumps(sa) if sa is not None else b"", list(schedule_keys), target, how)


def price_chunk(sa_bytes, schedule_keys, target, how):
    """Worker entry point: [(schedule_key, ns, busy, how)] for each key (``how`` asked: fast|
    full|confirm; the answer's ``how`` says which pricer answered: 'fast', 'full' or
    'truncated')."""
    if not schedule_keys:
        return []
    sa = pickle.loads(sa_bytes)
    arch = get_arch(target)
    fn = {"fast": price_fast, "full": price_full, "confirm": price_confirm}[how]
    out = []
    for k in schedule_keys:
        est = fn(sa, from_key(k), arch)
        out.append((k, est.total_ns, est.busy, est.how))
    return out


def price_confirm(sa, schedule, arch):
    """The full model's price, extrapolated from truncated problems when the group is big."""
    est = price_truncated(sa, schedule, arch)
    return est if est is not None else price_full(sa, schedule, arch)


def run_jobs(sa, schedule_keys, target, how, executor: Executor | None, progress=None):
    """Price ``schedule_keys`` (in chunks through ``executor``, or here);
    {key: (ns, busy, how)}."""
    chunks = [schedule_keys[i:i + CHUNK] for i in range(0, len(schedule_keys), CHUNK)]
    results = {}
    if executor is None or len(chunks) <= 1:
        for ch in chunks:
            for k, ns, busy, got in price_chunk(*job_args(sa, ch, target, how)):
                results[k] = (ns, busy, got)
            if progress:
                progress(len(ch))
        return results
    payload = pickle.dumps(sa)
    futures = [(ch, executor.submit(price_chunk, payload, ch, target, how)) for ch in chunks]
    for ch, fut in futures:
        try:
            rows = fut.result()
        except Exception:            # noqa: BLE001 - a lost worker: redo its chunk here
            rows = price_chunk(payload, ch, target, how)
        for k, ns, busy, got in rows:
            results[k] = (ns, busy, got)
        if progress:
            progress(len(ch))
    return results
