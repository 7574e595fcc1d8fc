"""The nki.isa sweep table (the coverage contract): instruction name -> case(data)."""
from __future__ import annotations

import inspect

import nki.isa as nisa

from isa_compute import compute_cases
from isa_mx import mx_cases
from isa_other import other_cases
from isa_rand import rand_cases
from isa_v4 import v4_cases

# names nki.isa re-exports from the emulator's internals (not NKI API)
INTERNAL = {"current", "maybe_current", "user_loc"}


def isa_public_functions():
    out = set()
    for n in dir(nisa):
        v = getattr(nisa, n)
        if n.startswith("_") or not callable(v) or inspect.isclass(v) or inspect.ismodule(v):
            continue                    # enums and classes (engine, reduce_cmd, ...) are excluded
        out.add(n)
    for n in out & INTERNAL:
        assert not getattr(nisa, n).__module__.startswith("nki.isa"), n
    return out - INTERNAL


ISA_CASES = {}
ISA_CASES.update(compute_cases())
ISA_CASES.update(other_cases())
ISA_CASES.update(v4_cases())
ISA_CASES.update(mx_cases())
ISA_CASES.update(rand_cases())
