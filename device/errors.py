"""Errors that point at the user's source line.

A ``SourceLoc`` is captured when an instruction is created, by walking out of our own packages to
the first frame that belongs to the user (JAX-style traceback filtering). Rule violations raise
``HardwareRuleError`` whose message names the rule, the operand, the value, the limit and file:line:

    partition-limit: tensor_tensor operand 'data1' has 256 partitions; the limit is 128
      at kernel.py:12
        nisa.tensor_tensor(dst=out, data1=a, data2=b, op=nl.add)
        ^
"""
from __future__ import annotations

import linecache
import os
import sys
from dataclasses import dataclass

_PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_OURS = tuple(os.path.join(_PKG_ROOT, p) + os.sep for p in ("device", "lowering", "nki", "neuron"))


@dataclass(frozen=True)
class SourceLoc:
    """Where something came from: a file and line, the function, and an optional ``label``
    (an HLO/MLIR instruction name) printed first: ``dot.3 @ model.hlo:12``."""
    file: str
    line: int
    func: str = ""
    label: str = ""

    def __str__(self) -> str:
        where = f"{os.path.basename(self.file)}:{self.line}"
        return f"{self.label} @ {where}" if self.label else where

    def excerpt(self) -> str:
        text = linecache.getline(self.file, self.line).rstrip()
        if not text:
            return ""
        stripped = text.lstrip()
        return f"    {stripped}\n    {'^' * min(len(stripped), max(1, len(stripped.split('(')[0])))}"


def is_internal(filename: str) -> bool:
    return filename.startswith(_OURS) or filename.startswith("<frozen")


_INTERNAL: dict = {}          # filename -> is_internal(filename)
_LOCS: dict = {}              # (file, line, func) -> SourceLoc (immutable, so shared; tracing loops
                              # hit the same lines again and again)


def user_loc(skip: int = 1) -> "SourceLoc | None":
    """The innermost frame outside our packages (the user's kernel line)."""
    f = sys._getframe(skip)
    internal = _INTERNAL
    while f is not None:
        code = f.f_code
        fn = code.co_filename
        inside = internal.get(fn)
        if inside is None:
            inside = internal[fn] = is_internal(fn)
        if not inside:
            key = (fn, f.f_lineno, code.co_name)
            loc = _LOCS.get(key)
            if loc is None:
                loc = SourceLoc(*key)
                if len(_LOCS) < 100000:
                    _LOCS[key] = loc
            return loc
        f = f.f_back
    return None


class NeuronError(Exception):
    """Base of every error this project raises on purpose."""


class HardwareRuleError(NeuronError):
    """A documented hardware or API rule was violated.

    Attributes: ``rule`` (a short stable id), ``operand``, ``value``, ``limit``, ``loc``.
    """

    def __init__(self, rule: str, message: str, *, operand: str | None = None, value=None,
                 limit=None, loc: SourceLoc | None = None):
        self.rule, self.operand, self.value, self.limit = rule, operand, value, limit
        self.loc = loc if loc is not None else user_loc(2)
        self.detail = message
        text = f"{rule}: {message}"
        if self.loc is not None:
            text += f"\n  at {self.loc}"
            ex = self.loc.excerpt()
            if ex:
                text += "\n" + ex
        super().__init__(text)


class UserKernelError(NeuronError):
    """Raised when a kernel misuses the API in a way that is not a hardware rule (bad argument)."""

    def __init__(self, message: str, loc: SourceLoc | None = None):
        self.loc = loc if loc is not None else user_loc(2)
        text = message if self.loc is None else f"{message}\n  at {self.loc}"
        super().__init__(text)


class KernelLintWarning(UserWarning):
    """Base of the lints (device/lints.py): valid code that is very likely wrong. Filter them
    or make them errors: ``warnings.simplefilter("error", neuron.KernelLintWarning)``."""


class UninitializedReadWarning(KernelLintWarning):
    """A kernel read memory nobody wrote; the values are sentinels (NaN for floats, 4 for ints)."""


class ReduceRegisterWarning(KernelLintWarning):
    """``reduce_res`` is read out with ``reduce_cmd=idle`` before anything reduced into the registers."""


class UnwrittenOutputWarning(KernelLintWarning):
    """A tensor the kernel returns has elements that no instruction wrote."""


class DuplicateScatterWarning(KernelLintWarning):
    """A ``dma_compute`` scatter read-modify-write (``unique_indices=True``) sent two non-zero
    contributions to the same row: the emulator adds them in row order, hardware does not
    promise to (NKI: non-unique indices are not supported)."""


class SpillWarning(UserWarning):
    """Live SBUF tiles exceed the usable capacity, so the compiler spills some of them to HBM."""
