"""Depthwise convolutions on the VectorE (ConvSchedule.vector): against JAX, the reference
executor against the fast path byte for byte, and the same bytes as the PE form (per element
both round each product to fp32 and add in fp32 in tap order)."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import neuron
from device import executor
from device.arch import get_arch
from lowering import lower_graph
from lowering.lower.driver import groups_of
from lowering.lower.rules.conv import ConvSchedule
from tests.fastpath.fastpath_helpers import check, same_bytes


def _depthwise(strides, pad, dil, fmt, groups):
    dn = ("NCHW", "OIHW", "NCHW") if fmt == "NCHW" else ("NHWC", "HWIO", "NHWC")
    return lambda x, w: jax.lax.conv_general_dilated(
        x, w, strides, pad, rhs_dilation=dil, dimension_numbers=dn, feature_group_count=groups)


def _case(fmt, n, h, w, c, mult, k, stride, dil, pad, dtype, seed=0):
    rng = np.random.default_rng(seed)
    xs = (n, c, h, w) if fmt == "NCHW" else (n, h, w, c)
    ws = (c * mult, 1, k, k) if fmt == "NCHW" else (k, k, 1, c * mult)
    x = rng.standard_normal(xs).astype(dtype)
    wt = (rng.standard_normal(ws) / k).astype(dtype)
    fn = _depthwise((stride, stride), [(pad, pad), (pad, pad + 1)], (dil, dil), fmt, c)
    imp = neuron.from_jax(fn).imported(x, wt)
    (group,) = [g for g in groups_of(imp.graph) if g.root.opcode == "convolution"]
    return fn, imp, group, x, wt


@settings(max_examples=12, deadline=None)
@given(fmt=st.sampled_from(["NCHW", "NHWC"]), n=st.integers(1, 2), hw=st.integers(3, 11),
       c=st.integers(2, 9), mult=st.integers(1, 2), k=st.integers(1, 3),
       stride=st.integers(1, 2), dil=st.integers(1, 2), pad=st.integers(0, 2),
       rows=st.sampled_from([0, 1, 2, 3]), dtype=st.sampled_from([np.float32, jnp.bfloat16]))
def test_depthwise_on_the_vector_engine_matches_jax_and_the_pe_form(fmt, n, hw, c, mult, k,
                                                                   stride, dil, pad, rows, dtype):
    assume((k - 1) * dil + 1 <= hw + 2 * pad)
    fn, imp, group, x, wt = _case(fmt, n, hw, hw + 1, c, mult, k, stride, dil, pad, dtype,
                                  seed=hw * 7 + c)
    arch = get_arch("trn1")
    prob = group.problem()
    default = ConvSchedule.default(prob, arch)
    assert default.vector and default.direct and default.rows == prob.oh
    sched = dataclasses.replace(default, rows=rows)
    assert sched.check(prob, arch) is None
    prog = lower_graph(imp.graph, arch, schedules={group.key: sched})
    ops = [i.op.name for i in prog.instrs]
    assert "nc_matmul" not in ops and "scalar_tensor_tensor" in ops or k == 1
    ref = check(prog, [x, wt])[0]                    # the fast path gives the reference's bytes
    want = np.asarray(jax.jit(fn)(x, wt)).astype(np.float32)
    tol = 1e-5 if dtype == np.float32 else 2e-2
    np.testing.assert_allclose(ref.reshape(want.shape).astype(np.float32), want, rtol=tol,
                               atol=tol)
    pe = ConvSchedule(direct=True, pos_major=fmt == "NHWC")
    if pe.check(prob, arch) is None:
        pe_prog = lower_graph(imp.graph, arch, schedules={group.key: pe})
        assert "nc_matmul" in [i.op.name for i in pe_prog.instrs]
        same_bytes(executor.run_reference(pe_prog, [x, wt])[0], ref, "PE form vs VectorE form")


def test_depthwise_beyond_128_channels_and_many_row_blocks():
    """Channel blocks of 128 partitions, row blocks, NHWC stores through the PE transpose."""
    fn, imp, group, x, wt = _case("NHWC", 1, 20, 9, 130, 1, 3, 1, 1, 1, np.float32)
    arch = get_arch("trn1")
    prog = lower_graph(imp.graph, arch, schedules={group.key: ConvSchedule(rows=6,
                                                                              vector=True)})
    assert sum(i.op.name == "tensor_scalar" for i in prog.instrs) == 2 * 4   # blocks x rows
    got = check(prog, [x, wt])[0]
    want = np.asarray(jax.jit(fn)(x, wt))
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(imp(x, wt), want, rtol=1e-5, atol=1e-5)   # the default program


def test_vector_schedule_refusals_name_the_rule():
    arch = get_arch("trn1")
    _, _, dw, *_ = _case("NHWC", 1, 8, 8, 4, 1, 3, 1, 1, 1, np.float32)
    prob = dw.problem()
    assert ConvSchedule(vector=True, pos_major=True).check(prob, arch) == \
        "vector=True takes neither pos_major nor o_tile (channels are on the partitions)"
    small = dataclasses.replace(arch, sbuf_usable_bytes_per_partition=4096)
    assert ConvSchedule(rows=8, vector=True).check(prob, small) == (
        "rows=8: input band and accumulator need 1600 B of SBUF per partition, more than a "
        "quarter of 4096")
    assert ConvSchedule.default(prob, small).rows == 4          # halved until it fits
    g = neuron.from_jax(_depthwise((1, 1), "SAME", (1, 1), "NHWC", 1)).imported(
        np.zeros((1, 6, 6, 4), np.float32), np.zeros((3, 3, 4, 5), np.float32)).graph
    (dense,) = [grp for grp in groups_of(g) if grp.root.opcode == "convolution"]
    assert not ConvSchedule.default(dense.problem(), arch).vector
    assert ConvSchedule(vector=True).check(dense.problem(), arch) == (
        "vector=True needs a depthwise convolution (one input feature per group); this one "
        "has 4")


def test_depthwise_rows_wider_than_the_partitions():
    """NHWC rows of 130 positions: loaded and stored in blocks of at most 128 positions."""
    fn, imp, group, x, wt = _case("NHWC", 1, 4, 130, 3, 1, 3, 1, 1, 1, np.float32)
    prog = lower_graph(imp.graph, get_arch("trn1"))
    ops = [i.op.name for i in prog.instrs]
    assert "scalar_tensor_tensor" in ops and ops.count("nc_transpose") == 2 * 4 + 2 * 4
    got = check(prog, [x, wt])[0]
    want = np.asarray(jax.jit(fn)(x, wt))
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-5, atol=1e-5)
