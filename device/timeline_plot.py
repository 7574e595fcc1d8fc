"""The profile timeline as a PNG: one row per engine and DMA queue, coloured by instruction kind.

Rows run TensorE, ScalarE, VectorE, GpSimd, Sync, then the DMA queues in numeric order (DMA2
before DMA10), one group per NeuronCore of an LNC=2 program. Each instruction is a bar with a
thin white edge, so back-to-back instructions on one queue stay visible as separate bars; the
colour says the instruction kind (legend: the kinds that take the most time, the rest grouped as
"other"); compiler spills are hatched. The fixed launch overhead that the report's total includes
is drawn as its own row after the last instruction, so the picture spans exactly the total.

    >>> _row_key("DMA10") > _row_key("DMA2") and _row_key("DMA0") > _row_key("SP")
    True
"""
from __future__ import annotations

import os

from .timing import ENGINES

_LABEL = {"PE": "TensorE (PE)", "ACT": "ScalarE (ACT)", "DVE": "VectorE (DVE)",
          "POOL": "GpSimd (POOL)", "SP": "Sync (SP)"}
_MAX_KINDS = 11            # legend entries before the rest are grouped as "other"


def _row_key(engine: str):
    if engine in ENGINES:
        return (0, list(ENGINES).index(engine), "")
    if engine.startswith("DMA") and engine[3:].isdigit():
        return (1, int(engine[3:]), "")
    return (2, 0, engine)


def _kind(report, ev) -> str:
    if ev.spill:
        return f"spill {ev.spill}"
    return report.program.instrs[ev.index].op.name


def save_png(report, path, max_events: int = 200000) -> str:
    """Render ``report``'s timeline (a ``device.profile.Report``) to ``path``. Needs matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError:
        raise ImportError("Report.save_png needs matplotlib: pip install matplotlib (or "
                          "pip install 'neuron-emu[plot]'; or use save_trace and open the JSON "
                          "in Perfetto)") from None
    events = report.timeline.events[:max_events]
    rows: dict = {}
    busy: dict = {}
    kinds: dict = {}
    for ev in events:
        key = (ev.core, ev.engine)
        start, dur = ev.start / 1000.0, max(ev.end - ev.start, 1e-4) / 1000.0
        kind = _kind(report, ev)
        rows.setdefault(key, []).append((start, dur, kind))
        busy[key] = busy.get(key, 0.0) + dur
        kinds[kind] = kinds.get(kind, 0.0) + dur
    order = sorted(rows, key=lambda k: (k[0],) + _row_key(k[1]))
    multi = len({c for c, _ in order}) > 1
    top = [k for k, _ in sorted(kinds.items(), key=lambda kv: -kv[1])][:_MAX_KINDS]
    cmap = plt.get_cmap("tab20")
    colour = {k: cmap(i % 20) for i, k in enumerate(top)}
    other = (0.6, 0.6, 0.6, 1.0)
    total_us = report.total_ns / 1000.0
    launch_us = report.launch_overhead_ns / 1000.0
    n_rows = len(order) + (1 if launch_us > 0 else 0)
    fig, ax = plt.subplots(figsize=(13, 0.42 * n_rows + 2.2))
    labels = []
    for y, key in enumerate(order):
        bars = rows[key]
        by_kind: dict = {}
        for start, dur, kind in bars:
            by_kind.setdefault(kind, []).append((start, dur))
        for kind, spans in by_kind.items():
            ax.broken_barh(spans, (y - 0.38, 0.76), facecolors=colour.get(kind, other),
                           edgecolors="white", linewidth=0.4,
                           hatch="//" if kind.startswith("spill") else None)
        core, eng = key
        name = _LABEL.get(eng) or (f"DMA queue {eng[3:]}" if eng.startswith("DMA") else eng)
        pct = 100.0 * busy[key] / total_us if total_us else 0.0
        labels.append(f"{'core %d ' % core if multi else ''}{name}  {pct:.0f}%")
    if launch_us > 0:
        end_all = total_us - launch_us
        ax.broken_barh([(end_all, launch_us)], (len(order) - 0.38, 0.76), facecolors="white",
                       edgecolors="black", linewidth=0.6, hatch="xx")
        labels.append("launch overhead")
    ax.set_yticks(range(n_rows))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, total_us * 1.01 if total_us else 1)
    ax.set_xlabel("time (us, modelled; row label: busy % of the total)")
    ax.grid(axis="x", linewidth=0.3, alpha=0.5)
    ax.set_title(f"{report.kernel} on {report.target}: {total_us:.2f} us modelled "
                 f"(includes {launch_us:.2f} us launch overhead), {len(events)} instructions")
    handles = [Patch(facecolor=colour[k], label=k, hatch="//" if k.startswith("spill") else None)
               for k in top]
    if len(kinds) > len(top):
        handles.append(Patch(facecolor=other, label=f"other ({len(kinds) - len(top)} kinds)"))
    if launch_us > 0:
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="xx",
                             label="launch overhead"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8,
              title="instruction", title_fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.fspath(path)
