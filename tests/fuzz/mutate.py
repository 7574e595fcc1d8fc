"""Mutations of importer input, driven by a chooser: hypothesis's ``data.draw`` in the test suite,
a seeded ``random.Random`` in the long runs (``python -m tests.fuzz``). Each mutation is what a
careless exporter or an attacker would produce: edge-case literals and dimensions, swapped opcodes
and dtypes, deleted/duplicated/reordered lines, broken attribute syntax, truncation, byte flips.
"""
from __future__ import annotations

import random
import re

EDGE_INTS = ["0", "1", "-1", "2", "7", "127", "128", "255", "256", "-129", "65535", "2147483647",
             "-2147483648", "2147483648", "4294967295", "4294967297", "9223372036854775807",
             "18446744073709551616", "100000", "40000", "1e9", "²", "0x10", "", "-0", "07"]
EDGE_FLOATS = ["nan", "-nan", "inf", "-inf", "2.7", "-0.0", "1e39", "3.4028235e38", "1e-45",
               "65504", "70000", "0.5", "1e400"]
HLO_OPS = ["add", "subtract", "multiply", "divide", "remainder", "maximum", "minimum", "power",
           "and", "or", "xor", "shift-left", "shift-right-logical", "shift-right-arithmetic",
           "compare", "select", "negate", "abs", "exponential", "log", "tanh", "sqrt", "rsqrt",
           "convert", "bitcast-convert", "broadcast", "reshape", "transpose", "reduce", "dot",
           "convolution", "slice", "concatenate", "pad", "iota", "sort", "while", "tuple",
           "get-tuple-element", "constant", "parameter", "clamp", "dynamic-slice", "gather",
           "reduce-window", "custom-call", "call", "map", "rng", "not", "sign", "floor"]
HLO_TYPES = ["f32", "bf16", "f16", "f64", "s8", "s16", "s32", "s64", "u8", "u16", "u32", "u64",
             "pred", "c64", "f8e4m3fn", "token", "s4"]
SHLO_TYPES = ["f32", "bf16", "f16", "f64", "i1", "i8", "i16", "i32", "i64", "ui8", "ui32",
              "complex<f32>", "f8E4M3FN", "index"]
ATTR_GARBAGE = ["{}", "{0}", "{1,0}", "{-1}", "{99}", "={", "1__1", "0_0x0_0", "}", ",", "(",
                "dimensions={0,0}", "padding=1", "window={size=0}", "direction=XX", "type=UNSIGNED",
                "iota_dimension=9", "to_apply=%nowhere", "index=5", "lhs_contracting_dims={7}"]


class RandomChooser:
    """The chooser protocol over ``random.Random`` (the long runs)."""

    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def integers(self, lo: int, hi: int) -> int:
        return self.r.randint(lo, hi)

    def choice(self, seq):
        return seq[self.r.randrange(len(seq))]


class DrawChooser:
    """The chooser protocol over hypothesis's ``data.draw`` (the test suite: shrinkable)."""

    def __init__(self, data):
        from hypothesis import strategies as st
        self.data, self.st = data, st

    def integers(self, lo: int, hi: int) -> int:
        return self.data.draw(self.st.integers(lo, hi))

    def choice(self, seq):
        return self.data.draw(self.st.sampled_from(list(seq)))


_NUM = re.compile(r"(?<![A-Za-z_.%])-?\d+(?:\.\d+)?(?:e-?\d+)?")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def _replace_match(text, pattern, c, make):
    ms = list(pattern.finditer(text))
    if not ms:
        return text
    m = ms[c.integers(0, len(ms) - 1)]
    return text[:m.start()] + make(m.group(0)) + text[m.end():]


def _lines(text):
    return text.split("\n")


def m_number(text, c):
    return _replace_match(text, _NUM, c, lambda _: c.choice(EDGE_INTS + EDGE_FLOATS))


def m_opcode(text, c):
    pat = re.compile(r"(?<== )(?:[a-z]+\[[^\]]*\]\S* )?([a-z][a-z-]*)\(")
    ms = list(pat.finditer(text))
    if not ms:
        return m_number(text, c)
    m = ms[c.integers(0, len(ms) - 1)]
    return text[:m.start(1)] + c.choice(HLO_OPS) + text[m.end(1):]


def m_type(text, c, stable=False):
    types = SHLO_TYPES if stable else HLO_TYPES
    pat = re.compile(r"\b(" + "|".join(re.escape(t) for t in types if t.isalnum()) + r")\b")
    return _replace_match(text, pat, c, lambda _: c.choice(types))


def m_dims(text, c, stable=False):
    if stable:
        pat = re.compile(r"tensor<([0-9x]*)")
        big = ["0x", "40000x40000x", "3x", "18446744073709551616x", "1x1x1x1x1x1x1x1x", "-1x", ""]
        return _replace_match(text, pat, c, lambda _: "tensor<" + c.choice(big))
    pat = re.compile(r"\[[0-9,]*\]")
    big = ["[]", "[0]", "[0,4]", "[40000,40000]", "[1,1,1,1,1,1,1,1,1]", "[4294967296]",
           "[9223372036854775808]", "[3]", "[-1]", "[2,2]"]
    return _replace_match(text, pat, c, lambda _: c.choice(big))


def m_line(text, c):
    ls = _lines(text)
    if len(ls) < 2:
        return text
    k = c.integers(0, len(ls) - 1)
    how = c.choice(["delete", "duplicate", "swap", "move_root"])
    if how == "delete":
        del ls[k]
    elif how == "duplicate":
        ls.insert(k, ls[k])
    elif how == "swap":
        j = c.integers(0, len(ls) - 1)
        ls[k], ls[j] = ls[j], ls[k]
    else:
        ls[k] = ls[k].replace("ROOT ", "") if "ROOT " in ls[k] else "  ROOT " + ls[k].lstrip()
    return "\n".join(ls)


def m_attr(text, c):
    pat = re.compile(r"(?<=, )[a-z_]+=[^,\n]*|\{[0-9,]*\}")
    return _replace_match(text, pat, c, lambda _: c.choice(ATTR_GARBAGE))


def m_operand(text, c):
    pat = re.compile(r"\(([^()\n]*)\)")

    def edit(s):
        inner = s[1:-1]
        parts = [p for p in inner.split(", ") if p] if inner else []
        how = c.choice(["drop", "dup", "empty", "self"])
        if how == "drop" and parts:
            parts.pop(c.integers(0, len(parts) - 1))
        elif how == "dup" and parts:
            parts.append(parts[0])
        elif how == "empty":
            parts = []
        else:
            parts = parts + ["%self"]
        return "(" + ", ".join(parts) + ")"
    return _replace_match(text, pat, c, edit)


def m_truncate(text, c):
    return text[:c.integers(0, max(0, len(text) - 1))]


def m_chars(text, c):
    if not text:
        return text
    k = c.integers(0, len(text) - 1)
    return text[:k] + c.choice(["{", "}", "(", ")", "%", "\x00", "é", "\n", " ", ",", "=", "\"",
                                "#", "-", "²"]) + text[k + 1:]


HLO_MUTATORS = [m_number, m_opcode, m_type, m_dims, m_line, m_attr, m_operand, m_truncate, m_chars]
SHLO_MUTATORS = [m_number, lambda t, c: m_type(t, c, True), lambda t, c: m_dims(t, c, True), m_line,
                 m_attr, m_operand, m_truncate, m_chars]


def mutate_text(text: str, c, stable: bool = False, rounds: int | None = None) -> str:
    """Apply 1-3 mutations (or ``rounds``) chosen by ``c``."""
    muts = SHLO_MUTATORS if stable else HLO_MUTATORS
    for _ in range(rounds if rounds is not None else c.integers(1, 3)):
        text = c.choice(muts)(text, c)
    return text


def mutate_bytes(data: bytes, c) -> bytes:
    """Byte-level corruption of a portable artifact: flips, truncation, splices."""
    b = bytearray(data)
    for _ in range(c.integers(1, 4)):
        how = c.choice(["flip", "truncate", "zero", "splice", "ff"])
        if not b:
            break
        k = c.integers(0, len(b) - 1)
        if how == "flip":
            b[k] ^= 1 << c.integers(0, 7)
        elif how == "truncate":
            del b[k:]
        elif how == "zero":
            b[k:k + 8] = bytes(len(b[k:k + 8]))
        elif how == "ff":
            b[k:k + 4] = b"\xff" * len(b[k:k + 4])
        else:
            j = c.integers(0, len(b) - 1)
            b[k:k] = b[j:j + c.integers(1, 16)]
    return bytes(b)
