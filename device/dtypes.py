"""NKI dtypes: plain, hashable strings (NKI 0.6 uses ``DType = str``) mapped to NumPy via ml_dtypes.

Engines compute in fp32; ``round_to`` converts an fp32 result to a destination dtype the way the
hardware does (round-to-nearest-even, ints saturate, tf32 keeps 10 mantissa bits).

    >>> import numpy as np
    >>> round_to(np.array([1.5, 300.0], np.float32), "int8")
    array([  2, 127], dtype=int8)
"""
from __future__ import annotations

import ml_dtypes
import numpy as np

from .x4_numpy import DTYPES as _X4_HOST

_NP = {
    "bool_": np.dtype(np.uint8), "int8": np.dtype(np.int8), "int16": np.dtype(np.int16),
    "int32": np.dtype(np.int32), "int64": np.dtype(np.int64),
    "uint8": np.dtype(np.uint8), "uint16": np.dtype(np.uint16), "uint32": np.dtype(np.uint32),
    "uint64": np.dtype(np.uint64),
    "float16": np.dtype(np.float16), "float32": np.dtype(np.float32), "float64": np.dtype(np.float64),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "tfloat32": np.dtype(np.float32),           # stored as fp32, mantissa rounded to 10 bits
    "float8_e4m3": np.dtype(ml_dtypes.float8_e4m3),
    "float8_e4m3fn": np.dtype(ml_dtypes.float8_e4m3fn),
    "float8_e5m2": np.dtype(ml_dtypes.float8_e5m2),
    "float8_e8m0fnu": np.dtype(ml_dtypes.float8_e8m0fnu),
    # MX packed x4 types (v4 nc_matmul_mx / quantize_mx): four fp8 values in a 32-bit container,
    # four fp4 values in a 16-bit one. Stored as raw unsigned bits; element j sits in byte (fp8) or
    # nibble (fp4) j counted from the least significant end, so a little-endian uint8 array of
    # 4*F fp8 bytes viewed as x4 gives F packed elements in order (the nki-samples convention).
    "float8_e5m2_x4": np.dtype(np.uint32),
    "float8_e4m3fn_x4": np.dtype(np.uint32),
    "float4_e2m1fn_x4": np.dtype(np.uint16),
}
ALL = tuple(_NP)
FLOATS = frozenset({"float16", "float32", "float64", "bfloat16", "tfloat32", "float8_e4m3",
                    "float8_e4m3fn", "float8_e5m2", "float8_e8m0fnu"})
# packed x4 element type of each MX container
PACKED = {"float8_e5m2_x4": np.dtype(ml_dtypes.float8_e5m2),
          "float8_e4m3fn_x4": np.dtype(ml_dtypes.float8_e4m3fn),
          "float4_e2m1fn_x4": np.dtype(ml_dtypes.float4_e2m1fn)}
INTS = frozenset(ALL) - FLOATS - frozenset(PACKED)
FP8 = frozenset({"float8_e4m3", "float8_e4m3fn", "float8_e5m2"})

_ALIASES = {"bool": "bool_", "float": "float32", "fp32": "float32", "fp16": "float16",
            "bf16": "bfloat16", "tf32": "tfloat32", "float8e4": "float8_e4m3",
            "float8e5": "float8_e5m2", "fp8_e4m3": "float8_e4m3", "fp8_e5m2": "float8_e5m2",
            "float8_e4m3fnuz": "float8_e4m3", "half": "float16"}
# storage dtype -> NKI name; uint8 arrays are uint8 (bool_ shares uint8 storage but is opt-in)
_FROM_NP = {np.dtype(v): k for k, v in reversed(list(_NP.items()))
            if k not in ("tfloat32", "bool_") and k not in PACKED}
_FROM_NP[np.dtype(np.bool_)] = "bool_"


def normalize(dt) -> str:
    """Accept an NKI name, a NumPy/ml_dtypes dtype, a JAX/torch dtype or a Python type."""
    if isinstance(dt, str):
        s = _ALIASES.get(dt, dt)
        if s in _NP:
            return s
        try:
            return _FROM_NP[np.dtype(s)]
        except (TypeError, KeyError):
            raise TypeError(f"unsupported dtype {dt!r}: expected one of {', '.join(ALL)}") from None
    if dt is float:
        return "float32"
    if dt is int:
        return "int32"
    if dt is bool:
        return "bool_"
    name = getattr(dt, "name", None)
    if hasattr(dt, "is_floating_point") and name is None:   # torch.dtype
        return normalize(str(dt).replace("torch.", ""))
    try:
        d = np.dtype(dt)
    except TypeError:
        raise TypeError(f"unsupported dtype {dt!r}: expected one of {', '.join(ALL)}") from None
    x4 = _x4_name(d)
    if x4 is not None:                                   # host_x4(...) data
        return x4
    try:
        return _FROM_NP[d]
    except KeyError:
        raise TypeError(f"unsupported dtype {dt!r}: expected one of {', '.join(ALL)}") from None


def host_x4(dt: str) -> np.dtype:
    """The NumPy dtype of MX x4 data on the host: ``np.dtype("float8_e4m3fn_x4")`` (registered by
    ``device.x4_numpy``; an array of it holds the raw containers and names its NKI dtype). Where
    NumPy could not register it, the raw container tagged with a field of that name.

        >>> a = np.zeros(2, np.uint32).view(host_x4("float8_e4m3fn_x4"))
        >>> normalize(a.dtype), str(a.dtype), raw_bits(a).dtype
        ('float8_e4m3fn_x4', 'float8_e4m3fn_x4', dtype('uint32'))
    """
    dt = normalize(dt)
    if dt not in PACKED:
        raise TypeError(f"host_x4 needs an MX x4 dtype ({', '.join(PACKED)}), got {dt!r}")
    return _X4_HOST.get(dt) or np.dtype((_NP[dt], [(dt, _NP[dt])]))


def _x4_name(d: np.dtype):
    """The x4 name of a host x4 dtype (registered, foreign-registered under the same name, or
    the structured fallback), else None."""
    name = str(d)
    if name in PACKED and d.itemsize == _NP[name].itemsize and d.names is None:
        return name
    if d.names and len(d.names) == 1 and d.names[0] in PACKED and \
            d.itemsize == _NP[d.names[0]].itemsize:
        return d.names[0]
    return None


def raw_bits(a):
    """Host x4 data as its raw containers (uint32 / uint16, the same memory); anything else as is.

        >>> raw_bits(np.zeros(3, host_x4("float4_e2m1fn_x4"))).dtype
        dtype('uint16')
    """
    d = getattr(a, "dtype", None)
    if isinstance(d, np.dtype) and isinstance(a, np.ndarray):
        x4 = _x4_name(d)
        if x4 is not None:
            return a.view(_NP[x4])
    return a


def as_host(a: np.ndarray, dt: str) -> np.ndarray:
    """Device data of dtype ``dt`` as the host sees it: x4 containers tagged ``host_x4(dt)``."""
    if dt in PACKED and a.dtype == _NP[dt]:
        return a.view(host_x4(dt))
    return a


def as_float_containers(a):
    """Host x4 data as float containers of the same width and bits (float32 for the fp8 x4
    types, float16 for fp4): what the NKI library harness's simulator entry returns. Anything
    else as is.

        >>> as_float_containers(np.zeros(2, host_x4("float8_e5m2_x4"))).dtype
        dtype('float32')
    """
    raw = raw_bits(a)
    if raw is a:
        return a
    return raw.view(np.float32 if raw.itemsize == 4 else np.float16)


def to_numpy(dt: str) -> np.dtype:
    return _NP[normalize(dt)]


def itemsize(dt: str) -> int:
    return _NP[normalize(dt)].itemsize


def is_float(dt: str) -> bool:
    return normalize(dt) in FLOATS


def is_packed(dt: str) -> bool:
    """True for the MX x4 containers (float8_e5m2_x4, float8_e4m3fn_x4, float4_e2m1fn_x4)."""
    return normalize(dt) in PACKED


def unpack_x4(raw, dt: str) -> np.ndarray:
    """Raw x4 containers (any shape S) -> float32 values of shape S + (4,), element j = lane j."""
    dt = normalize(dt)
    el = PACKED[dt]
    raw = np.asarray(raw_bits(raw)).astype(np.uint32)
    bits = 4 if dt.startswith("float4") else 8
    mask = (1 << bits) - 1
    codes = np.stack([(raw >> (bits * j)) & mask for j in range(4)], axis=-1).astype(np.uint8)
    return codes.view(el).astype(np.float32)


def pack_x4(vals, dt: str) -> np.ndarray:
    """float values of shape S + (4,) -> raw x4 containers of shape S (each rounded RNE to the
    element type, as an fp32 -> fp8/fp4 output stage does)."""
    dt = normalize(dt)
    el = PACKED[dt]
    bits = 4 if dt.startswith("float4") else 8
    with np.errstate(over="ignore", invalid="ignore"):
        codes = np.asarray(vals, np.float64).astype(el).view(np.uint8).astype(np.uint32)
    out = np.zeros(codes.shape[:-1], np.uint32)
    for j in range(4):
        out |= (codes[..., j] & ((1 << bits) - 1)) << (bits * j)
    return out.astype(_NP[dt])


def sentinel(dt: str):
    """What a fresh allocation holds: NaN for floats, 4 for ints (the official simulator's choice);
    zero with ``NEURON_EMU_FILL=zero`` (the NKI library's newer simulator, see device.settings)."""
    from .settings import settings
    if settings().fill == "zero":
        return 0
    if normalize(dt) == "float8_e8m0fnu":
        return np.array(0xFF, np.uint8).view(ml_dtypes.float8_e8m0fnu)
    return np.nan if is_float(dt) else 4


def _round_tf32(x: np.ndarray) -> np.ndarray:
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    # round-to-nearest-even on the 13 dropped mantissa bits; inf/nan pass through
    lsb = (b >> 13) & 1
    r = ((b + 0x0FFF + lsb) & 0xFFFFE000).astype(np.uint32)
    finite = np.isfinite(x)
    return np.where(finite, r.view(np.float32), x).astype(np.float32)


def round_to(x, dt: str, precise: bool = True) -> np.ndarray:
    """Round an fp32 (or any) array to ``dt`` like the engines' output stage.

    Floats: round-to-nearest-even via ml_dtypes. Ints: round half to even, then saturate (NKI 0.6).
    ``precise=False`` (NKI_PRECISE_FP=0) keeps low-precision floats at fp32 values.
    """
    with np.errstate(over="ignore", invalid="ignore"):   # overflow to inf is the hardware result
        return _round_to(np.asarray(x), normalize(dt), precise)


def _round_to(x, dt, precise):
    npdt = _NP[dt]
    if dt == "tfloat32":
        return _round_tf32(x.astype(np.float32))
    if dt in FLOATS:
        if not precise and npdt.itemsize < 4:
            return x.astype(np.float32)
        if x.dtype.kind in "iub":
            x = x.astype(np.float64 if dt == "float64" else np.float32)
        return x.astype(npdt)
    if x.dtype.kind in "fV":   # ml_dtypes floats have kind 'V'
        xf = np.asarray(x, dtype=np.float64)
        xf = np.rint(xf)
        info = np.iinfo(npdt)
        xf = np.where(np.isnan(xf), 0, xf)
        return np.clip(xf, info.min, info.max).astype(npdt)
    if x.dtype.kind in "iub":
        info = np.iinfo(npdt)
        return np.clip(x.astype(np.int64), info.min, info.max).astype(npdt)
    return x.astype(npdt)
