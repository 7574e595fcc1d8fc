"""``kernel_call``: a registered NKI kernel lowered inline into the model's program.

The kernel is traced for the call's operand types (``KernelEntry.trace``: the kernel's own
device program, verified by its front end) and its instructions are copied into the model's
program with their source locations (the kernel's lines), each of the kernel's storages
replaced by one of the model's: inputs by the operands' HBM tensors, everything else by a fresh
allocation of the same shape, dtype and buffer. The model's allocator then places the kernel's
tiles with everything else, so one program holds the model and its kernels: one run, one
profile. Kernels using device loops / registers or several logical cores are refused by name.
"""
from __future__ import annotations

from device.errors import UserKernelError
from device.tensor import View

from ...ir.ops.kernel_call import kernel_entry
from ..registry import lowers

_NOT_INLINED = {"fori_loop", "while_loop", "register_move", "register_load", "register_store"}


@lowers("kernel_call")
def lower_kernel_call(lw, op, inputs, sched):
    entry = kernel_entry(op.attrs["kernel"])
    prog = entry.trace([v.type for v in op.inputs], lw.arch)
    return inline_program(lw, prog, inputs, entry.name)


def inline_program(lw, prog, inputs, name: str):
    """Copy ``prog``'s instructions into ``lw``'s program over ``inputs``; its output views."""
    if prog.info.lnc != 1:
        raise UserKernelError(f"kernel {name} runs on {prog.info.lnc} logical cores; only "
                              f"single-core kernels are inlined into models", loc=lw.loc)
    if len(prog.inputs) != len(inputs):
        raise UserKernelError(f"kernel {name} takes {len(prog.inputs)} arrays, the call gives "
                              f"{len(inputs)}", loc=lw.loc)
    smap = {}
    for st, v in zip(prog.inputs, inputs):
        v = lw.contiguous(v)
        if v.offset or v.size != v.storage.size or v.dtype != st.dtype:
            copy = lw.hbm(v.shape, v.dtype)
            lw.emit("dma_copy", dst=copy, src=v)
            v = copy
        smap[st.id] = v.storage
    for st in prog.storages:
        if st.id not in smap:
            smap[st.id] = lw.p.alloc(st.shape, st.dtype, st.buffer, name=f"{name}.{st.name}",
                                     loc=st.loc, kind="const" if st.const is not None else
                                     "tile", const=st.const).storage

    def remap(a):
        if isinstance(a, View):
            dyn = a.dyn
            if dyn is not None:
                dyn = tuple(remap(x) for x in dyn)
            return View(smap[a.storage.id], a.offset, a.pattern, a.dtype, dyn)
        if isinstance(a, (list, tuple)):
            return type(a)(remap(x) for x in a)
        return a

    for ins in prog.instrs:
        if ins.op.name in _NOT_INLINED:
            raise UserKernelError(f"kernel {name} uses {ins.op.name} (device loops/registers); "
                                  f"such kernels are not inlined into models yet (unroll the "
                                  f"loop with a Python range)", loc=ins.loc)
        args = {k: remap(v) for k, v in ins.args.items()}
        lw.p.emit(ins.op.name, loc=ins.loc, engine=ins.engine, name=ins.name, **args)
    outs = []
    for v in prog.info.output_views:
        outs.append(lw.contiguous(remap(v)))
    return tuple(outs)
