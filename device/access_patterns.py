"""Building views from patterns: einops-style ``rearrange`` and NKI's raw ``.ap`` (with its
scalar/vector dynamic offsets). ``View.rearrange`` and ``View.ap`` call these.

    >>> from device.tensor import View, Storage, SBUF
    >>> v = View.whole(Storage((128, 8), "float32", SBUF, name="t"))
    >>> rearrange(v, ("p", ("h", "w")), ("p", "w", "h"), {"h": 2}).shape
    (128, 4, 2)
"""
from __future__ import annotations

import math

from . import dtypes
from .errors import HardwareRuleError, UserKernelError


def rearrange(view, src_pattern, dst_pattern, fixed_sizes=None):
    """einops-style split / reorder / merge: ``t.rearrange(('p', ('h', 'w')), ('p', 'w', 'h'),
    {'h': 4})``. Names are strings; a tuple groups dims that are split (src) or merged (dst)."""
    fixed = dict(fixed_sizes or {})
    src = [g if isinstance(g, (tuple, list)) else (g,) for g in src_pattern]
    dst = [g if isinstance(g, (tuple, list)) else (g,) for g in dst_pattern]
    if len(src) != view.ndim:
        raise UserKernelError(f"rearrange: source pattern {src_pattern} has {len(src)} dims "
                              f"but {view.name} has {view.ndim}")
    names = [n for g in src for n in g]
    if sorted(names) != sorted(n for g in dst for n in g) or len(set(names)) != len(names):
        raise UserKernelError(f"rearrange: {src_pattern} and {dst_pattern} must name the same "
                              f"dimensions, each once")
    sizes = {}
    for g, d in zip(src, view.shape):
        unknown = [n for n in g if n not in fixed]
        known = math.prod(fixed[n] for n in g if n in fixed)
        if len(unknown) > 1:
            raise UserKernelError(f"rearrange: group {g} needs sizes for all but one name")
        for n in g:
            sizes[n] = fixed[n] if n in fixed else d // max(known, 1)
        if math.prod(sizes[n] for n in g) != d:
            raise UserKernelError(f"rearrange: group {g} of sizes "
                                  f"{[sizes[n] for n in g]} does not split dimension of size {d}")
    v = view.reshape(tuple(sizes[n] for n in names)) if any(len(g) > 1 for g in src) else view
    order = [n for g in dst for n in g]
    v = v.permute(tuple(names.index(n) for n in order))
    if any(len(g) != 1 for g in dst):
        v = v.reshape(tuple(math.prod(sizes[n] for n in g) for g in dst))
    return v


def raw_access_pattern(view, pattern, offset, scalar_offset, vector_offset, indirect_dim, dtype,
                       view_cls):
    """Raw access pattern over the underlying storage, replacing this view's shape and strides.

    As documented for NKI 0.6, the start is this view's storage offset plus ``offset``
    (``None`` = 0 more elements); ``dtype`` (default: this view's dtype) reinterprets the bytes.
    """
    pattern = [tuple(p) for p in pattern]
    dt = dtypes.normalize(dtype) if dtype is not None else view.dtype
    base_bytes = view.offset * view.itemsize
    if base_bytes % dtypes.itemsize(dt):
        raise UserKernelError(f".ap(dtype={dt}): the view of {view.name} starts at byte "
                              f"{base_bytes}, not a multiple of {dtypes.itemsize(dt)}")
    off = base_bytes // dtypes.itemsize(dt) + int(offset or 0)
    st = view.storage
    if st.buffer.on_chip and pattern:
        fe = st.free_elems * dtypes.itemsize(st.dtype) // dtypes.itemsize(dt)
        if pattern[0][0] != fe and pattern[0][1] != 1:
            raise HardwareRuleError(
                "ap-partition-stride", f".ap on on-chip tensor {st.name}: the first pair's "
                f"stride must equal the storage's free element count {fe}, got {pattern[0][0]}",
                operand=st.name, value=pattern[0][0], limit=fe)
    dyn = None
    if scalar_offset is not None and vector_offset is not None:
        raise UserKernelError(".ap takes scalar_offset or vector_offset, not both")
    if scalar_offset is not None or vector_offset is not None:
        dyn = dynamic_offset(view, pattern, scalar_offset, vector_offset, int(indirect_dim or 0),
                             view_cls)
        if dt != view.dtype:
            # the offset counts rows of the tensor .ap is called on, whatever dtype reads them:
            # nki-library's permute_routed_tokens gathers bf16 affinities as fp8 pairs this way
            kind, src, dim, row = dyn
            nbytes = row * view.itemsize
            if nbytes % dtypes.itemsize(dt):
                raise UserKernelError(f".ap(dtype={dt}): a {kind}_offset row of {view.name} is "
                                      f"{nbytes} bytes, not a whole number of {dt} elements")
            dyn = (kind, src, dim, nbytes // dtypes.itemsize(dt))
    # An access pattern is a descriptor: like NKI, building one that overruns its tensor is
    # not an error until an instruction uses it (device.isa.rules.check_in_bounds names the
    # operand; memory reads check again). Library kernels build the AP of a guarded-off
    # iteration before the guard (nki-library output_projection_tkg).
    return view_cls(st, off, pattern, dt, dyn)


def offset_unit(base, dim: int) -> int:
    """Elements that one step of a run-time offset on ``dim`` moves: the stride of ``dim`` in the
    tensor ``.ap`` is called on.

    For a whole tensor this is prod(shape[dim+1:]), the NKI docs' formula ("read from the shape
    of the base tensor, not from the access pattern"). A view keeps its base's strides, so on a
    sliced or permuted view it is the view's own stride: nki-library's attention_tkg (dynamic
    flash attention) offsets ``table.reshape_dim(1, [F, 128]).slice(..).permute([2, 1, 0])`` on
    dim 0 in single elements, the stride permute gave that dim. A dim of one element (no
    stride of its own) and the partition dim of an on-chip tensor keep the shape formula.

        >>> from device.tensor import Storage, View, HBM
        >>> t = View.whole(Storage((4, 6), "float32", HBM))
        >>> offset_unit(t, 0), offset_unit(t.permute((1, 0)), 0), offset_unit(t[:, 0:2], 0)
        (6, 1, 6)
    """
    if 0 <= dim < len(base.pattern) and not (base.on_chip and dim == 0):
        stride, count = base.pattern[dim]
        if count > 1 and stride > 0:
            return int(stride)
    return math.prod(base.shape[dim + 1:])


def dynamic_offset(base, pattern, scalar_offset, vector_offset, indirect_dim, view_cls):
    """``View.dyn`` for ``.ap(scalar_offset=|vector_offset=, indirect_dim=)`` (see device.dynamic).

    The offset unit is :func:`offset_unit`: the stride of ``indirect_dim`` in the tensor ``.ap``
    was called on (prod(shape[indirect_dim+1:]) for a whole tensor).
    """
    if not 0 <= indirect_dim < max(1, base.ndim):
        raise UserKernelError(f".ap indirect_dim={indirect_dim} is out of range for tensor "
                              f"{base.name} of shape {base.shape}")
    row = offset_unit(base, indirect_dim)
    src = scalar_offset if scalar_offset is not None else vector_offset
    kind = "scalar" if scalar_offset is not None else "vector"
    if isinstance(src, view_cls):        # a tensor of offsets
        if not dtypes.normalize(src.dtype) in dtypes.INTS:
            raise HardwareRuleError("dynamic-offset", f"{kind}_offset tensor {src.name} has dtype "
                                    f"{src.dtype}; offsets must be integers", operand=f"{kind}_offset",
                                    value=src.dtype, limit="int32/uint32")
        want = 1 if kind == "scalar" else (pattern[0][1] if pattern else 1)
        # a vector offset tile may hold more offsets than rows (the library's DMA gather-transpose
        # rounds its (128, C) tile up to whole columns); the first ones, partition fastest, are used
        if src.size != want if kind == "scalar" else src.size < want:
            shape = "(1, 1)" if kind == "scalar" else f"({want}, 1) or (P, C) with P*C >= {want}"
            raise HardwareRuleError("dynamic-offset", f"{kind}_offset tensor {src.name} has shape "
                                    f"{src.shape}; expected {shape} (one offset per "
                                    f"{'access' if kind == 'scalar' else 'row of the pattern'})",
                                    operand=f"{kind}_offset", value=src.shape, limit=shape)
        if kind == "vector" and base.on_chip:
            raise HardwareRuleError("dynamic-offset", f"vector_offset gathers/scatters rows of an HBM "
                                    f"tensor; {base.name} is in {base.buffer.name}",
                                    operand="vector_offset", value=base.buffer.name, limit="hbm")
    elif kind == "vector":
        raise UserKernelError("vector_offset must be a (P, 1) integer tensor")
    return (kind, src, indirect_dim, row)
