"""Legacy (NKI 0.1) index expressions: ``nl.arange``, ``nl.mgrid`` and ``mask=`` predicates.

An ``IndexExpr`` is an affine function ``const + sum_d coef_d * j_d`` over the axes of a NumPy-style
broadcast grid (``dims`` holds ``(count, coef)`` per axis, right-aligned like NumPy shapes). Using
it to index a tensor composes it with the tensor's strides, so ``t[m*128 + i_p, n*512 + i_f]`` is
just a strided ``View``: nothing is gathered element by element.

A ``Predicate`` is an ``&``-joined list of ``expr < bound`` atoms, each over at most one grid axis;
``mask=`` turns it into a ``[lo, hi)`` range per axis that clips every operand of the instruction.

    >>> i_p = arange(128)[:, None]; i_f = arange(512)[None, :]
    >>> (i_p + 128 * 2).shape, (i_p < 100).ranges((128, 512))
    ((128, 1), [(0, 100), (0, 512)])
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from device.errors import HardwareRuleError, UserKernelError, user_loc


def _is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _broadcast(a, b, what):
    """Right-aligned NumPy broadcast of two dims tuples, adding coefficients per axis."""
    n = max(len(a), len(b))
    a = ((1, 0),) * (n - len(a)) + tuple(a)
    b = ((1, 0),) * (n - len(b)) + tuple(b)
    out = []
    for (ca, ka), (cb, kb) in zip(a, b):
        if ca != cb and 1 not in (ca, cb):
            raise UserKernelError(f"index expressions of extents {ca} and {cb} cannot be broadcast "
                                  f"together in {what}", loc=user_loc())
        c = max(ca, cb)
        out.append((c, (ka if ca > 1 else 0) + (kb if cb > 1 else 0) if c > 1 else 0))
    return tuple(out)


class IndexExpr:
    """An affine index expression over a broadcast grid (see the module docstring)."""
    __slots__ = ("const", "dims")

    def __init__(self, const, dims):
        self.const = int(const)
        self.dims = tuple((int(c), int(k) if c > 1 else 0) for c, k in dims)

    @staticmethod
    def lift(x):
        if isinstance(x, IndexExpr):
            return x
        if _is_int(x):
            return IndexExpr(int(x), ())
        return None

    @property
    def shape(self):
        return tuple(c for c, _ in self.dims)

    @property
    def ndim(self):
        return len(self.dims)

    def lo_hi(self, ranges=None):
        """(min, max) of the expression over the grid (or over per-axis ``[lo, hi)`` ranges)."""
        lo = hi = self.const
        for a, (c, k) in enumerate(self.dims):
            r0, r1 = (0, c) if ranges is None else ranges[a]
            if r1 <= r0:
                return None
            lo += min(k * r0, k * (r1 - 1))
            hi += max(k * r0, k * (r1 - 1))
        return lo, hi

    # ---- affine arithmetic -------------------------------------------------------------------
    def __add__(self, o):
        o = IndexExpr.lift(o)
        if o is None:
            return NotImplemented
        return IndexExpr(self.const + o.const, _broadcast(self.dims, o.dims, "'+'"))

    __radd__ = __add__

    def __neg__(self):
        return self * -1

    def __sub__(self, o):
        o = IndexExpr.lift(o)
        return NotImplemented if o is None else self + (-o)

    def __rsub__(self, o):
        o = IndexExpr.lift(o)
        return NotImplemented if o is None else o + (-self)

    def __mul__(self, o):
        if isinstance(o, IndexExpr):
            if any(c > 1 for c, _ in o.dims) and any(c > 1 for c, _ in self.dims):
                _non_affine("'*' of two index expressions")
            o = o.const if not any(c > 1 for c, _ in o.dims) else o
            if isinstance(o, IndexExpr):
                return o * self
        if not _is_int(o):
            _non_affine(f"'*' by {o!r} (only integer scales keep an index affine)")
        return IndexExpr(self.const * int(o), tuple((c, k * int(o)) for c, k in self.dims))

    __rmul__ = __mul__

    def __floordiv__(self, o):
        _non_affine("'//'")

    __rfloordiv__ = __truediv__ = __rtruediv__ = __mod__ = __rmod__ = __floordiv__

    def __index__(self):
        raise UserKernelError("an nl.arange/nl.mgrid index expression is not a Python integer; use "
                              "it only to index tensors or in mask= predicates", loc=user_loc())

    # ---- reshaping with [:, None] ----------------------------------------------------------------
    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        dims, it = [], iter(self.dims)
        for k in key:
            if k is None:
                dims.append((1, 0))
            elif isinstance(k, slice) and k == slice(None):
                try:
                    dims.append(next(it))
                except StopIteration:
                    raise UserKernelError(f"too many ':' in index {key} of a {self.ndim}-D "
                                          f"nl.arange expression", loc=user_loc()) from None
            else:
                raise UserKernelError(f"an nl.arange expression can only be reshaped with ':' and "
                                      f"None (e.g. [:, None]), got {k!r}", loc=user_loc())
        dims.extend(it)
        return IndexExpr(self.const, dims)

    # ---- predicates ----------------------------------------------------------------------------
    def _atom(self, o, shift):     # self - o + shift < 0
        o = IndexExpr.lift(o)
        if o is None:
            return NotImplemented
        return Predicate([self - o + shift])

    def __lt__(self, o): return self._atom(o, 0)
    def __le__(self, o): return self._atom(o, -1)
    def __gt__(self, o): return (-self)._atom(-IndexExpr.lift(o), 0) if IndexExpr.lift(o) else NotImplemented
    def __ge__(self, o): return (-self)._atom(-IndexExpr.lift(o), -1) if IndexExpr.lift(o) else NotImplemented

    def __repr__(self):
        terms = [f"{k}*j{a}[{c}]" for a, (c, k) in enumerate(self.dims) if c > 1 and k]
        return "(" + " + ".join(terms + [str(self.const)]) + ")"


class LegacyMaskWarning(UserWarning):
    """A legacy mask predicate was used as a Python bool (see ``Predicate.__bool__``)."""


def _non_affine(what):
    raise UserKernelError(f"unsupported legacy index expression: {what}; the emulator supports "
                          f"affine forms (a*i + b with integer a, b) only", loc=user_loc(3))


class Predicate:
    """``&``-joined atoms ``expr < 0`` (see the module docstring)."""

    def __init__(self, atoms):
        self.atoms = list(atoms)

    def __and__(self, o):
        if isinstance(o, Predicate):
            return Predicate(self.atoms + o.atoms)
        if isinstance(o, (bool, np.bool_)):
            return self if o else Predicate(self.atoms + [IndexExpr(1, ())])
        return NotImplemented

    __rand__ = __and__

    def __or__(self, o):
        raise UserKernelError("unsupported mask: '|' of predicates; a mask must be comparisons of "
                              "affine index expressions joined with '&'", loc=user_loc())

    __ror__ = __or__

    def __invert__(self):
        raise UserKernelError("unsupported mask: '~' of a predicate; write the negated comparison "
                              "instead", loc=user_loc())

    def __bool__(self):
        # neuronxcc gave predicates a truth value of True, so ``(a < n and b < m)`` -- Python's
        # ``and`` -- silently kept only ``b < m``. Kernels in the wild rely on that, so we keep it,
        # but warn and put it in the migration report: ``&`` is what the author meant.
        from . import report
        report.note("mask-and")
        warnings.warn(LegacyMaskWarning(
            f"a mask predicate was used as a bool (Python 'and'/'or'/'if'); as in neuronxcc it is "
            f"True, so '(a < n and b < m)' keeps only 'b < m'. Join comparisons with '&' "
            f"at {user_loc()}"), stacklevel=2)
        return True

    @property
    def ndim(self):
        return max([a.ndim for a in self.atoms] + [0])

    def ranges(self, shape):
        """Per-axis ``[lo, hi)`` of the grid ``shape`` (right-aligned) where the predicate holds."""
        n = len(shape)
        rng = [[0, c] for c in shape]
        for e in self.atoms:
            live = [(a, c, k) for a, (c, k) in enumerate(e.dims) if c > 1 and k]
            if not live:
                if e.const >= 0:              # constant false: the whole access is skipped
                    return [(0, 0)] * n
                continue
            if len(live) > 1:
                raise UserKernelError(f"unsupported mask: {e!r} < 0 involves {len(live)} index "
                                      f"axes; each comparison may constrain one nl.arange axis",
                                      loc=user_loc(3))
            a, c, k = live[0]
            ax = a + n - e.ndim
            if ax < 0 or shape[ax] != c:
                raise UserKernelError(f"unsupported mask: it constrains an axis of extent {c} but "
                                      f"the access has shape {tuple(shape)}", loc=user_loc(3))
            # k*j + const < 0
            if k > 0:
                rng[ax][1] = min(rng[ax][1], math.ceil(-e.const / k))
            else:
                rng[ax][0] = max(rng[ax][0], math.floor(-e.const / k) + 1)
        return [(max(0, lo), max(max(0, lo), min(hi, c))) for (lo, hi), c in zip(rng, shape)]


def check_mask(mask):
    if mask is None or isinstance(mask, Predicate):
        return mask
    if isinstance(mask, (bool, np.bool_)):
        return None if mask else Predicate([IndexExpr(1, ())])
    raise UserKernelError(f"unsupported mask {mask!r}: a mask must be comparisons of affine "
                          f"nl.arange/nl.mgrid expressions joined with '&'", loc=user_loc(3))


def arange(start, stop=None):
    """``nl.arange(n)`` / ``nl.arange(start, stop)``: a 1-D index vector; reshape it with [:, None]."""
    from . import report
    report.note("arange")
    if stop is None:
        start, stop = 0, start
    if not (_is_int(start) and _is_int(stop)):
        raise UserKernelError(f"nl.arange bounds must be integers, got {start!r}, {stop!r}",
                              loc=user_loc())
    return IndexExpr(start, ((int(stop) - int(start), 1),))


class MGrid(tuple):
    """What ``nl.mgrid[...]`` returns: unpackable, with ``.p`` (axis 0), ``.x``, ``.y``, ``.z``."""

    def _axis(self, a, name):
        if a >= len(self):
            raise UserKernelError(f"nl.mgrid result has {len(self)} axes; .{name} is axis {a}",
                                  loc=user_loc(3))
        return self[a]

    p = property(lambda self: self._axis(0, "p"))
    x = property(lambda self: self._axis(1, "x"))
    y = property(lambda self: self._axis(2, "y"))
    z = property(lambda self: self._axis(3, "z"))


class _MGridMaker:
    def __getitem__(self, key):
        from . import report
        report.note("mgrid")
        key = key if isinstance(key, tuple) else (key,)
        n, out = len(key), []
        for a, s in enumerate(key):
            if not isinstance(s, slice) or s.step not in (None, 1):
                raise UserKernelError(f"nl.mgrid takes unit-step slices (nl.mgrid[0:128, 0:512]), "
                                      f"got {s!r}", loc=user_loc())
            lo, hi = s.start or 0, s.stop
            out.append((a, lo, hi - lo))
        # like np.mgrid, every index spans the whole grid (its other axes with coefficient 0),
        # so nisa.iota(3 * g.y + g.z) is a tile of the grid's full shape
        full = [(c, 0) for _, _, c in out]
        out = [IndexExpr(lo, full[:a] + [(c, 1)] + full[a + 1:]) for a, lo, c in out]
        return MGrid(out)


mgrid = _MGridMaker()


def has_expr(key):
    key = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, IndexExpr) for k in key)


def affine_pattern(view, key):
    """(offset, pattern, index_info) of ``view[key]`` when the key holds index expressions.

    ``index_info`` lists (dim size, expr aligned to the result's axes) so the access can be
    bounds-checked once a mask has clipped it.
    """
    key = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis for k in key):
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (view.ndim - len(key) + 1) + key[i + 1:]
    if len(key) > view.ndim:
        raise UserKernelError(f"too many indices for tensor {view.name} of shape {view.shape}",
                              loc=user_loc(3))
    key = key + (slice(None),) * (view.ndim - len(key))
    n = len(key)
    exprs = []
    for d, k in enumerate(key):
        if isinstance(k, slice):
            st, sp, step = k.indices(view.shape[d])
            e = IndexExpr(st, [(len(range(st, sp, step)), step)] + [(1, 0)] * (n - d - 1))
        else:
            e = IndexExpr.lift(k)
            if e is None:
                raise UserKernelError(f"unsupported index {k!r} for tensor {view.name}: use ints, "
                                      f"slices, nl.arange/nl.mgrid affine expressions",
                                      loc=user_loc(3))
        exprs.append(e)
    if any(isinstance(k, slice) for k in key):
        bad = [e.ndim for k, e in zip(key, exprs) if not isinstance(k, slice) and e.ndim > n]
        if bad:
            raise UserKernelError(f"mixing slices with {bad[0]}-D index expressions in a {n}-index "
                                  f"access of {view.name} is not supported", loc=user_loc(3))
    dims = ()
    for e in exprs:
        dims = _broadcast(dims, e.dims, f"the index of {view.name}")
    m = len(dims)
    offset, strides = view.offset, [0] * m
    info = []
    for d, ((s, size), e) in enumerate(zip(view.pattern, exprs)):
        pad = m - e.ndim
        offset += s * e.const
        al = [(0, 0)] * pad + list(e.dims)
        for a, (c, k) in enumerate(al):
            strides[a] += s * k
        info.append((d, size, IndexExpr(e.const, [(c if c > 1 else dims[a][0], k)
                                                  for a, (c, k) in enumerate(al)])))
    if view.on_chip:
        ok = m >= 2 and dims[0][1] in (0, 1) and all(
            k == 0 for _, _, e in info[1:] for a, (c, k) in enumerate(e.dims) if a == 0) and all(
            k == 0 for a, (c, k) in enumerate(info[0][2].dims) if a > 0)
        if not ok:
            raise UserKernelError(f"unsupported index of on-chip tile {view.name}: the partition "
                                  f"axis must be indexed by a unit-step nl.arange(...)[:, None] "
                                  f"(or a slice) on the first index only", loc=user_loc(3))
    pattern = [(strides[a], c) for a, (c, _) in enumerate(dims)]
    return offset, pattern, info


def check_bounds(name, info, ranges):
    """Raise access-out-of-bound if an index expression leaves its dimension over ``ranges``."""
    for d, size, e in info:
        lh = e.lo_hi(ranges)
        if lh is None:
            continue
        lo, hi = lh
        if lo < 0 or hi >= size:
            raise HardwareRuleError("access-out-of-bound", f"index range [{lo}, {hi}] exceeds "
                                    f"dimension {d} of size {size} of tensor {name} (clip it with "
                                    f"mask=)", operand=name, value=(lo, hi), limit=size,
                                    loc=user_loc(4))
