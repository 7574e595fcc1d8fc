"""Assignment into a tensor: ``t[i, :] = x`` and ``acc[...] = new_value`` (NKI 0.6).

The statement is an instruction on the selected view, chosen by where the two sides live:

* tensor value, both on chip (SBUF/PSUM) -> ``nisa.tensor_copy`` (bit-exact for equal dtypes,
  otherwise cast through fp32);
* tensor value, either side in HBM -> ``nisa.dma_copy``;
* Python/NumPy scalar into an on-chip view -> ``nisa.memset``.

    acc = nl.ndarray((128, 512), nl.float32, buffer=nl.sbuf)
    acc[...] = 0.0                        # memset
    acc[0:64, :] = x_tile                 # tensor_copy of a (64, 512) tile
    out_hbm[i * 128:(i + 1) * 128, :] = acc   # dma_copy

The value must have the view's shape (a NumPy-style broadcast is not an instruction; use
``.broadcast_to`` on the value first). Each error names the view, the value and the kernel line.
"""
from __future__ import annotations

import numbers

import numpy as np

from device.errors import UserKernelError, user_loc
from device.tensor import View

from ..tracing import current


def assign(dst: View, value) -> None:
    """Emit the instruction for ``dst = value`` (``dst`` is already the indexed view)."""
    tr = current("tensor assignment (t[...] = x)")
    loc = user_loc()
    prog = tr.program
    if isinstance(value, View):
        if value.shape != dst.shape:
            raise UserKernelError(
                f"t[...] = x: the value {value.name} has shape {list(value.shape)} but the "
                f"assigned view of {dst.name} has shape {list(dst.shape)}; shapes must be equal "
                f"(slice either side, or call .broadcast_to(...) on the value)", loc=loc)
        if dst.on_chip and value.on_chip:
            prog.emit("tensor_copy", dst=dst, src=value, loc=loc)
        else:
            prog.emit("dma_copy", dst=dst, src=value, loc=loc)
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Number, np.generic)):
        kind = type(value).__name__
        hint = (" (a NumPy array is host data: pass it as a kernel argument, or build it with "
                "nl.shared_constant)" if isinstance(value, np.ndarray) else "")
        raise UserKernelError(f"t[...] = x: cannot assign a {kind} to tensor {dst.name}; the "
                              f"value must be a tensor or a number{hint}", loc=loc)
    if not dst.on_chip:
        raise UserKernelError(
            f"t[...] = {value!r}: {dst.name} is in {dst.buffer.name}; a constant can only be "
            f"written into SBUF or PSUM (memset a tile there, then dma_copy it)", loc=loc)
    prog.emit("memset", dst=dst, value=value.item() if isinstance(value, np.generic) else value,
              loc=loc)


View.assign = staticmethod(assign)
