"""The device program ("tile IR"): storages, instructions with source locations, stable text.

    >>> from device.program import Program
    >>> p = Program("k")
    >>> a = p.alloc((128, 4), "float32", "sbuf", name="a")
    >>> _ = p.emit("memset", dst=a, value=0.0)
    >>> print(p)                                             # doctest: +ELLIPSIS
    program k (target inf2) {
      alloc sbuf.a : float32[128,4]
      memset[DVE] dst=sbuf.a{0;[4,128],[1,4]} value=0.0
    }
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import limits as budgets
from .arch import Arch, get_arch
from .errors import SourceLoc, user_loc
from .tensor import Storage, View, as_buffer


class Instr:
    """One instruction: its table entry, resolved engine, arguments by NKI name, and source line."""
    __slots__ = ("op", "engine", "args", "loc", "index", "name")

    def __init__(self, op, engine, args, loc, name=None):
        self.op, self.engine, self.args, self.loc, self.name = op, engine, args, loc, name
        self.index = -1

    def views(self, names):
        out = []
        for n in names:
            v = self.args.get(n)
            if isinstance(v, View):
                out.append(v)
            elif isinstance(v, (list, tuple)):
                out.extend(x for x in v if isinstance(x, View))
        return out

    def reads(self):
        vs = self.views(self.op.inputs)
        for v in list(vs):                       # dynamic offsets are reads too
            if v.dyn is not None and isinstance(v.dyn[1], View):
                vs.append(v.dyn[1])
        for v in self.views(self.op.outputs):
            if v.dyn is not None and isinstance(v.dyn[1], View):
                vs.append(v.dyn[1])
        return vs

    def writes(self):
        return self.views(self.op.outputs)

    def __repr__(self):
        parts = []
        for k, v in self.args.items():
            if v is None:
                continue
            if isinstance(v, View):
                parts.append(f"{k}={v.describe()}")
            elif isinstance(v, (list, tuple)) and v and isinstance(v[0], View):
                parts.append(f"{k}=[{', '.join(x.describe() for x in v)}]")
            elif isinstance(v, np.ndarray):
                parts.append(f"{k}=array{v.shape}")
            elif k.startswith("_"):
                continue
            else:
                parts.append(f"{k}={_fmt(v)}")
        loc = f"  # {self.loc}" if self.loc else ""
        return f"{self.op.name}[{self.engine}] {' '.join(parts)}{loc}"


def _fmt(v):
    import enum
    if isinstance(v, enum.Enum):
        return v.name
    return getattr(v, "op_name", v)


@dataclass
class ProgramInfo:
    """What the layers above hand each other about a program (typed, not a string-keyed dict).

    Set by the front end (``nki.tracing``): the whole-tensor ``graph`` it came from and whether
    it is ``pure_graph`` (re-lowered as one graph), the logical core count ``lnc`` and each
    core's instruction range, how the kernel returned (``returns_tuple``/``returns_list``,
    ``output_views``), the argument names and scheduling edges (``sched_pairs``). Set by
    ``device.passes``: the SBUF ``peak`` demand and the ``spills`` plan (None until planned).
    """

    graph: object = None
    pure_graph: bool = False
    lnc: int = 1
    core_ranges: list | None = None
    returns_tuple: bool = False
    returns_list: bool = False
    output_views: list = field(default_factory=list)
    # LNC=2 outputs in private HBM: (output index, [core 1's view, ...]) compared after a run
    private_output_copies: list = field(default_factory=list)
    arg_names: list = field(default_factory=list)
    sched_pairs: list = field(default_factory=list)
    peak: dict | None = None
    spills: list | None = None


def _fmt_const(value) -> str:
    """Initial contents of a constant: the values when short, else a content digest (stable)."""
    a = np.ascontiguousarray(value)
    if a.size <= 8:
        return np.array2string(a.reshape(-1), separator=",").replace(" ", "")
    import hashlib
    return f"<sha1:{hashlib.sha1(a.tobytes()).hexdigest()[:10]}>"


class Program:
    """A straight-line instruction list over storages; inputs/outputs are HBM storages."""

    def __init__(self, name: str = "kernel", arch: "Arch | str | None" = None):
        self.name = name
        self.arch = get_arch(arch)
        self.instrs: list[Instr] = []
        self.storages: list[Storage] = []
        self.inputs: list[Storage] = []
        self.outputs: list[Storage] = []
        self.info = ProgramInfo()
        self._unnamed = 0    # per-program names t0, t1, ...: the same input prints the same text

    def alloc(self, shape, dtype, buffer, name="", address=None, loc: SourceLoc | None = None,
              kind="tile", const=None) -> View:
        from .isa.rules import check_alloc
        if not name:
            name = f"t{self._unnamed}"
            self._unnamed += 1
        st = Storage(shape, dtype, as_buffer(buffer), name=name, address=address,
                     loc=loc or user_loc(2), kind=kind, const=const)
        check_alloc(st, self.arch)
        self.storages.append(st)
        return View.whole(st)

    def emit(self, opname: str, loc: SourceLoc | None = None, engine: str | None = None,
             name: str | None = None, **args) -> Instr:
        from .isa import OPS
        from .isa.rules import check_in_bounds
        op = OPS[opname]
        ins = Instr(op, engine or op.engine, args, loc or user_loc(2), name)
        check_in_bounds(ins)
        op.check(ins, self.arch)
        if op.pick_engine is not None:
            ins.engine = op.pick_engine(ins, self.arch)
        ins.index = len(self.instrs)
        if ins.index >= budgets.instruction_budget():
            budgets.refuse_instructions(self, ins.loc)
        self.instrs.append(ins)
        return ins

    def __str__(self):
        ins = ", ".join(f"{s.name}: {s.dtype}[{','.join(map(str, s.shape))}]" for s in self.inputs)
        lines = [f"program {self.name}({ins}) (target {self.arch.name}) {{" if self.inputs
                 else f"program {self.name} (target {self.arch.name}) {{"]
        inputs = {s.id for s in self.inputs}
        for s in self.storages:
            if s.id in inputs:
                continue
            addr = f" @({s.address[0]},{s.address[1]})" if s.address else ""
            init = f" = {_fmt_const(s.const)}" if s.const is not None else ""
            lines.append(f"  alloc {s!r} : {s.dtype}[{','.join(map(str, s.shape))}]{addr}{init}")
        lines += [f"  {i!r}" for i in self.instrs]
        if self.outputs:
            lines.append(f"  return {', '.join(repr(s) for s in self.outputs)}")
        lines.append("}")
        return "\n".join(lines)
