"""Every hardware constant in device/arch.py carries its source (D:/Dh:/SPEC) or an estimate
note (E); a new constant without one fails here."""
import ast
import io
import re
import tokenize
from pathlib import Path

import device.arch as arch_mod

TAG = re.compile(r"(\bD:|\bDh:|\bSPEC\b|\bE\b)")
SRC = Path(arch_mod.__file__).read_text()


def _comments():
    """line number -> comment text."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(SRC).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string
    return out


def _noted(node, comments, lines):
    """A constant is noted by a tagged comment on its own lines or in the comment block just above."""
    for ln in range(node.lineno, node.end_lineno + 1):
        if TAG.search(comments.get(ln, "")):
            return True
    ln = node.lineno - 1
    while ln > 0 and lines[ln - 1].strip().startswith("#"):
        if TAG.search(comments.get(ln, "")):
            return True
        ln -= 1
    return False


def _unnoted():
    tree = ast.parse(SRC)
    comments, lines = _comments(), SRC.splitlines()
    missing = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Arch":
            for st in node.body:
                if isinstance(st, ast.AnnAssign) and not _noted(st, comments, lines):
                    missing.append(f"Arch.{st.target.id} (line {st.lineno})")
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Arch":
            for kw in node.keywords:
                if not _noted(kw.value, comments, lines):
                    missing.append(f"{kw.arg}= (line {kw.value.lineno})")
    return missing


def test_every_arch_constant_has_a_source_or_estimate_note():
    missing = _unnoted()
    assert not missing, ("constants without a source (D:/Dh:/SPEC) or estimate (E) note in "
                         "device/arch.py: " + ", ".join(missing))


def test_the_check_catches_an_unnoted_constant(monkeypatch):
    global SRC
    old = SRC
    try:
        SRC = old.replace("    psum_banks: int = 8                        # D:A2",
                          "    psum_banks: int = 8")
        assert any("psum_banks" in m for m in _unnoted())
    finally:
        SRC = old


def test_every_arch_field_is_a_documented_table_entry():
    """The dataclass fields and the parsed annotations agree (nothing defined elsewhere)."""
    fields = set(arch_mod.Arch.__dataclass_fields__)
    tree = ast.parse(SRC)
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "Arch")
    assert fields == {st.target.id for st in cls.body if isinstance(st, ast.AnnAssign)}
