"""Syntax of XLA HLO text: tokens -> computations -> instructions (no semantics yet).

Handles both spellings XLA prints: the short form (``add(a, b)``, JAX pre-optimization) and the
long form with ``%`` sigils and typed operands (``add(f32[4]{0} %a, f32[4]{0} %b)``, TF and XLA
dumps). Layouts, ``/*index=N*/`` comments and the FileNames/StackFrames tables are skipped.
Attribute values are kept as raw tokens; :mod:`lowering.hlo_text` decodes the ones it needs.

    >>> m = parse_module("HloModule m\\nENTRY e {\\n  ROOT p = f32[2]{0} parameter(0)\\n}")
    >>> m.entry.instrs[0].opcode, m.entry.instrs[0].shape
    ('parameter', HloShape(etype='f32', dims=(2,), tuple=None))
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field


class HloImportError(ValueError):
    """HLO text that we cannot read: malformed, or using something we do not support."""

    def __init__(self, message: str, line: int | None = None, text: str | None = None,
                 hint: str | None = None):
        self.reason, self.line = message, line  # the bare message, without line and hint
        if line is not None:
            message += f" (line {line})"
            if text:
                message += f"\n  {text.strip()[:200]}"
        if hint:
            message += f"\n  hint: {hint}"
        super().__init__(message)


# Every primitive type name XLA prints; which of them we *support* is decided by the importer.
HLO_ELEMENT_TYPES = frozenset(
    "pred s2 s4 s8 s16 s32 s64 u2 u4 u8 u16 u32 u64 f16 bf16 f32 f64 c64 c128 tf32 f4e2m1fn "
    "f8e3m4 f8e4m3 f8e4m3fn f8e4m3b11fnuz f8e4m3fnuz f8e5m2 f8e5m2fnuz f8e8m0fnu token".split())
_TABLES = frozenset({"FileNames", "FunctionNames", "FileLocations", "StackFrames"})
_LITERAL_OPCODES = frozenset({"parameter", "constant", "iota"})
_OPEN, _CLOSE = "([{", ")]}"

_TOKEN_RE = re.compile(r"""
    (?P<space>[ \t\r\n]+) | (?P<comment>/\*.*?\*/)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<punct>->|<=|\.\.\.)
  | (?P<num>-?(?:inf|nan)\b | [-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<name>%?[A-Za-z_][\w.]*(?:-[\w.]+)*)
  | (?P<char>.)
""", re.VERBOSE | re.DOTALL)


@dataclass
class Token:
    kind: str  # 'name' | 'num' | 'str' | 'punct'
    text: str
    line: int


@dataclass
class HloShape:
    """An array shape (``etype`` + ``dims``) or a tuple of shapes (``tuple`` is not None)."""

    etype: str | None
    dims: tuple[int, ...] | None
    tuple: list["HloShape"] | None = None

    def __str__(self) -> str:
        if self.tuple is not None:
            return "(" + ", ".join(str(s) for s in self.tuple) + ")"
        return f"{self.etype}[{','.join(map(str, self.dims))}]"


@dataclass
class Instr:
    name: str
    shape: HloShape
    opcode: str
    operands: list[str]            # operand names, without '%'
    literal: list[Token]           # raw tokens inside (...) for parameter/constant/iota
    attrs: dict[str, list[Token]]  # raw attribute values
    line: int
    is_root: bool = False


@dataclass
class Computation:
    name: str
    instrs: list[Instr]
    is_entry: bool
    line: int

    @property
    def root(self) -> Instr:
        roots = [i for i in self.instrs if i.is_root]
        return roots[0] if roots else self.instrs[-1]


@dataclass
class Module:
    name: str
    computations: dict[str, Computation]
    entry: Computation
    lines: list[str] = field(repr=False)

    def error(self, message: str, line: int, hint: str | None = None) -> HloImportError:
        """An HloImportError that quotes the offending source line."""
        return HloImportError(message, line, self.lines[line - 1] if 0 < line <= len(self.lines)
                              else None, hint)


def tokenize(text: str) -> list[Token]:
    """Split HLO text into tokens, dropping whitespace and ``/*...*/`` comments."""
    tokens, line = [], 1
    for m in _TOKEN_RE.finditer(text):
        kind, tok = m.lastgroup, m.group()
        if kind not in ("space", "comment"):
            tokens.append(Token("punct" if kind == "char" else kind, tok, line))
        line += tok.count("\n")
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.lines = text.splitlines()
        self.toks = tokenize(text)
        self.i = 0
        self._check_brackets()

    # -------------------------------------------------------- token helpers
    def peek(self, k: int = 0) -> Token | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def at(self, text: str, k: int = 0) -> bool:
        tok = self.peek(k)
        return tok is not None and tok.text == text

    def next(self, what: str) -> Token:
        tok = self.peek()
        if tok is None:
            last = self.toks[-1].line if self.toks else 1
            raise self.error(f"unexpected end of text, expected {what}", last)
        self.i += 1
        return tok

    def expect(self, text: str) -> Token:
        tok = self.next(f"'{text}'")
        if tok.text != text:
            raise self.error(f"expected '{text}' but found '{tok.text}'", tok.line)
        return tok

    def name(self, what: str) -> str:
        tok = self.next(what)
        if tok.kind != "name":
            raise self.error(f"expected {what} but found '{tok.text}'", tok.line)
        return tok.text.lstrip("%")

    def error(self, message: str, line: int) -> HloImportError:
        return HloImportError(message, line, self.lines[line - 1] if line <= len(self.lines)
                              else None)

    def _check_brackets(self):
        """Report unbalanced brackets up front, where the line numbers are still meaningful."""
        stack = []
        for tok in self.toks:
            if tok.kind != "punct":
                continue
            if tok.text in _OPEN:
                stack.append(tok)
            elif tok.text in _CLOSE:
                want = _OPEN[_CLOSE.index(tok.text)]
                if not stack:
                    raise self.error(f"unbalanced brackets: unexpected '{tok.text}'", tok.line)
                if stack[-1].text != want:  # the unclosed opener is the likelier culprit
                    raise self.error(f"unbalanced brackets: '{stack[-1].text}' is not closed "
                                     f"before '{tok.text}' on line {tok.line}", stack[-1].line)
                stack.pop()
        if stack:
            raise self.error(f"unbalanced brackets: '{stack[-1].text}' is never closed",
                             stack[-1].line)

    def group(self) -> list[Token]:
        """Consume a bracketed group (brackets are known to balance) and return its tokens."""
        start, depth = self.i, 0
        while True:
            tok = self.next("a closing bracket")
            depth += (tok.text in _OPEN) - (tok.text in _CLOSE) if tok.kind == "punct" else 0
            if depth == 0:
                return self.toks[start:self.i]

    def value(self) -> list[Token]:
        """An attribute value: tokens up to the next top-level ',' or the end of the line."""
        start, line = self.i, self.peek().line if self.peek() else 0
        while (tok := self.peek()) is not None and tok.line == line and tok.text != "," \
                and not (tok.kind == "punct" and tok.text in _CLOSE):
            if tok.kind == "punct" and tok.text in _OPEN:
                line = self.group()[-1].line  # a group may span lines; go on from its end
            else:
                self.i += 1
        if self.i == start:
            raise self.error("missing attribute value", line)
        return self.toks[start:self.i]

    # -------------------------------------------------------- grammar
    def module(self) -> Module:
        name = "hlo_module"
        if self.at("HloModule"):
            self.i += 1
            name = self.name("a module name")
            while self.at(","):
                self.i += 1
                self.name("a module attribute")
                self.expect("=")
                self.value()
        comps: dict[str, Computation] = {}
        while self.peek() is not None:
            if self.peek().text in _TABLES:
                self.skip_table()
                continue
            comp = self.computation()
            comps[comp.name] = comp
        entries = [c for c in comps.values() if c.is_entry]
        if not entries:
            raise HloImportError("no ENTRY computation found: expected a line like "
                                 "'ENTRY main {' (is this HLO text?)", 1,
                                 self.lines[0] if self.lines else "")
        return Module(name, comps, entries[0], self.lines)

    def skip_table(self):
        self.i += 1
        while (tok := self.peek()) is not None and tok.kind == "num":
            self.i += 1
            if self.at("{"):
                self.group()
            else:
                self.next("a table entry")

    def computation(self) -> Computation:
        is_entry = self.at("ENTRY")
        if is_entry:
            self.i += 1
        line = self.peek().line
        name = self.name("a computation name")
        if self.at("("):  # long form signature: (p: shape, ...) -> shape
            self.group()
            self.expect("->")
            self.shape()
        self.expect("{")
        instrs = []
        while not self.at("}"):
            instrs.append(self.instruction())
        self.expect("}")
        if not instrs:
            raise self.error(f"computation '{name}' is empty", line)
        return Computation(name, instrs, is_entry, line)

    def instruction(self) -> Instr:
        is_root = self.at("ROOT")
        if is_root:
            self.i += 1
        line = self.peek().line
        name = self.name("an instruction name")
        self.expect("=")
        shape = self.shape()
        opcode = self.name("an opcode")
        operands, literal = [], []
        if opcode in _LITERAL_OPCODES:
            if not self.at("("):
                raise self.error(f"expected '(' after '{opcode}'", line)
            literal = self.group()[1:-1]
        else:
            self.expect("(")
            while not self.at(")"):
                tok = self.peek()
                if tok.text == "(" or (tok.kind == "name" and self.at("[", 1)):
                    self.shape()  # long form: the operand's shape comes first
                operands.append(self.name("an operand name"))
                if not self.at(")"):
                    self.expect(",")
            self.expect(")")
        attrs = {}
        while self.at(","):
            self.i += 1
            key = self.name("an attribute name")
            self.expect("=")
            attrs[key] = self.value()
        return Instr(name, shape, opcode, operands, literal, attrs, line, is_root)

    def shape(self) -> HloShape:
        tok = self.next("a shape")
        if tok.text == "(":
            elems = []
            while not self.at(")"):
                elems.append(self.shape())
                if not self.at(")"):
                    self.expect(",")
            self.expect(")")
            return HloShape(None, None, elems)
        if tok.kind != "name" or tok.text not in HLO_ELEMENT_TYPES:
            raise self.error(f"bad shape: '{tok.text}' is not an HLO element type", tok.line)
        dims = []
        if tok.text != "token":
            self.expect("[")
            while not self.at("]"):
                d = self.next("a dimension size")
                if d.text == "<=" or d.text == "?":
                    raise self.error("bad shape: dynamic dimensions are not supported", d.line)
                if d.kind != "num" or not d.text.isdigit():
                    raise self.error(f"bad shape: '{d.text}' is not a dimension size", d.line)
                dims.append(int(d.text))
                if not self.at("]"):
                    sep = self.next("',' or ']'")
                    if sep.text != ",":
                        raise self.error(f"bad shape: expected ',' or ']' between dimensions "
                                         f"but found '{sep.text}'", sep.line)
            self.expect("]")
        # A layout is '{' followed by a number or '}'; a computation body starts with a name.
        if self.at("{") and self.peek(1) is not None and (self.peek(1).kind == "num"
                                                          or self.at("}", 1)):
            self.group()
        return HloShape(tok.text, tuple(dims))


def parse_module(text: str) -> Module:
    """Parse HLO text into a :class:`Module` of computations; raises HloImportError."""
    if not isinstance(text, str):
        raise HloImportError(f"expected HLO text (str), got {type(text).__name__}")
    return _Parser(text).module()


def parse_literal(tokens: list[Token]):
    """Decode a literal: a number, ``true``/``false``, ``inf``/``nan`` or nested ``{...}`` lists.

    Returns Python scalars / nested lists, or ``Ellipsis`` for an elided ``{...}`` constant.

        >>> parse_literal(tokenize("{ {1, 2}, {3, -inf} }"))
        [[1, 2], [3, -inf]]
    """
    pos = 0

    def item():
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok.text == "{":
            if tokens[pos].text == "...":
                pos += 2
                return Ellipsis
            out = []
            while tokens[pos].text != "}":
                out.append(item())
                if tokens[pos].text == ",":
                    pos += 1
            pos += 1
            return out
        if tok.text in ("true", "false"):
            return tok.text == "true"
        if tok.kind == "num":
            return float(tok.text) if any(c in tok.text for c in ".eEna") else int(tok.text)
        raise HloImportError(f"cannot read literal element '{tok.text}'", tok.line)

    if not tokens:
        raise HloImportError("empty literal")
    try:
        result = item()
    except IndexError:
        raise HloImportError("truncated literal", tokens[-1].line) from None
    if pos != len(tokens):
        raise HloImportError(f"unexpected '{tokens[pos].text}' after literal", tokens[pos].line)
    return result
