"""Compiler spills (Belady plan, priced as DMA traffic) and SBUF pressure in the timing model."""
import warnings
from dataclasses import replace

import pytest
from hypothesis import given, strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device.arch import get_arch
from device.passes import SpillWarning, check_capacity
from device.profile import profile
from device.program import Program
from device.timing import schedule

KiB = 1024
COLS = 15 * KiB                  # fp32 [128, 15360] = 60 KiB per partition: two fit trn1, three do not
TILE_BYTES = 60 * KiB * 128


def _four_tiles(target="trn1"):
    """a, b, c, d of 60 KiB/partition; the Belady plan by hand (176 KiB usable on trn1):
    at 2 (a, b, c live) a's next use (4) is farther than b's (3): evict a, saved after 0, reloaded
    before 4. At 5 (a, c, d live) a's next use (7) is farther than c's (6): evict a again; it was
    not written since its reload, so no save. Total: 1 save and 2 reloads of 60 KiB x 128."""
    p = Program("four", target)
    out = p.alloc((128, COLS), "float32", "hbm", name="out", loc=None)
    a, b, c, d = (p.alloc((128, COLS), "float32", "sbuf", name=n, loc=None) for n in "abcd")
    p.emit("memset", dst=a, value=1.0, loc=None)                                   # 0
    p.emit("memset", dst=b, value=2.0, loc=None)                                   # 1
    p.emit("memset", dst=c, value=3.0, loc=None)                                   # 2
    p.emit("tensor_tensor", dst=c, data1=c, data2=b, op="add", loc=None)           # 3
    p.emit("tensor_tensor", dst=c, data1=c, data2=a, op="add", loc=None)           # 4
    p.emit("memset", dst=d, value=4.0, loc=None)                                   # 5
    p.emit("tensor_tensor", dst=d, data1=d, data2=c, op="add", loc=None)           # 6
    p.emit("tensor_tensor", dst=d, data1=d, data2=a, op="add", loc=None)           # 7
    p.emit("dma_copy", dst=out, src=d, loc=None)                                   # 8
    return p


def test_belady_plan_matches_the_hand_computed_one():
    p = _four_tiles()
    with pytest.warns(SpillWarning, match=r"tile a .*60 KiB|tile a"):
        check_capacity(p)
    got = [(s.storage.name, s.save_after, s.last_use, s.evict_at, s.reload_before)
           for s in p.info.spills]
    assert got == [("a", 0, 0, 2, 4), ("a", None, 4, 5, 7)]
    assert sum(s.save_bytes for s in p.info.spills) == TILE_BYTES
    assert sum(s.bytes for s in p.info.spills) == 2 * TILE_BYTES
    assert p.info.peak["sbuf"] == 180 * KiB and p.info.peak["sbuf_resident"] == 120 * KiB


def test_no_spills_where_the_tiles_fit():
    p = _four_tiles("trn2")                       # 208 KiB usable: three 60 KiB tiles fit
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpillWarning)
        check_capacity(p)
    assert p.info.spills == []
    tl = schedule(p)
    assert tl.spill_save_bytes == tl.spill_reload_bytes == 0
    assert not any(e.spill for e in tl.events)


def test_spill_dmas_are_in_the_timeline_and_the_report():
    p = _four_tiles()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpillWarning)
        check_capacity(p)
    tl = schedule(p)
    saves = [e for e in tl.events if e.spill == "save"]
    reloads = [e for e in tl.events if e.spill == "reload"]
    assert len(saves) == 1 and len(reloads) == 2
    assert all(e.engine.startswith("DMA") for e in saves + reloads)
    by_index = {e.index: e for e in tl.events if not e.spill}
    # the save runs after a's write (0); each consumer of a waits for its reload
    assert saves[0].start >= by_index[0].end and saves[0].index == 0
    for r in reloads:
        assert by_index[r.index].start >= r.end
    assert reloads[0].start >= saves[0].end           # the reload reads what the save wrote
    assert (tl.spill_save_bytes, tl.spill_reload_bytes) == (TILE_BYTES, 2 * TILE_BYTES)
    assert tl.hbm_write == TILE_BYTES + 128 * COLS * 4 and tl.hbm_read == 2 * TILE_BYTES
    r = profile(p, tl)
    assert (r.spill_save_bytes, r.spill_reload_bytes, r.spill_count) == (
        TILE_BYTES, 2 * TILE_BYTES, 2)
    assert any(w.startswith("spills:") and "> 25%" in w for w in r.warnings), r.warnings
    assert "2 evictions: saved 7.50 MiB, reloaded 15.00 MiB" in str(r)
    names = [e["name"] for e in r.trace_events() if e["ph"] == "X"]
    assert names.count("spill save") == 1 and names.count("spill reload") == 2


def test_spilling_costs_time():
    """The same program is slower where it spills (trn1) than with room to spare."""
    p = _four_tiles()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpillWarning)
        spilled = schedule(p).makespan_ns
    q = _four_tiles()
    q.arch = replace(get_arch("trn1"), sbuf_usable_bytes_per_partition=240 * KiB)
    assert schedule(q).makespan_ns < spilled


def stream(n, cols):
    """n independent iterations over fresh [128, cols] fp32 tiles t, y: load t, four ScalarE
    passes into y, y += t, store y (t and y live through the whole iteration)."""
    @nki.jit
    def kernel(x):
        out = nl.ndarray((128, n * cols), nl.float32, buffer=nl.shared_hbm)
        for i in nl.affine_range(n):
            t = nl.ndarray((128, cols), nl.float32, buffer=nl.sbuf)
            nisa.dma_copy(dst=t, src=x[:, i * cols:(i + 1) * cols])
            y = nl.ndarray((128, cols), nl.float32, buffer=nl.sbuf)
            nisa.activation(dst=y, op=nl.exp, data=t)
            for _ in range(3):
                nisa.activation(dst=y, op=nl.exp, data=y)
            nisa.tensor_tensor(dst=y, data1=y, data2=t, op=nl.add)
            nisa.dma_copy(dst=out[:, i * cols:(i + 1) * cols], src=y)
        return out
    return kernel


def _time(n, cols, usable=None):
    prog = stream(n, cols).trace(nki.ArraySpec((128, n * cols), "float32"), target="trn1")
    if usable is not None:
        prog.arch = replace(prog.arch, sbuf_usable_bytes_per_partition=usable)
    return schedule(prog, keep_events=False)


def test_sbuf_pressure_limits_overlap_of_big_tiles():
    """An iteration with 2 tiles of 64 KiB leaves no room in 176 KiB for the next load, so loads
    wait for space and do not overlap compute: slower than with unlimited SBUF. With tiles of
    2 KiB many iterations are in flight and the time is that of an unlimited SBUF."""
    big = _time(8, 16 * KiB)
    big_unlimited = _time(8, 16 * KiB, usable=1 << 30)
    assert big.sbuf_wait_ns > 0 and big.makespan_ns > 1.05 * big_unlimited.makespan_ns
    small = _time(8, 512)
    small_unlimited = _time(8, 512, usable=1 << 30)
    assert small.sbuf_wait_ns == 0 and small.makespan_ns == small_unlimited.makespan_ns
    # per byte moved, the big tiles that exceed the SBUF lose more to pressure than the small
    assert big.makespan_ns / big_unlimited.makespan_ns > small.makespan_ns / small_unlimited.makespan_ns


@given(st.integers(1, 12), st.sampled_from([256, 2048, 8192, 16384]))
def test_pressure_never_speeds_a_kernel_up(n, cols):
    limited = _time(n, cols).makespan_ns
    unlimited = _time(n, cols, usable=1 << 30).makespan_ns
    assert limited >= unlimited - 1e-6
    if 2 * n * cols * 4 <= get_arch("trn1").sbuf_usable_bytes_per_partition:
        assert limited == unlimited                 # everything fits: nothing waits


def _big_program(choices):
    """Like test_timing_model._program, but with 60 KiB tiles so three live tiles spill on trn1."""
    p = Program("k", "trn1")
    hbm = p.alloc((128, COLS), "float32", "hbm", name="x", loc=None)
    t = [p.alloc((128, COLS), "float32", "sbuf", name=f"t{i}", loc=None) for i in range(4)]
    for op, a, b in choices:
        if op == "load":
            p.emit("dma_copy", dst=t[a], src=hbm, loc=None)
        elif op == "store":
            p.emit("dma_copy", dst=hbm, src=t[a], loc=None)
        elif op == "exp":
            p.emit("activation", dst=t[a], op="exp", data=t[b], loc=None)
        else:
            p.emit("tensor_tensor", dst=t[a], data1=t[a], data2=t[b], op="add", loc=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpillWarning)
        check_capacity(p)
    return p


big_choice = st.tuples(st.sampled_from(("load", "store", "exp", "add")), st.integers(0, 3),
                       st.integers(0, 3))


@given(st.lists(big_choice, min_size=1, max_size=14), big_choice)
def test_adding_an_instruction_never_lowers_the_total_with_spills(prog, extra):
    before = schedule(_big_program(prog)).total_ns
    after = schedule(_big_program(prog + [extra])).total_ns
    assert after >= before


def _four_tiles_loaded(write_input=False):
    """As _four_tiles, but a is a load of a kernel input (and, with ``write_input``, the kernel
    later overwrites that input, so reloading it would read the wrong data)."""
    p = Program("four_loaded", "trn1")
    src = p.alloc((128, COLS), "float32", "hbm", name="src", kind="input", loc=None)
    out = p.alloc((128, COLS), "float32", "hbm", name="out", loc=None)
    a, b, c, d = (p.alloc((128, COLS), "float32", "sbuf", name=n, loc=None) for n in "abcd")
    p.emit("dma_copy", dst=a, src=src, loc=None)                                   # 0
    p.emit("memset", dst=b, value=2.0, loc=None)                                   # 1
    p.emit("memset", dst=c, value=3.0, loc=None)                                   # 2
    p.emit("tensor_tensor", dst=c, data1=c, data2=b, op="add", loc=None)           # 3
    p.emit("tensor_tensor", dst=c, data1=c, data2=a, op="add", loc=None)           # 4
    p.emit("memset", dst=d, value=4.0, loc=None)                                   # 5
    p.emit("tensor_tensor", dst=d, data1=d, data2=c, op="add", loc=None)           # 6
    p.emit("tensor_tensor", dst=d, data1=d, data2=a, op="add", loc=None)           # 7
    p.emit("dma_copy", dst=out, src=d, loc=None)                                   # 8
    if write_input:
        p.emit("dma_copy", dst=src, src=d, loc=None)                               # 9
    return p


@pytest.mark.parametrize("write_input", [False, True])
def test_a_spilled_load_of_an_input_is_reloaded_not_saved(write_input):
    p = _four_tiles_loaded(write_input)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpillWarning)
        check_capacity(p)
    assert [s.storage.name for s in p.info.spills] == ["a", "a"]
    tl = schedule(p)
    saves = [e for e in tl.events if e.spill == "save"]
    reloads = [e for e in tl.events if e.spill == "reload"]
    assert len(reloads) == 2 and tl.spill_reload_bytes == 2 * TILE_BYTES
    if write_input:            # the input changes later: the tile must be saved like any other
        assert len(saves) == 1 and tl.spill_save_bytes == TILE_BYTES
    else:                      # rematerialised: the reload reads the input again
        assert saves == [] and tl.spill_save_bytes == 0


def _cheap_victim():
    """acc (128 partitions, dirty) and row (1 partition: a load of an input) both hold 60 KiB of
    every partition's address range; b makes three (180 KiB > 176 KiB on trn1). Belady alone
    evicts acc (next use 5, farther than row's 4): a 7.5 MiB save and a 7.5 MiB reload. Evicting
    row frees the same 60 KiB per partition for one 60 KiB reload of the input, no save."""
    p = Program("cheap_victim", "trn1")
    src = p.alloc((1, COLS), "float32", "hbm", name="src", kind="input", loc=None)
    out = p.alloc((128, COLS), "float32", "hbm", name="out", loc=None)
    out_row = p.alloc((1, COLS), "float32", "hbm", name="out_row", loc=None)
    acc = p.alloc((128, COLS), "float32", "sbuf", name="acc", loc=None)
    row = p.alloc((1, COLS), "float32", "sbuf", name="row", loc=None)
    b = p.alloc((128, COLS), "float32", "sbuf", name="b", loc=None)
    p.emit("memset", dst=acc, value=1.0, loc=None)                                 # 0
    p.emit("dma_copy", dst=row, src=src, loc=None)                                 # 1
    p.emit("memset", dst=b, value=2.0, loc=None)                                   # 2
    p.emit("dma_copy", dst=out, src=b, loc=None)                                   # 3
    p.emit("dma_copy", dst=out_row, src=row, loc=None)                             # 4
    p.emit("dma_copy", dst=out, src=acc, loc=None)                                 # 5
    return p


def test_the_spiller_weighs_what_an_eviction_moves():
    p = _cheap_victim()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpillWarning)
        check_capacity(p)
    got = [(s.storage.name, s.evict_at, s.reload_before) for s in p.info.spills]
    assert got == [("row", 2, 4)]
    tl = schedule(p)
    assert (tl.spill_save_bytes, tl.spill_reload_bytes) == (0, COLS * 4)

