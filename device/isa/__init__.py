"""The instruction table: every ISA op defined once, with operand rules, NumPy semantics, engine, cost.

An entry is a class used as a namespace and registered with ``@defop``:

    @defop("memset", engine="DVE", outputs=("dst",), inputs=())
    class Memset:
        def check(i, arch): ...      # raise HardwareRuleError at the user's line
        def run(i, mem): ...         # the instruction's meaning, on emulated memory
        def cost(i, arch): ...       # initiation interval in ns (DMA ops return a DmaCost)

Adding an op = one entry here + its tests. ``OPS`` is the only registry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

OPS: dict[str, "OpDef"] = {}


@dataclass(frozen=True)
class OpDef:
    name: str
    engine: str                    # default engine: PE, ACT, DVE, POOL, SP, DMA
    outputs: tuple                 # argument names written
    inputs: tuple                  # argument names read
    check: Callable
    run: Callable
    cost: Callable
    pick_engine: Callable | None = None
    doc: str = ""
    # uses(instr) -> the input views the result depends on, when narrower than ``inputs``
    # (nc_stream_shuffle reads only the src partitions its mask names); None: all inputs
    uses: Callable | None = None
    # a pure data move of ``src`` into ``dst`` (element n to element n): into on-chip memory it
    # carries src's unwritten elements along instead of warning (Memory.carried)
    moves: bool = False


def defop(name: str, *, engine: str, outputs=("dst",), inputs=(), moves: bool = False):
    def deco(cls):
        OPS[name] = OpDef(name, engine, tuple(outputs), tuple(inputs),
                          check=getattr(cls, "check", lambda i, a: None), run=cls.run,
                          cost=cls.cost, pick_engine=getattr(cls, "pick_engine", None),
                          doc=(cls.__doc__ or "").strip(), uses=getattr(cls, "uses", None),
                          moves=moves)
        return cls
    return deco


from . import compute, dma, pe, misc, control  # noqa: E402,F401  (registers the entries)
from . import vector, vector_stats, gpsimd, dma_extra, multicore  # noqa: E402,F401
from . import activate2, mx, prng, gpsimd_index, collective  # noqa: E402,F401
