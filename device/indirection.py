"""Tensor indirection (``NkiTensor.indirect``, NeuronCore-v4): building the view.

The view records ``dyn = ("indirect", index, base view, group)``; device.dynamic reads and
writes through it at run time (gather / scatter of the chosen free positions).
"""
from __future__ import annotations

from . import dtypes
from .errors import HardwareRuleError, UserKernelError


def indirect(self, index, num_elem=None, group=16):
    """Tensor indirection (NeuronCore-v4): a (P, num_elem) view of chosen free positions.

    ``index`` is an SBUF uint16/int tensor of offsets into the free elements of this view
    (flattened row-major per partition). Column ``i`` of partition group ``g`` (``group``
    adjacent partitions: 16 for Vector/Scalar/GpSimd) reads its offset from
    ``index[r0 + i % group, i // group]``, where ``r0 = 0`` when ``index`` has ``group`` rows
    (every group shares the offsets) and ``r0 = group * g`` when it has a row block per group.
    Read = gather, write = scatter; offsets are read at run time (device.dynamic).

        cols = data.indirect(idx, num_elem=32)     # data (128, 512), idx (16, 2) uint16
        nisa.tensor_copy(dst=dense, src=cols)      # dense (128, 32) = chosen columns
    """
    if not self.on_chip:
        raise HardwareRuleError("indirect-buffer", f".indirect: {self.name} is in "
                                f"{self.buffer.name}; tensor indirection addresses SBUF/PSUM "
                                f"(use .ap(vector_offset=...) for HBM)", operand=self.name,
                                value=self.buffer.name, limit="sbuf/psum")
    if self.dyn is not None:
        raise UserKernelError(f".indirect: {self.name} already has a dynamic offset; a view "
                              f"takes one indirection")
    if not isinstance(index, type(self)) or not index.on_chip or dtypes.normalize(
            index.dtype) not in dtypes.INTS:
        raise HardwareRuleError("indirect-index", f".indirect: the index must be an integer "
                                f"SBUF tensor (uint16), got {getattr(index, 'dtype', index)!r}",
                                operand="index", value=repr(index), limit="uint16 SBUF tensor")
    rows, cols = index.shape[0], index.free_size
    p = self.shape[0]
    n_groups = -(-p // group)
    if rows != group and rows < group * n_groups:
        raise HardwareRuleError("indirect-index", f".indirect: the index has {rows} rows; it "
                                f"needs {group} (offsets shared by every partition group) or "
                                f"{group * n_groups} ({group} per group of {p} partitions)",
                                operand="index", value=rows, limit=group)
    cap = group * cols
    n = cap if num_elem is None else int(num_elem)
    if not 0 < n <= cap:
        raise HardwareRuleError("indirect-num-elem", f".indirect: num_elem={n} but the index "
                                f"holds {cap} offsets per group ({group} rows x {cols})",
                                operand="num_elem", value=n, limit=cap)
    pstride = self.pattern[0][0] if self.pattern else 0
    return type(self)(self.storage, self.offset, ((pstride, p), (0, n)), self.dtype,
                ("indirect", index, self, group))
