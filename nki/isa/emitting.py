"""How an ``nisa`` call becomes an instruction: the trace's program gets it at the user's line,
with the engine the caller named and tensor indirection checked for the target."""
from __future__ import annotations

from device.errors import UserKernelError, user_loc
from device.tensor import View

from ..tracing import current
from . import NkiInstruction, engine

ENGINE_NAMES = {engine.tensor: "PE", engine.scalar: "ACT", engine.gpsimd: "POOL",
                engine.vector: "DVE", engine.sync: "SP", engine.dma: "DMA"}


def emit(opname, eng=None, name=None, **args):
    tr = current(f"nisa.{opname}")
    if eng is not None and not isinstance(eng, engine):
        raise UserKernelError(f"nisa.{opname}: engine must be an nisa.engine value, got {eng!r}")
    kw = {}
    if eng is not None and eng != engine.unknown:
        kw["engine"] = ENGINE_NAMES[eng]
        args["_engine_given"] = True
    for k, v in list(args.items()):
        if isinstance(v, View) and v.dyn is not None and v.dyn[0] == "indirect":
            args[k] = indirect_for(tr, opname, k, v, kw.get("engine"))
    ins = tr.program.emit(opname, loc=user_loc(3), name=name, **kw, **args)
    return NkiInstruction(ins)


def indirect_for(tr, opname, operand, v, eng):
    """Tensor indirection is NeuronCore-v4+; TensorE reads offsets in groups of 32 partitions."""
    if tr.arch.gen < 4:
        from device.errors import HardwareRuleError
        raise HardwareRuleError(
            "generation", f"nisa.{opname}: operand '{operand}' uses tensor indirection "
            f"(.indirect), which needs NeuronCore-v4 (trn3); target {tr.arch.name} is "
            f"NeuronCore-v{tr.arch.gen}", operand=operand, value=tr.arch.name, limit="trn3",
            loc=user_loc(4))
    _, index, base, group = v.dyn
    want = 32 if (eng == "PE" or opname in ("nc_matmul", "nc_matmul_mx")) else 16
    if want != group:
        v = base.indirect(index, num_elem=v.shape[1], group=want)
    return v


def drop_legacy_dtype(dst, dtype):
    from device import dtypes
    if dtype is not None and dtypes.normalize(dtype) != dst.dtype:
        raise UserKernelError(f"dtype={dtype} differs from dst.dtype={dst.dtype}; in NKI 0.2+ the "
                              f"output dtype is dst.dtype")
