"""ScalarE activate2 (NeuronCore-v4; SPEC 3.2, nki.isa.activate2 docs).

``dst = op((data op0 imm0) op1 imm1, relu_param)`` with an optional free-axis reduction into the
ScalarE ``reduce_regs`` that ``activation`` shares. The affine stage is one of six documented
(op0, op1) pairs; each stage rounds to fp32 like the rest of the engine.
"""
from __future__ import annotations


from .. import alu as A
from ..tensor import View
from . import defop
from .accum import (accumulate, check_column, check_generation, check_op_in, cmd_name, lanes,
                    read_column, reduce_free)
from .costs import stream_cost
from .rules import check_onchip_operand, check_same_free, fail, read2d, scalar_or_column, view_arg, write2d

# (op0, op1) pairs of the tensor-scalar stage, as table names ("bypass" = no operation)
PAIRS = (("multiply", "add"), ("multiply", "subtract"), ("multiply", "bypass"), ("add", "bypass"),
         ("subtract", "bypass"), ("bypass", "bypass"))
REDUCE_OPS = ("add", "maximum", "minimum", "abs_max", "abs_min")


def _op(i, name):
    tok = i.args.get(name)
    return "bypass" if tok is None else A.op_name(tok)


def _stage(x, op, imm, reverse):
    if op == "bypass":
        return x
    alu = A.ALU[op]
    return A.apply_alu(alu, imm, x) if reverse else A.apply_alu(alu, x, imm)


@defop("activate2", engine="ACT", outputs=("dst", "reduce_res"),
       inputs=("data", "imm0", "imm1", "relu_param"))
class Activate2:
    """dst = op((data op0 imm0) op1 imm1) on ScalarE (v4+); optional reduce into reduce_regs."""

    def check(i, arch):
        check_generation(i, arch, 4)
        dst, data = view_arg(i, "dst"), view_arg(i, "data")
        A.act(i.args.get("op"))
        check_onchip_operand(i, arch, "dst", dst)
        check_onchip_operand(i, arch, "data", data)
        check_same_free(i, [("dst", dst), ("data", data)])
        op0, op1 = _op(i, "op0"), _op(i, "op1")
        if (op0, op1) not in PAIRS:
            fail(i, "alu-op", f"(op0, op1) = ({op0}, {op1}) is not supported; the tensor-scalar "
                 f"stage takes one of {', '.join(f'({a}, {b})' for a, b in PAIRS)}", "op1",
                 (op0, op1), [list(p) for p in PAIRS])
        for k, op in (("0", op0), ("1", op1)):
            if i.args.get(f"reverse{k}") and op == "bypass":
                fail(i, "alu-op", f"reverse{k}=True requires op{k} to be set (it is bypass)",
                     f"reverse{k}", True, f"op{k} != bypass")
        for n in ("imm0", "imm1", "relu_param"):
            scalar_or_column(i, arch, n, required=False)
        ims = [i.args.get(n) for n in ("imm0", "imm1")]
        if all(isinstance(v, View) for v in ims) and ims[0].dtype != ims[1].dtype:
            fail(i, "dtype", f"imm0 ({ims[0].dtype}) and imm1 ({ims[1].dtype}) tensors must have "
                 f"the same dtype", "imm1", ims[1].dtype, ims[0].dtype)
        for v in ims:
            if isinstance(v, View) and v.shape[0] != data.shape[0]:
                fail(i, "shape-mismatch", f"immediate tile has {v.shape[0]} partitions but data "
                     f"has {data.shape[0]}", "imm", v.shape[0], data.shape[0])
        cmd = cmd_name(i.args.get("reduce_cmd"))
        if cmd == "load_reduce":
            fail(i, "reduce-cmd", "reduce_cmd=load_reduce is not supported by activate2; use "
                 "reset, reduce, reset_reduce or idle", "reduce_cmd", cmd,
                 "idle/reset/reduce/reset_reduce")
        if i.args.get("reduce_op") is not None:
            check_op_in(i, "reduce_op", REDUCE_OPS, "activate2 reduce_op must be")
        elif cmd in ("reduce", "reset_reduce"):
            fail(i, "reduce-op", f"reduce_cmd={cmd} needs a reduce_op", "reduce_op", None,
                 list(REDUCE_OPS))
        check_column(i, arch, "reduce_res", dst.shape[0])

    def run(i, mem):
        a = i.args
        dst, data = a["dst"], a["data"]
        P = data.shape[0]
        x = read2d(mem, i, data)
        x = _stage(x, _op(i, "op0"), read_column(mem, i, "imm0", P), a.get("reverse0"))
        x = _stage(x, _op(i, "op1"), read_column(mem, i, "imm1", P), a.get("reverse1"))
        rp = read_column(mem, i, "relu_param", P)
        y = A.apply_act(A.act(a["op"]), x, relu_param=rp)
        write2d(mem, dst, y)
        # reset / reset_reduce set the registers to reduce_op's identity (activate2 docs)
        cmd = cmd_name(a.get("reduce_cmd"))
        red = A.alu(a.get("reduce_op") or "add")
        part = reduce_free(red, y) if cmd in ("reduce", "reset_reduce") else None
        r = accumulate(mem, "ACT", lanes(data), cmd, red, part)
        if a.get("reduce_res") is not None:
            write2d(mem, a["reduce_res"], r)

    def cost(i, arch):
        extra = arch.min_ii_cycles if i.args.get("reduce_res") is not None else 0  # readout instr
        return stream_cost(i, arch, i.args["dst"].free_size, i.args["dst"], i.args["data"],
                           extra_cycles=extra)
