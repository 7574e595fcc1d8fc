"""Lints: warnings for code that is valid but very likely wrong. Nothing here refuses a program.

Each lint has its own warning class (``device.errors``), all subclasses of ``KernelLintWarning``,
so users can filter them or turn them into errors:

    import warnings, neuron
    warnings.simplefilter("error", neuron.KernelLintWarning)      # every lint is an error

- ``ReduceRegisterWarning`` (at trace time): an instruction copies an engine's accumulator
  registers into ``reduce_res`` with ``reduce_cmd=idle`` although no earlier instruction on that
  engine reset or reduced into them, so ``reduce_res`` receives stale registers (zeros in the
  emulator), not this instruction's reduction.
- ``UnwrittenOutputWarning`` (after a run): a tensor the kernel returns has elements nothing wrote.
- ``UninitializedReadWarning`` (during a run): an instruction read memory nothing wrote; named by
  the user's variable when the allocation line assigns one (``sq = nl.ndarray(...)``). A data
  move into SBUF (``dma_copy``, ``sendrecv``) carries the unwritten elements along instead, as
  Memcheck does, so copying a whole padded tile is quiet; computing with them, or moving them to
  HBM, warns at that line.

    >>> user_name_of(None) is None
    True
"""
from __future__ import annotations

import linecache
import re
import warnings

import numpy as np

from .errors import ReduceRegisterWarning, UnwrittenOutputWarning

# instructions that use an engine's accumulator registers (device/isa/accum.py)
_ACCUM_ENGINE = {"activation": "ACT", "activate2": "ACT", "exponential": "DVE",
                 "range_select": "DVE", "select_reduce": "DVE", "tensor_scalar_reduce": "DVE",
                 "tensor_scalar_cumulative": "DVE"}
# ... of which these copy the registers, as they are, into reduce_res under reduce_cmd=idle
# (select_reduce / range_select read out their own result instead; exponential writes nothing)
_IDLE_READS_REGISTERS = {"activation", "activate2", "tensor_scalar_reduce"}
_ASSIGN = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?::[^=]+)?=(?!=)")


def user_name_of(st) -> str | None:
    """The variable the user's allocation line assigns (``sq`` in ``sq = nl.ndarray(...)``)."""
    if st is None or getattr(st, "loc", None) is None:
        return None
    m = _ASSIGN.match(linecache.getline(st.loc.file, st.loc.line))
    return m.group(1) if m else None


def describe(st) -> str:
    """``'sq' (tensor t3, allocated at k.py:12)``: the user's name first when it is known."""
    var = user_name_of(st)
    where = f", allocated at {st.loc}" if st.loc is not None else ""
    if var and var != st.name:
        return f"'{var}' (tensor {st.name}{where})"
    return f"'{st.name}' ({'allocated at ' + str(st.loc) if st.loc is not None else 'no source line'})"


def _warn(msg, cls, loc):
    if loc is not None:
        warnings.warn_explicit(cls(msg), cls, loc.file, loc.line)
    else:
        warnings.warn(cls(msg), stacklevel=3)


def _cmd(c) -> str:
    from .isa.accum import cmd_name
    return cmd_name(c)


def lint_program(program) -> None:
    """Static lints over a traced program (no data needed)."""
    _lint_reduce_registers(program.instrs, {})


def _lint_reduce_registers(instrs, touched: dict) -> None:
    for ins in instrs:
        body = ins.args.get("body")
        if isinstance(body, (list, tuple)) and body and hasattr(body[0], "op"):
            _lint_reduce_registers(body, touched)
            continue
        eng = _ACCUM_ENGINE.get(ins.op.name)
        if eng is None:
            continue
        key = (eng, ins.args.get("_core", 0))
        cmd = _cmd(ins.args.get("reduce_cmd"))
        res = ins.args.get("reduce_res")
        if cmd != "idle" or ins.op.name not in _IDLE_READS_REGISTERS:
            touched[key] = touched.get(key) or cmd != "idle" or res is not None
            if cmd == "idle" and res is not None and ins.op.name == "exponential":
                _warn(f"exponential with reduce_cmd=idle sums nothing and does not write "
                      f"reduce_res={describe(res.storage)}. Pass "
                      f"reduce_cmd=nisa.reduce_cmd.reset_reduce to get the row sums",
                      ReduceRegisterWarning, ins.loc)
            continue
        if res is not None and not touched.get(key):
            name = describe(res.storage)
            _warn(f"{ins.op.name} copies the {'ScalarE' if eng == 'ACT' else 'VectorE'} "
                  f"accumulator registers into reduce_res={name} with reduce_cmd=idle, but no "
                  f"earlier instruction reset or reduced into them: reduce_res receives stale "
                  f"registers (zeros here), not this instruction's reduction. Pass "
                  f"reduce_cmd=nisa.reduce_cmd.reset_reduce to reduce this instruction's result",
                  ReduceRegisterWarning, ins.loc)


def _region(mask: np.ndarray) -> str:
    """'[128:200, 0:512]': the bounding box of the True elements."""
    idx = np.nonzero(mask)
    return "[" + ", ".join(f"{int(i.min())}:{int(i.max()) + 1}" for i in idx) + "]"


def check_outputs_written(program, mem) -> None:
    """Warn for every returned tensor with elements that nothing wrote (after a run)."""
    seen = set()
    for st in program.outputs:
        if st.id in seen or st.id not in mem.written:
            continue
        seen.add(st.id)
        w = mem.written[st.id]
        if w.all():
            continue
        miss = ~w.reshape(st.shape)
        n = int(miss.sum())
        var = user_name_of(st)
        label = f"'{var}' (tensor {st.name})" if var and var != st.name else f"'{st.name}'"
        whole = "[" + ", ".join(f"0:{d}" for d in st.shape) + "]"
        _warn(f"the kernel returns {label} but {n} of its {st.size} elements were never written: "
              f"region {_region(miss)} of {whole} (allocated at {st.loc or 'an unknown line'}); "
              f"they hold sentinels (NaN for floats, 4 for ints) here and garbage on hardware. "
              f"Write every element (check the loop bounds and the last partial tile)",
              UnwrittenOutputWarning, st.loc)
