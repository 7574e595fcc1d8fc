"""Grammar-level generation of valid HLO modules: random chains of element-wise, broadcast,
reduce, compare/select, convert and dot ops over random shapes and dtypes. Valid input must
import, and the emulator must then agree with the graph reference (the oracle)."""
from __future__ import annotations

FLOAT_T = ["f32", "bf16"]
INT_T = ["s32", "u8", "s8", "u32", "s16"]
BIN_F = ["add", "subtract", "multiply", "maximum", "minimum", "divide"]
BIN_I = ["add", "subtract", "multiply", "maximum", "minimum", "and", "or", "xor", "divide",
         "remainder", "shift-left", "shift-right-logical", "shift-right-arithmetic"]
UN_F = ["negate", "abs", "exponential", "tanh", "floor", "sign"]
UN_I = ["negate", "abs", "not", "sign"]
CMP = ["EQ", "NE", "LT", "LE", "GT", "GE"]


def _shape(t, dims):
    return f"{t}[{','.join(map(str, dims))}]"


def generate_hlo(c) -> str:
    """One valid HLO module chosen by chooser ``c`` (see tests.fuzz.mutate)."""
    t = c.choice(FLOAT_T + INT_T)
    is_int = t in INT_T
    dims = [c.integers(1, 6) for _ in range(c.integers(1, 3))]
    s = _shape(t, dims)
    lines = [f"  p0 = {s} parameter(0)", f"  p1 = {s} parameter(1)"]
    vals = ["p0", "p1"]
    for k in range(c.integers(1, 6)):
        name = f"v{k}"
        kind = c.choice(["bin", "bin", "un", "cmp", "const"])
        a, b = c.choice(vals), c.choice(vals)
        if kind == "bin":
            op = c.choice(BIN_I if is_int else BIN_F)
            lines.append(f"  {name} = {s} {op}({a}, {b})")
        elif kind == "un":
            op = c.choice(UN_I if is_int else UN_F)
            lines.append(f"  {name} = {s} {op}({a})")
        elif kind == "cmp":
            d = c.choice(CMP)
            extra = ", type=UNSIGNED" if t.startswith("u") else ""
            lines.append(f"  {name}p = {_shape('pred', dims)} compare({a}, {b}), direction={d}{extra}")
            lines.append(f"  {name} = {s} select({name}p, {a}, {b})")
        else:
            lit = c.choice(["0", "1", "3", "-2", "100"] if is_int and not t.startswith("u")
                           else ["0", "1", "3", "100"] if is_int else ["0.5", "-2", "3.25", "1e3"])
            lines.append(f"  {name}c = {t}[] constant({lit})")
            lines.append(f"  {name}b = {s} broadcast({name}c), dimensions={{}}")
            lines.append(f"  {name} = {s} add({a}, {name}b)")
        vals.append(name)
    lines[-1] = lines[-1].replace(f"  {vals[-1]} =", f"  ROOT {vals[-1]} =")
    return "HloModule gen\n\nENTRY main {\n" + "\n".join(lines) + "\n}\n"
