"""Shared test helpers: the source line of a statement in a kernel, and located-error checks."""
from __future__ import annotations

import inspect
import os

import pytest


def line_of(fn, text: str, nth: int = 0) -> tuple[str, int]:
    """(file, line) of the ``nth`` line of ``fn``'s source that contains ``text``."""
    fn = getattr(fn, "fn", fn)
    lines, start = inspect.getsourcelines(fn)
    hits = [start + k for k, s in enumerate(lines) if text in s]
    return inspect.getsourcefile(fn), hits[nth]


def expect_error(call, kind, *, where, says=()):
    """``call()`` raises ``kind`` reported at ``where`` whose text contains every ``says``."""
    with pytest.raises(kind) as info:
        call()
    e = info.value
    file, line = where
    assert e.loc is not None and os.path.samefile(e.loc.file, file) and e.loc.line == line, (
        f"reported at {e.loc}, expected line {line}:\n{e}")
    text = str(e)
    assert f"{os.path.basename(file)}:{line}" in text, text
    for fragment in says:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    return e
