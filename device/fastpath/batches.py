"""Runs of PSUM accumulation groups computed as one large fp32 GEMM (``NEURON_EMU_EXECUTOR=fast``).

A tiled matmul kernel repeats one pattern: for each (M tile, N tile), a group of ``nc_matmul``
accumulates ``stationary_k.T @ moving_k`` over K into a PSUM tile, which is then evicted. Each
group is ``S.T @ V`` where S and V stack the members' operands along K; consecutive groups share
their S (same M tile) or V (same N tile) stacks. A *batch* is a run of consecutive groups whose
operands already hold their final values where the batch starts (at the end of its first group):
then all of them are one GEMM ``[S_1 .. S_a].T @ [V_1 .. V_b]``, computed there in fp32, and each
group only stores its block of the result into its PSUM tile at its own place in the program
(adding the PSUM contents where the group accumulates onto them). Numerics: each output element is
one fp32 dot product over the group's K, the same as a fused group, so the bound declared in
``groups`` holds unchanged (``tests/fastpath`` checks it on random matmul programs).

Tiles loaded by a plain ``dma_copy`` (same dtype) from a program input the program never writes
are *forwarded*: the batch reads the input's view directly, so groups whose tiles are loaded
inside the loop still batch, and a DMA whose tile nobody else reads is not executed at all.

Operands are converted to fp32 once per batch while they are packed into the staging blocks (the
same conversion NumPy's ``astype`` does). Staging memory is capped (``MAX_BATCH_FLOATS``); a batch
whose result would be mostly unused blocks (groups that share no operands) is not formed.

    >>> # batches, dead = plan_batches(program, facts, groups)   # in Plan, fast mode
"""
from __future__ import annotations

import bisect

import numpy as np

from ..isa.pe import products_sum
from .analysis import LOOP_OPS
from .groups import Scratch, may_overflow
from .kernels import storer

F32 = np.dtype(np.float32)
# fp32 elements of one batch's staging blocks (stacked operands and result): 64 MiB, a few times
# the on-chip memory a kernel works on, so a batch never costs more than the data it touches
MAX_BATCH_FLOATS = 16 << 20
# a batch is kept only if at least this share of its result blocks belong to a group
MIN_DENSITY = 0.5


class Batch:
    """Groups (end index -> members) sharing one GEMM, and where their operands come from."""

    def __init__(self):
        self.ends: list = []                  # group end indices, in program order
        self.members: dict = {}               # end -> member indices
        self.pairs: dict = {}                 # end -> (S stack key, V stack key)
        self.stacks: dict = {}                # stack key -> [(K_k, F, operand view, shape)]
        self.s_keys: dict = {}                # S stack key -> column block index (order seen)
        self.v_keys: dict = {}
        self.K = None
        self.widths = [0, 0]                  # columns of the S and V staging blocks
        self.storages: set = set()            # storage ids the batch reads at its start
        self.forwarded: dict = {}             # (member idx, role) -> forwarded source view

    def size(self, s_cols, v_cols):
        return self.K * (s_cols + v_cols) + s_cols * v_cols

    def density(self):
        return len(self.ends) / (len(self.s_keys) * len(self.v_keys))


def _vkey(v):
    return (v.storage.id, v.offset, v.pattern, v.dtype)


def forward_source(v, at, instrs, writes_at, pure):
    """The input view whose bytes tile view ``v`` holds when instruction ``at`` reads it, if the
    last write of ``v``'s storage before ``at`` is a same-dtype ``dma_copy`` into exactly ``v``
    from a program input that no instruction writes (``pure``); else None."""
    w = writes_at.get(v.storage.id, ())
    k = bisect.bisect_left(w, at)
    if not k:
        return None
    d = instrs[w[k - 1]]
    if d.op.name != "dma_copy":
        return None
    dst, src = d.args["dst"], d.args["src"]
    if _vkey(dst) != _vkey(v) or src.dtype != dst.dtype or src.dyn is not None or \
            dst.dyn is not None or src.storage.id not in pure or src.size != v.size:
        return None
    return src


def plan_batches(program, facts, groups, writes_at):
    """(batches, dead): the batches of ``groups`` ({end: members}) worth running as one GEMM,
    and the indices of DMAs whose tiles only forwarded batch operands read (not executed)."""
    instrs = program.instrs
    inputs = {s.id for s in program.inputs}
    pure = inputs - {sid for sid in writes_at}

    def operand(m, role, end):
        v = instrs[m].args[role]
        src = forward_source(v, m, instrs, writes_at, pure)
        F = v.free_size
        if src is not None:
            return (("fwd",) + _vkey(src) + (v.shape,), (v.shape[0], F, src, v.shape),
                    src.storage.id, src)
        return (("tile",) + _vkey(v), (v.shape[0], F, v, v.shape), v.storage.id, None)

    def describe(end, members):
        s_parts, v_parts, sids, fwd = [], [], set(), {}
        for m in members:
            for role, parts in (("stationary", s_parts), ("moving", v_parts)):
                key, item, sid, src = operand(m, role, end)
                parts.append((key, item))
                sids.add(sid)
                if src is not None:
                    fwd[(m, role)] = src
        K = sum(item[0] for _, item in s_parts)
        return (tuple(k for k, _ in s_parts), [i for _, i in s_parts],
                tuple(k for k, _ in v_parts), [i for _, i in v_parts], K, sids, fwd)

    def ready(batch, sids, end):
        """Every operand storage holds, at the batch's start, what the group reads at ``end``."""
        start = batch.ends[0]
        for sid in sids:
            w = writes_at.get(sid, ())
            if bisect.bisect_right(w, start) != bisect.bisect_right(w, end):
                return False
            if sid not in inputs and facts.first.get(sid, end) > start:
                return False
        return True

    batches, cur = [], None
    for end in sorted(groups):
        members = groups[end]
        sk, sitems, vk, vitems, K, sids, fwd = describe(end, members)
        M = sitems[0][1]
        N = vitems[0][1]
        ok = cur is not None and cur.K == K and ready(cur, sids, end)
        if ok:
            s_cols = cur.widths[0] + (M if sk not in cur.s_keys else 0)
            v_cols = cur.widths[1] + (N if vk not in cur.v_keys else 0)
            ok = cur.size(s_cols, v_cols) <= MAX_BATCH_FLOATS
        if not ok:
            cur = Batch()
            cur.K = K
            batches.append(cur)
        cur.ends.append(end)
        cur.members[end] = members
        cur.pairs[end] = (sk, vk)
        for side, (key, items, table) in enumerate(((sk, sitems, cur.s_keys),
                                                    (vk, vitems, cur.v_keys))):
            if key not in table:
                table[key] = len(table)
                cur.stacks[key] = items
                cur.widths[side] += items[0][1]
        cur.storages |= sids
        cur.forwarded.update(fwd)
    kept = [b for b in batches if (len(b.ends) > 1 or b.forwarded) and b.density() >= MIN_DENSITY]
    return kept, _dead_dmas(program, kept, writes_at)


def _dead_dmas(program, batches, writes_at) -> set:
    """DMAs feeding only forwarded operands: every read of their tile, until it is written
    again, is a batched member reading it through the forwarded view."""
    instrs = program.instrs
    outputs = {s.id for s in program.outputs}
    forwarded, direct = set(), set()             # (member, tile storage id)
    for b in batches:
        for end in b.ends:
            for m in b.members[end]:
                for role in ("stationary", "moving"):
                    item = (m, instrs[m].args[role].storage.id)
                    (forwarded if (m, role) in b.forwarded else direct).add(item)
    forwarded -= direct
    feeders = {}
    for (m, sid) in forwarded:
        w = writes_at[sid]
        d = w[bisect.bisect_left(w, m) - 1]
        feeders.setdefault(d, sid)
    readers: dict = {}
    for idx, ins in enumerate(instrs):
        body = ins.args["body"] if ins.op.name in LOOP_OPS else (ins,)
        for sid in {v.storage.id for b in body for v in b.reads()}:
            readers.setdefault(sid, []).append(idx)
    dead = set()
    for d, sid in feeders.items():
        if sid in outputs:
            continue
        w = writes_at[sid]
        k = bisect.bisect_right(w, d)
        stop = w[k] if k < len(w) else len(instrs)
        rs = readers.get(sid, ())
        lo, hi = bisect.bisect_right(rs, d), bisect.bisect_left(rs, stop)
        if all((r, sid) in forwarded for r in rs[lo:hi]):
            dead.add(d)
    return dead


def batch_steps(batch, groups, instrs, ctx) -> dict:
    """{group end: closure}: the first computes the batch's GEMM, every one stores its block."""
    plan = ctx.plan
    staging = plan.__dict__.setdefault("batch_staging", Scratch())
    K = batch.K

    def layout(keys):
        cols, c = {}, 0
        for key in keys:
            F = batch.stacks[key][0][1]
            cols[key] = (c, c + F)
            c += F
        return cols, c

    s_cols, SW = layout(batch.s_keys)
    v_cols, VW = layout(batch.v_keys)
    S = staging.get("S", (K, SW))
    V = staging.get("V", (K, VW))
    C = staging.get("C", (SW, VW))
    pieces = []                              # (staging, rows, columns, operand view)
    for keys, cols, big in ((batch.s_keys, s_cols, S), (batch.v_keys, v_cols, V)):
        part = []
        for key in keys:
            r = 0
            for Kk, F, view, shape in batch.stacks[key]:
                part.append((big, (r, r + Kk), cols[key], view))
                r += Kk
        pieces += sorted(part, key=lambda p: (p[1], p[2]))   # row blocks, then columns
    fills = [_fill(run, ctx) for run in _runs(pieces, plan.onchip)]

    blocks = []                              # per group: its block of C and its K segments
    for end in batch.ends:
        sk, vk = batch.pairs[end]
        (a0, a1), (b0, b1) = s_cols[sk], v_cols[vk]
        blocks.append((a0, a1, b0, b1, [Kk for Kk, *_ in batch.stacks[sk]]))

    def compute():
        for block, get in fills:
            src = get()
            if src.shape != block.shape:
                src = src.reshape(block.shape)
            np.copyto(block, src, casting="unsafe")
        if may_overflow(S, V):                   # one BLAS call would hide the PE's +-inf
            for a0, a1, b0, b1, segs in blocks:  # the reference's rounding points per group
                acc, r = None, 0
                for Kk in segs:
                    p = products_sum(S[r:r + Kk, a0:a1], V[r:r + Kk, b0:b1])
                    acc = p if acc is None else acc + p
                    r += Kk
                C[a0:a1, b0:b1] = acc
            return
        with np.errstate(over="ignore", invalid="ignore"):     # inf and NaN are results here
            np.matmul(S.T, V, out=C)

    steps = {}
    for j, end in enumerate(batch.ends):
        sk, vk = batch.pairs[end]
        (a0, a1), (b0, b1) = s_cols[sk], v_cols[vk]
        block = C[a0:a1, b0:b1]
        dst = instrs[groups[end][0]].args["dst"]
        steps[end] = _storer(block, dst, ctx, ctx.mm_add[groups[end][0]],
                             compute if j == 0 else None)
    return steps


def _runs(pieces, onchip):
    """The staging pieces in runs that one strided copy fills: side by side in the same rows,
    read from equal views of one on-chip tile whose offsets step evenly (the same tap of
    consecutive output-row tiles of a convolution, the K blocks of one weight column...)."""
    runs = []
    for p in pieces:
        big, rows, (c0, c1), v = p
        if runs:
            last = runs[-1]
            q = last[-1]
            w = q[3]
            if q[0] is big and q[1] == rows and q[2][1] == c0 and v.storage.id in onchip and \
                    w.storage.id == v.storage.id and w.pattern == v.pattern and \
                    w.dtype == v.dtype and v.offset != w.offset and \
                    (len(last) == 1 or v.offset - w.offset == w.offset - last[-2][3].offset):
                last.append(p)
                continue
        runs.append([p])
    return runs


def _fill(run, ctx):
    """(destination block, source getter) for a run of pieces (one piece: its own view)."""
    big, (r0, r1), (c0, _), v = run[0]
    c1 = run[-1][2][1]
    shape = v.shape
    get = ctx.get(v)
    if len(run) > 1:
        n, first = len(run), get()
        step = (run[1][3].offset - v.offset) * first.itemsize
        src = np.lib.stride_tricks.as_strided(      # every piece lies inside the tile
            first, (shape[0], n) + tuple(shape[1:]),
            (first.strides[0], step) + first.strides[1:], writeable=False)
        get, shape = (lambda: src), (shape[0], n) + tuple(shape[1:])
    block = big[r0:r1, c0:c1]
    try:                                 # in the operand's shape: one copy, no flat temporary
        block = block.reshape(shape, copy=False)
    except ValueError:
        pass
    return block, get


def _storer(block, dst, ctx, add, compute):
    D, shape = ctx.get(dst), dst.shape
    store = storer(dst.dtype, ctx.precise)
    M, N = block.shape
    R = ctx.plan.__dict__.setdefault("batch_staging", Scratch()).get("R", (M, N))

    def run():
        if compute is not None:
            compute()
        if add:
            with np.errstate(over="ignore", invalid="ignore"):
                np.add(np.asarray(D(), F32).reshape(M, N), block, out=R)
            store(D(), R.reshape(shape))
        else:
            store(D(), block.reshape(shape))
    return run
