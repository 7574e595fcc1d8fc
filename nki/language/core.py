"""nki.language basics: dtypes, buffers, tile_size, creation ops, iteration and SPMD helpers."""
from __future__ import annotations

import builtins as _builtins
import contextlib
import math
import os
import warnings

import numpy as np

from device import dtypes
from device.arch import get_arch
from device.errors import UserKernelError, user_loc
from device import limits
from device.tensor import BUFFERS, HBM, PSUM, SBUF, SHARED_HBM, Buffer, View, as_buffer

from .. import loopcut
from ..tracing import current, maybe_current
from .control import dynamic_range  # noqa: F401  (re-exported: nl.dynamic_range)

# ---- dtypes (NKI 0.6: plain strings, hashable, str()-stable) -----------------------------------
bool_ = "bool_"
bool = "bool_"          # noqa: A001  (spelling used by the NKI library)
int8, int16, int32, int64 = "int8", "int16", "int32", "int64"
uint8, uint16, uint32, uint64 = "uint8", "uint16", "uint32", "uint64"
float16, bfloat16, tfloat32, float32 = "float16", "bfloat16", "tfloat32", "float32"
float8_e4m3, float8_e4m3fn, float8_e5m2 = "float8_e4m3", "float8_e4m3fn", "float8_e5m2"
float8_e8m0fnu = "float8_e8m0fnu"
float8_e5m2_x4, float8_e4m3fn_x4, float4_e2m1fn_x4 = "float8_e5m2_x4", "float8_e4m3fn_x4", "float4_e2m1fn_x4"
fp32 = float32
fp16 = float16
bf16 = bfloat16

# ---- buffers ----------------------------------------------------------------------------------
sbuf, psum, hbm, private_hbm, shared_hbm = SBUF, PSUM, HBM, HBM, SHARED_HBM


class MemoryRegion:
    sbuf, psum, private_hbm, shared_hbm = SBUF, PSUM, HBM, SHARED_HBM


class _Unset:
    """The value of a dataclass field that a constructor call left out (see ``NKIObject``).

    Using it in any way raises, so an omitted field can never flow silently into a kernel."""
    __slots__ = ("owner", "field", "loc")

    def __init__(self, owner, field, loc):
        self.owner, self.field, self.loc = owner, field, loc

    def _fail(self, *_a, **_k):
        raise UserKernelError(f"field {self.owner}.{self.field} was never given a value: the "
                              f"{self.owner}(...) call at {self.loc} left it out and nothing "
                              f"assigned it before this use", loc=user_loc())

    __bool__ = __int__ = __index__ = __float__ = __iter__ = __len__ = __call__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = _fail
    __floordiv__ = __rfloordiv__ = __mod__ = __lt__ = __le__ = __gt__ = __ge__ = _fail
    __eq__ = __ne__ = __getitem__ = __neg__ = _fail

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        self._fail()

    def __hash__(self):
        return hash((self.owner, self.field))

    def __repr__(self):
        return f"<unset {self.owner}.{self.field}>"


class _NKIObjectMeta(type):
    """NKI traces configuration dataclasses leniently: a required field the constructor call
    leaves out is unset rather than a TypeError (the NKI library relies on this, e.g. its MLP
    TKG dimension dataclass). Here such a field holds ``_Unset``, which raises on any use."""

    def __call__(cls, *args, **kwargs):
        params = getattr(cls, "__dataclass_params__", None)
        init_fn = getattr(cls.__init__, "__code__", None)
        if params is not None and init_fn is not None and init_fn.co_filename == "<string>":
            # only a dataclass-generated __init__ (exec'd from a string); a hand-written one
            # keeps its own defaults and errors
            import dataclasses
            init = [f for f in dataclasses.fields(cls) if f.init]
            loc = user_loc()
            for f in init[len(args):]:
                if (f.name not in kwargs and f.default is dataclasses.MISSING
                        and f.default_factory is dataclasses.MISSING):
                    kwargs[f.name] = _Unset(cls.__name__, f.name, loc)
            # NKI treats every declared class attribute of a @dataclass NKIObject as a field,
            # annotated or not (the library's attention_cte SectionParams has only plain ones),
            # while Python's dataclass ignores the unannotated ones: set those after __init__.
            names = {f.name for f in init}
            extra = {k: kwargs.pop(k) for k in list(kwargs) if k not in names}
            declared = _declared_fields(cls)
            for k in extra:
                if k not in declared:
                    raise TypeError(f"{cls.__name__}() got an unexpected keyword argument '{k}'; "
                                    f"its declared fields are: {', '.join(declared) or 'none'}")
            obj = super().__call__(*args, **kwargs)
            for k, v in extra.items():
                setattr(obj, k, v)
            return obj
        return super().__call__(*args, **kwargs)


class NKIObject(metaclass=_NKIObjectMeta):
    """Base class of kernel configuration objects.

    Subclasses are plain Python at trace time. Two declaration styles work, as in NKI 0.6:

        @dataclass
        class Cfg(nl.NKIObject):        # dataclass: its generated __init__ is used
            tile: int = 128

        class Cfg(nl.NKIObject):        # class attributes: keyword (or positional) construction
            tile: int = 128
            causal = False
        cfg = Cfg(tile=256, causal=True)   # cfg.tile == 256; Cfg().tile == 128

    Without a dataclass ``__init__``, the constructor accepts the declared fields (annotated
    names, then plain class attributes that are not methods) by keyword, or the annotated ones
    by position; an unknown name or a missing annotated field without a default is a
    ``TypeError`` that names the class and the declared fields. A field left out is simply
    unset (``AttributeError`` when read), as kernels may fill it in later; in a ``@dataclass``
    subclass a left-out required field holds a marker that raises on any use. Instances passed
    as kernel arguments are compile-time constants keyed by their field values.
    """

    def __init__(self, *args, **kwargs):
        cls = type(self)
        fields = _declared_fields(cls)
        annotated = [n for n in fields if n in _annotations(cls)]
        if len(args) > len(annotated):
            raise TypeError(f"{cls.__name__}() takes {len(annotated)} positional field(s) "
                            f"({', '.join(annotated) or 'none'}) but {len(args)} were given")
        for name, v in zip(annotated, args):
            if name in kwargs:
                raise TypeError(f"{cls.__name__}() got multiple values for field '{name}'")
            kwargs[name] = v
        for k, v in kwargs.items():
            if k not in fields:
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument '{k}'; "
                                f"its declared fields are: {', '.join(fields) or 'none'}")
            setattr(self, k, v)
        post = getattr(self, "__post_init__", None)
        if post is not None:
            post()

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return _field_values(self) == _field_values(other)

    def __hash__(self):
        try:
            return hash((type(self), tuple(_field_values(self))))
        except TypeError:
            return id(self)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in _field_values(self))})"


def _annotations(cls) -> dict:
    out: dict = {}
    for c in reversed(cls.__mro__):
        out.update(c.__dict__.get("__annotations__", {}))
    return out


def _declared_fields(cls) -> list:
    """Field names of an ``NKIObject`` subclass: annotations, then plain class attributes."""
    names = list(_annotations(cls))
    for c in reversed(cls.__mro__):
        if c is object or c is NKIObject:
            continue
        for k, v in c.__dict__.items():
            if (k.startswith("__") or k in names or callable(v)
                    or isinstance(v, (staticmethod, classmethod, property))):
                continue
            names.append(k)
    return names


def _field_values(obj) -> list:
    return [(k, getattr(obj, k, None)) for k in _declared_fields(type(obj))] + sorted(
        (k, v) for k, v in vars(obj).items() if k not in _declared_fields(type(obj)))


# ``nl.NkiTensor`` is the tensor handle every creation op returns; ``nl.DType`` the dtype type
NkiTensor = View
DType = str


def _buffer_kind(buffer):
    return as_buffer(getattr(buffer, "buffer", buffer))


def is_sbuf(buffer):
    """True if ``buffer`` (a buffer or a tensor) is SBUF: ``nl.is_sbuf(buffer=t.buffer)``."""
    return _buffer_kind(buffer).kind == "sbuf"


def is_psum(buffer):
    """True if ``buffer`` (a buffer or a tensor) is PSUM: ``nl.is_psum(t.buffer)``."""
    return _buffer_kind(buffer).kind == "psum"


def is_hbm(buffer):
    """True if ``buffer`` (a buffer or a tensor) is private or shared HBM: ``nl.is_hbm(a)``."""
    return _buffer_kind(buffer).kind == "hbm"


def is_on_chip(buffer):
    """True for SBUF and PSUM: ``nl.is_on_chip(buffer=t.buffer)``."""
    return _buffer_kind(buffer).on_chip


# ---- tile_size: per-generation constants read as attributes ---------------------------------
class _TileSize:
    def _arch(self):
        t = maybe_current()
        return t.arch if t is not None else get_arch()

    pmax = property(lambda s: s._arch().partitions)
    psum_fmax = property(lambda s: s._arch().psum_bank_bytes // 4)
    psum_bank_fmax = psum_fmax
    psum_bank_fmax_bytes = property(lambda s: s._arch().psum_bank_bytes)
    # one bank is reserved when DMA transposes are lowered to PE transposes on trn2+ (SPEC 2.3)
    psum_num_banks = property(lambda s: s._arch().psum_banks - (
        1 if s._arch().gen >= 3 and os.environ.get("NKI_DMA_TRANSPOSE_AS_PE_TRANSPOSE", "")
        .lower() == "true" else 0))
    gemm_stationary_fmax = property(lambda s: s._arch().gemm_stationary_fmax)
    gemm_moving_fmax = property(lambda s: s._arch().gemm_moving_fmax)
    bn_stats_fmax = property(lambda s: s._arch().bn_stats_fmax)
    sbuf_size_bytes = property(lambda s: s._arch().sbuf_bytes)
    sbuf_fmax_bytes = property(lambda s: s._arch().sbuf_usable_bytes_per_partition)
    sbuf_fmax = property(lambda s: s._arch().sbuf_usable_bytes_per_partition // 4)
    total_available_sbuf_size = sbuf_fmax_bytes
    psum_min_align = 4
    sbuf_min_align = 4


tile_size = _TileSize()


# ---- creation ops -----------------------------------------------------------------------------
def _shape(shape, what="nl.ndarray shape"):
    return limits.check_shape(shape, what, loc=user_loc())


def ndarray(shape, dtype, buffer=sbuf, name="", address=None, **_legacy):
    """Allocate an uninitialised tensor (sentinel-filled in the emulator)."""
    tr = current("nl.ndarray")
    buf = as_buffer(buffer)
    return tr.program.alloc(_shape(shape), dtypes.normalize(dtype), buf, name=name,
                            address=tuple(address) if address is not None else None, loc=user_loc())


def full(shape, fill_value, dtype, buffer=sbuf, name="", **_legacy):
    tr = current("nl.full")
    buf = as_buffer(buffer)
    if buf.kind == "hbm":
        dt, shp = dtypes.normalize(dtype), _shape(shape)
        limits.check_hbm_tensor(name or "nl.full", math.prod(shp) * dtypes.itemsize(dt), tr.arch, user_loc())
        return tr.program.alloc(shp, dt, buf, name=name, loc=user_loc(), kind="const",
                                const=np.full(shp, fill_value, dtypes.to_numpy(dt)))
    t = ndarray(shape, dtype, buffer=buf, name=name)
    tr.program.emit("memset", dst=t, value=fill_value, loc=user_loc())
    return t


def zeros(shape, dtype, buffer=sbuf, name="", **kw):
    return full(shape, 0, dtype, buffer=buffer, name=name)


def ones(shape, dtype, buffer=sbuf, name="", **kw):
    return full(shape, 1, dtype, buffer=buffer, name=name)


def zeros_like(x, dtype=None, buffer=None, name=""):
    return zeros(x.shape, dtype or x.dtype, buffer=buffer or x.buffer, name=name)


def empty_like(x, dtype=None, buffer=None, name=""):
    return ndarray(x.shape, dtype or x.dtype, buffer=buffer or x.buffer, name=name)


def ones_like(x, dtype=None, buffer=None, name=""):
    return ones(x.shape, dtype or x.dtype, buffer=buffer or x.buffer, name=name)


def shared_constant(constant, dtype=None, **_legacy):
    """A constant tensor in shared HBM from a NumPy array or a ``.npy`` path."""
    tr = current("nl.shared_constant")
    arr = np.load(constant) if isinstance(constant, str) else np.asarray(constant)
    dt = dtypes.normalize(dtype or arr.dtype)
    return tr.program.alloc(arr.shape, dt, shared_hbm, name="const", loc=user_loc(), kind="const",
                            const=arr)


def shared_identity_matrix(n, dtype=uint8, dst=None, **_legacy):
    """An n x n identity matrix in SBUF (deduplicated per dtype)."""
    tr = current("nl.shared_identity_matrix")
    key = (n, dtypes.normalize(dtype))
    t = tr.identity_cache.get(key)
    if t is None:
        t = tr.program.alloc((n, n), key[1], sbuf, name=f"identity{n}", loc=user_loc(),
                             kind="const", const=np.eye(n))
        tr.identity_cache[key] = t
    if dst is not None:
        tr.program.emit("tensor_copy", dst=dst, src=t, loc=user_loc())
        return dst
    return t


def rand(shape, dtype=float32, buffer=sbuf, name="", **_legacy):
    tr = current("nl.rand")
    t = ndarray(shape, dtype, buffer=buffer, name=name)
    tr.program.emit("random_uniform", dst=t, loc=user_loc())
    return t


# ---- iteration -------------------------------------------------------------------------------
def affine_range(start, stop=None, step=1, **_legacy):
    """Deprecated alias of ``range`` (NKI 0.6 unrolls every loop at trace time). The trip count
    is bounded by NEURON_EMU_MAX_UNROLL, checked before the first iteration is traced."""
    return loopcut.wrap(static_range(start, stop, step), "affine")


def sequential_range(start, stop=None, step=1, **_legacy):
    """Like ``affine_range``; its iterations depend on each other (a loop-carried value)."""
    return loopcut.wrap(static_range(start, stop, step), "sequential")


def static_range(start, stop=None, step=1, **_legacy):
    """A loop unrolled at trace time (never cut for truncated pricing: ``nki.loopcut``)."""
    r = range(start, stop, step) if stop is not None else range(start)
    limits.check_unroll(len(r), f"affine_range({', '.join(map(str, (r.start, r.stop, r.step)))})",
                 loc=user_loc())
    return r
# ``nl.range`` (used by nki-library) is Python's range: every NKI 0.6 loop unrolls at trace time
range = _builtins.range  # noqa: A001


def ds(start, size):
    """Dynamic slice: ``t[nl.ds(i * 128, 128)]`` == ``t[i*128 : i*128 + 128]``."""
    return slice(start, start + size)


def par_dim(n):
    return n


# ---- SPMD ------------------------------------------------------------------------------------
def program_id(axis=0):
    tr = current("nl.program_id")
    return tr.program_id if axis == 0 else 0


def num_programs(axes=0):
    tr = current("nl.num_programs")
    return tr.lnc


def program_ndim():
    tr = current("nl.program_ndim")
    return 1 if tr.lnc > 1 else 0


@contextlib.contextmanager
def no_reorder():
    """Keep program order inside the block (the emulator is in-order anyway); no dynamic loops."""
    tr = current("nl.no_reorder")
    tr.no_reorder_depth = getattr(tr, "no_reorder_depth", 0) + 1
    try:
        yield
    finally:
        tr.no_reorder_depth -= 1


def device_print(print_prefix, tensor):
    tr = current("nl.device_print")
    tr.program.emit("device_print", src=tensor, prefix=str(print_prefix), loc=user_loc())
