"""The nki.language sweep table (the coverage contract): name -> case(data)."""
from __future__ import annotations

import inspect

import nki.language as nl

from nl_elementwise import elementwise_cases
from nl_engines import engine_cases
from nl_misc import misc_cases

# names nl re-exports from the emulator's internals (not NKI API); anything else public and
# callable must have a row
INTERNAL = {"current", "maybe_current", "user_loc", "get_arch", "as_buffer"}


def nl_public_callables():
    out = set()
    for n in dir(nl):
        v = getattr(nl, n)
        if n.startswith("_") or not callable(v) or inspect.isclass(v) or inspect.ismodule(v):
            continue
        out.add(n)
    internal = {n for n in out if n in INTERNAL}
    for n in internal:   # keep the exclusion honest: these really come from outside nki.language
        assert not getattr(getattr(nl, n), "__module__", "").startswith("nki.language"), n
    return out - internal


NL_CASES = {}
NL_CASES.update(elementwise_cases())
NL_CASES.update(misc_cases())
NL_CASES.update(engine_cases())
