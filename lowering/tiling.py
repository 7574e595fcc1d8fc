"""Lowering rules: each graph op becomes device instructions with a fixed, legal tiling.

Every graph value lives in HBM as a contiguous tensor. Element-wise ops stream it through SBUF in
[128, F] tiles (any size: the tail uses fewer partitions); ``dot`` runs the classic NKI tiling
(stationary lhsT [K<=128, M<=128], moving [K, N<=512], K accumulated in one PSUM bank); ``reduce``
moves reduced axes last and folds [rows, cols] chunks with ``tensor_reduce``; layout ops
(broadcast, transpose) are strided HBM-to-HBM DMAs; reshape is a free view. Single-use chains of
element-wise ops and element-wise epilogues of a ``dot`` are grouped by :mod:`lowering.fusion`
and lowered with one tile loop (``lower_graph(..., fuse=False)`` turns that off).

Rules are stored in the ``lower`` slot of each op's entry in ``lowering.ops.OPS`` (one table):

    >>> from lowering.tiling import lower_graph
    >>> # program = lower_graph(graph, "inf2")
"""
from __future__ import annotations

import math

import numpy as np

from device import dtypes as ddt
from device.errors import UserKernelError
from device.program import Program
from device.tensor import SBUF, PSUM, SHARED_HBM, View

from .ops import OPS

P = 128          # partitions per tile
F_ELEM = 2048    # free elements per element-wise tile (8 KiB fp32 rows: DMA-efficient, CM 2.6)
N_MM = 512       # moving free size (one PSUM bank of fp32)
F_RED = 4096     # free elements per reduction chunk

_BINARY = {"add": "add", "subtract": "subtract", "multiply": "multiply", "divide": "divide",
           "maximum": "maximum", "minimum": "minimum", "power": "power"}
_UNARY_ACT = {"exp": "exp", "log": "log", "tanh": "tanh", "sqrt": "sqrt", "rsqrt": "rsqrt",
              "abs": "abs"}
_CMP = {"EQ": "equal", "NE": "not_equal", "LT": "less", "LE": "less_equal", "GT": "greater",
        "GE": "greater_equal"}
_RED = {"add": "add", "mul": "multiply", "max": "maximum", "min": "minimum",
        "and": "minimum", "or": "maximum"}     # bools are 0/1: and = min, or = max


def device_dtype(dt: str) -> str:
    return "bool_" if dt == "bool" else ddt.normalize(dt)


def lowers(*names):
    def deco(fn):
        for n in names:
            OPS[n].lower = fn
        return fn
    return deco


class Lowerer:
    """Emits device instructions for graph ops into ``program``; values map to HBM views."""

    def __init__(self, program: Program, loc=None, fuse=True):
        self.p = program
        self.loc = loc
        self.fuse = fuse          # lower_ops fuses element-wise chains (lowering.fusion)
        self.capture = False      # set by lowering.fusion: element-wise rules return their body

    def emit(self, opname, **args):
        return self.p.emit(opname, loc=self.loc, **args)

    def hbm(self, shape, dtype, name=""):
        return self.p.alloc(tuple(shape), device_dtype(dtype), SHARED_HBM, name=name, loc=self.loc)

    def sb(self, shape, dtype):
        return self.p.alloc(tuple(shape), device_dtype(dtype), SBUF, loc=self.loc)

    def lower(self, opcode: str, inputs: list[View], attrs: dict, out_type) -> View:
        rule = OPS[opcode].lower
        if rule is None:
            raise UserKernelError(f"graph op '{opcode}' has no lowering to the NeuronCore yet",
                                  loc=self.loc)
        return rule(self, inputs, attrs, out_type)

    # -- helpers ------------------------------------------------------------------------------
    def contiguous(self, v: View) -> View:
        if v.is_contiguous() and not v.dyn:
            return v
        out = self.hbm(v.shape, v.dtype)
        self.emit("dma_copy", dst=out, src=v)
        return out


def _chunks(total):
    """Split ``total`` contiguous elements into (start, rows, cols) tiles of <= 128 x F_ELEM."""
    out, start = [], 0
    cols = min(F_ELEM, max(1, math.ceil(total / P)))
    while start < total:
        left = total - start
        rows = min(P, left // cols)
        if rows == 0:
            out.append((start, 1, left))
            break
        out.append((start, rows, cols))
        start += rows * cols
    return out


def _tiles(v: View, start, rows, cols):
    flat = v.reshape((v.size,))
    return flat[start:start + rows * cols].reshape((rows, cols))


def _elementwise(lw: Lowerer, inputs, out_type, body):
    """Stream same-shaped HBM inputs through SBUF tiles; ``body(tiles, dst_tile)`` computes.

    In capture mode (``lw.capture``, set by :mod:`lowering.fusion`) nothing is emitted and the
    tile body itself is returned, so a fused group can run it on tiles that are already on chip."""
    if lw.capture:
        return body
    out = lw.hbm(out_type.shape, out_type.dtype)
    ins = [lw.contiguous(v) for v in inputs]
    for start, rows, cols in _chunks(out.size):
        tiles = []
        for v in ins:
            t = lw.sb((rows, cols), v.dtype)
            lw.emit("dma_copy", dst=t, src=_tiles(v, start, rows, cols))
            tiles.append(t)
        dst = lw.sb((rows, cols), out_type.dtype)
        body(tiles, dst)
        lw.emit("dma_copy", dst=_tiles(out, start, rows, cols), src=dst)
    return out


@lowers(*_BINARY)
def _lower_binary(lw, inputs, attrs, out_type):
    opcode = attrs["_opcode"]
    return _elementwise(lw, inputs, out_type, lambda t, d: lw.emit(
        "tensor_tensor", dst=d, data1=t[0], data2=t[1], op=_BINARY[opcode]))


@lowers(*_UNARY_ACT)
def _lower_unary(lw, inputs, attrs, out_type):
    fn = _UNARY_ACT[attrs["_opcode"]]
    return _elementwise(lw, inputs, out_type, lambda t, d: lw.emit(
        "activation", dst=d, op=fn, data=t[0]))


@lowers("negate")
def _lower_negate(lw, inputs, attrs, out_type):
    return _elementwise(lw, inputs, out_type, lambda t, d: lw.emit(
        "tensor_scalar", dst=d, data=t[0], op0="multiply", operand0=-1.0))


@lowers("compare")
def _lower_compare(lw, inputs, attrs, out_type):
    return _elementwise(lw, inputs, out_type, lambda t, d: lw.emit(
        "tensor_tensor", dst=d, data1=t[0], data2=t[1], op=_CMP[attrs["direction"]]))


@lowers("select")
def _lower_select(lw, inputs, attrs, out_type):
    def body(t, d):
        lw.emit("tensor_copy", dst=d, src=t[2])
        lw.emit("tensor_copy_predicated", dst=d, src=t[1], predicate=t[0])
    return _elementwise(lw, inputs, out_type, body)


@lowers("convert")
def _lower_convert(lw, inputs, attrs, out_type):
    src_dt = inputs[0].dtype
    dst_dt = device_dtype(out_type.dtype)

    def body(t, d):
        if out_type.dtype == "bool":
            lw.emit("tensor_scalar", dst=d, data=t[0], op0="not_equal", operand0=0.0)
        elif ddt.is_float(src_dt) and not ddt.is_float(dst_dt):
            lw.emit("activation", dst=d, op="trunc", data=t[0])   # XLA truncates toward zero
        else:
            lw.emit("tensor_copy", dst=d, src=t[0])
    return _elementwise(lw, inputs, out_type, body)


@lowers("reshape")
def _lower_reshape(lw, inputs, attrs, out_type):
    return lw.contiguous(inputs[0]).reshape(tuple(out_type.shape) or (1,))


@lowers("transpose")
def _lower_transpose(lw, inputs, attrs, out_type):
    out = lw.hbm(out_type.shape, out_type.dtype)
    lw.emit("dma_copy", dst=out, src=inputs[0].permute(tuple(attrs["perm"])))
    return out


@lowers("broadcast")
def _lower_broadcast(lw, inputs, attrs, out_type):
    src = inputs[0]
    dims = list(attrs["dims"])
    pat = []
    for d, n in enumerate(out_type.shape):
        if d in dims:
            s, c = src.pattern[dims.index(d)]
            pat.append((s if c == n else 0, n))
        else:
            pat.append((0, n))
    out = lw.hbm(out_type.shape, out_type.dtype)
    if out.size:
        lw.emit("dma_copy", dst=out if out.ndim else out.reshape((1,)),
                src=View(src.storage, src.offset, pat or [(0, 1)], src.dtype))
    return out


@lowers("constant")
def _lower_constant(lw, inputs, attrs, out_type):
    val = np.asarray(attrs["value"])
    return lw.p.alloc(val.shape or (1,), device_dtype(out_type.dtype), SHARED_HBM, name="const",
                      loc=lw.loc, kind="const", const=val.reshape(val.shape or (1,))).reshape(
        tuple(out_type.shape) or (1,))


@lowers("iota")
def _lower_iota(lw, inputs, attrs, out_type):
    shape = tuple(out_type.shape)
    idx = np.indices(shape)[attrs["dimension"]] if shape else np.zeros(())
    return _lower_constant(lw, [], {"value": idx.astype(np.int64)}, out_type)


def _materialize_perm(lw, v, perm):
    if tuple(perm) == tuple(range(v.ndim)):
        return lw.contiguous(v)
    out = lw.hbm([v.shape[p] for p in perm], v.dtype)
    lw.emit("dma_copy", dst=out, src=v.permute(tuple(perm)))
    return out


@lowers("dot")
def _lower_dot(lw, inputs, attrs, out_type, evict=None):
    """``evict(psum_tile, bi, m0, mt, n0, nt)`` replaces the plain eviction (fused epilogues)."""
    lhs, rhs = inputs
    lb, rb = list(attrs["lhs_batch"]), list(attrs["rhs_batch"])
    lc, rc = list(attrs["lhs_contract"]), list(attrs["rhs_contract"])
    lf = [d for d in range(lhs.ndim) if d not in lb + lc]
    rf = [d for d in range(rhs.ndim) if d not in rb + rc]
    B = math.prod(lhs.shape[d] for d in lb)
    M = math.prod(lhs.shape[d] for d in lf)
    K = math.prod(lhs.shape[d] for d in lc)
    N = math.prod(rhs.shape[d] for d in rf)
    a = _materialize_perm(lw, lhs, lb + lf + lc).reshape((B, M, K))
    b = _materialize_perm(lw, rhs, rb + rc + rf).reshape((B, K, N))
    out = lw.hbm(out_type.shape, out_type.dtype) if evict is None else None
    o = out.reshape((B, M, N)) if evict is None else None
    # TensorE pairs fp32 only with fp32: compute in fp32 when either side is wider than 16 bits
    cdt = "float32" if "float32" in (a.dtype, b.dtype) or not (
        ddt.is_float(a.dtype) and ddt.is_float(b.dtype)) or a.dtype != b.dtype else a.dtype
    for bi in range(B):
        _matmul_2d(lw, a[bi], b[bi], None if o is None else o[bi], cdt,
                   None if evict is None else (lambda ps, *t, bi=bi: evict(ps, bi, *t)))
    return out


LHS_CHUNK = 4096          # lhs elements per partition per load (>= 8 KiB rows: efficient DMA)
LHS_BUDGET = 64 * 1024    # SBUF bytes per partition for the hoisted lhsT tiles of an M group


def _load_lhsT(lw, a: View, m0: int, mt: int, cdt: str):
    """lhsT tiles [kt, mt] for rows m0:m0+mt of ``a``: load whole rows (long contiguous DMA rows),
    then transpose 128-column slices on the PE (CM rule 11: load + PE transpose beats a DMA
    transpose on v2). Exact: a transpose copies values, and they already have dtype ``cdt``."""
    K = a.shape[1]
    tiles = []
    for c0 in range(0, K, LHS_CHUNK):
        kc = min(LHS_CHUNK, K - c0)
        row = lw.sb((mt, kc), cdt)
        lw.emit("dma_copy", dst=row, src=a[m0:m0 + mt, c0:c0 + kc])
        for k0 in range(0, kc, P):
            kt = min(P, kc - k0)
            pt = lw.p.alloc((kt, mt), "float32", PSUM, loc=lw.loc)
            lw.emit("nc_transpose", dst=pt, data=row[:, k0:k0 + kt])
            st = lw.sb((kt, mt), cdt)
            lw.emit("tensor_copy", dst=st, src=pt)
            tiles.append(st)
    return tiles


def _matmul_2d(lw, a: View, b: View, out: View, cdt: str, evict=None):
    """out[M, N] = a[M, K] @ b[K, N]: M blocked in groups of up to 4 row tiles that share each
    loaded rhs tile (the NKI tutorial's 'block free dimension' step), K accumulated in PSUM.
    ``evict(psum_tile, m0, mt, n0, nt)``, when given, consumes each finished PSUM tile instead
    of the copy-and-store eviction (a fused epilogue writes ``out`` itself)."""
    M, K = a.shape
    N = b.shape[1]
    mtiles = [(m0, min(P, M - m0)) for m0 in range(0, M, P)]
    group = max(1, min(4, LHS_BUDGET // max(1, K * ddt.itemsize(cdt))))
    for g in range(0, len(mtiles), group):
        ms = mtiles[g:g + group]
        lhsT = [_load_lhsT(lw, a, m0, mt, cdt) for m0, mt in ms]
        for n0 in range(0, N, N_MM):
            nt = min(N_MM, N - n0)
            ps = [lw.p.alloc((mt, nt), "float32", PSUM, loc=lw.loc) for _, mt in ms]
            for ki, k0 in enumerate(range(0, K, P)):
                kt = min(P, K - k0)
                mv = lw.sb((kt, nt), cdt)
                lw.emit("dma_copy", dst=mv, src=b[k0:k0 + kt, n0:n0 + nt])
                for j in range(len(ms)):
                    # explicit accumulate: the PSUM tile may hold an earlier result when this
                    # code runs again (a loop body), so the first K tile must overwrite
                    lw.emit("nc_matmul", dst=ps[j], stationary=lhsT[j][ki], moving=mv,
                            accumulate=ki > 0)
            for j, (m0, mt) in enumerate(ms):
                if K == 0:
                    lw.emit("memset", dst=ps[j], value=0.0)
                if evict is not None:
                    evict(ps[j], m0, mt, n0, nt)
                    continue
                res = lw.sb((mt, nt), out.dtype)
                lw.emit("tensor_copy", dst=res, src=ps[j])
                lw.emit("dma_copy", dst=out[m0:m0 + mt, n0:n0 + nt], src=res)


@lowers("reduce")
def _lower_reduce(lw, inputs, attrs, out_type):
    x = inputs[0]
    dims = sorted(attrs["dims"])
    op = _RED.get(attrs["kind"])
    if op is None:
        raise UserKernelError(f"reduce kind {attrs['kind']!r} has no lowering", loc=lw.loc)
    kept = [d for d in range(x.ndim) if d not in dims]
    R = math.prod(x.shape[d] for d in kept)
    C = math.prod(x.shape[d] for d in dims)
    xt = _materialize_perm(lw, x, kept + dims).reshape((R, C))
    out = lw.hbm(out_type.shape, out_type.dtype)
    o = out.reshape((R, 1))
    for r0 in range(0, R, P):
        rt = min(P, R - r0)
        acc = lw.sb((rt, 1), "float32")
        for j, c0 in enumerate(range(0, max(C, 1), F_RED)):
            ct = min(F_RED, C - c0)
            t = lw.sb((rt, ct), x.dtype)
            lw.emit("dma_copy", dst=t, src=xt[r0:r0 + rt, c0:c0 + ct])
            part = acc if j == 0 else lw.sb((rt, 1), "float32")
            lw.emit("tensor_reduce", dst=part, op=op, data=t, axis=(1,))
            if j:
                lw.emit("tensor_tensor", dst=acc, data1=acc, data2=part, op=op)
        res = lw.sb((rt, 1), out.dtype)
        lw.emit("tensor_copy", dst=res, src=acc)
        lw.emit("dma_copy", dst=o[r0:r0 + rt], src=res)
    return out


def lower_ops(lw: Lowerer, graph, views) -> list:
    """Lower every op of ``graph`` with its parameters bound to ``views``; return the output
    views. Used for whole graphs, loop bodies and rules that decompose into simpler ops.

    With ``lw.fuse`` single-use element-wise chains (and element-wise epilogues of a ``dot``)
    are lowered as groups by :mod:`lowering.fusion`; results are bit-identical either way."""
    env = {id(p): v for p, v in zip(graph.params, views)}
    if lw.fuse:
        from .fusion import lower_fused
        return lower_fused(lw, graph, env)
    for op in graph.ops:
        lower_op(lw, op, env)
    return [env[id(v)] for v in graph.outputs]


def lower_op(lw: Lowerer, op, env: dict) -> None:
    """Lower one graph op on its own; ``env`` maps id(value) -> HBM view and gets its results."""
    attrs = dict(op.attrs, _opcode=op.opcode)
    ins = [env[id(x)] for x in op.inputs]
    if op.multi:
        outs = lw.lower(op.opcode, ins, attrs, tuple(r.type for r in op.results))
        env.update({id(r): o for r, o in zip(op.results, outs)})
    else:
        env[id(op.result)] = lw.lower(op.opcode, ins, attrs, op.result.type)


def lower_graph(graph, target=None, name=None, fuse=True) -> Program:
    """Lower a whole graph to a device program whose inputs are the graph's parameters.
    ``fuse=False`` lowers every op on its own (each value round-trips through HBM)."""
    prog = Program(name or graph.name, target)
    lw = Lowerer(prog, fuse=fuse)
    views = []
    for pv in graph.params:
        v = prog.alloc(pv.type.shape or (1,), device_dtype(pv.type.dtype), "hbm", name=pv.name,
                       kind="input")
        prog.inputs.append(v.storage)
        views.append(v.reshape(tuple(pv.type.shape)) if pv.type.shape else v)
    finish_outputs(lw, prog, lower_ops(lw, graph, views), graph.outputs)
    return prog


def finish_outputs(lw, prog, views, values=None):
    """Make every returned value an owned shared_hbm tensor (copy aliases and inputs)."""
    seen = set()
    for v in views:
        st = v.storage
        if st.kind in ("input", "const") or not v.is_contiguous() or v.offset or \
                v.size != st.size or st.id in seen:
            new = lw.hbm(v.shape, v.dtype)
            lw.emit("dma_copy", dst=new, src=v)
            st = new.storage
        seen.add(st.id)
        prog.outputs.append(st)


# Rules for the ops defined in ops_elementwise / ops_layout / ops_window (they fill OPS[...].lower).
from . import lower_elementwise, lower_layout, lower_window  # noqa: E402,F401
