"""VectorE instructions beyond the basic element-wise set (SPEC 3.2 'Vector / Scalar / GpSimd').

Fused scalar/tensor ops, scans, predicated copies and the instructions that use the VectorE
accumulator registers (``accum.py``). Everything computes in fp32 and rounds on write.
"""
from __future__ import annotations

import numpy as np

from .. import alu as A
from .. import dtypes
from ..tensor import View
from . import defop
from .accum import (accumulate, check_arith, check_column, check_generation, check_op_in, cmd_name,
                    lanes, read_column, reduce_free, regs)
from .costs import stream_cost, two_input_passes
from .rules import (check_dtype, check_not_both_psum, check_onchip_operand, check_same_free, fail,
                    read2d, scalar_or_column, view_arg, write2d)

FP32_MIN = -3.4028234663852886e38
CMP_OPS = ("equal", "less", "less_equal", "greater", "greater_equal")
FLOAT_DTS = dtypes.FLOATS


def _apply(op, x, y, reverse):
    return A.apply_alu(op, y, x) if reverse else A.apply_alu(op, x, y)


@defop("scalar_tensor_tensor", engine="DVE", inputs=("data", "operand0", "operand1"))
class ScalarTensorTensor:
    """dst = (data op0 operand0) op1 operand1; operand0 scalar or (P,1), operand1 a full tile."""

    def check(i, arch):
        dst, data, o1 = view_arg(i, "dst"), view_arg(i, "data"), view_arg(i, "operand1")
        for n, v in (("dst", dst), ("data", data), ("operand1", o1)):
            check_onchip_operand(i, arch, n, v)
        check_same_free(i, [("dst", dst), ("data", data), ("operand1", o1)])
        check_not_both_psum(i, "data", "operand1")
        scalar_or_column(i, arch, "operand0")
        check_arith(i, "op0")
        check_arith(i, "op1")

    def run(i, mem):
        a = i.args
        P = a["data"].shape[0]
        x = read2d(mem, i, a["data"])
        y = _apply(A.alu(a["op0"]), x, read_column(mem, i, "operand0", P), a.get("reverse0"))
        z = _apply(A.alu(a["op1"]), y, read2d(mem, i, a["operand1"]), a.get("reverse1"))
        write2d(mem, a["dst"], z)

    def cost(i, arch):
        d = i.args["dst"]
        return stream_cost(i, arch, d.free_size, d, i.args["data"], i.args["operand1"],
                           passes=two_input_passes(arch, i.args["data"], i.args["operand1"]))


@defop("tensor_tensor_scan", engine="DVE", inputs=("data0", "data1", "initial"))
class TensorTensorScan:
    """Per partition: r_i = op1(op0(data0_i, r_{i-1}), data1_i), r_-1 = initial; dst_i = r_i.

    The running value stays fp32 between steps (a sequence of fp32 ALU ops, as on the engine);
    only the written results are rounded to dst.dtype.
    """

    def check(i, arch):
        dst, d0, d1 = view_arg(i, "dst"), view_arg(i, "data0"), view_arg(i, "data1")
        for n, v in (("dst", dst), ("data0", d0), ("data1", d1)):
            check_onchip_operand(i, arch, n, v)
        check_same_free(i, [("dst", dst), ("data0", d0), ("data1", d1)])
        check_not_both_psum(i, "data0", "data1")
        scalar_or_column(i, arch, "initial")
        check_arith(i, "op0")
        check_arith(i, "op1")

    def run(i, mem):
        a = i.args
        P = a["data0"].shape[0]
        x0, x1 = read2d(mem, i, a["data0"]), read2d(mem, i, a["data1"])
        op0, op1 = A.alu(a["op0"]), A.alu(a["op1"])
        r = np.broadcast_to(read_column(mem, i, "initial", P), (P, 1)).reshape(P).astype(np.float32)
        out = np.empty_like(x0)
        for k in range(x0.shape[1]):
            t = _apply(op0, x0[:, k], r, a.get("reverse0"))
            r = _apply(op1, t, x1[:, k], a.get("reverse1"))
            out[:, k] = r
        write2d(mem, a["dst"], out)

    def cost(i, arch):
        d = i.args["dst"]
        return stream_cost(i, arch, d.free_size, d, i.args["data0"], i.args["data1"], passes=2.0)


@defop("tensor_copy_predicated", engine="DVE", inputs=("src", "predicate", "dst"))
class TensorCopyPredicated:
    """dst = src where predicate (!= 0, xor reverse_pred), else dst keeps its value."""

    def check(i, arch):
        dst, pred = view_arg(i, "dst"), view_arg(i, "predicate")
        check_onchip_operand(i, arch, "dst", dst)
        check_onchip_operand(i, arch, "predicate", pred)
        check_dtype(i, "predicate", pred, {"bool_", "uint8", "uint16", "uint32"},
                    "predicates must be")
        src = i.args.get("src")
        names = [("dst", dst), ("predicate", pred)]
        if isinstance(src, View):
            check_onchip_operand(i, arch, "src", src)
            names.append(("src", src))
            if src.dtype != dst.dtype:
                fail(i, "dtype", f"src dtype {src.dtype} must equal dst dtype {dst.dtype}", "src",
                     src.dtype, dst.dtype)
            check_not_both_psum(i, "src", "predicate")
        else:
            scalar_or_column(i, arch, "src")
        check_same_free(i, names)

    def run(i, mem):
        a = i.args
        dst, src = a["dst"], a["src"]
        keep = read2d(mem, i, a["predicate"], None) != 0
        if a.get("reverse_pred"):
            keep = ~keep
        cur = mem.array(dst).reshape(keep.shape).copy()
        new = read2d(mem, i, src, None) if isinstance(src, View) else \
            dtypes.round_to(np.float32(src), dst.dtype, mem.precise_fp)
        new = np.broadcast_to(np.asarray(new).astype(cur.dtype), cur.shape)
        mem.write(dst, np.where(keep, new, cur).reshape(dst.shape), rounded=True)

    def cost(i, arch):
        d, s = i.args["dst"], i.args["src"]
        both = d.buffer.kind == "sbuf" and isinstance(s, View) and s.buffer.kind == "sbuf"
        return stream_cost(i, arch, d.free_size, d, passes=2.0 if both else 1.0)


@defop("reciprocal", engine="DVE", inputs=("data",))
class Reciprocal:
    """dst = 1 / data in fp32 on VectorE (more precise than activation(reciprocal), ~8x slower)."""

    def check(i, arch):
        dst, data = view_arg(i, "dst"), view_arg(i, "data")
        check_onchip_operand(i, arch, "dst", dst)
        check_onchip_operand(i, arch, "data", data)
        check_same_free(i, [("dst", dst), ("data", data)])

    def run(i, mem):
        with np.errstate(all="ignore"):
            write2d(mem, i.args["dst"], np.float32(1) / read2d(mem, i, i.args["data"]))

    def cost(i, arch):
        d = i.args["dst"]
        return stream_cost(i, arch, d.free_size, d, i.args["data"], passes=8.0)


def _readout(mem, i, name, values, negate=False):
    rr = i.args.get(name)
    if rr is not None:
        v = -values if negate else values
        mem.write(rr, np.asarray(v, np.float32).reshape(rr.shape))


@defop("tensor_scalar_reduce", engine="DVE", outputs=("dst", "reduce_res"),
       inputs=("data", "operand0", "reduce_init"))
class TensorScalarReduce:
    """dst = data op0 operand0, then a free-axis reduce_op into the VectorE accumulators."""

    def check(i, arch):
        dst, data = view_arg(i, "dst"), view_arg(i, "data")
        check_onchip_operand(i, arch, "dst", dst)
        check_onchip_operand(i, arch, "data", data)
        check_same_free(i, [("dst", dst), ("data", data)])
        op0 = check_arith(i, "op0")
        if op0.unary:
            if i.args.get("operand0") not in (None, 0, 0.0):
                fail(i, "scalar-operand", f"operand0 must be None or 0 for the unary op {op0.name}",
                     "operand0", i.args.get("operand0"), "None or 0")
        else:
            scalar_or_column(i, arch, "operand0")
        check_op_in(i, "reduce_op", ("add", "multiply", "maximum", "minimum"), "reduce_op must be")
        if i.args.get("reverse0"):
            fail(i, "unsupported", "reverse0=True is not supported yet", "reverse0", True, False)
        cmd = cmd_name(i.args.get("reduce_cmd"))
        if cmd not in ("reset_reduce", "reduce", "load_reduce"):
            fail(i, "reduce-cmd", f"reduce_cmd={cmd} is not supported; use reset_reduce, reduce or "
                 f"load_reduce", "reduce_cmd", cmd, "reset_reduce/reduce/load_reduce")
        if (cmd == "load_reduce") != (i.args.get("reduce_init") is not None):
            fail(i, "reduce-cmd", "reduce_init must be given exactly when reduce_cmd is load_reduce",
                 "reduce_init", i.args.get("reduce_init"), "set only with load_reduce")
        if cmd == "load_reduce":
            scalar_or_column(i, arch, "reduce_init")
        check_column(i, arch, "reduce_res", data.shape[0])

    def run(i, mem):
        a = i.args
        data = a["data"]
        P = data.shape[0]
        op0, red = A.alu(a["op0"]), A.alu(a["reduce_op"])
        y = A.apply_alu(op0, read2d(mem, i, data), read_column(mem, i, "operand0", P))
        write2d(mem, a["dst"], y)
        init = read_column(mem, i, "reduce_init", P) if a.get("reduce_init") is not None else None
        r = accumulate(mem, "DVE", lanes(data), cmd_name(a.get("reduce_cmd")), red,
                       reduce_free(red, y), init=init)
        _readout(mem, i, "reduce_res", r, a.get("reduce_res_negate"))

    def cost(i, arch):
        d = i.args["dst"]
        return stream_cost(i, arch, d.free_size, d, i.args["data"], extra_cycles=arch.min_ii_cycles)


@defop("tensor_scalar_cumulative", engine="DVE", inputs=("src", "imm0", "imm1"))
class TensorScalarCumulative:
    """Running scan along the free axis: reg = op1(op0(x_i, imm0), reg); dst_i = reg."""

    def check(i, arch):
        dst, src = view_arg(i, "dst"), view_arg(i, "src")
        check_onchip_operand(i, arch, "dst", dst)
        check_onchip_operand(i, arch, "src", src)
        check_same_free(i, [("dst", dst), ("src", src)])
        ok = dtypes.FLOATS | {"int8", "int16", "uint8", "uint16"}
        check_dtype(i, "src", src, ok, "int32/uint32 are not supported; dtypes must be")
        check_dtype(i, "dst", dst, ok, "int32/uint32 are not supported; dtypes must be")
        check_arith(i, "op0")
        check_op_in(i, "op1", ("add", "subtract", "multiply", "maximum", "minimum"),
                    "the cumulative op1 must be")
        scalar_or_column(i, arch, "imm0")
        cmd = cmd_name(i.args.get("reduce_cmd"))
        if cmd not in ("reset_reduce", "reduce", "load_reduce"):
            fail(i, "reduce-cmd", f"reduce_cmd={cmd} is not supported; use reset_reduce, reduce or "
                 f"load_reduce", "reduce_cmd", cmd, "reset_reduce/reduce/load_reduce")
        if cmd == "load_reduce":
            scalar_or_column(i, arch, "imm1")

    def run(i, mem):
        a = i.args
        src = a["src"]
        P = src.shape[0]
        op0, op1 = A.alu(a["op0"]), A.alu(a["op1"])
        x = A.apply_alu(op0, read2d(mem, i, src), read_column(mem, i, "imm0", P))
        cmd = cmd_name(a.get("reduce_cmd"))
        ln = lanes(src)
        r = regs(mem, "DVE")
        if cmd == "reset_reduce":
            r[ln] = 0.0 if op1.name == "subtract" else op1.identity
        elif cmd == "load_reduce":
            r[ln] = np.broadcast_to(read_column(mem, i, "imm1", P), (P, 1)).reshape(P)
        acc = r[ln].copy()
        out = np.empty_like(x)
        for k in range(x.shape[1]):
            acc = A.apply_alu(op1, x[:, k], acc)
            out[:, k] = acc
        r[ln] = acc
        write2d(mem, a["dst"], out)

    def cost(i, arch):
        d = i.args["dst"]
        return stream_cost(i, arch, d.free_size, d, i.args["src"])


@defop("select_reduce", engine="DVE", outputs=("dst", "reduce_res"),
       inputs=("predicate", "on_true", "on_false"))
class SelectReduce:
    """dst = where(predicate, on_true, on_false) with an optional max-reduction to (P,1)."""

    def check(i, arch):
        dst, pred, on_true = view_arg(i, "dst"), view_arg(i, "predicate"), view_arg(i, "on_true")
        for n, v in (("dst", dst), ("predicate", pred), ("on_true", on_true)):
            check_onchip_operand(i, arch, n, v)
        check_same_free(i, [("dst", dst), ("predicate", pred), ("on_true", on_true)])
        check_not_both_psum(i, "on_true", "predicate")
        check_dtype(i, "predicate", pred, {"bool_", "int8", "uint8", "int16", "uint16"},
                    "predicates must be")
        if on_true.dtype in ("tfloat32", "int32", "uint32"):
            fail(i, "dtype", f"on_true dtype {on_true.dtype} is not supported (no tfloat32, int32 "
                 f"or uint32)", "on_true", on_true.dtype, "other dtypes")
        scalar_or_column(i, arch, "on_false")
        check_op_in(i, "reduce_op", ("maximum",), "reduce_op must be")
        rr = check_column(i, arch, "reduce_res", on_true.shape[0])
        if rr is not None:
            check_dtype(i, "reduce_res", rr, dtypes.FLOATS, "reduce_res must be a float dtype")

    def run(i, mem):
        a = i.args
        on_true = a["on_true"]
        P = on_true.shape[0]
        keep = read2d(mem, i, a["predicate"], None) != 0
        if a.get("reverse_pred"):
            keep = ~keep
        y = np.where(keep, read2d(mem, i, on_true), read_column(mem, i, "on_false", P))
        y = y.astype(np.float32)
        write2d(mem, a["dst"], y)
        _vector_reduce(mem, i, on_true, y, "idle")

    def cost(i, arch):
        d = i.args["dst"]
        return stream_cost(i, arch, d.free_size, d, i.args["on_true"])


def _vector_reduce(mem, i, lane_view, y, default_cmd):
    """Max-reduce ``y`` into the VectorE registers; with cmd idle a readout gets this result."""
    cmd = cmd_name(i.args.get("reduce_cmd", default_cmd))
    red = A.ALU["maximum"]
    part = reduce_free(red, y)
    if cmd == "idle":
        # VectorE state 'may still be modified' under idle: we store this instruction's result
        regs_now = accumulate(mem, "DVE", lanes(lane_view), "reset_reduce", red, part) \
            if i.args.get("reduce_res") is not None else None
    else:
        regs_now = accumulate(mem, "DVE", lanes(lane_view), cmd, red, part)
    if regs_now is not None:
        _readout(mem, i, "reduce_res", regs_now)


@defop("range_select", engine="DVE", outputs=("dst", "reduce_res"),
       inputs=("on_true_tile", "bound0", "bound1"))
class RangeSelect:
    """Keep element j where cmp0(range_start+j, bound0) & cmp1(range_start+j, bound1), else FP32_MIN."""

    def check(i, arch):
        check_generation(i, arch, 3)
        dst, x = view_arg(i, "dst"), view_arg(i, "on_true_tile")
        check_onchip_operand(i, arch, "dst", dst)
        check_onchip_operand(i, arch, "on_true_tile", x)
        check_same_free(i, [("dst", dst), ("on_true_tile", x)])
        check_dtype(i, "on_true_tile", x, FLOAT_DTS, "on_true_tile must be a float dtype")
        for b in ("bound0", "bound1"):
            bv = check_column(i, arch, b, x.shape[0], required=True)
            check_dtype(i, b, bv, {"float32"}, "bounds must be")
        check_op_in(i, "comp_op0", CMP_OPS, "comparisons must be")
        check_op_in(i, "comp_op1", CMP_OPS, "comparisons must be")
        check_op_in(i, "reduce_op", ("maximum",), "reduce_op must be")
        fv = i.args.get("on_false_value")
        if fv is not None and np.float32(fv) != np.float32(FP32_MIN):
            fail(i, "on-false-value", f"on_false_value must be FP32_MIN (-3.4028235e38), got {fv}",
                 "on_false_value", fv, FP32_MIN)
        cmd = cmd_name(i.args.get("reduce_cmd"))
        if cmd == "load_reduce":
            fail(i, "reduce-cmd", "reduce_cmd=load_reduce is not supported by range_select",
                 "reduce_cmd", cmd, "idle/reset/reduce/reset_reduce")
        check_column(i, arch, "reduce_res", x.shape[0])

    def run(i, mem):
        a = i.args
        x = a["on_true_tile"]
        P = x.shape[0]
        v = read2d(mem, i, x)
        idx = (np.float32(a.get("range_start") or 0) +
               np.arange(v.shape[1], dtype=np.float32)).reshape(1, -1)
        b0 = mem.read(a["bound0"], i.loc).astype(np.float32).reshape(P, 1)
        b1 = mem.read(a["bound1"], i.loc).astype(np.float32).reshape(P, 1)
        m = (A.apply_alu(A.alu(a["comp_op0"]), idx, b0) != 0) & \
            (A.apply_alu(A.alu(a["comp_op1"]), idx, b1) != 0)
        y = np.where(m, v, np.float32(FP32_MIN)).astype(np.float32)
        with np.errstate(over="ignore"):       # FP32_MIN becomes -inf in narrower dtypes
            write2d(mem, a["dst"], y)
        _vector_reduce(mem, i, x, y, "reset_reduce")

    def cost(i, arch):
        d = i.args["dst"]
        return stream_cost(i, arch, d.free_size, d, i.args["on_true_tile"])


@defop("exponential", engine="DVE", outputs=("dst", "reduce_res"),
       inputs=("src", "max_value", "reduce_init"))
class Exponential:
    """dst = exp(src - max_value) on VectorE (NeuronCore-v4+), optional running sum."""

    def check(i, arch):
        check_generation(i, arch, 4)
        dst, src = view_arg(i, "dst"), view_arg(i, "src")
        check_onchip_operand(i, arch, "dst", dst)
        check_onchip_operand(i, arch, "src", src)
        check_same_free(i, [("dst", dst), ("src", src)])
        scalar_or_column(i, arch, "max_value")
        cmd = cmd_name(i.args.get("reduce_cmd"))
        if cmd == "reset":
            fail(i, "reduce-cmd", "reduce_cmd=reset is not supported by exponential", "reduce_cmd",
                 cmd, "idle/reduce/reset_reduce/load_reduce")
        if cmd == "load_reduce":
            scalar_or_column(i, arch, "reduce_init")
        check_column(i, arch, "reduce_res", src.shape[0])

    def run(i, mem):
        a = i.args
        src = a["src"]
        P = src.shape[0]
        with np.errstate(all="ignore"):
            y = np.exp(read2d(mem, i, src) - read_column(mem, i, "max_value", P)).astype(np.float32)
        write2d(mem, a["dst"], y)
        cmd = cmd_name(a.get("reduce_cmd"))
        if cmd != "idle":
            r = accumulate(mem, "DVE", lanes(src), cmd, A.ALU["add"], reduce_free(A.ALU["add"], y),
                           init=read_column(mem, i, "reduce_init", P))
            _readout(mem, i, "reduce_res", r)

    def cost(i, arch):
        d = i.args["dst"]
        return stream_cost(i, arch, d.free_size / 4, d, i.args["src"])
