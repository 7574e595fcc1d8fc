"""The executor: runs a device program on emulated memory, one instruction at a time, in order.

NKI's semantics are sequential (the compiler only reorders independent work), so an in-order run
is faithful; the timing model, not the executor, decides what overlaps.

    >>> # outputs = run(program, [a, b])   # NumPy arrays in, NumPy arrays out
"""
from __future__ import annotations

import numpy as np

from .memory import Memory
from .program import Program
from .settings import settings
from .tensor import View


def run(program: Program, inputs, memory: Memory | None = None, return_memory: bool = False):
    """Bind ``inputs`` to the program's HBM inputs, execute every instruction, return the outputs."""
    s = settings()
    mem = memory or Memory(precise_fp=s.precise_fp, warn_uninit=s.warn_uninit)
    if len(inputs) != len(program.inputs):
        raise ValueError(f"program {program.name} takes {len(program.inputs)} inputs, got {len(inputs)}")
    for st, arr in zip(program.inputs, inputs):
        mem.bind(st, arr)
    for ins in program.instrs:
        ins.op.run(ins, mem)
    outs = [read_storage(mem, st) for st in program.outputs]
    return (outs, mem) if return_memory else outs


def read_storage(mem: Memory, st) -> np.ndarray:
    from . import dtypes
    a = mem.array(View.whole(st)).copy()
    want = dtypes.to_numpy(st.dtype)
    return a.astype(want) if a.dtype != want else a
