"""Tensors and views: storage in a buffer plus NKI's access-pattern model.

A ``Storage`` is one allocation (shape, dtype, buffer, optional address). A ``View`` addresses it
with ``offset + sum(stride_k * i_k)`` over ``[[stride, count], ...]`` pairs, exactly NKI's ``.ap``
model; every slicing method returns a new View and costs nothing. On-chip (SBUF/PSUM) storage is laid
out ``[partition, free]`` so axis 0 of an on-chip view is always the partition axis.

    >>> s = Storage((128, 512), "float32", SBUF, name="t")
    >>> v = View.whole(s)[:, 0:512:2]
    >>> v.shape, v.pattern
    ((128, 256), ((512, 128), (2, 256)))
"""
from __future__ import annotations

import math

from . import access_patterns, dtypes
from .errors import HardwareRuleError, UserKernelError


from .layout import reshape_strides  # noqa: E402,F401
from .storage import (BUFFERS, HBM, PSUM, SBUF, SHARED_HBM, Buffer, Storage,  # noqa: F401
                      ITEMSIZE_CACHE, row_major, as_buffer)


def _norm_index(i, n, dim, what):
    if i < 0:
        i += n
    if not 0 <= i < n:
        raise HardwareRuleError("access-out-of-bound", f"index {i} is out of range for dimension "
                                f"{dim} of size {n} in {what}", operand=what, value=i, limit=n)
    return i


class View:
    """A view of a Storage: element offset plus ``((stride, count), ...)`` per dimension.

    Strides and offset are in elements of ``dtype`` (which may differ from the storage dtype
    after ``.view(dtype)``/``.ap(dtype=)``); ``dyn`` holds a dynamic offset resolved at run time:
    ``(kind 'scalar'|'vector', offset tensor or int, indirect_dim, row_elems)`` (device.dynamic).
    """
    __slots__ = ("storage", "offset", "pattern", "dtype", "dyn", "_shape")

    def __init__(self, storage: Storage, offset: int, pattern, dtype=None, dyn=None):
        self.storage = storage
        self.offset = int(offset)
        self.pattern = pat = tuple([(int(s), int(c)) for s, c in pattern])
        self._shape = tuple([c for _, c in pat])     # views are immutable: cache the shape
        self.dtype = dtype or storage.dtype
        self.dyn = dyn

    @classmethod
    def whole(cls, storage: Storage) -> "View":
        return cls(storage, 0, tuple(zip(row_major(storage.shape), storage.shape)))

    # ---- NkiTensor attributes ------------------------------------------------------------
    @property
    def shape(self):
        return self._shape

    @property
    def strides(self):
        return tuple(s for s, _ in self.pattern)

    @property
    def ndim(self):
        return len(self.pattern)

    @property
    def size(self):
        return math.prod(self._shape)

    @property
    def buffer(self):
        return self.storage.buffer

    @property
    def name(self):
        return self.storage.name

    @property
    def itemsize(self):
        n = ITEMSIZE_CACHE.get(self.dtype)
        if n is None:
            n = ITEMSIZE_CACHE[self.dtype] = dtypes.itemsize(self.dtype)
        return n

    def __len__(self):
        return self.shape[0]

    def __bool__(self):            # tensors are truthy (kernels write `if t:` / `t != None`)
        return True

    # Tiles hold no values at trace time: NumPy and Python comparisons get a clear error
    # (device.misuse) instead of NumPy walking the tile as a sequence.
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from .misuse import numpy_on_tile
        raise numpy_on_tile(ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}", self)

    def __array_function__(self, func, types, args, kwargs):
        from .misuse import numpy_on_tile
        raise numpy_on_tile(func.__name__, self)

    def __array__(self, dtype=None, copy=None):
        from .misuse import numpy_on_tile
        raise numpy_on_tile("asarray", self)

    def _compare(self, sym, other):
        from .misuse import control_flow_on_tile
        raise control_flow_on_tile(f"`{sym}` on a tile", self)

    def __lt__(self, o): self._compare("<", o)
    def __le__(self, o): self._compare("<=", o)
    def __gt__(self, o): self._compare(">", o)
    def __ge__(self, o): self._compare(">=", o)

    def __float__(self):
        from .misuse import control_flow_on_tile
        raise control_flow_on_tile("float(tile)", self)

    def __int__(self):
        from .misuse import control_flow_on_tile
        raise control_flow_on_tile("int(tile)", self)

    def __repr__(self):
        return self.describe()

    def describe(self) -> str:
        pat = ",".join(f"[{s},{c}]" for s, c in self.pattern)
        dt = "" if self.dtype == self.storage.dtype else f" as {self.dtype}"
        dyn = f" dyn={self.dyn[0]}" if self.dyn else ""
        return f"{self.storage!r}{{{self.offset};{pat}}}{dt}{dyn}"

    # ---- layout queries ----------------------------------------------------------------------
    @property
    def on_chip(self) -> bool:
        return self.storage.buffer.on_chip

    def partition_range(self):
        """(start, count) of partitions this on-chip view touches."""
        st = self.storage
        fe = st._bpp // self.itemsize
        start = self.offset // fe + (st.address[0] if st.address else 0)
        return start, (self.pattern[0][1] if self.pattern else 1)

    @property
    def free_shape(self):
        return self.shape[1:] if self.on_chip else self.shape

    @property
    def free_size(self) -> int:
        """Elements per partition (on chip) or total elements (HBM)."""
        return math.prod(self._shape[1:]) if self.storage.buffer.on_chip else math.prod(self._shape)

    def is_contiguous(self) -> bool:
        pat = self.pattern[1:] if self.on_chip else self.pattern
        expect = 1
        for s, c in reversed(pat):
            if c != 1 and s != expect:
                return False
            expect *= c
        return True

    def get_pattern(self):
        return [list(p) for p in self.pattern]

    def element_span(self):
        """(lowest, highest) flat element index touched (in this view's dtype units)."""
        lo = hi = self.offset
        for s, c in self.pattern:
            if c == 0:
                return self.offset, self.offset - 1
            if s >= 0:
                hi += s * (c - 1)
            else:
                lo += s * (c - 1)
        return lo, hi

    def byte_span(self):
        lo, hi = self.element_span()
        it = self.itemsize
        return lo * it, (hi + 1) * it

    # ---- views ---------------------------------------------------------------------------------
    def _with(self, offset, pattern, dtype=None):
        return View(self.storage, offset, pattern, dtype or self.dtype, self.dyn)

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        n_ell = sum(k is Ellipsis for k in key)
        if n_ell > 1:
            raise UserKernelError("an index can only have a single ellipsis ('...')")
        if n_ell:
            i = next(j for j, k in enumerate(key) if k is Ellipsis)
            fill = self.ndim - (len(key) - 1)
            key = key[:i] + (slice(None),) * fill + key[i + 1:]
        if len(key) > self.ndim:
            raise UserKernelError(f"too many indices for tensor {self.name} of shape {self.shape}: "
                                  f"got {len(key)}")
        key = key + (slice(None),) * (self.ndim - len(key))
        offset, pattern, dropped = self.offset, [], []
        for dim, (k, (s, c)) in enumerate(zip(key, self.pattern)):
            if hasattr(k, "__index__") and not isinstance(k, bool):
                i = _norm_index(int(k), c, dim, self.name)
                offset += s * i
                if self.on_chip and dim == 0:
                    pattern.append((s, 1))       # an int on P keeps a size-1 partition dim
                else:
                    dropped.append(len(pattern))
                    pattern.append((s, 1))
            elif isinstance(k, slice):
                start, stop, step = k.start, k.stop, k.step
                for v in (start, stop, step):
                    if v is not None and not hasattr(v, "__index__"):
                        raise UserKernelError(f"slice bounds must be integers, got {v!r}")
                step = 1 if step is None else int(step)
                if step == 0:
                    raise UserKernelError("slice step cannot be zero")
                if start is not None and stop is not None and step > 0:
                    st, sp = int(start), int(stop)
                    st = st + c if st < 0 else st
                    sp = sp + c if sp < 0 else sp
                    if st < 0 or sp > c:
                        raise HardwareRuleError(
                            "access-out-of-bound", f"index range [{st}, {sp - 1}] exceeds dimension "
                            f"{dim} of size {c} of tensor {self.name}", operand=self.name,
                            value=(st, sp - 1), limit=c)
                st, sp, step = slice(start, stop, step).indices(c)
                n = len(range(st, sp, step))
                if dim == 0 and self.on_chip and step != 1:
                    raise HardwareRuleError("partition-stride", f"partition dimension of "
                                            f"{self.name} cannot be strided (step {step})",
                                            operand=self.name, value=step, limit=1)
                offset += s * st if n else 0
                pattern.append((s * step, n))
            else:
                raise UserKernelError(f"unsupported index {k!r} for tensor {self.name}; use ints, "
                                      f"slices or nl.ds(start, size)")
        if dropped:
            keep = [p for j, p in enumerate(pattern) if j not in dropped]
            if self.on_chip and len(keep) < 2:
                keep.append(pattern[dropped[-1]])   # stay >= 2-D on chip
            pattern = keep
        return self._with(offset, pattern)

    # ``t[key] = value`` emits an instruction, so the front end that owns the program installs the
    # behaviour (nki.language.assign); device/ itself knows no tracing.
    assign = None

    def __setitem__(self, key, value):
        if View.assign is None:
            raise UserKernelError(f"tensor {self.name}: item assignment needs a kernel being traced "
                                  f"by a front end (nki)")
        View.assign(self[key], value)

    def reshape(self, shape):
        shape = tuple(int(d) for d in (shape if isinstance(shape, (tuple, list)) else (shape,)))
        if -1 in shape:
            known = math.prod(d for d in shape if d != -1)
            shape = tuple(self.size // known if d == -1 else d for d in shape)
        if math.prod(shape) != self.size:
            raise UserKernelError(f"cannot reshape tensor {self.name} of shape {self.shape} "
                                  f"({self.size} elements) into {shape} ({math.prod(shape)} elements)")
        if self.on_chip and shape[0] != self.shape[0]:
            raise HardwareRuleError("partition-reshape", f"reshape of on-chip tensor {self.name} "
                                    f"from {self.shape} to {shape} changes the partition dimension",
                                    operand=self.name, value=shape[0], limit=self.shape[0])
        strides = reshape_strides(self.pattern, shape)
        if strides is None:
            raise UserKernelError(f"cannot reshape tensor {self.name} with pattern {self.pattern} "
                                  f"into {shape} without a copy (incompatible layout)")
        return self._with(self.offset, tuple(zip(strides, shape)))

    def permute(self, dims):
        dims = tuple(dims)
        if sorted(dims) != list(range(self.ndim)):
            raise UserKernelError(f"permute dims {dims} are not a permutation of {self.ndim} axes")
        if self.on_chip and dims[0] != 0:
            raise HardwareRuleError("partition-permute", f"permute of on-chip tensor {self.name} "
                                    f"moves the partition axis (dims[0]={dims[0]})", operand=self.name,
                                    value=dims[0], limit=0)
        return self._with(self.offset, tuple(self.pattern[d] for d in dims))

    def transpose(self, *dims):
        return self.permute(dims if dims else tuple(reversed(range(self.ndim))))

    def broadcast(self, dim, size):
        s, c = self.pattern[dim]
        if c != 1:
            raise UserKernelError(f"broadcast dim {dim} of {self.name} has size {c}, expected 1")
        if self.on_chip and dim == 0:
            raise HardwareRuleError("partition-broadcast", f"cannot broadcast the partition axis "
                                    f"of on-chip tensor {self.name}", operand=self.name, value=size,
                                    limit=1)
        p = list(self.pattern)
        p[dim] = (0, int(size))
        return self._with(self.offset, p)

    def broadcast_to(self, shape):
        v = self
        for d, (want, have) in enumerate(zip(shape, self.shape)):
            if want != have:
                v = v.broadcast(d, want)
        return v

    def expand_dim(self, dim):
        dim = dim + self.ndim + 1 if dim < 0 else dim
        if self.on_chip and dim == 0:
            raise HardwareRuleError("partition-expand", f"expand_dim(0) on on-chip tensor "
                                    f"{self.name} would move the partition axis", operand=self.name,
                                    value=dim, limit=">= 1")
        if not 0 <= dim <= self.ndim:
            raise UserKernelError(f"expand_dim({dim}) is out of range for a {self.ndim}-D tensor")
        p = list(self.pattern)
        p.insert(dim, (0, 1))
        return self._with(self.offset, p)

    def squeeze_dim(self, dim):
        dim = dim + self.ndim if dim < 0 else dim
        if self.on_chip and dim == 0:
            raise HardwareRuleError("partition-squeeze", f"squeeze_dim(0) on on-chip tensor "
                                    f"{self.name} would drop the partition axis", operand=self.name,
                                    value=dim, limit=">= 1")
        if self.pattern[dim][1] != 1:
            raise UserKernelError(f"squeeze_dim({dim}) of {self.name}: size is {self.shape[dim]}")
        p = list(self.pattern)
        del p[dim]
        return self._with(self.offset, p)

    def select(self, dim, index):
        """Drop ``dim`` at ``index``: an int (static) or a one-element int tensor / register
        (dynamic, resolved at run time; one per tensor and never the partition axis on chip)."""
        dim = dim + self.ndim if dim < 0 else dim
        if not hasattr(index, "__index__") or isinstance(index, View) or hasattr(
                index, "dynamic_value"):
            if self.dyn is not None:
                raise UserKernelError(f"select: {self.name} already has a dynamic offset; only one "
                                      f"dynamic select per tensor")
            if self.on_chip and dim == 0:
                raise HardwareRuleError("dynamic-offset", f"dynamic select on the partition axis "
                                        f"of on-chip tensor {self.name}", operand=self.name,
                                        value=dim, limit=">= 1")
            if isinstance(index, View) and (index.size != 1 or index.dtype not in dtypes.INTS):
                raise HardwareRuleError("dynamic-offset", f"select index {index.name} must be a "
                                        f"one-element integer tensor, got {index.dtype}"
                                        f"{list(index.shape)}", operand="index", value=index.shape,
                                        limit=[1, 1])
            stride = self.pattern[dim][0]
            p = [q for j, q in enumerate(self.pattern) if j != dim]
            if self.on_chip and len(p) < 2:
                p.append((1, 1))
            return View(self.storage, self.offset, p, self.dtype, ("scalar", index, dim, stride))
        key = [slice(None)] * self.ndim
        key[dim] = index
        return self[tuple(key)]

    def vector_select(self, dim, vector_offset):
        """HBM only: partition ``p`` of the result reads row ``vector_offset[p]`` of ``dim`` 0."""
        if dim != 0:
            raise UserKernelError(f"vector_select: dim must be 0, got {dim}")
        if self.on_chip:
            raise HardwareRuleError("dynamic-offset", f"vector_select needs an HBM tensor; "
                                    f"{self.name} is in {self.buffer.name}", operand=self.name,
                                    value=self.buffer.name, limit="hbm")
        if self.dyn is not None:
            raise UserKernelError(f"vector_select: {self.name} already has a dynamic offset")
        n = vector_offset.shape[0]
        p = ((self.pattern[0][0], n),) + tuple(self.pattern[1:])
        return View(self.storage, self.offset, p, self.dtype,
                    ("vector", vector_offset, 0, self.pattern[0][0]))

    def indirect(self, index, num_elem=None, group=16):
        """Tensor indirection (NeuronCore-v4): a (P, num_elem) view of free positions chosen at
        run time by the SBUF offsets in ``index`` (rules and layout: device.indirection).

            cols = data.indirect(idx, num_elem=32)     # data (128, 512), idx (16, 2) uint16
        """
        from .indirection import indirect
        return indirect(self, index, num_elem, group)

    def is_indirect(self) -> bool:
        return self.dyn is not None

    def slice(self, dim, start, end, step=1):
        if not (isinstance(step, int) and step >= 1):
            raise UserKernelError(f"slice: step must be an int >= 1, got {step!r}")
        if not 0 <= start < end <= self.shape[dim]:
            raise HardwareRuleError("access-out-of-bound", f"slice({dim}, {start}, {end}) of "
                                    f"{self.name}: need 0 <= start < end <= {self.shape[dim]}",
                                    operand=self.name, value=(start, end), limit=self.shape[dim])
        key = [slice(None)] * self.ndim
        key[dim] = slice(start, end, step)
        return self[tuple(key)]

    def flatten_dims(self, start_dim, end_dim):
        """Merge dims ``start_dim..end_dim`` (inclusive) into one, as NKI's NkiTensor does (the
        newest library calls it ``t.flatten_dims(start_dim=0, end_dim=1)``); negative dims count
        from the end. The merged dims must be laid out contiguously (no copy is made)."""
        start = start_dim + self.ndim if start_dim < 0 else start_dim
        end = end_dim + self.ndim if end_dim < 0 else end_dim
        if not 0 <= start <= end < self.ndim:
            raise UserKernelError(f"flatten_dims(start_dim={start_dim}, end_dim={end_dim}) of "
                                  f"{self.name}: need 0 <= start_dim <= end_dim < {self.ndim} "
                                  f"(shape {self.shape})")
        if self.on_chip and start == 0 and end > 0:
            raise HardwareRuleError("partition-flatten", f"flatten_dims cannot merge the "
                                    f"partition axis of {self.name}", operand=self.name, value=start,
                                    limit=1)
        shape = self.shape[:start] + (math.prod(self.shape[start:end + 1]),) + self.shape[end + 1:]
        return self.reshape(shape)

    def reshape_dim(self, dim, shape):
        dim = dim + self.ndim if dim < 0 else dim
        shape = tuple(shape)
        if sum(d == -1 for d in shape) > 1:
            raise UserKernelError(f"reshape_dim: at most one -1 in {shape}")
        if -1 in shape:
            known = math.prod(d for d in shape if d != -1)
            shape = tuple(self.shape[dim] // known if d == -1 else d for d in shape)
        if math.prod(shape) != self.shape[dim]:
            raise UserKernelError(f"reshape_dim({dim}, {shape}): {math.prod(shape)} elements but "
                                  f"dimension {dim} of {self.name} has {self.shape[dim]}")
        if self.on_chip and dim == 0 and [d for d in shape if d != 1] != [self.shape[0]]:
            raise HardwareRuleError("partition-reshape", f"reshape_dim(0, {shape}) would split the "
                                    f"partition axis of on-chip tensor {self.name}",
                                    operand=self.name, value=shape, limit=(self.shape[0],))
        if self.on_chip and dim == 0:
            shape = (self.shape[0],) + tuple(1 for d in shape[1:])
        return self.reshape(self.shape[:dim] + shape + self.shape[dim + 1:])

    def view(self, dtype):
        dt = dtypes.normalize(dtype)
        a, b = self.itemsize, dtypes.itemsize(dt)
        if a == b:
            return self._with(self.offset, self.pattern, dt)
        s, c = self.pattern[-1]
        if s != 1 and c != 1:
            raise UserKernelError(f"view({dt}) needs a contiguous last dim in {self.name}")
        if (c * a) % b or (self.offset * a) % b:
            raise UserKernelError(f"view({dt}): last dim of {self.name} ({c} x {a} B) is not a "
                                  f"multiple of {b} B")
        scale = lambda x: x * a // b
        pat = [(scale(s_), c_) for s_, c_ in self.pattern[:-1]] + [(1, c * a // b)]
        return View(self.storage, scale(self.offset), pat, dt, self.dyn)

    reinterpret_cast = view

    def rearrange(self, src_pattern, dst_pattern, fixed_sizes=None):
        """einops-style split / reorder / merge: ``t.rearrange(('p', ('h', 'w')), ('p', 'w', 'h'),
        {'h': 4})``. Names are strings; a tuple groups dims that are split (src) or merged (dst)."""
        return access_patterns.rearrange(self, src_pattern, dst_pattern, fixed_sizes)

    def ap(self, pattern, offset=None, scalar_offset=None, vector_offset=None, indirect_dim=0,
           dtype=None):
        """Raw access pattern over the underlying storage, replacing this view's shape and strides
        (see :func:`device.access_patterns.raw_access_pattern`)."""
        return access_patterns.raw_access_pattern(self, pattern, offset, scalar_offset,
                                                  vector_offset, indirect_dim, dtype, View)
