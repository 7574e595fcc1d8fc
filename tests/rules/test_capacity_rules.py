"""On-chip capacity per partition and per generation, the 8 PSUM banks, PSUM bank alignment, and
overlapping live allocations placed with ``address=(partition, byte)``. One test per rule.

These checks run after tracing (device/passes.py): a tile is live from its first to its last use.
Automatically placed SBUF tiles that over-subscribe the SBUF are spilled (a SpillWarning and a
spill plan), as the compiler does; what spilling cannot fix stays an error.
"""
import os
import warnings

import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device.arch import get_arch
from device.passes import SpillWarning
from rules_helpers import expect_rule, marker_line, ones

KiB = 1024


@nki.jit
def huge_psum_tile(a):
    p = nl.ndarray((128, 5000), nl.float32, buffer=nl.psum, name="wide")  # <- alloc
    return a


def test_one_tile_larger_than_the_buffer():
    expect_rule(lambda: huge_psum_tile(ones(4, 4)), rule="capacity", operand="wide", value=20000,
                limit=16 * KiB, where=marker_line(huge_psum_tile, "alloc"),
                says=("20000 bytes per partition", "holds 16384"))


@nki.jit
def three_big_sbuf_tiles(a):
    """x, y, z: 64 KiB per partition each; all three are live at ``memset(z)`` (192 KiB)."""
    out = nl.ndarray((128, 8), nl.float32, buffer=nl.shared_hbm)
    x = nl.ndarray((128, 16 * KiB), nl.float32, buffer=nl.sbuf, name="x")  # <- x
    y = nl.ndarray((128, 16 * KiB), nl.float32, buffer=nl.sbuf, name="y")
    z = nl.ndarray((128, 16 * KiB), nl.float32, buffer=nl.sbuf, name="z")
    nisa.memset(dst=x, value=1.0)                                  # 0
    nisa.memset(dst=y, value=2.0)                                  # 1
    nisa.memset(dst=z, value=3.0)                                  # 2: over capacity on v2
    nisa.tensor_tensor(dst=y, data1=y, data2=z, op=nl.add)         # 3
    nisa.tensor_tensor(dst=x, data1=x, data2=y, op=nl.add)         # 4: x is needed again
    nisa.dma_copy(dst=out, src=x[:, 0:8])                          # 5
    return out


@pytest.mark.parametrize("target", ["trn1", "inf2", "trn2", "trn3"])
def test_sbuf_oversubscription_spills_per_generation(monkeypatch, target):
    """192 KiB of live automatic tiles exceed v2's 176 KiB: the compiler spills (a SpillWarning
    naming the tile, its line and bytes), the result is unchanged. v3 and v4 hold them."""
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", target)
    cap = get_arch(target).sbuf_usable_bytes_per_partition
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = three_big_sbuf_tiles(ones(4, 4))
    np.testing.assert_array_equal(res, np.full((128, 8), 6.0))
    spill_warnings = [w for w in caught if issubclass(w.category, SpillWarning)]
    prog = three_big_sbuf_tiles.trace(ones(4, 4))
    if cap >= 192 * KiB:
        assert spill_warnings == [] and prog.info.spills == []
        return
    # Belady by hand: at instruction 2 x (next use 4) is farther than y (next use 3): evict x,
    # saved after its write at 0, reloaded before 4; 64 KiB x 128 partitions each way.
    (sp,) = prog.info.spills
    assert (sp.storage.name, sp.save_after, sp.last_use, sp.evict_at, sp.reload_before) == \
        ("x", 0, 0, 2, 4)
    assert sp.bytes == sp.save_bytes == 64 * KiB * 128
    (w,) = spill_warnings
    file, line = marker_line(three_big_sbuf_tiles, "x")
    assert issubclass(w.category, UserWarning)
    assert os.path.samefile(w.filename, file) and w.lineno == line
    text = str(w.message)
    for fragment in ("sbuf-spill", "tile x", f"test_capacity_rules.py:{line}",
                     f"{64 * KiB} B/partition", f"{64 * KiB * 128} bytes saved",
                     f"{64 * KiB * 128} bytes reloaded", f"{cap} usable", target):
        assert fragment in text, (fragment, text)
    assert prog.info.peak["sbuf"] == 192 * KiB
    assert prog.info.peak["sbuf_resident"] == 128 * KiB


@nki.jit
def two_big_operands(a):
    out = nl.ndarray((128, 8), nl.float32, buffer=nl.shared_hbm)
    x = nl.ndarray((128, 24 * KiB), nl.float32, buffer=nl.sbuf, name="x")
    y = nl.ndarray((128, 24 * KiB), nl.float32, buffer=nl.sbuf, name="y")
    nisa.memset(dst=x, value=1.0)
    nisa.memset(dst=y, value=2.0)
    nisa.tensor_tensor(dst=x, data1=x, data2=y, op=nl.add)  # <- both
    nisa.dma_copy(dst=out, src=x[:, 0:8])
    return out


@pytest.mark.parametrize("target", ["trn1", "trn2"])
def test_one_instruction_whose_operands_exceed_the_sbuf_is_an_error(monkeypatch, target):
    """Spilling cannot help when one instruction's own operands (2 x 96 KiB) do not fit."""
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", target)
    cap = get_arch(target).sbuf_usable_bytes_per_partition
    if cap >= 192 * KiB:
        with warnings.catch_warnings():
            warnings.simplefilter("error", SpillWarning)
            np.testing.assert_array_equal(two_big_operands(ones(4, 4)), np.full((128, 8), 3.0))
        return
    expect_rule(lambda: two_big_operands(ones(4, 4)), rule="sbuf-capacity", operand="x",
                value=192 * KiB, limit=cap, where=marker_line(two_big_operands, "both"),
                says=(f"{192 * KiB} bytes per partition", f"{cap} usable bytes", "tensor_tensor",
                      "nothing can be spilled"))


@nki.jit
def placed_and_automatic(a):
    """A user-placed 100 KiB tile leaves 76 KiB: an automatic 96 KiB tile cannot fit."""
    out = nl.ndarray((128, 8), nl.float32, buffer=nl.shared_hbm)
    p = nl.ndarray((128, 25 * KiB), nl.float32, buffer=nl.sbuf, address=(0, 0), name="p")
    q = nl.ndarray((128, 24 * KiB), nl.float32, buffer=nl.sbuf, name="q")
    nisa.memset(dst=p, value=1.0)
    nisa.memset(dst=q, value=2.0)  # <- q
    nisa.tensor_tensor(dst=p[:, 0:8], data1=p[:, 0:8], data2=q[:, 0:8], op=nl.add)
    nisa.dma_copy(dst=out, src=p[:, 0:8])
    return out


def test_placed_tiles_are_not_spilled():
    """User-placed tiles keep their place; what is left is too small for q: an error, no spill."""
    cap = get_arch("trn1").sbuf_usable_bytes_per_partition
    expect_rule(lambda: placed_and_automatic(ones(4, 4)), rule="sbuf-capacity", operand="q",
                value=196 * KiB, limit=cap, where=marker_line(placed_and_automatic, "q"),
                says=("user-placed", "nothing can be spilled"))


def many_psum_tiles(n, cols):
    @nki.jit
    def kernel(a):
        out = nl.ndarray((128, 8), nl.float32, buffer=nl.shared_hbm)
        tiles = []
        for j in range(n):
            p = nl.ndarray((128, cols), nl.float32, buffer=nl.psum, name=f"acc{j}")  # <- alloc
            nisa.memset(dst=p, value=float(j))
            tiles.append(p)
        s = nl.ndarray((128, cols), nl.float32, buffer=nl.sbuf)
        for p in tiles:                       # every tile is still live here
            nisa.tensor_copy(dst=s, src=p)
        nisa.dma_copy(dst=out, src=s[:, 0:8])
        return out
    return kernel


def test_psum_capacity():
    k = many_psum_tiles(9, 512)                # 9 x 2 KiB > 16 KiB
    expect_rule(lambda: k(ones(4, 4)), rule="psum-capacity", operand="acc8", value=18 * KiB,
                limit=16 * KiB, where=marker_line(k, "alloc"),
                says=("acc8 (2048 B/partition)", "16384 usable bytes"))


def test_at_most_eight_psum_banks_are_live():
    k = many_psum_tiles(9, 64)                 # 9 small tiles: 2.25 KiB, but 9 banks
    expect_rule(lambda: k(ones(4, 4)), rule="psum-banks", operand="acc8", value=9, limit=8,
                where=marker_line(k, "alloc"), says=("9 PSUM banks are live", "8 banks"))
    np.testing.assert_array_equal(many_psum_tiles(8, 64)(ones(4, 4)), np.full((128, 8), 7.0))


@nki.jit
def misaligned_psum_address(a):
    p = nl.ndarray((128, 64), nl.float32, buffer=nl.psum, address=(0, 1000), name="acc")  # <- alloc
    return a


def test_psum_address_starts_on_a_bank():
    expect_rule(lambda: misaligned_psum_address(ones(4, 4)), rule="psum-address-align",
                operand="acc", value=1000, limit=2048,
                where=marker_line(misaligned_psum_address, "alloc"), says=("2048-byte bank",))


@nki.jit
def sbuf_address_past_the_end(a):
    t = nl.ndarray((128, 1024), nl.float32, buffer=nl.sbuf, address=(0, 174 * 1024), name="t")  # <- alloc
    return a


def test_sbuf_address_inside_the_usable_range():
    expect_rule(lambda: sbuf_address_past_the_end(ones(4, 4)), rule="address-range", operand="t",
                value=178 * KiB, limit=176 * KiB,
                where=marker_line(sbuf_address_past_the_end, "alloc"),
                says=(f"bytes [{174 * KiB}, {178 * KiB})", f"{176 * KiB} usable bytes"))


def placed_kernel(addr_x, addr_y, shape_y=(128, 64), reuse=False):
    """x and y placed by hand; with ``reuse`` x is dead before y is first used."""
    @nki.jit
    def kernel(a):
        out = nl.ndarray((128, 64), nl.float32, buffer=nl.shared_hbm)
        x = nl.ndarray((128, 64), nl.float32, buffer=nl.sbuf, address=addr_x, name="x")
        y = nl.ndarray(shape_y, nl.float32, buffer=nl.sbuf, address=addr_y, name="y")  # <- y
        nisa.dma_copy(dst=x, src=a)
        if reuse:
            nisa.dma_copy(dst=out, src=x)
            nisa.memset(dst=y, value=2.0)
            nisa.dma_copy(dst=out[0:shape_y[0]], src=y)
        else:
            nisa.memset(dst=y, value=2.0)
            nisa.tensor_tensor(dst=x[0:shape_y[0]], data1=x[0:shape_y[0]], data2=y, op=nl.add)
            nisa.dma_copy(dst=out, src=x)
        return out
    return kernel


def test_overlapping_live_allocations():
    k = placed_kernel((0, 0), (0, 128))        # x holds bytes [0, 256); y starts at 128
    expect_rule(lambda: k(ones(128, 64)), rule="overlapping-allocation", operand="y",
                value=(128, 384), limit=(0, 256), where=marker_line(k, "y"),
                says=("y at partitions [0,128) bytes [128,384)", "overlaps live tensor x",
                      "bytes [0,256)"))


@pytest.mark.parametrize("addr_y, reuse", [
    ((0, 256), False),                         # side by side in the free dimension
    ((0, 0), True),                            # same place, disjoint lifetimes
])
def test_non_overlapping_placements(addr_y, reuse):
    k = placed_kernel((0, 0), addr_y, reuse=reuse)
    res = k(np.full((128, 64), 1.0, np.float32))
    assert np.all(res == (2.0 if reuse else 3.0))


def test_allocations_in_disjoint_partitions_do_not_overlap():
    @nki.jit
    def kernel(a):
        out = nl.ndarray((128, 64), nl.float32, buffer=nl.shared_hbm)
        lo = nl.ndarray((64, 64), nl.float32, buffer=nl.sbuf, address=(0, 0))
        hi = nl.ndarray((64, 64), nl.float32, buffer=nl.sbuf, address=(64, 0))
        nisa.dma_copy(dst=lo, src=a[0:64])
        nisa.dma_copy(dst=hi, src=a[64:128])
        nisa.tensor_tensor(dst=hi, data1=hi, data2=hi, op=nl.add)
        nisa.dma_copy(dst=out[0:64], src=lo)
        nisa.dma_copy(dst=out[64:128], src=hi)
        return out
    a = np.arange(128 * 64, dtype=np.float32).reshape(128, 64)
    want = a.copy()
    want[64:] *= 2
    np.testing.assert_array_equal(kernel(a), want)
