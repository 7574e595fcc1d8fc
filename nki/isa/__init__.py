"""Drop-in ``nki.isa`` (NKI 0.6): every instruction takes ``dst`` first and appends to the program.

    import nki.isa as nisa
    nisa.tensor_tensor(dst=out, data1=a, data2=b, op=nl.add)
"""
from __future__ import annotations

import enum

from device.errors import UserKernelError, user_loc

from ..tracing import current, maybe_current


class engine(enum.IntEnum):
    unknown = 0
    tensor = 1
    scalar = 2
    gpsimd = 3
    dma = 4
    vector = 5
    sync = 6


tensor_engine, scalar_engine, gpsimd_engine, vector_engine, unknown_engine, sync_engine = (
    engine.tensor, engine.scalar, engine.gpsimd, engine.vector, engine.unknown, engine.sync)


class reduce_cmd(enum.IntEnum):
    idle = 0
    reset = 1
    reduce = 2
    reset_reduce = 3
    load_reduce = 4


class dge_mode(enum.IntEnum):
    unknown = 0
    swdge = 1
    hwdge = 2
    none = 3


class oob_mode(enum.IntEnum):
    error = 0
    skip = 1


class matmul_perf_mode(str, enum.Enum):
    none = "none"
    double_row = "double_row"


class nc_version(enum.IntEnum):
    gen2 = 2
    gen3 = 3
    gen4 = 4


class dma_engine(enum.IntEnum):
    dma = 1
    gpsimd_dma = 2


class NkiValidationError(Exception):
    """Hardware constraints violated."""


def get_nc_version():
    t = maybe_current()
    from device.arch import get_arch
    return nc_version((t.arch if t is not None else get_arch()).gen)


def get_nc_sub_version():
    return 0


class dependency(enum.Enum):
    """Kind of a scheduling edge (``NkiInstruction.depends_on(..., kind=...)``): ``runtime`` is a
    hardware semaphore wait, ``schedule`` only constrains issue order. The emulator orders both
    the same way (the executor is in-order; the timing model starts the consumer after the
    producer ends)."""
    runtime = "runtime"
    schedule = "schedule"


class NkiInstruction:
    """Handle returned by every instruction; ``c.depends_on(a, b)`` orders c after a and b.

        a = nisa.reciprocal(dst=r, data=x)
        b = nisa.tensor_scalar(dst=s, data=x, op0=nl.add, operand0=1.0)
        b.depends_on(a)                    # b starts after a ends (returns b, so calls chain)
    """

    def __init__(self, instr):
        self.instr = instr

    def depends_on(self, *producers, kind=None):
        if kind is not None and not isinstance(kind, dependency):
            raise UserKernelError(f"depends_on: kind must be an nisa.dependency value, got "
                                  f"{kind!r}")
        tr = current("NkiInstruction.depends_on")
        for p in producers:
            if not isinstance(p, NkiInstruction):
                raise UserKernelError(f"depends_on: producers are the handles nisa calls return, "
                                      f"got {type(p).__name__}", loc=user_loc())
            tr.program.info.sched_pairs.append((self.instr, p.instr))
        return self

    def __repr__(self):
        return f"<nisa.{self.instr.op.name} on {self.instr.engine}>"


from .instructions import *  # noqa: E402,F401,F403
from . import constants  # noqa: E402,F401  (kernels reach nki.isa.constants.* after import nki)
from ..language.control import (VirtualRegister, register_alloc, register_load,  # noqa: E402,F401
                                register_move, register_store)

from ..docs import document_isa  # noqa: E402
from .examples import CLASSES as _CLASSES, ISA as _ISA  # noqa: E402

document_isa(globals(), _ISA, _CLASSES)
del document_isa
