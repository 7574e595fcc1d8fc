"""The profile timeline as a PNG: one row per engine and DMA queue, coloured by instruction kind.

Rows run TensorE, ScalarE, VectorE, GpSimd, Sync, then the DMA queues in numeric order (DMA2
before DMA10), one group per NeuronCore of an LNC=2 program. Each instruction is a bar with a
thin white edge, so back-to-back instructions on one queue stay visible as separate bars; the
colour says the instruction kind (legend: the kinds that take the most time, the rest grouped as
"other"); compiler spills are hatched. Transfers that overlap on one DMA queue are drawn in
thinner sub-lanes, and the busy % beside each row counts overlapping time once. The fixed launch overhead that the report's total includes
is drawn as its own row after the last instruction, so the picture spans exactly the total.

    >>> row_order_key("DMA10") > row_order_key("DMA2") and row_order_key("DMA0") > row_order_key("SP")
    True
"""
from __future__ import annotations

import os

from .timing import ENGINES

_LABEL = {"PE": "TensorE (PE)", "ACT": "ScalarE (ACT)", "DVE": "VectorE (DVE)",
          "POOL": "GpSimd (POOL)", "SP": "Sync (SP)"}
_MAX_KINDS = 11            # legend entries before the rest are grouped as "other"


def row_order_key(engine: str):
    if engine in ENGINES:
        return (0, list(ENGINES).index(engine), "")
    if engine.startswith("DMA") and engine[3:].isdigit():
        return (1, int(engine[3:]), "")
    return (2, 0, engine)


def covered_us(spans) -> float:
    """Time covered by at least one span (a DMA queue may run transfers concurrently)."""
    total, end = 0.0, None
    for start, dur in sorted(spans):
        stop = start + dur
        if end is None or start >= end:
            total += dur
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


def assign_lanes(bars, cap: int = 4):
    """Assign overlapping bars to sub-lanes (greedy), so concurrent transfers stay visible."""
    ends: list = []
    out = []
    for start, dur, kind in sorted(bars):
        for i, e in enumerate(ends):
            if start >= e - 1e-9:
                ends[i] = start + dur
                out.append((i, start, dur, kind))
                break
        else:
            if len(ends) < cap:
                ends.append(start + dur)
                out.append((len(ends) - 1, start, dur, kind))
            else:
                i = min(range(cap), key=lambda k: ends[k])
                ends[i] = max(ends[i], start + dur)
                out.append((i, start, dur, kind))
    return out, max(1, len(ends))


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
    kinds: dict = {}
    for ev in events:
        key = (ev.core, ev.engine)
        start, dur = ev.start / 1000.0, max(ev.end - ev.start, 1e-4) / 1000.0
        kind = _kind(report, ev)
        rows.setdefault(key, []).append((start, dur, kind))
        kinds[kind] = kinds.get(kind, 0.0) + dur
    busy = {k: covered_us([(s, d) for s, d, _ in v]) for k, v in rows.items()}
    order = sorted(rows, key=lambda k: (k[0],) + row_order_key(k[1]))
    multi = len({c for c, _ in order}) > 1
    top = [k for k, _ in sorted(kinds.items(), key=lambda kv: -kv[1])][:_MAX_KINDS]
    # tab10 first (distinct hues), then tab20's lighter shades
    palette = list(plt.get_cmap("tab10").colors) + list(plt.get_cmap("tab20").colors[1::2])
    colour = {k: palette[i % len(palette)] for i, k in enumerate(top)}
    other = (0.6, 0.6, 0.6, 1.0)
    total_us = report.total_ns / 1000.0
    launch_us = report.launch_overhead_ns / 1000.0
    n_rows = len(order) + (1 if launch_us > 0 else 0)
    fig, ax = plt.subplots(figsize=(13, 0.42 * n_rows + 2.2))
    labels = []
    for y, key in enumerate(order):
        placed, n_lanes = assign_lanes(rows[key])
        h = 0.76 / n_lanes
        by_kind: dict = {}
        for lane, start, dur, kind in placed:
            by_kind.setdefault((kind, lane), []).append((start, dur))
        for (kind, lane), spans in by_kind.items():
            ax.broken_barh(spans, (y - 0.38 + lane * h, h), facecolors=colour.get(kind, other),
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
