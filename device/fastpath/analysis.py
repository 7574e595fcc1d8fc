"""What the reference executor finds out while it runs, worked out once from the program text.

The reference ``Memory`` keeps a ``written`` bit per element (to warn on uninitialised reads) and
an "open matmul group" bit per PSUM element (to decide what ``accumulate=None`` does). Both depend
only on which views the instructions touch, in program order, never on the data, so for a program
with static addresses they can be computed once when the plan is built:

* ``warnings``: instruction index -> the uninitialised-read warnings the reference would raise
  there (storage, element count, source line);
* ``fill``: storages some read may see before they are written (they get their sentinel or
  constant contents each run; the others need no initialisation at all);
* ``mm_add``: ``nc_matmul`` index -> whether it adds to the PSUM contents: True, False or a
  (M, N) bool mask when only some elements hold an open accumulation group (inside a loop body
  the key is (loop index, body position, 0 for the first iteration or 1 for the others));
* ``first``/``last``: the first and last instruction that touches each storage (liveness).

    >>> from device.program import Program
    >>> p = Program("k")
    >>> t = p.alloc((128, 4), "float32", "sbuf", name="t")
    >>> u = p.alloc((128, 4), "float32", "sbuf", name="u")
    >>> _ = p.emit("tensor_copy", dst=u, src=t)
    >>> f = analyse(p)
    >>> [(s.name, n) for s, n, _ in f.warnings[0]], [s.name for s in f.fill]
    ([('t', 512)], ['t'])
"""
from __future__ import annotations

import numpy as np

from ..lifetimes import loop_local_psum
from ..memory import storage_units
from ..tensor import View

# Programs with these instructions (or two cores) keep the reference executor: they depend on
# another core's progress. Loops and dynamic addresses are planned when the analysis can show
# what they touch (``Facts.unsupported`` says why not).
DYNAMIC_OPS = frozenset({"sendrecv", "core_barrier", "nc_matmul_mx"})
LOOP_OPS = frozenset({"fori_loop", "while_loop"})


def unsupported_reason(program, facts=None) -> str | None:
    """Why the fast path cannot run ``program`` (None when it can); ``facts``: its analysis,
    if already made."""
    if program.info.lnc > 1:
        return "an LNC=2 program (two instruction streams)"
    for ins in program.instrs:
        if ins.op.name in DYNAMIC_OPS:
            return f"instruction {ins.op.name}"
        if int(ins.args.get("_core", 0)):
            return "a second core's instruction stream"
        if ins.op.name in LOOP_OPS:
            for b in ins.args["body"]:
                if b.op.name in DYNAMIC_OPS or b.op.name in LOOP_OPS:
                    return f"instruction {b.op.name} inside {ins.op.name}"
    return (facts or analyse(program)).unsupported


def is_dynamic(ins) -> bool:
    """Whether an instruction's addresses depend on run-time values."""
    return any(v.dyn is not None for v in all_views(ins))


def _may_skip(ins) -> bool:
    """Whether a run-time address may leave the instruction's transfer undone
    (``oob_mode=skip``: the reference then writes nothing)."""
    m = ins.args.get("oob_mode")
    return getattr(m, "name", m) in (1, "skip") and is_dynamic(ins)


def loop_views(ins) -> list:
    """Every tensor a loop instruction or its body names."""
    out = all_views(ins)
    for b in ins.args["body"]:
        out.extend(all_views(b))
    return out


def all_views(ins) -> list:
    """Every tensor an instruction names, declared operand or not (a superset for liveness)."""
    out = []
    for v in ins.args.values():
        if isinstance(v, View):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            out.extend(x for x in v if isinstance(x, View))
    for v in list(out):                    # a run-time address reads its offset tensor
        if v.dyn is not None and isinstance(v.dyn[1], View):
            out.append(v.dyn[1])
    return out


def covers_all(v: View) -> bool:
    """True when ``v`` touches every element of its storage exactly once (in storage units)."""
    st = v.storage
    if v.dtype != st.dtype or v.offset != 0:
        return False
    expect = 1
    for s, c in reversed(v.pattern):       # the usual case: row-major, no sort needed
        if c != 1:
            if s != expect:
                break
            expect *= c
    else:
        return expect == st.size
    expect = 1
    for s, c in sorted((p for p in v.pattern if p[1] != 1), key=lambda p: p[0]):
        if s != expect:
            return False
        expect *= c
    return expect == st.size


def strided(flat: np.ndarray, v: View, dtype=None) -> np.ndarray:
    """``flat``'s elements that ``v`` addresses (offset and strides in ``flat``'s units), shaped
    like ``v``: a view, built without ``as_strided``'s overhead; the caller checks bounds."""
    if v.size == 0:
        return np.zeros(v.shape, dtype or flat.dtype)
    it = flat.dtype.itemsize
    if any(s < 0 for s, _ in v.pattern):
        start = flat[v.offset:] if v.offset < flat.size else flat
        return np.lib.stride_tricks.as_strided(start, shape=v.shape,
                                               strides=[s * it for s, _ in v.pattern])
    return np.ndarray(v.shape, flat.dtype, buffer=flat, offset=v.offset * it,
                      strides=tuple(s * it for s, _ in v.pattern))


def differs(a, b) -> bool:
    """Whether two ``mm_add`` facts (bools or masks) differ."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and
                    np.array_equal(a, b))
    return a != b


def mask_view(mask: np.ndarray, v: View) -> np.ndarray:
    """The bool elements of a per-storage mask that ``v`` touches, shaped like ``v``."""
    return strided(mask, storage_units(v))


class _Flags:
    """PSUM "open matmul group" bits of one storage: uniformly set, uniformly clear, or a mask
    (most accumulation tiles are written whole, so the mask is rarely needed)."""
    __slots__ = ("state", "mask")

    def __init__(self):
        self.state, self.mask = False, None

    def region(self, v: View):
        """The bits under ``v``: a bool when uniform there, else a copy of the mask."""
        if self.mask is None:
            return self.state
        r = mask_view(self.mask, v).reshape(v.shape[0], -1).copy()
        return bool(r.flat[0]) if r.size and (r.all() or not r.any()) else r

    def set(self, v: View, value: bool):
        if covers_all(v):
            self.state, self.mask = value, None
            return
        if self.mask is None:
            if self.state == value:
                return
            self.mask = np.full(v.storage.size, self.state, bool)
        mask_view(self.mask, v)[...] = value


class _Cover:
    """Which elements of one storage hold data: all of them, none, or a mask."""
    __slots__ = ("full", "mask")

    def __init__(self, full):
        self.full, self.mask = full, None

    def unwritten(self, v: View) -> int:
        if self.full:
            return 0
        u = storage_units(v)
        if self.mask is None:
            return u.size
        return int(u.size - np.count_nonzero(mask_view(self.mask, u)))

    def bits(self, v: View) -> np.ndarray:
        """Which elements under ``v`` (shaped like it) hold data."""
        if self.full:
            return np.ones(v.shape, bool)
        if self.mask is None:
            return np.zeros(v.shape, bool)
        return mask_view(self.mask, v).copy()

    def carry(self, v: View, bits: np.ndarray):
        """A data move wrote ``v`` with these elements holding data (Memory.carried)."""
        if bits.all():
            return self.write(v)
        if self.mask is None:
            self.mask = np.full(v.storage.size, self.full, bool)
        self.full = False
        mask_view(self.mask, v)[...] = bits.reshape(v.shape)
        if self.mask.all():
            self.full, self.mask = True, None

    def write(self, v: View):
        if self.full:
            return
        if covers_all(v):
            self.full, self.mask = True, None
            return
        if self.mask is None:
            self.mask = np.zeros(v.storage.size, bool)
        mask_view(self.mask, v)[...] = True
        if self.mask.all():
            self.full, self.mask = True, None


class Facts:
    def __init__(self):
        self.warnings: dict = {}       # instr index -> [(storage, n, loc)]
        self.fill: list = []           # storages whose first use must see sentinels / constants
        self.mm_add: dict = {}         # nc_matmul index -> True | False | (M, N) bool mask
        self.first: dict = {}          # storage id -> first instruction index using it
        self.last: dict = {}           # storage id -> last instruction index using it
        self.storages: dict = {}       # storage id -> Storage (every one the program touches)
        self.views: list = []          # instr index -> every tensor it names (all_views)
        self.writes: list = []         # instr index -> storage ids it writes
        self.unwritten_outputs: dict = {}   # output storage id -> its written mask, if partial
        self.unsupported = None        # why the reference must run the program, if it must
        self.needs_trips: set = set()  # loops whose facts assume at least one iteration


def analyse(program) -> Facts:
    """One pass over the instructions with the reference's bookkeeping, but no data."""
    f = Facts()
    cover: dict = {}
    opened: dict = {}                  # PSUM storage id -> _Flags
    inputs = {s.id for s in program.inputs}
    write_opens = program.arch.psum_write_keeps_accumulating    # Memory.psum_write_opens
    fill, warned = {}, set()

    def cov(st):
        c = cover.get(st.id)
        if c is None:
            c = cover[st.id] = _Cover(st.id in inputs or st.const is not None)
        return c

    def read(idx, v, loc, warn=True):
        n = cov(v.storage).unwritten(v)
        if n:
            fill[v.storage.id] = v.storage
            if warn and (v.storage.id, loc) not in warned:     # the reference warns once per (tensor, line)
                warned.add((v.storage.id, loc))
                f.warnings.setdefault(idx, []).append((v.storage, n, loc))

    def refuse(why):
        if f.unsupported is None:
            f.unsupported = why

    def carries(ins):
        """A data move into on-chip memory that Memory.carried lets carry unwritten elements."""
        if not ins.op.moves or ins.args.get("transpose2d"):
            return False
        src, dst = ins.args["src"], ins.args["dst"]
        return (dst.buffer.kind == "sbuf" and src.dyn is None and dst.dyn is None
                and src.dtype == src.storage.dtype and dst.dtype == dst.storage.dtype)

    def visit(idx, key, ins):
        """One instruction's reads, writes and PSUM flags; ``key`` names its facts."""
        writes = ins.writes()
        if carries(ins):
            src, dst = ins.args["src"], ins.args["dst"]
            read(idx, src, ins.loc, warn=False)        # sentinels travel along: fill src
            bits = cov(src.storage).bits(src)
            c = cov(dst.storage)
            if not (c.full and bits.all()):
                c.carry(dst, bits)
            return
        for v in ins.value_reads():
            if v.dyn is not None:          # where it reads is known at run time only
                if not cov(v.storage).full:
                    refuse(f"a dynamic read of partly written {v.storage.name} in {ins.op.name}")
                continue
            # an output also listed as an input (a predicated copy, a shuffle keeping some
            # partitions) is merged through Memory.array, which does not warn
            read(idx, v, ins.loc, warn=not any(v is w for w in writes))
        if ins.op.name == "nc_matmul":
            dst = ins.args["dst"]
            if dst.dyn is not None:
                refuse("a matmul into a dynamic PSUM address")
                return
            flags = opened.get(dst.storage.id)
            if flags is None:
                flags = opened[dst.storage.id] = _Flags()
            acc = ins.args.get("accumulate")
            add = flags.region(dst) if acc is None else bool(acc)
            f.mm_add[key] = add
            if add is not False:           # the reference reads the old PSUM value (loc None)
                read(idx, dst, None)
            cov(dst.storage).write(dst)
            flags.set(dst, True)
            return
        if _may_skip(ins):                 # an out-of-bounds transfer leaves dst as it was:
            for v in writes:               # the facts hold only if dst held data already
                if v.dyn is None and cov(v.storage).unwritten(v):
                    refuse(f"a {ins.op.name} with oob_mode=skip into partly written "
                           f"{v.storage.name}")
        for v in writes:
            if v.dyn is not None:          # written where run-time values say
                if not cov(v.storage).full or v.storage.id in opened:
                    refuse(f"a dynamic write to partly written {v.storage.name} in "
                           f"{ins.op.name}")
                continue
            cov(v.storage).write(v)
            flags = opened.get(v.storage.id)
            if flags is None and write_opens and v.storage.buffer.kind == "psum":
                flags = opened[v.storage.id] = _Flags()
            if flags is not None:              # as Memory.write: on v4 any write opens a group
                flags.set(v, write_opens)

    fresh = loop_local_psum(program.instrs)    # loop -> PSUM tiles each iteration allocates
    pending: dict = {}                 # storage id -> the loop (that may run zero times)
                                       # that writes part of it
    for idx, ins in enumerate(program.instrs):
        loop = ins.op.name in LOOP_OPS
        views = loop_views(ins) if loop else all_views(ins)
        f.views.append(views)
        for v in views:
            sid = v.storage.id
            if sid not in f.first:
                f.storages[sid] = v.storage
                f.first[sid] = idx
            f.last[sid] = idx
            if sid in pending:              # right only if that loop ran at least once:
                loop_at = pending[sid]      # the plan reruns on the reference if it did not
                if any(k < loop_at for k in f.warnings) or any(
                        b.op.name == "device_print" for b in program.instrs[:loop_at]):
                    refuse(f"{v.storage.name} is used after a loop that writes part of it")
                f.needs_trips.add(loop_at)
        if not loop:
            f.writes.append({v.storage.id for v in ins.writes()})
            visit(idx, idx, ins)
            continue
        body = ins.args["body"]
        written = {v.storage.id: v.storage for b in body for v in b.writes()}
        f.writes.append(set(written))
        for sid, st in written.items():
            if not cov(st).full or sid in opened or st.buffer.kind == "psum":
                pending[sid] = idx         # unless the body alone uses it (checked above)
        n_warn = len(f.warnings)
        for rnd in range(2):               # the first iteration, then every later one (which
            for st in fresh.get(id(ins), ()):   # sees what the one before wrote: the same
                opened.pop(st.id, None)    # state), PSUM tiles of the body alone allocated anew
            for j, b in enumerate(body):
                visit(idx, (idx, j, rnd), b)
        if len(f.warnings) != n_warn:
            refuse(f"{ins.op.name} whose body reads uninitialised data")
    for st in program.outputs:             # unwritten parts of an output are returned as sentinels
        c = cov(st)
        if st.id not in inputs and not c.full:
            fill[st.id] = st
            if st.id in f.first:           # the reference warns only for tensors it touched
                f.unwritten_outputs[st.id] = (c.mask if c.mask is not None
                                              else np.zeros(st.size, bool))
    f.fill = list(fill.values())
    return f
