"""The PNG timeline and the Perfetto trace: numeric queue order, overlaps, launch overhead."""
from pathlib import Path

import numpy as np

import nki
import nki.isa as nisa
import nki.language as nl
from device.timeline_plot import assign_lanes, covered_us, row_order_key


@nki.jit
def scale_rows(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    for i in nl.affine_range(a.shape[0] // 128):
        t = nl.load(a[i * 128:(i + 1) * 128])
        nl.store(out[i * 128:(i + 1) * 128], nl.multiply(nl.exp(t), 2.0))
    return out


def test_rows_sort_engines_then_queues_numerically():
    names = ["DMA10", "DMA2", "SP", "PE", "DMA0", "ACT"]
    assert sorted(names, key=row_order_key) == ["PE", "ACT", "SP", "DMA0", "DMA2", "DMA10"]


def test_overlapping_transfers_get_lanes_and_count_once():
    bars = [(0.0, 2.0, "dma_copy"), (1.0, 2.0, "dma_copy"), (2.0, 1.0, "dma_copy")]
    placed, n = assign_lanes(bars)
    assert n == 2 and [p[0] for p in placed] == [0, 1, 0]
    assert covered_us([(s, d) for s, d, _ in bars]) == 3.0


def test_png_of_a_real_kernel(tmp_path):
    r = scale_rows.profile(nki.ArraySpec((512, 256), "float32"))
    p = r.save_png(tmp_path / "t.png")
    assert Path(p).read_bytes()[:4] == b"\x89PNG"


def test_trace_spans_the_reports_total_including_launch_overhead():
    r = scale_rows.profile(nki.ArraySpec((512, 256), "float32"))
    ev = [e for e in r.trace_events() if e["ph"] == "X"]
    launch = [e for e in ev if e["name"] == "launch overhead"]
    assert len(launch) == 1 and abs(launch[0]["dur"] - r.launch_overhead_ns / 1000) < 1e-9
    end = max(e["ts"] + e["dur"] for e in ev)
    assert abs(end - r.total_us) < 1e-6
    names = [e["args"]["name"] for e in r.trace_events() if e["name"] == "thread_name"]
    assert "launch overhead" in names
