"""Fast kernels: for the hot instructions, a closure over pre-built NumPy views that does what the
table entry's ``run`` does, minus the bookkeeping the plan settled in advance.

Each builder takes the instruction and the plan's context and returns a no-argument callable, or
None to keep the entry's own ``run`` (on the plan's memory) for that instruction. Every builder must
produce the bytes ``run`` produces; ``tests/fastpath`` checks that on random programs.

The context gives ``ctx.get(view)``: a callable returning the view's NumPy array (a fixed array
for on-chip tensors, looked up per run for HBM ones), ``ctx.precise`` (NKI_PRECISE_FP) and
``ctx.mem`` (the run's memory, for the engines' accumulator registers) and ``ctx.idx`` (the
instruction's position in the program, the key of the analysis' facts).
"""
from __future__ import annotations

import numpy as np

from .. import alu as A
from .. import dtypes
from ..isa import accum
from ..isa.pe import products_sum
from ..tensor import View

F32 = np.dtype(np.float32)
# float destinations whose rounding is a plain NumPy cast (tfloat32 and MX containers are not)
_CAST_FLOATS = dtypes.FLOATS - {"tfloat32"}


def storer(dt: str, precise: bool, rounded: bool = False):
    """``store(array, values)``: what ``Memory.write(view, values, rounded)`` stores, for a view
    of dtype ``dt``: fp32 values rounded to ``dt`` (RNE, ints saturate), then cast to storage."""
    if rounded:
        def store(a, vals):
            a[...] = np.asarray(vals).astype(a.dtype, copy=False)
    elif dt in _CAST_FLOATS and (precise or dtypes.itemsize(dt) >= 4):
        def store(a, vals):           # round_to is exactly astype here; cast straight into place
            vals = np.asarray(vals)
            if vals.dtype == a.dtype:
                a[...] = vals
                return
            if vals.dtype.kind in "iub":
                vals = vals.astype(np.float64 if dt == "float64" else np.float32)
            with np.errstate(over="ignore", invalid="ignore"):
                np.copyto(a, vals, casting="unsafe")
    else:
        same = dtypes.to_numpy(dt) if dt in dtypes.INTS else None

        def store(a, vals):
            if same is not None and getattr(vals, "dtype", None) == same:
                a[...] = vals             # ints already of the dtype: saturating is the identity
                return
            r = dtypes.round_to(vals, dt, precise)
            a[...] = np.broadcast_to(r, a.shape).astype(a.dtype, copy=False)
    return store


def _as2d(v: View):
    """``read2d``'s shape: (P, F) on chip, (1, N) in HBM."""
    return (v.shape[0], -1) if v.on_chip else (1, -1)


def _scalar(ctx, x):
    """``read_scalar``: a (P, 1) fp32 column of a tile, or an fp32 scalar."""
    if isinstance(x, View):
        g, P = ctx.get(x), x.shape[0]
        return lambda: np.asarray(g(), F32).reshape(P, 1)
    c = np.float32(x)
    return lambda: c


def dma_copy(ins, ctx):
    """A copy (dma_copy and tensor_copy alike): in place when the dtypes agree, else rounded."""
    dst, src = ins.args["dst"], ins.args["src"]
    D, S, shape = ctx.get(dst), ctx.get(src), dst.shape
    if src.dtype == dst.dtype:
        def run():
            D()[...] = S().reshape(shape)
        return run
    store = storer(dst.dtype, ctx.precise)

    def run():
        store(D(), np.asarray(S(), F32).reshape(shape))
    return run


tensor_copy = dma_copy


def memset(ins, ctx):
    dst, v = ins.args["dst"], ins.args["value"]
    val = np.full((), v, dtype=np.int64 if dst.dtype in dtypes.INTS else np.float64)
    D = ctx.get(dst)
    fill = np.asarray(dtypes.round_to(val, dst.dtype, ctx.precise)).astype(ctx.np_dtype(dst))

    def run():
        D()[...] = fill
    return run


def tensor_tensor(ins, ctx):
    dst, a, b = ins.args["dst"], ins.args["data1"], ins.args["data2"]
    op = A.alu(ins.args["op"])
    X, Y, D = ctx.get(a), ctx.get(b), ctx.get(dst)
    sa, sb, shape = _as2d(a), _as2d(b), dst.shape
    store = storer(dst.dtype, ctx.precise)
    if ins.engine == "POOL" and op.kind == "arith" and op.name not in ("power", "divide") and \
            all(v.dtype in ("int32", "uint32") for v in (dst, a, b)):
        npdt = dtypes.to_numpy(dst.dtype)           # GpSimd's native int path: wraps mod 2**32

        def run():
            with np.errstate(all="ignore"):
                r = np.asarray(op.fn(X().reshape(sa).astype(np.int64),
                                     Y().reshape(sb).astype(np.int64)))
            store(D(), A.wrap_int(r, npdt).reshape(shape))
        return run
    if op.kind == "bitvec":
        def run():
            store(D(), np.asarray(A.apply_alu(op, X().reshape(sa), Y().reshape(sb))).reshape(shape))
        return run
    if op.fn in _F32_UFUNCS and a.shape == b.shape == shape and \
            all(ctx.np_dtype(v) == F32 for v in (dst, a, b)):
        f = op.fn                                   # fp32 tiles of one shape: straight into dst

        def run():
            with np.errstate(all="ignore"):
                f(X(), Y(), out=D())
        return run

    def run():
        r = A.apply_alu(op, np.asarray(X(), F32).reshape(sa), np.asarray(Y(), F32).reshape(sb))
        store(D(), r.reshape(shape))
    return run


def _ts_apply(x, op, operand, reverse):
    if op is None:
        return x
    if op.unary:
        return A.apply_alu(op, x, None)
    return A.apply_alu(op, operand, x) if reverse else A.apply_alu(op, x, operand)


def tensor_scalar(ins, ctx):
    a = ins.args
    dst, data = a["dst"], a["data"]
    op0 = A.alu(a["op0"]) if a.get("op0") is not None else None       # None: stage skipped
    op1 = A.alu(a["op1"]) if a.get("op1") is not None else None
    if any(op is not None and op.kind == "bitvec" for op in (op0, op1)):
        return None
    X, D, shape, s2 = ctx.get(data), ctx.get(dst), dst.shape, _as2d(data)
    o0 = _scalar(ctx, a.get("operand0")) if op0 is not None else None
    o1 = _scalar(ctx, a.get("operand1")) if op1 is not None else None
    r0, r1 = a.get("reverse0"), a.get("reverse1")
    store = storer(dst.dtype, ctx.precise)

    def run():
        y = np.asarray(X(), F32).reshape(s2)
        if op0 is not None:
            y = _ts_apply(y, op0, o0(), r0)
        if op1 is not None:
            y = _ts_apply(y, op1, o1(), r1)
        store(D(), np.asarray(y).reshape(shape))
    return run


def scalar_tensor_tensor(ins, ctx):
    """dst = (data op0 operand0) op1 operand1, both steps in fp32 as the entry's ``run``."""
    a = ins.args
    dst, data, o1 = a["dst"], a["data"], a["operand1"]
    op0, op1 = A.alu(a["op0"]), A.alu(a["op1"])
    X, Y, D = ctx.get(data), ctx.get(o1), ctx.get(dst)
    s2, s1, shape = _as2d(data), _as2d(o1), dst.shape
    c = _scalar(ctx, a.get("operand0"))
    r0, r1 = bool(a.get("reverse0")), bool(a.get("reverse1"))
    store = storer(dst.dtype, ctx.precise)
    if op0.fn in _F32_UFUNCS and op1.fn in _F32_UFUNCS and data.shape == o1.shape == \
            dst.shape and all(ctx.np_dtype(v) == F32 for v in (dst, data, o1)):
        return _stt_f32(data, op0.fn, op1.fn, r0, r1, X, Y, D, c)

    def run():
        x, k = np.asarray(X(), F32).reshape(s2), c()
        y = A.apply_alu(op0, k, x) if r0 else A.apply_alu(op0, x, k)
        z = np.asarray(Y(), F32).reshape(s1)
        store(D(), np.asarray(A.apply_alu(op1, z, y) if r1 else A.apply_alu(op1, y, z))
              .reshape(shape))
    return run


def _stt_f32(data, f0, f1, r0, r1, X, Y, D, c):
    """scalar_tensor_tensor on fp32 tiles of one shape with plain fp32 ufuncs: the products
    into a scratch tile, the second op straight into dst (the same fp32 operations)."""
    tmp = np.empty(data.shape, F32)
    col = (data.shape[0],) + (1,) * (len(data.shape) - 1)

    def run():
        k = c()
        if k.ndim:
            k = k.reshape(col)
        with np.errstate(all="ignore"):
            if r0:
                f0(k, X(), out=tmp)
            else:
                f0(X(), k, out=tmp)
            if r1:
                f1(Y(), tmp, out=D())
            else:
                f1(tmp, Y(), out=D())
    return run


def activation(ins, ctx):
    a = ins.args
    dst, data = a["dst"], a["data"]
    s2, shape = _as2d(data), dst.shape
    X, D = ctx.get(data), ctx.get(dst)
    fn = A.act(a["op"])
    scale, bias = a.get("scale"), a.get("bias")
    sc = _scalar(ctx, scale) if scale is not None else None
    bi = _scalar(ctx, bias) if bias is not None else None
    cmd = accum.cmd_name(a.get("reduce_cmd"))
    red = A.alu(a.get("reduce_op") or "add")
    lanes = accum.lanes(data)
    rr = a.get("reduce_res")
    R = ctx.get(rr) if rr is not None else None
    store = storer(dst.dtype, ctx.precise)
    store_r = storer(rr.dtype, ctx.precise) if rr is not None else None
    reduces = cmd in ("reduce", "reset_reduce")
    regs_used = cmd != "idle" or rr is not None
    if A.op_name(a["op"]) in ("copy", "identity", "bypass") and scale is None and \
            bias is None and not regs_used:
        def run():                                  # a PSUM eviction: fp32 in, rounded out
            store(D(), np.asarray(X(), F32).reshape(s2).reshape(shape))
        return run

    affine = sc is not None or bi is not None

    def run():
        x = np.asarray(X(), F32).reshape(s2)
        if affine:
            with np.errstate(over="ignore", invalid="ignore"):
                if sc is not None:
                    x = x * sc()
                if bi is not None:
                    x = x + bi()
        y = A.apply_act(fn, x.astype(np.float32, copy=False))
        store(D(), y.reshape(shape))
        if regs_used:
            part = accum.reduce_free(red, y) if reduces else None
            r = accum.accumulate(ctx.mem, "ACT", lanes, cmd, red, part, identity=0.0)
            if R is not None:
                store_r(R(), np.asarray(r).reshape(rr.shape))
    return run


_REDUCERS = {"add": np.sum, "average": np.sum, "multiply": np.prod, "maximum": np.max,
             "minimum": np.min}


def tensor_reduce(ins, ctx):
    dst, data = ins.args["dst"], ins.args["data"]
    op = A.alu(ins.args["op"])
    if op.kind == "bitvec" or op.name not in _REDUCERS:
        return None
    ax = ins.args.get("axis")
    axes = tuple(x + data.ndim if x < 0 else x for x in ([ax] if isinstance(ax, int) else ax))
    fn, X, D, shape = _REDUCERS[op.name], ctx.get(data), ctx.get(dst), dst.shape
    kw = {"dtype": np.float32} if op.name in ("add", "average", "multiply") else {}
    n = np.float32(np.prod([data.shape[x] for x in axes]))
    avg, neg = op.name == "average", bool(ins.args.get("negate"))
    store = storer(dst.dtype, ctx.precise)

    def run():
        # the reference reduces a fresh C-ordered fp32 copy; summation order depends on layout
        x = np.ascontiguousarray(X(), dtype=np.float32)
        r = fn(x, axis=axes, keepdims=True, **kw)
        if avg:
            r = r / n
        if neg:
            r = -r
        store(D(), np.asarray(r).reshape(shape))
    return run


def reciprocal(ins, ctx):
    dst, data = ins.args["dst"], ins.args["data"]
    X, D, s2, shape = ctx.get(data), ctx.get(dst), _as2d(data), dst.shape
    store = storer(dst.dtype, ctx.precise)
    one = np.float32(1)

    def run():
        with np.errstate(all="ignore"):
            r = one / np.asarray(X(), F32).reshape(s2)
        store(D(), r.reshape(shape))
    return run


def nc_transpose(ins, ctx):
    dst, data = ins.args["dst"], ins.args["data"]
    X, D, P, shape = ctx.get(data), ctx.get(dst), data.shape[0], dst.shape
    store = storer(dst.dtype, ctx.precise, rounded=dst.dtype == data.dtype)

    def run():
        store(D(), X().reshape(P, -1).T.reshape(shape))
    return run


def nc_matmul(ins, ctx):
    """One matmul exactly as the reference does it: an fp64 product rounded to fp32, then added
    in fp32 to the PSUM elements that hold an open accumulation group (known statically)."""
    a = ins.args
    if a.get("is_transpose") or getattr(a.get("perf_mode"), "value", a.get("perf_mode")) == \
            "double_row":
        return None
    dst, st, mv = a["dst"], a["stationary"], a["moving"]
    K, M, N = st.shape[0], st.free_size, mv.free_size
    S, V, D = ctx.get(st), ctx.get(mv), ctx.get(dst)
    add = ctx.mm_add[ctx.idx]
    store = storer(dst.dtype, ctx.precise)
    shape = dst.shape

    def run():
        prod = products_sum(np.asarray(S(), F32).reshape(K, M),      # the reference's own sum
                            np.asarray(V(), F32).reshape(K, N))
        if add is False:
            res = prod
        else:
            old = np.asarray(D(), F32).reshape(M, N)
            res = (old + prod) if add is True else np.where(add, old + prod, prod)
        store(D(), res.reshape(shape))
    return run


def tensor_copy_predicated(ins, ctx):
    """dst = src where the predicate is non-zero (xor reverse_pred), else dst unchanged."""
    a = ins.args
    dst, src, pred = a["dst"], a["src"], a["predicate"]
    D, Pr, shape = ctx.get(dst), ctx.get(pred), dst.shape
    p2 = _as2d(pred)
    rev = bool(a.get("reverse_pred"))
    if isinstance(src, View):
        S, s2 = ctx.get(src), _as2d(src)
        new = lambda: S().reshape(s2)                  # noqa: E731
    else:
        c = np.asarray(dtypes.round_to(np.float32(src), dst.dtype, ctx.precise))
        new = lambda: c                                 # noqa: E731

    def run():
        keep = Pr().reshape(p2) != 0
        if rev:
            keep = ~keep
        d = D()
        cur = d.reshape(keep.shape)
        d[...] = np.where(keep, np.asarray(new()).astype(cur.dtype, copy=False),
                          cur).reshape(shape)
    return run


_F32_UFUNCS = (np.add, np.multiply, np.subtract, np.maximum, np.minimum)


def tensor_tensor_scan(ins, ctx):
    """The scan's fp32 recurrence with ufuncs writing into place (no per-step allocation)."""
    a = ins.args
    op0, op1 = A.alu(a["op0"]), A.alu(a["op1"])
    if op0.fn not in _F32_UFUNCS or op1.fn not in _F32_UFUNCS:
        return None
    dst, d0, d1 = a["dst"], a["data0"], a["data1"]
    P, shape = d0.shape[0], dst.shape
    X0, X1, D = ctx.get(d0), ctx.get(d1), ctx.get(dst)
    init = a.get("initial")
    I = _scalar(ctx, 0.0 if init is None else init)
    f0, f1, rev0, rev1 = op0.fn, op1.fn, bool(a.get("reverse0")), bool(a.get("reverse1"))
    store = storer(dst.dtype, ctx.precise)

    def run():
        x0 = np.ascontiguousarray(np.asarray(X0(), F32).reshape(P, -1).T)
        x1 = np.ascontiguousarray(np.asarray(X1(), F32).reshape(P, -1).T)
        r = np.broadcast_to(I(), (P, 1)).reshape(P).astype(np.float32)
        out = np.empty_like(x0)
        t = np.empty(P, np.float32)
        with np.errstate(all="ignore"):
            for k in range(x0.shape[0]):
                if rev0:
                    f0(r, x0[k], out=t)
                else:
                    f0(x0[k], r, out=t)
                r = out[k]
                if rev1:
                    f1(x1[k], t, out=r)
                else:
                    f1(t, x1[k], out=r)
        store(D(), out.T.reshape(shape))
    return run


KERNELS = {
    "dma_copy": dma_copy, "tensor_copy": tensor_copy, "memset": memset,
    "tensor_tensor": tensor_tensor, "tensor_scalar": tensor_scalar, "activation": activation,
    "tensor_reduce": tensor_reduce, "reciprocal": reciprocal, "nc_transpose": nc_transpose,
    "nc_matmul": nc_matmul, "tensor_tensor_scan": tensor_tensor_scan,
    "tensor_copy_predicated": tensor_copy_predicated,
    "scalar_tensor_tensor": scalar_tensor_tensor,
}
