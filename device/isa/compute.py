"""Vector, Scalar and GpSimd compute instructions (SPEC 3.2 'Vector / Scalar / GpSimd compute')."""
from __future__ import annotations

import numpy as np

from .. import alu as A
from .. import dtypes
from ..errors import UserKernelError
from ..tensor import View
from . import defop
from .costs import stream_cost
from .rules import (check_dtype, check_not_both_psum, check_onchip_operand, check_same_free, fail,
                    is_int, read2d, read_scalar, scalar_or_column, view_arg, write2d)

ENGINE_OK = {"DVE", "ACT", "POOL"}


def _no_gpsimd_psum(i, names):
    if i.engine == "POOL":
        for n in names:
            v = i.args.get(n)
            if isinstance(v, View) and v.buffer.kind == "psum":
                fail(i, "buffer", f"operand '{n}' is in PSUM; GpSimd cannot access PSUM", n,
                     "psum", "sbuf")


@defop("tensor_tensor", engine="DVE", inputs=("data1", "data2"))
class TensorTensor:
    """dst = data1 <op> data2, element-wise; arithmetic in fp32, bitvec ops on raw integer bits."""

    def pick_engine(i, arch):
        if i.args.get("_engine_given"):
            return i.engine
        op = A.alu(i.args["op"])
        ints = all(v.dtype in ("int32", "uint32") for v in i.views(("dst", "data1", "data2")))
        return "POOL" if op.name == "power" or (ints and op.kind != "bitvec") else "DVE"

    def check(i, arch):
        dst, a, b = view_arg(i, "dst"), view_arg(i, "data1"), view_arg(i, "data2")
        op = A.alu(i.args.get("op"))
        for n, v in (("dst", dst), ("data1", a), ("data2", b)):
            check_onchip_operand(i, arch, n, v)
        check_same_free(i, [("dst", dst), ("data1", a), ("data2", b)])
        check_not_both_psum(i, "data1", "data2")
        if op.kind == "bitvec":
            for n, v in (("dst", dst), ("data1", a), ("data2", b)):
                check_dtype(i, n, v, dtypes.INTS, f"bitwise op {op.name} needs integer dtypes")

    def run(i, mem):
        dst, a, b = i.args["dst"], i.args["data1"], i.args["data2"]
        op = A.alu(i.args["op"])
        raw = op.kind == "bitvec"
        x = read2d(mem, i, a, None if raw else np.float32)
        y = read2d(mem, i, b, None if raw else np.float32)
        write2d(mem, dst, A.apply_alu(op, x, y))

    def cost(i, arch):
        dst, a, b = i.args["dst"], i.args["data1"], i.args["data2"]
        one_psum = (a.buffer.kind == "psum") != (b.buffer.kind == "psum")
        all_bf16 = all(v.dtype in ("bfloat16", "float16") for v in (dst, a, b))
        passes = 1.0 if (one_psum or all_bf16) else 2.0
        return stream_cost(i, arch, dst.free_size, dst, a, b, passes=passes)


def _tensor_scalar_apply(x, op, operand, reverse):
    if op is None:
        return x
    op = A.alu(op)
    return A.apply_alu(op, operand, x) if reverse else A.apply_alu(op, x, operand)


@defop("tensor_scalar", engine="DVE", inputs=("data", "operand0", "operand1"))
class TensorScalar:
    """dst = (data op0 operand0) op1 operand1; operands are scalars or (P,1) tiles; reverseK swaps."""

    def check(i, arch):
        dst, data = view_arg(i, "dst"), view_arg(i, "data")
        check_onchip_operand(i, arch, "dst", dst)
        check_onchip_operand(i, arch, "data", data)
        _no_gpsimd_psum(i, ("dst", "data"))
        check_same_free(i, [("dst", dst), ("data", data)])
        scalar_or_column(i, arch, "operand0")
        kinds = {A.alu(i.args["op0"]).kind}
        if i.args.get("op1") is not None:
            scalar_or_column(i, arch, "operand1")
            kinds.add(A.alu(i.args["op1"]).kind)
        kinds.discard("bypass")
        if len(kinds) > 1:
            fail(i, "alu-op-kind", "op0 and op1 must both be bitvec or both arithmetic", "op1",
                 i.args.get("op1"), "same kind as op0")

    def run(i, mem):
        dst, data = i.args["dst"], i.args["data"]
        P = data.shape[0]
        bit = A.alu(i.args["op0"]).kind == "bitvec"
        x = read2d(mem, i, data, None if bit else np.float32)

        def operand(n):
            o = i.args.get(n)
            if bit:
                return (mem.read(o, i.loc).reshape(P, 1) if isinstance(o, View)
                        else np.asarray(o).astype(x.dtype))
            return read_scalar(mem, i, n, P)
        y = _tensor_scalar_apply(x, i.args["op0"], operand("operand0"), i.args.get("reverse0"))
        if i.args.get("op1") is not None:
            y = _tensor_scalar_apply(y, i.args["op1"], operand("operand1"), i.args.get("reverse1"))
        write2d(mem, dst, y)

    def cost(i, arch):
        return stream_cost(i, arch, i.args["dst"].free_size, i.args["dst"], i.args["data"])


@defop("activation", engine="ACT", outputs=("dst", "reduce_res"), inputs=("data", "bias", "scale"))
class Activation:
    """dst = op(data * scale + bias) on ScalarE; optional add-reduce along free dims into reduce_res."""

    def check(i, arch):
        dst, data = view_arg(i, "dst"), view_arg(i, "data")
        A.act(i.args.get("op"))
        check_onchip_operand(i, arch, "dst", dst)
        check_onchip_operand(i, arch, "data", data)
        check_same_free(i, [("dst", dst), ("data", data)])
        if i.args.get("bias") is not None:
            scalar_or_column(i, arch, "bias")
        if isinstance(i.args.get("scale"), View) or i.args.get("scale") is not None:
            scalar_or_column(i, arch, "scale", required=False)
        rr = i.args.get("reduce_res")
        if rr is not None:
            check_onchip_operand(i, arch, "reduce_res", rr)
            if rr.free_size != 1 or rr.shape[0] != dst.shape[0]:
                fail(i, "shape-mismatch", f"reduce_res must be ({dst.shape[0]}, 1), got "
                     f"{list(rr.shape)}", "reduce_res", list(rr.shape), [dst.shape[0], 1])

    def run(i, mem):
        dst, data = i.args["dst"], i.args["data"]
        P = data.shape[0]
        x = read2d(mem, i, data)
        scale = i.args.get("scale")
        if scale is not None:
            x = x * (read_scalar(mem, i, "scale", P) if isinstance(scale, View) else np.float32(scale))
        if i.args.get("bias") is not None:
            x = x + read_scalar(mem, i, "bias", P)
        y = A.apply_act(A.act(i.args["op"]), x.astype(np.float32))
        write2d(mem, dst, y)
        if i.args.get("reduce_res") is not None:
            red = A.alu(i.args.get("reduce_op") or "add")
            write2d(mem, i.args["reduce_res"], _reduce(red, y, [1], False))

    def cost(i, arch):
        extra = arch.min_ii_cycles if i.args.get("reduce_res") is not None else 0
        return stream_cost(i, arch, i.args["dst"].free_size, i.args["dst"], i.args["data"],
                           extra_cycles=extra)


@defop("tensor_copy", engine="DVE", inputs=("src",))
class TensorCopy:
    """dst = src; bit-exact when dtypes match, otherwise converted through fp32."""

    def check(i, arch):
        dst, src = view_arg(i, "dst"), view_arg(i, "src")
        check_onchip_operand(i, arch, "dst", dst)
        check_onchip_operand(i, arch, "src", src)
        _no_gpsimd_psum(i, ("dst", "src"))
        check_same_free(i, [("dst", dst), ("src", src)])
        if i.engine == "ACT" and arch.gen == 2:
            fail(i, "engine", "ScalarE cannot tensor_copy on NeuronCore-v2; use "
                 "activation(op=nl.copy)", "engine", "scalar", "vector/gpsimd")

    def run(i, mem):
        dst, src = i.args["dst"], i.args["src"]
        if dst.dtype == src.dtype:
            mem.write(dst, mem.read(src, i.loc).reshape(dst.shape), rounded=True)
        else:
            write2d(mem, dst, read2d(mem, i, src, None).astype(np.float32)
                    if not is_int(src) else read2d(mem, i, src, np.float64))

    def cost(i, arch):
        return stream_cost(i, arch, i.args["dst"].free_size, i.args["dst"], i.args["src"])


@defop("memset", engine="DVE", inputs=())
class Memset:
    """Fill dst with a constant value (the value kind must match the dst dtype)."""

    def check(i, arch):
        dst = view_arg(i, "dst")
        check_onchip_operand(i, arch, "dst", dst)
        v = i.args.get("value")
        if not isinstance(v, (int, float, bool, np.integer, np.floating)):
            raise UserKernelError(f"memset: value must be a number, got {type(v).__name__}", loc=i.loc)
        if is_int(dst) and isinstance(v, (float, np.floating)) and float(v) != int(v):
            fail(i, "dtype", f"value {v} is a float but dst has integer dtype {dst.dtype}", "value", v,
                 dst.dtype)

    def run(i, mem):
        dst = i.args["dst"]
        v = i.args["value"]
        vals = np.full(dst.shape, v, dtype=np.float64 if not is_int(dst) else np.int64)
        mem.write(dst, vals)

    def cost(i, arch):
        dst = i.args["dst"]
        half = float(i.args["value"]) == 0 and dst.dtype in ("bfloat16", "float16")
        return stream_cost(i, arch, dst.free_size / (2 if half else 1), dst)


def _reduce(op, x, axes, bit):
    if bit:
        fn = op.fn
        out = x
        for ax in sorted(axes, reverse=True):
            out = fn.reduce(out, axis=ax, keepdims=True)
        return out
    if op.name in ("add", "average"):
        return np.sum(x, axis=tuple(axes), keepdims=True, dtype=np.float32)
    if op.name == "multiply":
        return np.prod(x, axis=tuple(axes), keepdims=True, dtype=np.float32)
    if op.name == "maximum":
        return np.max(x, axis=tuple(axes), keepdims=True)
    if op.name == "minimum":
        return np.min(x, axis=tuple(axes), keepdims=True)
    out = x
    for ax in sorted(axes, reverse=True):
        out = np.apply_along_axis(lambda r: _fold(op, r), ax, out)
        out = np.expand_dims(out, ax)
    return out


def _fold(op, r):
    acc = np.float32(op.identity if op.identity is not None else r[0])
    for v in r:
        acc = A.apply_alu(op, acc, v)
    return acc


@defop("tensor_reduce", engine="DVE", inputs=("data",))
class TensorReduce:
    """Reduce the trailing contiguous free axes of data with op (axis 0, the partition, excluded)."""

    def _axes(i):
        data = i.args["data"]
        ax = i.args.get("axis")
        ax = [ax] if isinstance(ax, int) else list(ax)
        return [a + data.ndim if a < 0 else a for a in ax]

    def check(i, arch):
        dst, data = view_arg(i, "dst"), view_arg(i, "data")
        check_onchip_operand(i, arch, "dst", dst)
        check_onchip_operand(i, arch, "data", data)
        axes = sorted(TensorReduce._axes(i))
        op = A.alu(i.args.get("op"))
        if op.identity is None and op.name not in ("average",):
            fail(i, "reduce-op", f"op {op.name} cannot be used as a reduction", "op", op.name,
                 "add/multiply/maximum/minimum/bitwise_*/logical_*")
        if 0 in axes:
            fail(i, "reduce-axis", "cannot reduce along the partition axis 0; use "
                 "tensor_partition_reduce or a matmul", "axis", axes, "free axes")
        if axes != list(range(data.ndim - len(axes), data.ndim)):
            fail(i, "reduce-axis", f"axis {axes} must be the trailing contiguous free axes of a "
                 f"{data.ndim}-D tensor", "axis", axes, list(range(data.ndim - len(axes), data.ndim)))
        kept = 1
        for d in range(1, data.ndim - len(axes)):
            kept *= data.shape[d]
        if dst.shape[0] != data.shape[0] or dst.free_size != kept:
            fail(i, "shape-mismatch", f"dst shape {list(dst.shape)} does not match the reduction of "
                 f"{list(data.shape)} over axes {axes}", "dst", list(dst.shape),
                 [data.shape[0], kept])
        if op.kind == "arith" and i.args.get("negate") is False:
            pass

    def run(i, mem):
        dst, data = i.args["dst"], i.args["data"]
        op = A.alu(i.args["op"])
        bit = op.kind == "bitvec"
        x = mem.read(data, i.loc)
        x = x if bit else x.astype(np.float32)
        r = _reduce(op, x, TensorReduce._axes(i), bit)
        if op.name == "average":
            r = r / np.float32(np.prod([data.shape[a] for a in TensorReduce._axes(i)]))
        if i.args.get("negate"):
            r = -r
        mem.write(dst, np.asarray(r).reshape(dst.shape))

    def cost(i, arch):
        data, dst = i.args["data"], i.args["dst"]
        n = data.free_size
        if data.dtype == dst.dtype == "bfloat16" and A.op_name(i.args["op"]) in ("add", "maximum"):
            n /= 2
        return stream_cost(i, arch, n, data)
