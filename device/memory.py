"""Emulated memory: one NumPy array per allocation, read and written through views.

Fresh allocations hold sentinels (NaN for floats, 4 for ints) so uninitialised reads show, and a
``written`` mask lets the executor warn once per (tensor, line) when a read touches unwritten data.
PSUM also keeps a per-element "opened by a matmul" bit that drives ``accumulate=None``.

    >>> from device.tensor import Storage, View, SBUF
    >>> m = Memory()
    >>> v = View.whole(Storage((2, 3), "float32", SBUF))
    >>> m.write(v, [[1, 2, 3], [4, 5, 6]]); m.read(v)[1, 2]
    6.0
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from . import dtypes
from .errors import HardwareRuleError, SourceLoc, UninitializedReadWarning  # noqa: F401
from .tensor import Storage, View


class Memory:
    def __init__(self, precise_fp: bool = True, warn_uninit: bool = True):
        self.arrays: dict[int, np.ndarray] = {}
        self.written: dict[int, np.ndarray] = {}   # no entry: every element written (inputs,
                                                   # constants) or not allocated yet
        self.mm_open: dict[int, np.ndarray] = {}   # PSUM: element holds an open matmul group
        # NeuronCore-v4: a matmul with accumulate=None adds onto any earlier write of its PSUM
        # location (nc_matmul docs: "auto-detect based on whether this PSUM location was
        # previously written"), so a memset or an in-place rescale keeps the group open. On
        # v2/v3 accumulating onto a non-matmul write is undefined: such a write closes the group
        # and the next matmul starts a new one. Set by the executors from
        # Arch.psum_write_keeps_accumulating of the program's target.
        self.psum_write_opens = False
        self.precise_fp = precise_fp
        self.warn_uninit = warn_uninit
        self._warned: set = set()
        self.freed: set = set()                     # ids of storages freed after their last use
        self.spare: dict = {}       # (size, dtype) -> arrays of freed storages, reused (bounded)
        self.spare_bytes = 0

    # ---- allocation -----------------------------------------------------------------------------
    def storage_dtype(self, dt: str) -> np.dtype:
        npdt = dtypes.to_numpy(dt)
        if not self.precise_fp and dtypes.is_float(dt) and npdt.itemsize < 4:
            return np.dtype(np.float32)
        return npdt

    def flat(self, st: Storage) -> np.ndarray:
        a = self.arrays.get(st.id)
        if a is None:
            if st.id in self.freed:
                raise RuntimeError(f"emulator bug: {st.name} (allocated at {st.loc}) is used after "
                                   f"the instruction device.lifetimes found to be its last use; "
                                   f"its data was freed. Please report it with the kernel")
            a = self._take(st.size, self.storage_dtype(st.dtype))
            if st.const is not None:          # fully written: no mask (see ``written``)
                a[...] = np.asarray(st.const).reshape(-1).astype(a.dtype)
            else:
                a[...] = dtypes.sentinel(st.dtype)
                w = self.written[st.id] = self._take(st.size, np.dtype(bool))
                w[...] = False
            self.arrays[st.id] = a
            if st.buffer.kind == "psum":
                m = self.mm_open[st.id] = self._take(st.size, np.dtype(bool))
                m[...] = False
        return a

    # Freed arrays are kept for the next allocation of the same size and dtype (tiles of a loop
    # body recur with the same shapes): returning them to the OS and faulting fresh pages in
    # again made a run of small instructions ~1.5x slower. At most SPARE_BYTES are kept.
    SPARE_BYTES = 64 << 20

    def _take(self, size: int, dtype: np.dtype) -> np.ndarray:
        got = self.spare.get((size, dtype))
        if got:
            a = got.pop()
            self.spare_bytes -= a.nbytes
            return a
        return np.empty(size, dtype)

    def bind(self, st: Storage, data: np.ndarray, read_only: bool = False):
        """Fill an HBM input with the caller's data (converted to the storage dtype).
        ``read_only``: no instruction writes ``st``, so an array of the right dtype and size is
        read in place (a read-only view: a write would be an error, never a change to it)."""
        if read_only and isinstance(data, np.ndarray) and data.size == st.size and \
                data.dtype == self.storage_dtype(st.dtype):
            flat = data.reshape(-1)         # a view when contiguous, else one copy
            if not flat.flags.c_contiguous:
                # np.broadcast_to arrays reshape to a stride-0 *view*; the strided reads below
                # assume packed elements and would read past the caller's buffer
                flat = np.ascontiguousarray(flat)
            flat = flat.view()
            flat.flags.writeable = False
            self.arrays[st.id] = flat
            self.written.pop(st.id, None)
            return
        a = self.arrays.get(st.id)
        if a is None or not a.flags.writeable:   # no sentinel fill, no mask: all written
            a = self.arrays[st.id] = self._take(st.size, self.storage_dtype(st.dtype))
        a[...] = np.asarray(data).reshape(-1).astype(a.dtype, copy=False)
        self.written.pop(st.id, None)       # (a mask would add a byte an element)

    def free(self, st: Storage):
        """Drop ``st``'s data (after its last use); touching it again is an emulator bug."""
        for d in (self.arrays, self.written, self.mm_open):
            a = d.pop(st.id, None)
            if a is not None and self.spare_bytes + a.nbytes <= self.SPARE_BYTES:
                self.spare.setdefault((a.size, a.dtype), []).append(a)
                self.spare_bytes += a.nbytes
        self.freed.add(st.id)

    # ---- views ------------------------------------------------------------------------------------
    def _strided(self, base: np.ndarray, v: View, dtype=None) -> np.ndarray:
        st = v.storage
        if dtype is not None and np.dtype(dtype) != base.dtype:
            if base.dtype.itemsize == np.dtype(dtype).itemsize or base.size * base.dtype.itemsize % np.dtype(dtype).itemsize == 0:
                base = base.view(dtype)
        lo, hi = v.element_span()
        if hi >= lo and (lo < 0 or hi >= base.size):
            raise HardwareRuleError("access-out-of-bound", f"view of {st.name} reaches elements "
                                    f"[{lo}, {hi}] but the tensor has {base.size}",
                                    operand=st.name, value=(lo, hi), limit=base.size)
        it = base.dtype.itemsize
        if v.size == 0:
            return np.empty(v.shape, base.dtype)
        start = base[v.offset:] if v.offset < base.size else base
        # ml_dtypes types (float8_e5m2's typestr is "<f1") break as_strided: stride raw bits
        raw = start.dtype.kind == "V" or start.dtype.type.__module__.startswith("ml_dtypes")
        out = np.lib.stride_tricks.as_strided(start.view(f"u{it}") if raw else start,
                                              shape=v.shape, strides=[s * it for s, _ in v.pattern])
        return out.view(base.dtype) if raw else out

    def _view_dtype(self, v: View):
        if v.dtype == v.storage.dtype:
            return None
        return self.storage_dtype(v.dtype)

    def array(self, v: View) -> np.ndarray:
        """A writable strided NumPy view (no copy) of ``v``."""
        return self._strided(self.flat(v.storage), v, self._view_dtype(v))

    def carried(self, src: View, dst: View) -> np.ndarray | None:
        """The written bits of ``src`` (shaped like it) that a data move into ``dst`` carries
        along, or None when there is nothing to carry (every element written)
        or the move cannot carry them (then the read warns as usual).

        A move into SBUF carries "unwritten" along instead of warning, as
        Memcheck does: kernels copy whole padded tiles (partitions rounded up to 16 or 32, a
        tile sent to the other core) of which only part was ever written, and that is no bug.
        Whatever instruction then computes with those elements warns at its own line. A move
        into HBM warns at once: HBM is what a kernel hands back."""
        if not self.warn_uninit or dst.buffer.kind != "sbuf" or \
                src.dyn is not None or dst.dyn is not None or \
                src.dtype != src.storage.dtype or dst.dtype != dst.storage.dtype:
            return None
        self.flat(src.storage)                      # allocates it (and its mask) on first touch
        bits = self.written_bits(src)
        return None if bits is None or bits.all() else bits

    def read(self, v: View, loc: SourceLoc | None = None, warn: bool = True) -> np.ndarray:
        if v.dyn is not None:                       # address depends on run-time values
            from . import dynamic
            return dynamic.read(self, v, loc)
        a = self.array(v)
        mask = self.written.get(v.storage.id) if self.warn_uninit and warn else None
        if mask is not None:
            w = self._strided(mask, storage_units(v))
            if not w.all():
                key = (v.storage.id, loc)
                if key not in self._warned:
                    self._warned.add(key)
                    msg = uninitialized_read(v.storage, int((~w).sum()), loc)
                    if loc is not None:     # attribute the warning to the user's kernel line
                        warnings.warn_explicit(msg, UninitializedReadWarning, loc.file, loc.line)
                    else:
                        warnings.warn(msg, stacklevel=2)
        return np.array(a, copy=True)

    def write(self, v: View, values, rounded: bool = False, written=None):
        """Round ``values`` (fp32 or exact) to the view's dtype and store them. ``written``:
        which of them hold data (the bits a data move carries, ``carried``, or an indirect DMA's
        skipped rows keeping their old marks), shaped like ``v`` or like its storage units
        (``written_bits``); None: all of them."""
        if v.dyn is not None:                       # address depends on run-time values
            from . import dynamic
            return dynamic.write(self, v, values, rounded)
        a = self.array(v)
        vals = np.asarray(values)
        if not rounded:
            vals = dtypes.round_to(vals, v.dtype, self.precise_fp)
        a[...] = np.broadcast_to(vals, v.shape).astype(a.dtype, copy=False)
        mask = self.written.get(v.storage.id)
        if mask is None and written is not None and not np.all(written):
            mask = self.written[v.storage.id] = np.ones(v.storage.size, bool)   # was all written
        if mask is not None:
            units = self._strided(mask, storage_units(v))
            units[...] = True if written is None else _as_units(written, units.shape)
        if v.storage.id in self.mm_open:
            self._strided(self.mm_open[v.storage.id], v)[...] = self.psum_write_opens

    def written_bits(self, v: View) -> np.ndarray | None:
        """Which storage units under ``v`` hold written data (a copy shaped like
        ``storage_units(v)``), or None when the storage keeps no mask (inputs, constants)."""
        mask = self.written.get(v.storage.id)
        return None if mask is None else self._strided(mask, storage_units(v)).copy()

    def mm_flags(self, v: View) -> np.ndarray:
        self.flat(v.storage)
        return self._strided(self.mm_open[v.storage.id], v)


def _as_units(written, shape):
    """``written`` bits (shaped like a view, or like its storage units) as the storage units'
    marks: an element of k units marks all k; a fractional reinterpretation marks them written."""
    w = np.asarray(written)
    if w.size == math.prod(shape):
        return w.reshape(shape)
    if len(shape) > 1 and w.size == math.prod(shape[:-1]):
        return w.reshape(shape[:-1])[..., None]
    return True


def _as_bytes_of(v: View) -> View:
    """Approximate a reinterpreted view in storage-element units (for the written mask)."""
    a, b = v.itemsize, dtypes.itemsize(v.storage.dtype)
    if a == b:
        return View(v.storage, v.offset, v.pattern)
    if a % b == 0:          # each view element is k whole storage elements: exact, one more axis
        k = a // b          # (an int32 .ap over bf16 reads 2 bf16s per element, not 1 + a gap)
        return View(v.storage, v.offset * k, [(s * k, c) for s, c in v.pattern] + [(1, k)])
    scale = a / b
    pat = [(int(s * scale) if s else 0, c) for s, c in v.pattern[:-1]]
    s, c = v.pattern[-1]
    pat.append((max(1, int(s * scale)) if s else 0, max(1, int(c * scale))))
    return View(v.storage, int(v.offset * scale), pat)


def uninitialized_read(st: Storage, n: int, loc) -> UninitializedReadWarning:
    """The warning for a read of ``n`` unwritten elements of ``st`` at ``loc`` (the reference
    executor raises it as it reads; device.fastpath from its static analysis)."""
    from .lints import user_name_of
    var = user_name_of(st)
    who = f"'{var}' (tensor '{st.name}'" if var and var != st.name else f"tensor '{st.name}' ("
    return UninitializedReadWarning(
        f"read of {n} uninitialized element(s) of {who}allocated at {st.loc}) at {loc}: nothing "
        f"wrote them, so the emulator's fill values are read (NaN for floats, 4 for ints; on "
        f"hardware, whatever was there). Write them first (e.g. nisa.memset) or read a smaller "
        f"region")


def storage_units(v: View) -> View:
    """The elements of the storage that ``v`` covers, as a view in the storage's own dtype
    (what the ``written`` mask is indexed by; device.fastpath's static analysis uses it too)."""
    return v if v.dtype == v.storage.dtype else _as_bytes_of(v)
