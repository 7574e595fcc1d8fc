"""DMA descriptor-generation (DGE) rules shared by the DMA instructions and the device loops.

``dge_mode.none`` means the Neuron Runtime writes the DMA descriptors into HBM *before* the
kernel runs (nki.isa.dma_copy docs). Two things follow, and the official compiler refuses both:

- the copy cannot have a run-time address: a ``scalar_offset=``/``vector_offset=`` access
  pattern or a register-indexed ``select`` needs ``hwdge`` or ``swdge`` ("when either sw_dge or
  hw_dge mode is used, the src and dst tensors can have a dynamic start address");
- it cannot sit in a device loop (``nl.fori_loop``/``nl.while_loop``/``nl.dynamic_range``), whose
  trip count is known only at run time (the NKI library's dynamic flash-attention design notes:
  "dge_mode.none not allowed inside nl.fori_loop — must use hwdge").

``dge_mode.unknown`` (the default) lets the compiler choose, so neither rule applies to it.

    t = nl.ndarray((64, 4), nl.float32, buffer=nl.sbuf)
    src = x.ap(pattern=[[4, 64], [1, 4]], scalar_offset=off)     # run-time row offset
    nisa.dma_copy(dst=t, src=src, dge_mode=nisa.dge_mode.hwdge)  # ok; dge_mode.none -> error
"""
from __future__ import annotations

from .rules import fail

LOOP_OPS = ("fori_loop", "while_loop")


def dge_name(i) -> str:
    """The instruction's dge_mode as a name ('none', 'swdge', 'hwdge', 'unknown' or '')."""
    mode = i.args.get("dge_mode", "")
    return str(getattr(mode, "name", mode) or "")


def check_static_descriptors(i, *names):
    """dge_mode.none with a run-time (dynamic) address on operand ``names`` is an error."""
    if dge_name(i) != "none":
        return
    for name in names:
        v = i.args.get(name)
        if getattr(v, "dyn", None) is not None:
            fail(i, "dge-mode", f"operand '{name}' has a run-time address ({v.dyn[0]} offset) but "
                 f"dge_mode=none uses descriptors the runtime writes before the kernel runs; "
                 f"use dge_mode=hwdge (or swdge)", name, "none", "hwdge or swdge")


def check_loop_body(loop, kind):
    """No instruction of a device loop's body (nested loops included) may ask for dge_mode.none."""
    for ins in loop.args.get("body", ()):
        if ins.op.name in LOOP_OPS:
            check_loop_body(ins, kind)
        elif dge_name(ins) == "none":
            fail(ins, "dge-mode", f"with dge_mode=none is inside nl.{kind}, whose trip count is "
                 f"known only at run time; descriptors made before the kernel runs cannot follow "
                 f"it: use dge_mode=hwdge (or swdge)", "dge_mode", "none", "hwdge or swdge")
