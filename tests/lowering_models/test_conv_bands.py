"""ConvSchedule.band_rows: input rows for several PSUM tiles loaded as one band. The same bytes
as one band per tile (only where the rows come from changes), the fast path runs the tiles'
groups as one GEMM, and the default takes the whole image only while it is small."""
from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

import neuron
from device import executor, fastpath
from device.arch import get_arch
from device.fastpath import plan_for
from lowering import lower_graph
from lowering.lower.driver import groups_of
from lowering.lower.rules.conv import ConvSchedule
from tests.fastpath.fastpath_helpers import same_bytes


def _conv(fmt, stride):
    dn = ("NCHW", "OIHW", "NCHW") if fmt == "NCHW" else ("NHWC", "HWIO", "NHWC")
    return lambda x, w: jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME",
                                                     dimension_numbers=dn)


@pytest.mark.parametrize("fmt,stride", [("NHWC", 1), ("NHWC", 2), ("NCHW", 1)])
def test_whole_image_band_gives_the_per_tile_bytes_and_one_gemm(fmt, stride):
    rng = np.random.default_rng(3)
    xs, ws = ((2, 30, 29, 6), (3, 3, 6, 10)) if fmt == "NHWC" else ((2, 6, 30, 29), (10, 6, 3, 3))
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) / 3).astype(np.float32)
    fn = _conv(fmt, stride)
    imp = neuron.from_jax(fn).imported(x, w)
    (group,) = [g for g in groups_of(imp.graph) if g.root.opcode == "convolution"]
    arch = get_arch("inf2")
    prob = group.problem()
    sched = ConvSchedule.default(prob, arch)
    assert sched.rows < prob.oh and sched.band_rows == prob.oh, sched
    per_tile = dataclasses.replace(sched, band_rows=0)
    assert per_tile in ConvSchedule.space(prob, arch)
    progs = [lower_graph(imp.graph, arch, schedules={group.key: s}) for s in (sched, per_tile)]
    loads = [sum(i.op.name == "memset" for i in p.instrs) for p in progs]
    assert loads[0] == prob.n < loads[1]                       # one band per image
    whole, tiles = (executor.run_reference(p, [x, w])[0] for p in progs)
    same_bytes(whole, tiles, "whole-image band vs a band per tile")
    plan = plan_for(progs[0])
    assert len(plan.batches) == prob.n and all(len(b.ends) > 1 for b in plan.batches)
    want = np.asarray(jax.jit(fn)(x, w))
    np.testing.assert_allclose(imp(x, w), want, rtol=1e-5, atol=1e-5)
    # small integers: every product and sum is exact in fp32, so the batched GEMM (its operand
    # blocks filled by strided copies spanning several tiles) gives the reference's bytes
    xi, wi = (np.round(a * 3).astype(np.float32) for a in (x, w))
    fast = fastpath.run(progs[0], [xi, wi], mode="fast")[0][0]
    same_bytes(executor.run_reference(progs[0], [xi, wi])[0], fast, "batched conv, exact values")


def test_large_images_keep_a_band_per_tile():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 40, 40, 4)).astype(np.float32)
    w = rng.standard_normal((3, 3, 4, 8)).astype(np.float32)
    g = neuron.from_jax(_conv("NHWC", 1)).imported(x, w).graph
    (group,) = [grp for grp in groups_of(g) if grp.root.opcode == "convolution"]
    arch = get_arch("inf2")
    assert ConvSchedule.default(group.problem(), arch).band_rows == 40
    band = (40 + 3) * (40 + 3) * 4                             # bytes per partition
    small = dataclasses.replace(arch, sbuf_usable_bytes_per_partition=8 * band - 8)
    assert ConvSchedule.default(group.problem(), small).band_rows == 0
    assert ConvSchedule(rows=3, band_rows=40, pos_major=True).check(
        group.problem(), dataclasses.replace(arch, sbuf_usable_bytes_per_partition=9000)) == \
        "input bands and weights need 15696 B of SBUF per partition, more than 9000"
