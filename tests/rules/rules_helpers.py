"""Helpers for the hardware-rule tests: run a kernel, catch its HardwareRuleError, and check that
the error names the rule, operand, value and limit and points at the marked line of the kernel.

A kernel marks its offending statement with a trailing ``# <- <marker>`` comment; the expected line
number is computed from the source, so moving code never breaks a test.
"""
from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

from device.errors import HardwareRuleError


def marker_line(fn, marker: str) -> tuple[str, int]:
    """(file, line) of the single source line of ``fn`` ending in ``# <- marker``."""
    fn = getattr(fn, "fn", fn)                 # a Kernel: look at the Python function
    lines, start = inspect.getsourcelines(fn)
    hits = [start + k for k, text in enumerate(lines) if text.rstrip().endswith(f"# <- {marker}")]
    assert len(hits) == 1, f"marker {marker!r} found {len(hits)} times in {fn.__name__}"
    return inspect.getsourcefile(fn), hits[0]


def expect_rule(call, *, rule, operand, value, limit, where, says=()):
    """Run ``call()``; assert it raises ``rule`` with these fields at ``where`` = (file, line)."""
    with pytest.raises(HardwareRuleError) as info:
        call()
    e = info.value
    assert (e.rule, e.operand, e.value, e.limit) == (rule, operand, value, limit), str(e)
    file, line = where
    assert e.loc is not None and os.path.samefile(e.loc.file, file) and e.loc.line == line, (
        f"reported at {e.loc}, expected {os.path.basename(file)}:{line}")
    text = str(e)
    assert text.startswith(f"{rule}: "), text
    assert f"{os.path.basename(file)}:{line}" in text, text
    for fragment in says:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    return e


def ones(*shape, dtype=np.float32):
    return np.ones(shape, dtype)
