"""The Lowerer: emits device instructions for graph ops into a Program.

A rule never walks a graph itself: it asks the Lowerer for buffers (``hbm``, ``sb``, ``psum``),
emits instructions with the current op's source location (``at``), lowers a decomposition with
``lower_subgraph`` (the driver's walker, installed at construction, so rules do not import the
driver), and captures loop bodies with ``region``.

    >>> from device.program import Program
    >>> lw = Lowerer(Program("k"))
    >>> t = lw.sb((4, 8), "float32"); _ = lw.emit("memset", dst=t, value=0.0)
    >>> [i.op.name for i in lw.p.instrs]
    ['memset']
"""
from __future__ import annotations

from contextlib import contextmanager

from device import dtypes as ddt
from device.program import Program
from device.tensor import PSUM, SBUF, SHARED_HBM, View

from ..ir.types import TensorType


def device_dtype(dt: str) -> str:
    """The device dtype name of a graph dtype (the graph's ``bool`` is the device's ``bool_``)."""
    return "bool_" if dt == "bool" else ddt.normalize(dt)


def graph_type(v: View) -> TensorType:
    """The graph type of a device view."""
    return TensorType(v.shape, "bool" if v.dtype == "bool_" else v.dtype)


class Lowerer:
    """Emits instructions into ``program``; graph values live in HBM as views."""

    def __init__(self, program: Program, loc=None, subgraph=None, schedules=None, fuse=True):
        self.p = program
        self.fuse = fuse                   # lower_subgraph fuses element-wise chains
        self.arch = program.arch
        self.loc = loc
        self._subgraph = subgraph          # fn(lw, graph, views) -> views (the driver)
        self.schedules = schedules or {}   # group key -> Schedule, for lower_subgraph calls
        self._psum_ring = None             # inside a loop body: the bank-sized PSUM tiles reused

    # -- emission -----------------------------------------------------------------------------
    def emit(self, opname, **args):
        return self.p.emit(opname, loc=self.loc, **args)

    def hbm(self, shape, dtype, name=""):
        return self.p.alloc(tuple(shape), device_dtype(dtype), SHARED_HBM, name=name, loc=self.loc)

    def sb(self, shape, dtype):
        return self.p.alloc(tuple(shape), device_dtype(dtype), SBUF, loc=self.loc)

    def psum(self, shape):
        ring = self._psum_ring
        shape = tuple(shape)
        bank_f32 = self.arch.psum_bank_bytes // 4
        if ring is None or len(shape) != 2 or shape[1] > bank_f32:
            return self.p.alloc(shape, "float32", PSUM, loc=self.loc)
        # In a loop body every tile is live for the whole body, so fresh tiles per matmul would
        # exceed the 8 banks (a Flax LSTM cell has 8 dots): hand out views of the banks in turn.
        # Reuse is safe because no rule holds more tiles at once than there are banks (their
        # schedules refuse that) and the program runs in order.
        k = ring["next"] % self.arch.psum_banks
        ring["next"] += 1
        if k == len(ring["tiles"]):
            ring["tiles"].append(self.p.alloc((self.arch.partitions, bank_f32), "float32",
                                              PSUM, loc=self.loc))
        return ring["tiles"][k][:shape[0], :shape[1]]

    def const(self, value, dtype, name="const"):
        """A constant HBM tensor holding ``value`` (a NumPy array)."""
        return self.p.alloc(value.shape or (1,), device_dtype(dtype), SHARED_HBM, name=name,
                            loc=self.loc, kind="const", const=value.reshape(value.shape or (1,)))

    def contiguous(self, v: View) -> View:
        if v.is_contiguous() and not v.dyn:
            return v
        out = self.hbm(v.shape, v.dtype)
        self.emit("dma_copy", dst=out, src=v)
        return out

    # -- structure ----------------------------------------------------------------------------
    @contextmanager
    def at(self, loc):
        """Emit with ``loc`` (an op's source location) when it has one."""
        saved = self.loc
        self.loc = loc or saved
        try:
            yield self
        finally:
            self.loc = saved

    def lower_subgraph(self, graph, views) -> list:
        """Lower ``graph`` with its parameters bound to ``views``; return its output views."""
        return self._subgraph(self, graph, views)

    @contextmanager
    def region(self):
        """Collect the instructions emitted inside the block (a loop body) into a list."""
        saved, body = self.p.instrs, []
        saved_ring, self._psum_ring = self._psum_ring, {"next": 0, "tiles": []}
        self.p.instrs = body
        try:
            yield body
        finally:
            self.p.instrs = saved
            self._psum_ring = saved_ring
