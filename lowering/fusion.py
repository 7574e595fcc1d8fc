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

    >>> from lowering.graph import Graph
    >>> from lowering.types import TensorType
    >>> g = Graph("f")
    >>> x = g.param(TensorType((4, 8), "float32"), "x")
    >>> w = g.param(TensorType((8, 16), "float32"), "w")
    >>> y = g.add_op("dot", [x, w], {"lhs_contract": [1], "rhs_contract": [0]})
    >>> g.set_outputs([g.add_op("exp", [g.add_op("tanh", [y])])])
    >>> [[op.opcode for op in grp] for grp in plan(g) if len(grp) > 1]
    [['dot', 'tanh', 'exp']]
"""
from __future__ import annotations

import math

from device.errors import UserKernelError

from .tiling import (F_ELEM, P, _BINARY, _UNARY_ACT, _chunks, _lower_broadcast, _lower_dot,
                     _tiles, device_dtype, lower_op)
from .lower_elementwise import _ACT

# ops whose lowering rule is exactly one `_elementwise(...)` call (so capture mode yields its body)
ELEMENTWISE = set(_BINARY) | set(_UNARY_ACT) | set(_ACT) | {
    "negate", "compare", "select", "convert", "sine", "round_nearest_even", "round_nearest_afz",
    "log1p", "expm1", "is_finite", "not", "and", "or", "xor", "shift_left",
    "shift_right_logical", "shift_right_arithmetic", "remainder", "clamp"}
# first epilogue ops that may read the PSUM tile directly (Vector/Scalar instructions only)
PSUM_READERS = set(_BINARY) | set(_UNARY_ACT) | set(_ACT) | {"negate", "compare"}
ROW_CACHE_BYTES = 32 * 1024    # SBUF bytes per partition for row-vector tiles kept across tiles


def _is_elementwise(op) -> bool:
    shape = tuple(op.result.type.shape)
    return (op.opcode in ELEMENTWISE and not op.multi
            and all(tuple(v.type.shape) == shape for v in op.inputs))


def plan(graph) -> list[list]:
    """Partition ``graph.ops`` into groups (lists of ops in graph order, the root last)."""
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
                n = sum(m.opcode == "dot" for m in members[id(d)])
                if dots + n > 1:
                    continue                            # one matmul tile loop per group
                dots += n
                members[id(op)] += members.pop(id(d))
                fused.add(id(d))
    order = {id(op): i for i, op in enumerate(graph.ops)}
    return [sorted(members[id(op)], key=lambda m: order[id(m)])
            for op in graph.ops if id(op) not in fused]


def lower_fused(lw, graph, env: dict) -> list:
    """Lower ``graph`` with its parameters bound in ``env``; return the output views."""
    for group in plan(graph):
        if len(group) == 1:
            lower_op(lw, group[0], env)
        else:
            _lower_group(lw, group, env)
    return [env[id(v)] for v in graph.outputs]


class _Spec:
    """Stands in for an operand while a rule is asked for its tile body (only dtype is read)."""

    def __init__(self, value):
        self.shape = tuple(value.type.shape)
        self.dtype = device_dtype(value.type.dtype)


def _body(lw, op):
    attrs = dict(op.attrs, _opcode=op.opcode)
    lw.capture = True
    try:
        body = lw.lower(op.opcode, [_Spec(v) for v in op.inputs], attrs, op.result.type)
    finally:
        lw.capture = False
    if not callable(body):                  # ELEMENTWISE lists a rule that is not one loop
        raise UserKernelError(f"fusion: rule for '{op.opcode}' did not give a tile body")
    return body


def _broadcast_view(lw, op, env):
    """The broadcast's result as a strided (stride-0) view of its source, without a copy."""
    src = lw.contiguous(env[id(op.inputs[0])])
    dims, shape = list(op.attrs["dims"]), tuple(op.result.type.shape)
    pat = []
    for d, n in enumerate(shape):
        if d in dims:
            s, c = src.pattern[dims.index(d)]
            pat.append((s if c == n else 0, n))
        else:
            pat.append((0, n))
    return type(src)(src.storage, src.offset, pat or [(0, 1)], src.dtype)


def _leaves(lw, group, env, shape2d):
    """External inputs of the group as views of shape ``shape2d`` (None: flat chunks), keyed by
    id(value). Broadcast members become leaves when their view fits the tiling, else they are
    materialised like any other external value."""
    inside = {id(op.result) for op in group}
    leaves, done = {}, set()
    for op in group:
        if op.opcode == "broadcast":
            v = _broadcast_view(lw, op, env)
            try:
                leaves[id(op.result)] = v if shape2d is None else v.reshape(shape2d)
                done.add(id(op))
                continue
            except UserKernelError:
                env[id(op.result)] = _lower_broadcast(lw, [env[id(op.inputs[0])]],
                                                      dict(op.attrs), op.result.type)
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
        dst = lw.sb(rows_cols, op.result.type.dtype)
        _body(lw, op)([tiles[id(v)] for v in op.inputs], dst)
        tiles[id(op.result)] = dst
    return tiles[id(group[-1].result)]


def _load(lw, leaves, sl, cache):
    """DMA each leaf's slice for one tile into SBUF. A slice that is constant along the free
    axis (a column vector or scalar broadcast: 4-byte DMA rows, CM rule 13) is loaded once as a
    [rows, 1] column, kept in ``cache`` for the other tiles that read the same rows, and read
    back through a stride-0 view (the values are the same, so numerics do not change). A row
    vector (stride 0 across partitions) is re-read for every row block: those tiles are kept too,
    up to ``ROW_CACHE_BYTES`` per partition, so the bias of ``x @ w + b`` is loaded once per N
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
            if row and cache.get("bytes", 0) + nbytes <= ROW_CACHE_BYTES:
                cache[sig] = t          # a row vector: the same slice for every row block
                cache["bytes"] = cache.get("bytes", 0) + nbytes
        tiles[key] = t
    return tiles


def _lower_group(lw, group, env):
    root = group[-1]
    shape = tuple(root.result.type.shape)
    out = lw.hbm(shape, root.result.type.dtype)
    dot = next((op for op in group if op.opcode == "dot"), None)
    if dot is not None:
        _lower_dot_group(lw, group, env, dot, out)
    else:
        _lower_ew_group(lw, group, env, shape, out)
    env[id(root.result)] = out


def _lower_ew_group(lw, group, env, shape, out):
    flat = not any(op.opcode == "broadcast" for op in group)
    R = math.prod(shape[:-1])
    C = shape[-1] if shape else 1
    leaves, done = _leaves(lw, group, env, None if flat else (R, C))
    cache = {}
    if flat:                                    # same tiles as the unfused lowering
        for start, rows, cols in _chunks(out.size):
            sl = lambda v, s=start, r=rows, c=cols: _tiles(v, s, r, c)  # noqa: E731
            res = _run_members(lw, group, done, _load(lw, leaves, sl, cache), (rows, cols))
            lw.emit("dma_copy", dst=_tiles(out, start, rows, cols), src=res)
        return
    o = out.reshape((R, C))
    for r0 in range(0, R, P):                   # row/column vectors: rows on the partitions
        rt = min(P, R - r0)
        for c0 in range(0, C, F_ELEM):
            ct = min(F_ELEM, C - c0)
            sl = lambda v, r0=r0, rt=rt, c0=c0, ct=ct: v[r0:r0 + rt, c0:c0 + ct]  # noqa: E731
            res = _run_members(lw, group, done, _load(lw, leaves, sl, cache), (rt, ct))
            lw.emit("dma_copy", dst=o[r0:r0 + rt, c0:c0 + ct], src=res)


def _lower_dot_group(lw, group, env, dot, out):
    attrs = dot.attrs
    lhs, rhs = dot.inputs
    lb, lc = list(attrs["lhs_batch"]), list(attrs["lhs_contract"])
    rb, rc = list(attrs["rhs_batch"]), list(attrs["rhs_contract"])
    ls, rs = lhs.type.shape, rhs.type.shape
    B = math.prod(ls[d] for d in lb)
    M = math.prod(ls[d] for d in range(len(ls)) if d not in lb + lc)
    N = math.prod(rs[d] for d in range(len(rs)) if d not in rb + rc)
    leaves, done = _leaves(lw, group, env, (B, M, N))
    cache = {}
    o = out.reshape((B, M, N))
    user = next(op for op in group if any(v is dot.result for v in op.inputs))
    direct = dot.result.type.dtype == "float32" and user.opcode in PSUM_READERS

    def evict(ps, bi, m0, mt, n0, nt):
        sl = lambda v: v[bi, m0:m0 + mt, n0:n0 + nt]  # noqa: E731
        tiles = _load(lw, leaves, sl, cache)
        if direct:
            tiles[id(dot.result)] = ps
        else:                                   # round to the dot's dtype as the eviction would
            res = lw.sb((mt, nt), dot.result.type.dtype)
            lw.emit("tensor_copy", dst=res, src=ps)
            tiles[id(dot.result)] = res
        res = _run_members(lw, group, done, tiles, (mt, nt))
        lw.emit("dma_copy", dst=o[bi, m0:m0 + mt, n0:n0 + nt], src=res)

    _lower_dot(lw, [env[id(v)] for v in dot.inputs], dict(attrs, _opcode="dot"),
               dot.result.type, evict=evict)
