"""Vector, Scalar and GpSimd compute instructions (SPEC 3.2 'Vector / Scalar / GpSimd compute')."""
from __future__ import annotations

import numpy as np

from .. import alu as A
from .. import dtypes
from ..errors import UserKernelError
from ..tensor import View
from . import accum, defop
from .costs import stream_cost, two_input_passes
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
        vs = i.views(("dst", "data1", "data2"))
        ints = all(v.dtype in ("int32", "uint32") for v in vs)
        if any(v.buffer.kind == "psum" for v in vs):      # GpSimd cannot reach PSUM
            return "DVE"
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
        if i.engine == "POOL" and op.kind == "arith" and op.name not in ("power", "divide") and \
                all(v.dtype in ("int32", "uint32") for v in (dst, a, b)):
            # GpSimd computes int32/uint32 operands natively, not through fp32 (SPEC 3.2,
            # nki.isa.tensor_tensor: "native integer arithmetic ... exact results for all 32-bit
            # integer values"): a result outside the destination's range wraps modulo 2**32 as
            # 32-bit two's-complement ALUs do, where the fp32 path of the Vector engine saturates.
            x, y = read2d(mem, i, a, np.int64), read2d(mem, i, b, np.int64)
            with np.errstate(all="ignore"):
                r = np.asarray(op.fn(x, y))
            write2d(mem, dst, A.wrap_int(r, dtypes.to_numpy(dst.dtype)))
            return
        raw = op.kind == "bitvec"
        x = read2d(mem, i, a, None if raw else np.float32)
        y = read2d(mem, i, b, None if raw else np.float32)
        write2d(mem, dst, A.apply_alu(op, x, y))

    def cost(i, arch):
        dst, a, b = i.args["dst"], i.args["data1"], i.args["data2"]
        all_16 = all(v.dtype in ("bfloat16", "float16") for v in (dst, a, b))
        passes = 1.0 if all_16 else two_input_passes(arch, a, b)        # CM 2.3
        return stream_cost(i, arch, dst.free_size, dst, a, b, passes=passes)


def _tensor_scalar_apply(x, op, operand, reverse):
    if op is None:
        return x
    op = A.alu(op)
    if op.unary:              # rsqrt, abs, ...: the operand is ignored, so reverse has no effect
        return A.apply_alu(op, x, None)
    return A.apply_alu(op, operand, x) if reverse else A.apply_alu(op, x, operand)


def _tensor_scalar_engine_rules(i, arch, kinds):
    """Which engine may run which tensor_scalar ops (SPEC 3.2, 2.10)."""
    ops = (A.op_name(i.args.get("op0")), A.op_name(i.args.get("op1")))
    ops = tuple(o for o in ops if o not in (None, "bypass"))
    if "bitvec" in kinds and i.engine != "DVE":
        fail(i, "engine", f"bitvec ops {ops} run on the Vector engine only, not "
             f"{_ENGINE_NAME.get(i.engine, i.engine)}", "engine", i.engine, "vector")
    if i.engine == "POOL" and ops != ("rsqrt",):
        fail(i, "engine", f"GpSimd runs tensor_scalar only for op0=rsqrt (no op1), got "
             f"{' then '.join(ops)}; use the Vector engine", "engine", "gpsimd", "op0=rsqrt")
    if i.engine == "ACT" and arch.gen <= 3 and ops not in _ACT_TS_OPS:
        fail(i, "engine", f"ScalarE tensor_scalar on {arch.name} supports only (multiply, add), "
             f"(multiply) or (add); got ({', '.join(ops)})", "engine", "scalar",
             "(multiply, add)/(multiply)/(add)")


_ENGINE_NAME = {"DVE": "VectorE", "ACT": "ScalarE", "POOL": "GpSimd", "PE": "TensorE"}
_ACT_TS_OPS = {("multiply", "add"), ("multiply",), ("add",)}


@defop("tensor_scalar", engine="DVE", inputs=("data", "operand0", "operand1"))
class TensorScalar:
    """dst = (data op0 operand0) op1 operand1; operands are scalars or (P,1) tiles; reverseK swaps."""

    def check(i, arch):
        dst, data = view_arg(i, "dst"), view_arg(i, "data")
        check_onchip_operand(i, arch, "dst", dst)
        check_onchip_operand(i, arch, "data", data)
        _no_gpsimd_psum(i, ("dst", "data"))
        check_same_free(i, [("dst", dst), ("data", data)])
        # op0=None skips the first stage like nl.bypass (the library's clamp kernels pass
        # op0=None, operand0=None when only a lower bound is given); operand0 is then unused.
        kinds = set()
        if i.args.get("op0") is not None:
            scalar_or_column(i, arch, "operand0")
            kinds.add(A.alu(i.args["op0"]).kind)
        if i.args.get("op1") is not None:
            scalar_or_column(i, arch, "operand1")
            kinds.add(A.alu(i.args["op1"]).kind)
        kinds.discard("bypass")
        if len(kinds) > 1:
            fail(i, "alu-op-kind", "op0 and op1 must both be bitvec or both arithmetic", "op1",
                 i.args.get("op1"), "same kind as op0")
        _tensor_scalar_engine_rules(i, arch, kinds)

    def run(i, mem):
        dst, data = i.args["dst"], i.args["data"]
        P = data.shape[0]
        bit = any(A.alu(i.args[k]).kind == "bitvec" for k in ("op0", "op1")
                  if i.args.get(k) is not None)
        x = read2d(mem, i, data, None if bit else np.float32)

        def operand(n):
            o = i.args.get(n)
            if bit:
                return (mem.read(o, i.loc).reshape(P, 1) if isinstance(o, View)
                        else np.asarray(o).astype(x.dtype))
            return read_scalar(mem, i, n, P)
        y = x
        if i.args.get("op0") is not None:
            y = _tensor_scalar_apply(x, i.args["op0"], operand("operand0"), i.args.get("reverse0"))
        if i.args.get("op1") is not None:
            y = _tensor_scalar_apply(y, i.args["op1"], operand("operand1"), i.args.get("reverse1"))
        write2d(mem, dst, y)

    def cost(i, arch):
        return stream_cost(i, arch, i.args["dst"].free_size, i.args["dst"], i.args["data"])


def _activation_rules(i, arch, dst):
    """bias/reduce rules of activation (SPEC 3.2; nki.isa.activation / activation_reduce docs)."""
    bias = i.args.get("bias")
    if bias is not None and not isinstance(bias, View) and arch.gen == 2:
        fail(i, "activation-bias", f"bias={bias} is a scalar; on NeuronCore-v2 bias must be a "
             f"({dst.shape[0]}, 1) tile", "bias", bias, f"({dst.shape[0]}, 1) tile")
    if isinstance(bias, View) and bias.dtype == "tfloat32":
        fail(i, "dtype", "bias cannot be tfloat32", "bias", bias.dtype, "any dtype but tfloat32")
    if bias is not None and arch.gen == 2 and A.op_name(i.args.get("op")) == "reciprocal":
        fail(i, "activation-bias", "activation(op=reciprocal) accepts no bias on NeuronCore-v2",
             "bias", "given", None)
    cmd = accum.cmd_name(i.args.get("reduce_cmd"))
    if cmd == "load_reduce":
        fail(i, "reduce-cmd", "reduce_cmd=load_reduce is not supported by activation; use "
             "reset, reduce, reset_reduce or idle", "reduce_cmd", cmd, "idle/reset/reduce/reset_reduce")
    rop = i.args.get("reduce_op")
    if rop is not None:
        # the activation doc says add only; activation_reduce says add only on v2
        allowed = ("add",) if arch.gen == 2 else ("add", "maximum", "minimum")
        accum.check_op_in(i, "reduce_op", allowed, f"on {arch.name} reduce_op must be")
    accum.check_column(i, arch, "reduce_res", dst.shape[0])


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
        _activation_rules(i, arch, dst)

    def run(i, mem):
        dst, data = i.args["dst"], i.args["data"]
        P = data.shape[0]
        x = read2d(mem, i, data)
        scale = i.args.get("scale")
        if scale is not None:
            with np.errstate(over="ignore", invalid="ignore"):   # fp32 overflow gives inf, as on device
                x = x * (read_scalar(mem, i, "scale", P) if isinstance(scale, View) else np.float32(scale))
        if i.args.get("bias") is not None:
            with np.errstate(over="ignore", invalid="ignore"):
                x = x + read_scalar(mem, i, "bias", P)
        y = A.apply_act(A.act(i.args["op"]), x.astype(np.float32))
        write2d(mem, dst, y)
        # ScalarE reduce_regs: reset zeroes them, reduce/reset_reduce fold this result in, idle
        # leaves them; reduce_res reads them out (activation pseudo-code, NKI 0.6).
        cmd = accum.cmd_name(i.args.get("reduce_cmd"))
        red = A.alu(i.args.get("reduce_op") or "add")
        part = accum.reduce_free(red, y) if cmd in ("reduce", "reset_reduce") else None
        r = accum.accumulate(mem, "ACT", accum.lanes(data), cmd, red, part, identity=0.0)
        if i.args.get("reduce_res") is not None:
            write2d(mem, i.args["reduce_res"], r)

    def cost(i, arch):
        extra = arch.min_ii_cycles if i.args.get("reduce_res") is not None else 0  # readout instr
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
            # a converting copy goes through fp32 (SPEC 3.2 tensor_copy), ints included
            write2d(mem, dst, read2d(mem, i, src, None).astype(np.float32))

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
        if dst.dtype in dtypes.PACKED and float(v) != 0:
            fail(i, "dtype", f"memset of x4-packed dtype {dst.dtype} accepts only 0, got {v}",
                 "value", v, 0)

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
