"""Integer tile bodies with XLA's semantics, built from exact engine paths only.

The Vector engine computes arithmetic through fp32 and saturates on output, which is not XLA:
integer add/multiply wrap modulo 2**bits, x / 0 is -1 (all ones unsigned), x % 0 is x, INT_MIN / -1
is INT_MIN. So integer ops are lowered onto the paths that are exact (nki.isa.tensor_tensor: int32
and uint32 operands run on GpSimd "with native integer arithmetic", wrapping; bitvec ops work on raw
bits): narrow operands are widened to int32 (exact), the op runs natively, and the result is
reduced modulo 2**bits into the destination with bit masks. Division is restoring long division
on magnitudes (32 steps of shift / compare / subtract, all native). 64-bit integers have no exact
engine path at all, so their arithmetic is refused by name.
"""
from __future__ import annotations

from device import dtypes as ddt
from device.errors import UserKernelError

NATIVE = ("int32", "uint32")
WIDE = ("int64", "uint64")


def is_int_tile(v) -> bool:
    return v.dtype in ddt.INTS and v.dtype != "bool_"


def refuse_64(lw, op, *tiles):
    for v in tiles:
        if v.dtype in WIDE:
            raise UserKernelError(
                f"{op.opcode} on {v.dtype} is not lowered: the NeuronCore engines have no exact "
                f"64-bit integer arithmetic (they would compute through fp32 and lose bits); "
                f"compute in 32-bit integers (e.g. keep jax_enable_x64 off)", loc=lw.loc)


def _native(lw, dst, a, b, alu):
    lw.emit("tensor_tensor", dst=dst, data1=a, data2=b, op=alu, engine="POOL", _engine_given=True)


def _const(lw, shape, value, dt="int32"):
    c = lw.sb(shape, dt)
    lw.emit("memset", dst=c, value=int(value))
    return c


def widen(lw, x, dt="int32"):
    """An SBUF int32/uint32 copy of integer tile ``x`` (exact: narrow ints fit fp32)."""
    if x.dtype in NATIVE and x.buffer.kind == "sbuf":
        return x
    w = lw.sb(x.shape, dt if x.dtype not in NATIVE else x.dtype)
    lw.emit("tensor_copy", dst=w, src=x)
    return w


def narrow(lw, v, d):
    """Write 32-bit integer tile ``v`` into ``d`` modulo 2**bits(d) (two's complement)."""
    if d.dtype in NATIVE:
        _native(lw, d, v, _const(lw, v.shape, 0, v.dtype), "add")      # wraps into d's type
        return
    bits = 8 * ddt.itemsize(d.dtype)
    m = lw.sb(v.shape, "int32")
    lw.emit("tensor_scalar", dst=m, data=v, op0="bitwise_and", operand0=(1 << bits) - 1)
    if d.dtype.startswith("int"):                 # sign-extend: (m ^ s) - s, s the sign bit
        s = 1 << (bits - 1)
        lw.emit("tensor_scalar", dst=m, data=m, op0="bitwise_xor", operand0=s)
        lw.emit("tensor_scalar", dst=m, data=m, op0="subtract", operand0=float(s))   # |m| < 2**16
    lw.emit("tensor_copy", dst=d, src=m)


def _work_dtype(x):
    return "uint32" if x.dtype == "uint32" else "int32"


def binary(lw, op, alu, t, d):
    """add/subtract/multiply/maximum/minimum on integers, wrapping like XLA."""
    refuse_64(lw, op, *t, d)
    a, b = widen(lw, t[0]), widen(lw, t[1])
    if d.dtype in NATIVE:
        _native(lw, d, a, b, alu)
        return
    r = lw.sb(d.shape, _work_dtype(a))
    _native(lw, r, a, b, alu)
    narrow(lw, r, d)


def compare(lw, op, alu, t, d):
    """Integer comparisons, exact for every 32-bit value (the fp32 path is not beyond 2**24)."""
    refuse_64(lw, op, *t)
    a, b = widen(lw, t[0]), widen(lw, t[1])
    r = lw.sb(d.shape, "int32")
    _native(lw, r, a, b, alu)
    lw.emit("tensor_copy", dst=d, src=r)


def negate(lw, op, t, d):
    refuse_64(lw, op, t[0])
    a = widen(lw, t[0])
    r = d if d.dtype in NATIVE else lw.sb(d.shape, _work_dtype(a))
    _native(lw, r, _const(lw, a.shape, 0, a.dtype), a, "subtract")
    if r is not d:
        narrow(lw, r, d)


def absolute(lw, op, t, d):
    """|x| with XLA's abs(INT_MIN) == INT_MIN (wraps)."""
    refuse_64(lw, op, t[0])
    a = widen(lw, t[0])
    if a.dtype == "uint32":
        lw.emit("tensor_copy", dst=d, src=t[0]) if d.dtype == t[0].dtype else narrow(lw, a, d)
        return
    n = lw.sb(a.shape, "int32")
    _native(lw, n, _const(lw, a.shape, 0), a, "subtract")
    r = d if d.dtype in NATIVE else lw.sb(d.shape, "int32")
    _native(lw, r, a, n, "maximum")              # INT_MIN: -INT_MIN wraps to INT_MIN
    if r is not d:
        narrow(lw, r, d)


def convert(lw, op, t, d):
    """Integer -> integer conversion keeps the low bits (XLA), never saturates."""
    refuse_64(lw, op, t[0], d)
    narrow(lw, widen(lw, t[0]), d)


def divide(lw, op, t, d, want="quotient"):
    """XLA integer division (truncating) or remainder (sign of the dividend), exact:
    x / 0 = -1 (all ones), x % 0 = x, INT_MIN / -1 = INT_MIN, INT_MIN % -1 = 0."""
    refuse_64(lw, op, *t, d)
    signed = t[0].dtype.startswith("int")
    a, b = widen(lw, t[0]), widen(lw, t[1])
    shape = a.shape
    zero = _const(lw, shape, 0, a.dtype)
    if signed:                                    # magnitudes as uint32 (|INT_MIN| = 2**31 fits)
        ua, ub = lw.sb(shape, "uint32"), lw.sb(shape, "uint32")
        for x, u in ((a, ua), (b, ub)):
            n = lw.sb(shape, "int32")
            _native(lw, n, zero, x, "subtract")
            _native(lw, n, x, n, "maximum")       # |x| as int32, INT_MIN stays INT_MIN ...
            _native(lw, u, n, _const(lw, shape, 0, "uint32"), "add")   # ... which is 2**31 here
    else:
        ua, ub = a, b
    q, r, bit, ge = (lw.sb(shape, "uint32") for _ in range(4))
    lw.emit("memset", dst=q, value=0)
    lw.emit("memset", dst=r, value=0)
    for i in range(31, -1, -1):                   # restoring division, one quotient bit a step
        lw.emit("tensor_scalar", dst=bit, data=ua, op0="right_shift", operand0=i,
                op1="bitwise_and", operand1=1)
        lw.emit("tensor_scalar", dst=r, data=r, op0="left_shift", operand0=1)
        lw.emit("tensor_tensor", dst=r, data1=r, data2=bit, op="bitwise_or")
        _native(lw, ge, r, ub, "greater_equal")                      # 0 or 1
        _native(lw, bit, ge, ub, "multiply")
        _native(lw, r, r, bit, "subtract")
        lw.emit("tensor_scalar", dst=ge, data=ge, op0="left_shift", operand0=i)
        lw.emit("tensor_tensor", dst=q, data1=q, data2=ge, op="bitwise_or")
    # unsigned: b == 0 already gives q = all ones and r = a, as XLA defines
    res = q if want == "quotient" else r
    if signed:
        s = lw.sb(shape, "int32")                 # the sign of the result: -1 or 1
        neg = lw.sb(shape, "int32")
        src = (a, b) if want == "quotient" else (a,)
        lw.emit("memset", dst=s, value=1)
        for x in src:
            _native(lw, neg, x, zero, "less")                          # 1 where x < 0
            lw.emit("tensor_scalar", dst=neg, data=neg, op0="left_shift", operand0=1)
            _native(lw, neg, _const(lw, shape, 1), neg, "subtract")    # 1 - 2*neg
            _native(lw, s, s, neg, "multiply")
        out = lw.sb(shape, "int32")
        _native(lw, out, res, s, "multiply")                           # wraps: INT_MIN / -1
        bz = lw.sb(shape, "int32")
        _native(lw, bz, b, zero, "equal")
        fill = _const(lw, shape, -1) if want == "quotient" else a
        lw.emit("tensor_copy_predicated", dst=out, src=fill, predicate=_as_pred(lw, bz))
        res = out
    if d.dtype == res.dtype:
        lw.emit("tensor_copy", dst=d, src=res)
    else:
        narrow(lw, res, d)


def _as_pred(lw, v):
    p = lw.sb(v.shape, "uint32")
    _native(lw, p, v, _const(lw, v.shape, 0, "uint32"), "add")
    return p


def refuse_inexact(lw, what: str, graph_dtypes, why: str):
    """Integer operands where the only engine path is floating point: refuse by name."""
    for dt in graph_dtypes:
        dt = str(dt)
        if dt.startswith(("int", "uint")):
            raise UserKernelError(
                f"{what} on {dt} operands is not lowered: {why}, so integer results could "
                f"saturate or lose bits where XLA wraps exactly; convert the operands to a float "
                f"dtype in the model (exact while the values stay below 2**24)", loc=lw.loc)


def reduce_tile(lw, op, t, alu, dst):
    """Fold the columns of integer tile ``t`` [rows, cols] into ``dst`` [rows, 1] exactly:
    a log-tree of native int32 ``alu`` ops (wrapping like XLA), then one wrap into dst."""
    refuse_64(lw, op, t, dst)
    w = widen(lw, t)
    if w is t:                                    # do not fold the caller's tile in place
        w = lw.sb(t.shape, t.dtype)
        lw.emit("tensor_copy", dst=w, src=t)
    width = w.shape[1]
    while width > 1:
        h = width // 2
        _native(lw, w[:, 0:h], w[:, 0:h], w[:, h:2 * h], alu)
        if width % 2:
            _native(lw, w[:, 0:1], w[:, 0:1], w[:, 2 * h:width], alu)
        width = h
    if dst.dtype == w.dtype:
        lw.emit("tensor_copy", dst=dst, src=w[:, 0:1])
    else:
        narrow(lw, w[:, 0:1], dst)
