"""``nki.tensor``: the tensor handle type. ``NkiTensor`` is our ``device.tensor.View``.

Every creation op (``nl.ndarray``...) and every view method returns one; ``isinstance(t,
nki.tensor.NkiTensor)`` is how code outside a kernel can recognise them.
"""
from device.tensor import View as NkiTensor

tensor = NkiTensor

__all__ = ["NkiTensor", "tensor"]
