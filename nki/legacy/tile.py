"""``LTile``: a device ``View`` with the legacy (NKI 0.1) tile conveniences.

Legacy kernels index tiles with ``nl.arange`` expressions, write ``a + b`` / ``t * 2.0`` on tiles,
assign with ``t[i_p, i_f] = expr`` and accumulate with ``psum[...] += nisa.nc_matmul(...)``. An
LTile is still a ``View`` (every device op accepts it); it only adds those operators. An LTile
made by an index expression remembers the expressions (``_idx``) so the access is bounds-checked
after ``mask=`` has clipped it, not before (legacy kernels index past the end and mask the tail).
"""
from __future__ import annotations

from device.errors import UserKernelError, user_loc
from device.tensor import View

from . import index as legacy_index

_LANG = None         # the legacy language module, bound by it at import (it imports this module)


_INDIRECT = None     # nki.legacy.dma.indirect, bound by dma at import (dma imports this module)


def bind_language(module):
    global _LANG
    _LANG = module


def bind_indirect(fn):
    global _INDIRECT
    _INDIRECT = fn


class LegacyDtype(str):
    """A tile's dtype name that also equals the legacy NumPy dtype objects.

    Legacy kernels compare ``t.dtype == nl.float32`` (``np.float32``); the emulator keeps dtype
    names as strings, so this ``str`` compares equal to anything that normalises to the same name.
    """
    __slots__ = ()

    def __eq__(self, other):
        if isinstance(other, str):
            return str.__eq__(self, other) or _norm(other) == str(self)
        return _norm(other) == str(self)

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = str.__hash__


def _norm(x):
    from device import dtypes
    try:
        return dtypes.normalize(x)
    except (TypeError, KeyError, ValueError):
        return None


_DT: dict = {}


_SYMBOL = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "power": "**",
           "bitwise_and": "&", "bitwise_or": "|", "bitwise_xor": "^"}


def _defer_slices(view, key):
    """Slices that run past a dimension become index expressions, so the access is bounds-checked
    after ``mask=`` has clipped it (legacy kernels slice whole tiles past a tensor's end and mask
    the tail); in-range keys are returned unchanged."""
    key = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis for k in key):
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (view.ndim - len(key) + 1) + key[i + 1:]
    if len(key) > view.ndim:
        return key
    key = key + (slice(None),) * (view.ndim - len(key))
    n, out, changed = len(key), [], False
    for d, k in enumerate(key):
        if (isinstance(k, slice) and k.step in (None, 1) and isinstance(k.stop, int)
                and isinstance(k.start, (int, type(None))) and (k.start or 0) >= 0
                and k.stop > view.shape[d] and k.stop > (k.start or 0)):
            st = k.start or 0
            out.append(legacy_index.IndexExpr(st, [(k.stop - st, 1)] + [(1, 0)] * (n - d - 1)))
            changed = True
        else:
            out.append(k)
    return tuple(out) if changed else key


class LTile(View):
    __slots__ = ("_idx", "_mm", "_valid")

    def __init__(self, storage, offset, pattern, dtype=None, dyn=None, idx=None):
        super().__init__(storage, offset, pattern, dtype, dyn)
        d = self.dtype
        self.dtype = _DT.get(d) or _DT.setdefault(d, LegacyDtype(d))
        self._idx = idx          # [(dim, size, expr)] when made by index expressions
        self._mm = None          # the nc_matmul instruction that produced this PSUM tile
        self._valid = None       # [(lo, hi)] per axis: the part a masked instruction wrote

    @classmethod
    def of(cls, v):
        if v is None or isinstance(v, LTile) or not isinstance(v, View):
            return v
        return cls(v.storage, v.offset, v.pattern, v.dtype, v.dyn)

    def _with(self, offset, pattern, dtype=None):
        return LTile(self.storage, offset, pattern, dtype or self.dtype, self.dyn)

    # ---- indexing ------------------------------------------------------------------------------
    def __getitem__(self, key):
        k = key if isinstance(key, tuple) else (key,)
        if any(isinstance(x, View) for x in k):
            return _INDIRECT(self, k)
        key = _defer_slices(self, key)
        if legacy_index.has_expr(key):
            off, pat, info = legacy_index.affine_pattern(self, key)
            return LTile(self.storage, off, pat, self.dtype, self.dyn, idx=info)
        return LTile.of(View.__getitem__(self, key))

    def __setitem__(self, key, value):
        _LANG.assign_into(self[key], value)

    # views methods return LTiles so operators keep working on reshaped/broadcast tiles
    def reshape(self, shape):
        return LTile.of(View.reshape(self, shape))

    def broadcast_to(self, shape):
        return _LANG.broadcast_to(self, shape)

    @property
    def T(self):
        return _LANG.transpose(self)

    # ---- operators -----------------------------------------------------------------------------
    def _bin(self, name, o, rev=False):
        nl = _LANG
        from . import report
        if not isinstance(o, (View, int, float)) and not hasattr(o, "__float__"):
            return NotImplemented
        report.note("operator", op=_SYMBOL.get(name, name), new=name)
        f = getattr(nl, name)
        return f(o, self) if rev else f(self, o)

    def __add__(self, o): return self._bin("add", o)
    def __radd__(self, o): return self._bin("add", o, True)
    def __sub__(self, o): return self._bin("subtract", o)
    def __rsub__(self, o): return self._bin("subtract", o, True)
    def __mul__(self, o): return self._bin("multiply", o)
    def __rmul__(self, o): return self._bin("multiply", o, True)
    def __truediv__(self, o): return self._bin("divide", o)
    def __rtruediv__(self, o): return self._bin("divide", o, True)
    def __pow__(self, o): return self._bin("power", o)
    def __and__(self, o): return self._bin("bitwise_and", o)
    def __or__(self, o): return self._bin("bitwise_or", o)
    def __xor__(self, o): return self._bin("bitwise_xor", o)

    def __neg__(self):
        nl = _LANG
        return nl.negative(self)

    def _inplace(self, name, o):
        _LANG.update_inplace(self, name, o)
        return self

    def __iadd__(self, o): return self._inplace("add", o)
    def __isub__(self, o): return self._inplace("subtract", o)
    def __imul__(self, o): return self._inplace("multiply", o)
    def __itruediv__(self, o): return self._inplace("divide", o)

    def __index__(self):
        raise UserKernelError(f"tile {self.name} is not a Python integer", loc=user_loc())


class BlockTile:
    """A legacy block-dimension tile: ``nl.ndarray((B0, B1, nl.par_dim(P), F), ...)``.

    Each block is its own on-chip allocation, so liveness (and PSUM capacity) is tracked per block
    as the legacy allocator rotated them. ``bt[b0, b1, ...]`` takes integer block indices and
    returns an ``LTile`` view of that block indexed by the rest of the key.
    """

    def __init__(self, blocks, bshape, tile_shape, pdim):
        self.blocks, self.bshape, self.pdim = blocks, tuple(bshape), pdim
        self.shape = self.bshape + tuple(tile_shape)
        self._t0 = blocks[0]

    dtype = property(lambda self: self._t0.dtype)
    buffer = property(lambda self: self._t0.buffer)
    name = property(lambda self: self._t0.name)
    ndim = property(lambda self: len(self.shape))

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1:]
        key = key + (slice(None),) * (self.ndim - len(key))
        p, flat = self.pdim, 0
        for k, n in zip(key[:p], self.bshape):
            if not hasattr(k, "__index__") or isinstance(k, (bool, legacy_index.IndexExpr)):
                raise UserKernelError(f"block index {k!r} of block tile {self.name}: the "
                                      f"emulator supports integer block indices only",
                                      loc=user_loc())
            k = int(k) + (n if int(k) < 0 else 0)
            if not 0 <= k < n:
                raise UserKernelError(f"block index {k} out of range for block dimension of size "
                                      f"{n} of {self.name}", loc=user_loc())
            flat = flat * n + k
        return self.blocks[flat][key[p:]]

    def __setitem__(self, key, value):
        _LANG.assign_into(self[key], value)

    def __repr__(self):
        return f"BlockTile({self.shape}, par_dim at {self.pdim})"
