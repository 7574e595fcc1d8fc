"""Allocations: the memory regions (buffers) and ``Storage``, one allocation in one of them.

    >>> Storage((128, 512), "bfloat16", SBUF, name="t").bytes_per_partition
    1024
"""
from __future__ import annotations

import itertools
import math

from . import dtypes
from .errors import UserKernelError


class Buffer:
    """A memory region. Compares equal by name, so ``t.buffer == nl.sbuf`` is a plain bool."""
    __slots__ = ("name", "kind", "on_chip")

    def __init__(self, name: str, kind: str):
        self.name, self.kind = name, kind     # kind: 'sbuf' | 'psum' | 'hbm'
        self.on_chip = kind in ("sbuf", "psum")   # a plain attribute: read on every hot path

    def __eq__(self, other):
        if isinstance(other, Buffer):
            return self.name == other.name
        if isinstance(other, str):
            return self.name == other or (other == "hbm" and self.kind == "hbm" and self.name != "shared_hbm")
        return False

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return self.name


SBUF = Buffer("sbuf", "sbuf")
PSUM = Buffer("psum", "psum")
HBM = Buffer("hbm", "hbm")            # == private_hbm
SHARED_HBM = Buffer("shared_hbm", "hbm")
BUFFERS = {"sbuf": SBUF, "psum": PSUM, "hbm": HBM, "private_hbm": HBM, "shared_hbm": SHARED_HBM}


def as_buffer(b) -> Buffer:
    if isinstance(b, Buffer):
        return b
    if isinstance(b, str) and b in BUFFERS:
        return BUFFERS[b]
    raise UserKernelError(f"unknown buffer {b!r}: expected nl.sbuf, nl.psum, nl.hbm or nl.shared_hbm")


_ids = itertools.count()
ITEMSIZE_CACHE: dict = {}          # dtype name -> bytes (a cache in front of dtypes.itemsize)


class Storage:
    """One allocation. ``address`` is (partition_offset, free_byte_offset) when the user gave one."""
    __slots__ = ("id", "name", "shape", "dtype", "buffer", "address", "loc", "kind", "const",
                 "_free", "_bpp")

    def __init__(self, shape, dtype, buffer, name="", address=None, loc=None, kind="tile", const=None):
        self.id = next(_ids)
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtypes.normalize(dtype)
        self.buffer = as_buffer(buffer)
        self.name = name or f"t{self.id}"
        self.address = address
        self.loc = loc
        self.kind = kind          # 'input' | 'output' | 'tile' | 'const'
        self.const = const        # initial contents for shared_constant / identity
        # shape, dtype and buffer never change after allocation: cache the per-partition sizes
        self._free = math.prod(self.shape[1:]) if self.buffer.on_chip else math.prod(self.shape)
        self._bpp = self._free * dtypes.itemsize(self.dtype)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def partitions(self) -> int:
        return self.shape[0] if self.buffer.on_chip else 1

    @property
    def free_elems(self) -> int:
        """Elements per partition on chip (the partition stride)."""
        return self._free

    @property
    def bytes_per_partition(self) -> int:
        return self._bpp

    @property
    def partition_offset(self) -> int:
        return self.address[0] if self.address else 0

    def __repr__(self):
        return f"{self.buffer.name}.{self.name}"


def row_major(shape):
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return tuple(reversed(strides))
