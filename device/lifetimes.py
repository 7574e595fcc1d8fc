"""When each allocation of a program dies: the last instruction (of each core) that names it.

The reference executor allocates a storage's host array the first time an instruction touches
it; without this it would keep every tile until the run ends, so a long kernel (an MoE layer
over 256 experts, a transformer layer) held every dead tile at once and ran the host out of
memory. ``lifetimes(program)`` works out, once per program, after which instruction of each
core's stream each storage is no longer named; the executor frees it there (``Release``).

An instruction names a storage through any view of it: its operands, views inside lists,
tuples and dicts, a dynamic offset's tensor (``View.dyn``), and for a device loop every view
of its body (the loop is one top-level instruction). A view with a register or tensor offset
may address any element of its storage, so naming the storage is what counts, never the
elements. Storages two cores use (LNC=2: shared HBM, a tile handed to both streams) are freed
once every core that uses them has passed its last use; a core that waits (``Blocked``) has not
finished the instruction, so nothing is freed until it resumes and completes it. The program's
inputs and outputs, and the other cores' copies of a private-HBM output
(``info.private_output_copies``), are never freed (the caller reads them after the run).

    >>> from device.program import Program
    >>> p = Program("k")
    >>> x = p.alloc((128, 4), "float32", "hbm", name="x", kind="input"); p.inputs.append(x.storage)
    >>> o = p.alloc((128, 4), "float32", "shared_hbm", name="o"); p.outputs.append(o.storage)
    >>> t = p.alloc((128, 4), "float32", "sbuf", name="t")
    >>> _ = p.emit("dma_copy", dst=t, src=x); _ = p.emit("dma_copy", dst=o, src=t)
    >>> {c: {i: [s.name for s in d] for i, d in at.items()} for c, at in lifetimes(p).dies.items()}
    {0: {1: ['t']}}
"""
from __future__ import annotations

import weakref

from .program import Instr
from .tensor import View


def views_named(obj, out: list) -> list:
    """Append every view ``obj`` names (an instruction's args, a loop body, nested containers,
    dynamic-offset tensors) to ``out``."""
    if isinstance(obj, View):
        out.append(obj)
        if obj.dyn is not None:
            for x in obj.dyn[1:]:
                if isinstance(x, View) and x is not obj:
                    views_named(x, out)
    elif isinstance(obj, Instr):
        views_named(obj.args, out)
    elif isinstance(obj, dict):
        for x in obj.values():
            views_named(x, out)
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            views_named(x, out)
    return out


class Lifetimes:
    """``dies[core][pc]``: storages whose last use by ``core`` is its ``pc``-th instruction;
    ``users[storage id]``: how many cores name the storage (it dies after the last of them);
    ``read_only``: ids of the inputs no instruction writes (the executor may read the caller's
    array in place instead of copying it)."""
    __slots__ = ("dies", "users", "read_only", "fresh", "__weakref__")

    def __init__(self, dies: dict, users: dict, read_only: frozenset = frozenset(),
                 fresh: dict | None = None):
        self.dies, self.users, self.read_only = dies, users, read_only
        self.fresh = fresh or {}


LOOPS = ("fori_loop", "while_loop")


def loop_local_psum(instrs) -> dict:
    """id(loop instruction) -> the PSUM storages only its body names (directly or in a nested
    loop; the innermost loop that encloses every use). Such a tile is allocated inside the loop
    body, so each iteration is a fresh allocation: its first ``accumulate=None`` matmul
    overwrites rather than adding to what the previous iteration left (NKI: a new allocation
    starts a new accumulation group)."""
    paths: dict = {}                              # storage id -> common enclosing-loop path

    def walk(seq, path):
        for ins in seq:
            inner = path + (ins,) if ins.op.name in LOOPS else path
            own = {k: v for k, v in ins.args.items() if k != "body"}
            for v in views_named(own, []):
                st = v.storage
                if st.buffer.kind == "psum":
                    got = paths.get(st.id)
                    if got is None:
                        paths[st.id] = (st, inner)
                    else:
                        n = 0
                        while n < min(len(got[1]), len(inner)) and got[1][n] is inner[n]:
                            n += 1
                        paths[st.id] = (st, got[1][:n])
            body = ins.args.get("body")
            if ins.op.name in LOOPS and isinstance(body, (list, tuple)):
                walk(body, inner)
    walk(instrs, ())
    out: dict = {}
    for st, path in paths.values():
        if path:
            out.setdefault(id(path[-1]), []).append(st)
    return out


def written_storages(instrs, out: set) -> set:
    """Ids of the storages ``instrs`` (and the bodies of their loops) write."""
    for ins in instrs:
        out.update(v.storage.id for v in ins.writes())
        body = ins.args.get("body")
        if isinstance(body, (list, tuple)):
            written_storages([b for b in body if isinstance(b, Instr)], out)
    return out


_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def lifetimes(program, streams: dict | None = None) -> Lifetimes:
    """The lifetimes of ``program``'s storages, worked out once (again if the program grew).
    ``streams``: core id -> instructions (``executor.core_streams``), if already split."""
    key = (len(program.instrs), len(program.storages), len(program.inputs),
           len(program.outputs), len(getattr(program.info, "private_output_copies", ()) or ()))
    got = _CACHE.get(program)
    if got is not None and got[0] == key:
        return got[1]
    if streams is None:                          # each core's instructions, in program order
        streams = {}
        for ins in program.instrs:
            streams.setdefault(int(ins.args.get("_core", 0)), []).append(ins)
    keep = {st.id for st in program.inputs} | {st.id for st in program.outputs}
    copies = getattr(program.info, "private_output_copies", None) or ()
    keep |= {v.storage.id for _, views in copies for v in views}   # compared after the run
    dies, users = {}, {}
    for core, seq in streams.items():
        last: dict = {}                          # storage id -> (pc, storage)
        for pc, ins in enumerate(seq):
            for v in views_named(ins.args, []):
                st = v.storage
                if st.id not in keep:
                    last[st.id] = (pc, st)
        at: dict = {}
        for sid, (pc, st) in last.items():
            at.setdefault(pc, []).append(st)
            users[sid] = users.get(sid, 0) + 1
        if at:
            dies[core] = at
    written = written_storages(program.instrs, set())
    lt = Lifetimes(dies, users, frozenset(st.id for st in program.inputs) - written,
                   loop_local_psum(program.instrs))
    _CACHE[program] = (key, lt)
    return lt


class Release:
    """Frees storages in one run's memory as the cores pass their last uses."""
    __slots__ = ("mem", "dies", "left")

    def __init__(self, lt: Lifetimes, mem):
        self.mem, self.dies = mem, lt.dies
        self.left = dict(lt.users) if any(n > 1 for n in lt.users.values()) else None

    def after(self, core: int, pc: int) -> None:
        """``core`` completed its ``pc``-th instruction."""
        at = self.dies.get(core)
        dead = at.get(pc) if at else None
        if not dead:
            return
        for st in dead:
            if self.left is not None:
                n = self.left[st.id] = self.left[st.id] - 1
                if n:
                    continue                     # another core still uses it
            self.mem.free(st)
