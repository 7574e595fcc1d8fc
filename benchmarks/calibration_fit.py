"""Fitting the timing model's estimate knobs to published anchors, and leave-one-out validation.

The knobs are the ``E`` constants of ``device/arch.py`` that published timings decide (no document
states them). Each anchor is scheduled once at the table's values; its critical path
(``device.critical_path``) says how its total moves with each knob, to first order:

* a DMA transfer on the path whose end the HBM stream rate set moves as ``1 / hbm_share`` (spill
  transfers: ``1 / spill_bytes_per_ns``); one the DMA engines set moves as ``1 / eff(row * scale)``
  (the efficiency curve and its ``dma_curve_scale``);
* a compute instruction on the path moves as its table cost does (re-priced with the knob nudged);
* the launch overhead adds to every total.

So ``log(predicted / published)`` is linear in the log-knobs near the table's values. A fit solves
the (ridge-regularised, bounded) least squares over a set of anchors; leave-one-out fits without
one anchor group (every published number of the same kernel case) and then *re-schedules* the
held-out case at its own fitted knobs, so the held-out error is the model's, not the linear
approximation's.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from device.critical_path import explain
from device.isa.costs import DmaCost, dma_efficiency

# knob -> (lower, upper) bound from the evidence noted in device/arch.py
KNOBS = {
    "hbm_share_bytes_per_ns": (60.0, 272.0),     # below the DMA-table peak 16 x 17 B/ns (D:BW)
    "dve_two_input_passes": (1.0, 2.0),          # CM 2.3: one pass up to ~2N
    "launch_overhead_ns": (0.0, 20000.0),
    "spill_bytes_per_ns": (60.0, 410.0),         # at most the HBM peak of one core
    "dma_curve_scale": (1.0, 8.0),               # the DO curve as drawn, or shifted left
    "static_overhead_cycles": (5.0, 150.0),      # D:A2 "~100"
    "act_latency_cycles": (20.0, 264.0),         # at most the whole PG 264-cycle step
    "engine_latency_cycles": (20.0, 200.0),
    "sem_latency_ns": (10.0, 200.0),             # CM 2.4: undocumented, ~50-100 ns
    "pe_fill_cycles": (64.0, 512.0),
}
_LAT_KNOB = {"PE": "pe_fill_cycles", "ACT": "act_latency_cycles"}
COMPUTE_KNOBS = ("dve_two_input_passes",)
RIDGE = 0.02          # prior weight pulling each log-knob towards the table's value
NUDGE = 1.01


def sensitivities(tl, program, arch) -> dict:
    """d total / d log(knob) in ns for every knob, from the critical path of ``tl`` (divide by
    the total for the relative sensitivity)."""
    cp = explain(tl, program)
    evs = tl.events
    s = dict.fromkeys(KNOBS, 0.0)
    nudged = {k: dataclasses.replace(arch, **{k: getattr(arch, k) * NUDGE}) for k in COMPUTE_KNOBS}
    ln = math.log(NUDGE)
    for step in cp.steps:
        ev = evs[step.event]
        _gap(s, step, ev, evs, arch)
        busy = step.busy_ns
        if busy <= 0:
            continue
        if ev.engine.startswith("DMA"):
            if ev.limit == "hbm":
                s["spill_bytes_per_ns" if ev.spill else "hbm_share_bytes_per_ns"] -= busy
            elif not ev.spill:
                ins = program.instrs[ev.index]
                c = ins.op.cost(ins, arch)
                if isinstance(c, DmaCost):
                    e0 = _eff(arch, c.row_bytes, arch.dma_curve_scale)
                    e1 = _eff(arch, c.row_bytes, arch.dma_curve_scale * NUDGE)
                    s["dma_curve_scale"] -= busy * math.log(e1 / e0) / ln
            continue
        ins = program.instrs[ev.index]
        c0 = ins.op.cost(ins, arch)
        excess = (ev.end - ev.start) - c0            # the static overhead of a dependent issue
        if excess > 1e-9:
            s["static_overhead_cycles"] += min(busy, excess)
        for k, a1 in nudged.items():
            c1 = ins.op.cost(ins, a1)
            if c1 != c0 and c0 > 0:
                s[k] += min(busy, c0) * math.log(c1 / c0) / ln
    s["launch_overhead_ns"] += tl.launch_ns
    return s


def _gap(s, step, ev, evs, arch):
    """Split a data-dependency gap on the path into the producer's pipeline latency and the
    semaphore hand-off (both additive, so d gap / d log knob = the part)."""
    gap = step.gap_ns
    if gap <= 0 or ev.cause != "data" or not 0 <= ev.pred < len(evs):
        return
    pe = evs[ev.pred]
    rest = gap
    if not pe.engine.startswith("DMA"):
        lat = arch.latency_cycles(pe.engine) / arch.clock_ghz(pe.engine)
        part = min(rest, lat)
        s[_LAT_KNOB.get(pe.engine, "engine_latency_cycles")] += part
        rest -= part
    if pe.engine != ev.engine or ev.engine.startswith("DMA"):
        s["sem_latency_ns"] += min(rest, arch.sem_latency_ns)


def _eff(arch, row_bytes, scale):
    return dma_efficiency(dataclasses.replace(arch, dma_curve_scale=scale), row_bytes)


def fit(residuals, sens, arch, keep=None) -> dict:
    """Log-knob steps minimising sum (r_i + s_i . d)^2 + RIDGE |d|^2 over the anchors ``keep``
    (indices; default all), clipped to the evidence bounds. Returns {knob: new value}."""
    names = list(KNOBS)
    idx = range(len(residuals)) if keep is None else keep
    A = np.array([[sens[i][k] for k in names] for i in idx], dtype=float)
    r = np.array([residuals[i] for i in idx], dtype=float)
    lhs = A.T @ A + RIDGE * np.eye(len(names))
    d = np.linalg.solve(lhs, -A.T @ r)
    out = {}
    for k, dk in zip(names, d):
        lo, hi = KNOBS[k]
        out[k] = min(hi, max(lo, getattr(arch, k) * math.exp(float(dk))))
    return out


def variant(arch, knobs: dict):
    """The arch table with ``knobs`` replaced (a calibration variant, same target name)."""
    return dataclasses.replace(arch, **knobs)


def linear_prediction(pred0, sens_i, arch, knobs) -> float:
    """First-order prediction of one anchor at ``knobs`` (used for reporting only)."""
    return pred0 * math.exp(sum(sens_i[k] * math.log(v / getattr(arch, k))
                                for k, v in knobs.items()))


__all__ = ["KNOBS", "fit", "linear_prediction", "sensitivities", "variant"]
