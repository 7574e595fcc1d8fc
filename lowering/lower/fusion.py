"""Fusion of element-wise chains: a lowering decision, the graph IR is left as it is.

Lowered one op at a time, ``exp(x @ w + b)`` stores the dot result to HBM, loads it again to add
``b`` (itself first materialised at full size by the broadcast), stores, loads again for ``exp``:
element-wise work is memory-bound (cost model 2.7), so those round trips are most of its time.
Here ops are grouped instead:

- a *group* is a tree of ops whose inner values have exactly one user and are not graph outputs;
  its root is the last op, the only value it writes to HBM;
- members are element-wise ops with same-shaped operands (unary, binary, compare, select,
  convert, ...), ``broadcast`` ops as leaves (their source is loaded per tile through a stride-0
  DMA pattern instead of being materialised) and at most one ``dot`` as a leaf;
- a group is lowered with one tile loop: external inputs are DMA'd into SBUF once per tile, every
  member writes an SBUF tile of its own result dtype (so each op rounds exactly where the unfused
  lowering did: results are bit-identical), and only the root's tile is stored;
- with a ``dot`` the loop is the matmul's: the epilogue runs at PSUM eviction (cost model rules
  5, 9, 18) and its first op reads the fp32 PSUM tile directly when the dot result is fp32
  (the plain eviction copy would be exact); a narrower dot result is rounded by that copy first.

    >>> from lowering.ir.graph import Graph
    >>> from lowering.ir.types import TensorType
    >>> g = Graph("f")
    >>> x = g.param(TensorType((4, 8), "float32"), "x")
    >>> w = g.param(TensorType((8, 16), "float32"), "w")
    >>> y = g.add_op("dot", [x, w], {"lhs_contract": [1], "rhs_contract": [0]})
    >>> g.set_outputs([g.add_op("exp", [g.add_op("tanh", [y])])])
    >>> [[op.opcode for op in grp.ops] for grp in plan(g) if len(grp.ops) > 1]
    [['dot', 'tanh', 'exp']]
    >>> plan(g)[0].key
    'fused_matmul-e272fa70708e'

Two more shapes of group, whose untuned lowering is the unfused program:

- a float ``reduce`` over trailing axes joins the element-wise group just before it that
  computes its operand (FusedReduceSchedule): with ``resident=True`` the producer's tiles are
  reduced where they are computed, so the value is never read back from HBM (nor written,
  unless something else reads it: then the group ``stores`` it from the same tiles);
- any fused group can be cut at chosen edges (``split`` of its schedule, :func:`split_parts`).

Which ops may join a group is a fact of the op table (``OpDef.fusible``: the op has a tile
body), so a new element-wise op fuses as soon as it is defined with one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math

from device.errors import UserKernelError

from ..ir.ops import OPS, REDUCE_KINDS
from .dot_sum import DotSumProblem, DotSumSchedule, dot_sum, lower_dot_sum, pairs
from .fused_schedules import (FusedMatmulProblem, FusedMatmulSchedule, FusedReduceProblem,
                              FusedReduceSchedule)
from .rules.layout import broadcast_view, lower_broadcast
from .rules.matmul import MatmulProblem, MatmulSchedule, lower_dot
from .rules.reduce import ReduceProblem, ReduceSchedule
from .schedule import NoKnobs
from .stream import StreamProblem, StreamSchedule, chunks, flat_tile


def _is_elementwise(op) -> bool:
    shape = tuple(op.result.type.shape)
    return (OPS[op.opcode].fusible and not op.multi
            and all(tuple(v.type.shape) == shape for v in op.inputs))


@dataclasses.dataclass(frozen=True, eq=False)
class Group:
    """Ops lowered together (graph order, the root last: the value written to HBM; ``stores``:
    member results also written because something outside reads them, only in a reduce pair).

    ``key`` is structural: the group's text with values renamed in order of appearance, external
    inputs with their types, and the family; two groups with the same key lower to the same
    program shape, so a schedule tuned for one applies to the other."""

    ops: tuple
    text: str
    key: str
    stores: tuple = ()

    @property
    def outputs(self) -> tuple:
        """The values the group writes to HBM: the root's, then ``stores``."""
        return (self.root.result, *self.stores)

    @property
    def root(self):
        return self.ops[-1]

    @property
    def dot(self):
        return next((op for op in self.ops if op.opcode == "dot"), None)

    @property
    def fused(self) -> bool:
        return len(self.ops) > 1

    def schedule_class(self):
        if self.fused:
            if self.root.opcode == "reduce":
                return FusedReduceSchedule
            if self.dot is not None and dot_sum(self.ops) is not None:
                return DotSumSchedule
            return FusedMatmulSchedule if self.dot is not None else StreamSchedule
        return OPS[self.root.opcode].schedule or NoKnobs

    def problem(self):
        """The schedule's problem for this group (None for rules without knobs)."""
        cls = self.schedule_class()
        if cls is DotSumSchedule:
            return DotSumProblem.of(self.ops)
        if cls is FusedMatmulSchedule:
            return FusedMatmulProblem(**dataclasses.asdict(MatmulProblem.of(self.dot)),
                                      edges=len(self.ops) - 1)
        if issubclass(cls, MatmulSchedule):
            return MatmulProblem.of(self.dot or self.root)
        if cls is StreamSchedule:
            return StreamProblem(self.root.result.type.size, len(self.ops) + 1,
                                 max(v.type.np_dtype.itemsize for op in self.ops
                                     for v in (*op.inputs, op.result)),
                                 len(self.ops) - 1 if self.fused else 0)
        if cls is FusedReduceSchedule:
            return FusedReduceProblem(**dataclasses.asdict(ReduceProblem.of(self.root)),
                                      tiles=len(self.ops) + 1)
        if cls is ReduceSchedule:
            return ReduceProblem.of(self.root)
        of = getattr(cls, "problem_of", None)     # rule families that build their own problem
        return of(self.root) if of is not None else None

    def default_schedule(self, arch):
        return self.schedule_class().default(self.problem(), arch)


def make_group(ops, stores=()) -> Group:
    names: dict[int, str] = {}
    ext: list[str] = []

    def name_of(v):
        n = names.get(id(v))
        if n is None:
            n = names[id(v)] = f"%e{len(ext)}"
            ext.append(f"{n}: {v.type}")
        return n
    lines = []
    for op in ops:
        for v in op.inputs:
            name_of(v)
        for k, r in enumerate(op.results):
            names[id(r)] = f"%v{len(names) - len(ext)}"
        lines.append(op.text(name_of))
    if stores:
        lines.append("store " + ", ".join(names[id(v)] for v in stores))
    text = "(" + ", ".join(ext) + ") {\n  " + "\n  ".join(lines) + "\n}"
    grp = Group(tuple(ops), text, "")
    family = grp.schedule_class().kind if OPS[ops[-1].opcode].lower else ops[-1].opcode
    digest = hashlib.sha1(f"{family}\n{text}".encode()).hexdigest()[:12]
    return Group(tuple(ops), text, f"{family}-{digest}", tuple(stores))


def plan(graph, fuse: bool = True) -> list[Group]:
    """Partition ``graph.ops`` into groups, in graph order (``fuse=False``: one op each)."""
    if not fuse:
        return [make_group([op]) for op in graph.ops]
    uses: dict[int, int] = {}
    for op in graph.ops:
        for v in op.inputs:
            uses[id(v)] = uses.get(id(v), 0) + 1
    outputs = {id(v) for v in graph.outputs}
    producer = {id(r): op for op in graph.ops for r in op.results}
    members = {id(op): [op] for op in graph.ops}       # group rooted at op (so far)
    fused = set()                                       # ops absorbed into a later root
    for op in graph.ops:
        if not _is_elementwise(op):
            continue
        dots = 0
        for v in op.inputs:
            d = producer.get(id(v))
            if d is None or uses[id(v)] != 1 or id(v) in outputs or d.multi:
                continue
            if d.opcode == "broadcast" or d.opcode == "dot" or _is_elementwise(d):
                n = min(1, sum(m.opcode == "dot" for m in members[id(d)]))
                if dots + n > 1 and not (d.opcode == "dot" and pairs(op, producer)):
                    continue                            # one matmul tile loop per group
                n = n if dots + n <= 1 else 0           # (two dots summed: one loop, dot_sum)
                dots += n
                members[id(op)] += members.pop(id(d))
                fused.add(id(d))
    order = {id(op): i for i, op in enumerate(graph.ops)}
    groups = [sorted(members[id(op)], key=lambda m: order[id(m)])
              for op in graph.ops if id(op) not in fused]
    return [make_group(g, stores) for g, stores in _pair_reduces(groups, uses, outputs)]


def _pair_reduces(groups, uses, outputs):
    """Join a float reduce over trailing axes with the element-wise group just before it that
    produces its operand: the pair is one group (FusedReduceSchedule) whose ``resident`` knob
    keeps the value in SBUF for the reduce. When other ops (or the graph's outputs) read the
    value too, the pair also stores it (``Group.stores``): the reduce still saves its HBM read.
    Only adjacent groups pair, so the untuned lowering (the two loops through HBM) is the same
    program as before. Returns [(ops, stores)]."""
    out = []
    for g in groups:
        red = g[0] if len(g) == 1 else None
        prev = out[-1][0] if out else None
        if red is not None and red.opcode == "reduce" and prev is not None \
                and not out[-1][1] and not prev[-1].multi \
                and red.inputs[0] is prev[-1].result and prev[-1].opcode != "reduce" \
                and _resident_fits(prev, red):
            v = red.inputs[0]
            shared = uses[id(v)] > 1 or id(v) in outputs
            out[-1] = (prev + g, (v,) if shared else ())
        else:
            out.append((g, ()))
    return out


def _resident_fits(producer, red) -> bool:
    """The producer streams element-wise (no dot) and the reduce folds float values over the
    trailing axes (rows on the partitions in both loops, no transposing load)."""
    dims = sorted(red.attrs["dims"])
    t = red.inputs[0].type
    return (all(_is_elementwise(op) or op.opcode == "broadcast" for op in producer)
            and any(_is_elementwise(op) for op in producer)
            and t.dtype in ("float32", "bfloat16", "float16") and bool(dims)
            and dims == list(range(t.rank - len(dims), t.rank)) and t.size > 0
            and red.result.type.dtype == t.dtype)


# ---------------------------------------------------------------- lowering a fused group

def _leaves(lw, group, env, shape2d):
    """External inputs of the group as views of shape ``shape2d`` (None: flat chunks), keyed by
    id(value). Broadcast members become leaves when their view fits the tiling, else they are
    materialised like any other external value."""
    inside = {id(op.result) for op in group}
    leaves, done = {}, set()
    for op in group:
        if op.opcode == "broadcast":
            src = lw.contiguous(env[id(op.inputs[0])])
            v = broadcast_view(src, op.attrs["dims"], tuple(op.result.type.shape))
            try:
                leaves[id(op.result)] = v if shape2d is None else v.reshape(shape2d)
                done.add(id(op))
                continue
            except UserKernelError:
                env[id(op.result)] = lower_broadcast(lw, op, [env[id(op.inputs[0])]], NoKnobs())
                done.add(id(op))
                leaves[id(op.result)] = _fit(lw, env[id(op.result)], shape2d)
                continue
        if op.opcode == "dot":
            continue
        for v in op.inputs:
            if id(v) not in inside and id(v) not in leaves:
                leaves[id(v)] = _fit(lw, env[id(v)], shape2d)
    return leaves, done


def _fit(lw, view, shape2d):
    v = lw.contiguous(view)
    return v if shape2d is None else v.reshape(shape2d)


def _run_members(lw, group, done, tiles, rows_cols):
    """Run every compute member on SBUF tiles; ``tiles`` maps id(value) -> on-chip tile."""
    for op in group:
        if id(op) in done or op.opcode == "dot":
            continue
        with lw.at(op.loc):
            dst = lw.sb(rows_cols, op.result.type.dtype)
            OPS[op.opcode].tile_body(lw, op, [tiles[id(v)] for v in op.inputs], dst)
        tiles[id(op.result)] = dst
    return tiles[id(group[-1].result)]


def _load(lw, leaves, sl, cache, row_cache):
    """DMA each leaf's slice for one tile into SBUF. A slice that is constant along the free
    axis (a column vector or scalar broadcast: 4-byte DMA rows, CM rule 13) is loaded once as a
    [rows, 1] column, kept in ``cache`` for the other tiles that read the same rows, and read
    back through a stride-0 view (the values are the same, so numerics do not change). A row
    vector (stride 0 across partitions) is re-read for every row block: those tiles are kept too,
    up to ``row_cache`` bytes per partition, so the bias of ``x @ w + b`` is loaded once per N
    tile instead of once per output tile."""
    tiles = {}
    for key, v in leaves.items():
        src = sl(v)
        if len(src.shape) == 2 and src.shape[1] > 1 and src.pattern[1][0] == 0:
            col = src[:, 0:1]
            sig = (col.storage.id, col.offset, col.pattern)
            t = cache.get(sig)
            if t is None:
                t = cache[sig] = lw.sb(col.shape, v.dtype)
                lw.emit("dma_copy", dst=t, src=col)
            tiles[key] = t.broadcast(1, src.shape[1])
            continue
        row = len(src.shape) == 2 and src.shape[0] > 1 and src.pattern[0][0] == 0
        sig = (src.storage.id, src.offset, src.pattern)
        t = cache.get(sig) if row else None
        if t is None:
            t = lw.sb(src.shape, v.dtype)
            lw.emit("dma_copy", dst=t, src=src)
            nbytes = src.shape[-1] * t.itemsize
            if row and cache.get("bytes", 0) + nbytes <= row_cache:
                cache[sig] = t          # a row vector: the same slice for every row block
                cache["bytes"] = cache.get("bytes", 0) + nbytes
        tiles[key] = t
    return tiles


def split_parts(group: Group, split) -> list[list]:
    """The sub-groups of ``group`` when the results of the members flagged in ``split`` (one
    flag per member but the root, in group order) are materialised: connected pieces of the
    group's tree without those edges, each in graph order, ordered by their roots."""
    part = {id(op): [op] for op in group.ops}
    inside = {id(op.result): op for op in group.ops[:-1]}
    cut = {id(op.result) for op, s in zip(group.ops, split) if s}
    for op in group.ops:                       # graph order: producers before their users
        for v in op.inputs:
            p = inside.get(id(v))
            if p is not None and id(v) not in cut and part[id(p)] is not part[id(op)]:
                merged = part[id(op)] + part[id(p)]
                for m in merged:
                    part[id(m)] = merged
    order = {id(op): i for i, op in enumerate(group.ops)}
    parts = {id(p): p for p in part.values()}.values()
    return sorted((sorted(p, key=lambda m: order[id(m)]) for p in parts),
                  key=lambda p: order[id(p[-1])])


def _part_schedule(lw, part: Group, sched):
    """The schedule of one part of a split group, from the group's knobs."""
    if isinstance(sched, FusedMatmulSchedule) and part.dot is not None:
        knobs = sched.matmul_knobs()
        if part.fused:
            return FusedMatmulSchedule(**knobs, row_cache=sched.row_cache)
        return MatmulSchedule(**knobs)
    if part.schedule_class() is StreamSchedule:
        if isinstance(sched, StreamSchedule):
            return StreamSchedule(sched.free, sched.bufs, sched.row_cache)
        return StreamSchedule()
    return part.default_schedule(lw.arch)


def _lower_reduce_pair(lw, group: Group, env: dict, sched) -> None:
    """A reduce with its producer: two loops through HBM (resident=False: the programs of the
    two groups unfused), or one loop whose producer tiles are reduced where they are computed.
    Each producer tile rounds as it would be stored, and the reduce folds the same [rows,
    chunk] tiles in the same order, so both give the same bits."""
    red, prod = group.root, make_group(group.ops[:-1])
    rsched = ReduceSchedule(sched.chunk, sched.axis)
    if not sched.resident:
        psched = _part_schedule(lw, prod, None)
        if prod.fused:
            lower_group(lw, prod, env, psched)
        else:
            _lower_alone(lw, prod.root, env, psched)
        _lower_alone(lw, red, env, rsched)
        return
    shape = tuple(red.inputs[0].type.shape)
    k = len(red.attrs["dims"])
    R, C = math.prod(shape[:len(shape) - k]), math.prod(shape[len(shape) - k:])
    P, F = lw.arch.partitions, sched.chunk
    leaves, done = _leaves(lw, prod.ops, env, (R, C))
    cache = {}
    alu = REDUCE_KINDS[red.attrs["kind"]].alu
    keep = None
    if group.stores:                            # read elsewhere too: store it from the tiles
        v = prod.root.result
        with lw.at(prod.root.loc):
            keep = lw.hbm(v.type.shape, v.type.dtype)
        env[id(v)] = keep
        keep = keep.reshape((R, C))
    with lw.at(red.loc):
        out = lw.hbm(red.result.type.shape, red.result.type.dtype)
        o = out.reshape((R, 1))
    for r0 in range(0, R, P):
        rt = min(P, R - r0)
        with lw.at(red.loc):
            acc = lw.sb((rt, 1), "float32")
        for j, c0 in enumerate(range(0, C, F)):
            ct = min(F, C - c0)
            sl = lambda v, r0=r0, rt=rt, c0=c0, ct=ct: v[r0:r0 + rt, c0:c0 + ct]  # noqa: E731
            t = _run_members(lw, prod.ops, done, _load(lw, leaves, sl, cache, sched.row_cache),
                             (rt, ct))
            if keep is not None:
                with lw.at(prod.root.loc):
                    lw.emit("dma_copy", dst=sl(keep), src=t)
            with lw.at(red.loc):
                part = acc if j == 0 else lw.sb((rt, 1), "float32")
                lw.emit("tensor_reduce", dst=part, op=alu, data=t, axis=(1,))
                if j:
                    lw.emit("tensor_tensor", dst=acc, data1=acc, data2=part, op=alu)
        with lw.at(red.loc):
            res = lw.sb((rt, 1), out.dtype)
            lw.emit("tensor_copy", dst=res, src=acc)
            lw.emit("dma_copy", dst=o[r0:r0 + rt], src=res)
    env[id(red.result)] = out


def _lower_split(lw, group: Group, env: dict, sched) -> None:
    for ops in split_parts(group, sched.split):
        part = make_group(ops)
        psched = _part_schedule(lw, part, sched)
        if part.fused:
            lower_group(lw, part, env, psched)
        else:
            _lower_alone(lw, part.root, env, psched)


def _lower_alone(lw, op, env, sched) -> None:
    """One op on its own with its rule, as the driver lowers a group of one."""
    with lw.at(op.loc):
        env[id(op.result)] = OPS[op.opcode].lower(lw, op, [env[id(v)] for v in op.inputs], sched)


def lower_group(lw, group: Group, env: dict, sched) -> None:
    """Lower a fused group; its root's value is stored in ``env``."""
    if any(getattr(sched, "split", ())):
        return _lower_split(lw, group, env, sched)
    if isinstance(sched, FusedReduceSchedule):
        return _lower_reduce_pair(lw, group, env, sched)
    ops = list(group.ops)
    root = group.root
    shape = tuple(root.result.type.shape)
    with lw.at(root.loc):
        out = lw.hbm(shape, root.result.type.dtype)
        if group.dot is not None:
            _lower_dot_group(lw, ops, env, group.dot, out, sched)
        else:
            _lower_ew_group(lw, ops, env, shape, out, sched)
    env[id(root.result)] = out


def _lower_ew_group(lw, group, env, shape, out, sched):
    flat = not any(op.opcode == "broadcast" for op in group)
    R = math.prod(shape[:-1])
    C = shape[-1] if shape else 1
    P = lw.arch.partitions
    leaves, done = _leaves(lw, group, env, None if flat else (R, C))
    cache = {}
    if flat:                                    # same tiles as the unfused lowering
        for start, rows, cols in chunks(out.size, sched.free, P):
            sl = lambda v, s=start, r=rows, c=cols: flat_tile(v, s, r, c)  # noqa: E731
            res = _run_members(lw, group, done, _load(lw, leaves, sl, cache, sched.row_cache),
                               (rows, cols))
            lw.emit("dma_copy", dst=flat_tile(out, start, rows, cols), src=res)
        return
    o = out.reshape((R, C))
    for r0 in range(0, R, P):                   # row/column vectors: rows on the partitions
        rt = min(P, R - r0)
        for c0 in range(0, C, sched.free):
            ct = min(sched.free, C - c0)
            sl = lambda v, r0=r0, rt=rt, c0=c0, ct=ct: v[r0:r0 + rt, c0:c0 + ct]  # noqa: E731
            res = _run_members(lw, group, done, _load(lw, leaves, sl, cache, sched.row_cache),
                               (rt, ct))
            lw.emit("dma_copy", dst=o[r0:r0 + rt, c0:c0 + ct], src=res)


def _lower_dot_group(lw, group, env, dot, out, sched):
    prob = MatmulProblem.of(dot)
    B, M, N = prob.B, prob.M, prob.N
    leaves, done = _leaves(lw, group, env, (B, M, N))
    cache = {}
    o = out.reshape((B, M, N))
    summed = dot_sum(group)
    head = dot.result if summed is None else summed[2].result     # the value PSUM holds
    if summed is not None:
        done.add(id(summed[2]))
    user = next((op for op in group if any(v is head for v in op.inputs)), None)
    direct = head.type.dtype == "float32" and user is not None and OPS[user.opcode].psum_reader

    def evict(ps, bi, m0, mt, n0, nt):
        sl = lambda v: v[bi, m0:m0 + mt, n0:n0 + nt]  # noqa: E731
        tiles = _load(lw, leaves, sl, cache, sched.row_cache)
        if direct:
            tiles[id(head)] = ps
        else:                                   # round to the dot's dtype as the eviction would
            res = lw.sb((mt, nt), head.type.dtype)
            lw.emit("tensor_copy", dst=res, src=ps)
            tiles[id(head)] = res
        res = _run_members(lw, group, done, tiles, (mt, nt))
        lw.emit("dma_copy", dst=o[bi, m0:m0 + mt, n0:n0 + nt], src=res)

    with lw.at(dot.loc):
        if summed is not None:
            lower_dot_sum(lw, group, env, sched, evict)
        else:
            lower_dot(lw, dot, [env[id(v)] for v in dot.inputs], sched, evict=evict)
