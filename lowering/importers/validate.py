"""Validation shared by the importers: operand counts per opcode, literals checked against their
element type, and the conversion of an unexpected failure into a located import error.

Literals follow XLA's parser: an integer literal must be an integer inside its type's range
(``s32[] constant(4294967297)``, ``constant(2.7)`` and ``u8[] constant(-1)`` are refused, never
wrapped or truncated), a float literal that overflows its type is refused (``bf16 1e39``), and
``pred`` takes true/false (or 0/1).

    >>> import numpy as np
    >>> from lowering.ir.types import TensorType
    >>> literal_array(7, TensorType((), "int8")).tolist()
    7
    >>> literal_array(300, TensorType((), "int8"))
    Traceback (most recent call last):
    ...
    ValueError: 300 is outside the range of int8 [-128, 127]
"""
from __future__ import annotations

import numpy as np

from ..ir.ops import OPS, by_spelling
from ..ir.types import TensorType

# HLO opcodes that are not one-to-one table spellings: (min operands, max operands or None)
_COUNTS = {
    "convert": (1, 1), "bitcast-convert": (1, 1), "broadcast": (1, 1), "reshape": (1, 1), "transpose": (1, 1),
    "iota": (0, 0), "compare": (2, 2), "select": (3, 3), "dot": (2, 2), "clamp": (3, 3),
    "slice": (1, 1), "concatenate": (1, None), "pad": (2, 2), "reverse": (1, 1),
    "dynamic-slice": (2, None), "dynamic-update-slice": (3, None), "gather": (2, 2),
    "scatter": (3, None), "reduce-window": (2, None), "convolution": (2, 2), "while": (1, 1),
    "sort": (1, None), "topk": (1, 1), "reduce": (2, None), "get-tuple-element": (1, 1),
    "constant": (0, 0), "parameter": (0, 0), "tuple": (0, None), "call": (0, None),
    "custom-call": (0, None), "opt-barrier": (0, None),
}
_EVEN = {"reduce", "reduce-window"}          # variadic: N inputs then N inits


def operand_range(opcode: str):
    """(min, max) operands of HLO ``opcode`` (max None = unbounded), or None if unknown."""
    if opcode in _COUNTS:
        return _COUNTS[opcode]
    name = by_spelling("hlo").get(opcode)
    if name is None:
        return None
    n = OPS[name].arity
    return (0, None) if n is None else (n, n)


def check_operand_count(module, ins, n: int):
    r = operand_range(ins.opcode)
    if r is None:
        return                                # unknown opcodes are refused by name later
    lo, hi = r
    if n < lo or (hi is not None and n > hi) or (ins.opcode in _EVEN and n % 2):
        want = (f"{lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo}-{hi}")
        if ins.opcode in _EVEN:
            want += " (an even number: inputs, then as many init values)"
        raise module.error(f"'{ins.opcode}' instruction '{ins.name}' has {n} operand"
                           f"{'s' if n != 1 else ''}; it takes {want}", ins.line)


def _shape_and_flat(lit, out):
    """Rectangular nesting of a parsed literal -> (shape, flat elements)."""
    if not isinstance(lit, list):
        return (), [lit]
    if not lit:
        return (0,), []
    parts = [_shape_and_flat(x, out) for x in lit]
    inner = parts[0][0]
    if any(p[0] != inner for p in parts):
        raise ValueError("the literal is ragged (rows of different lengths)")
    return (len(lit),) + inner, [e for p in parts for e in p[1]]


def literal_array(lit, out: TensorType) -> np.ndarray:
    """A parsed literal as an array of ``out``'s dtype, or ValueError saying what is wrong."""
    shape, flat = _shape_and_flat(lit, out)
    dt = out.dtype
    npdt = out.np_dtype
    if dt == "bool":
        for e in flat:
            if not (isinstance(e, bool) or (isinstance(e, int) and e in (0, 1))):
                raise ValueError(f"{e!r} is not a pred literal (true/false)")
        return np.array([bool(e) for e in flat], bool).reshape(shape)
    if npdt.kind in "iu":
        info = np.iinfo(npdt)
        for e in flat:
            if isinstance(e, bool) or not isinstance(e, int):
                raise ValueError(f"{e!r} is not an integer, so not a {dt} literal")
            if not info.min <= e <= info.max:
                raise ValueError(f"{e} is outside the range of {dt} [{info.min}, {info.max}]")
        return np.array(flat, np.int64 if info.min < 0 or info.max < 2**63 else np.uint64) \
            .astype(npdt).reshape(shape)
    vals = []
    for e in flat:
        if isinstance(e, bool):
            raise ValueError(f"{e!r} is not a {dt} literal")
        vals.append(float(e) if not isinstance(e, float) else e)
    wide = np.array(vals, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        arr = wide.astype(npdt)
    bad = np.isfinite(wide) & ~np.isfinite(arr.astype(np.float64))
    if bad.any():
        raise ValueError(f"{wide[bad][0]!r} overflows {dt} (it would become inf)")
    return arr.reshape(shape)


def check_literal(module, ins, lit, out: TensorType) -> np.ndarray:
    """The constant's array, or an HloImportError naming the instruction and line."""
    try:
        value = literal_array(lit, out)
    except (ValueError, OverflowError) as e:
        raise module.error(f"constant '{ins.name}': {e}", ins.line) from None
    if value.shape != out.shape:
        raise module.error(f"constant '{ins.name}' literal has shape {list(value.shape)} but "
                           f"the instruction declares {out}", ins.line)
    return value


def internal_error(module, ins, e: BaseException):
    """An unexpected failure while importing ``ins``, as a located HloImportError (flagged
    ``unvalidated`` so the fuzzer can count inputs that no explicit check caught)."""
    err = module.error(f"instruction '{ins.name}' ({ins.opcode}) could not be imported: "
                       f"{type(e).__name__}: {e}", ins.line)
    err.unvalidated = True
    return err
