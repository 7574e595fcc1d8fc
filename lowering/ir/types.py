"""Element types and tensor types of the graph IR.

A dtype is one of the NKI dtype name strings ('float32', 'bfloat16', 'int32', 'bool', ...).
Each has a short spelling used when printing IR (``f32``, ``bf16``, ``i32``, ``bool``) and a
NumPy/ml_dtypes dtype used by the reference implementations.

    >>> t = TensorType((200, 300), "float32")
    >>> str(t)
    'f32[200,300]'
    >>> canonical_dtype("bf16")
    'bfloat16'
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from device import dtypes as device_dtypes


class GraphError(ValueError):
    """A graph was built or used wrongly: bad operand type, bad attribute, broken SSA."""


# name -> short name used in printed IR. The NumPy storage of each name comes from
# device.dtypes (the one place for dtype facts); only the graph's ``bool`` (XLA pred) is a NumPy
# bool here, where the device stores booleans as uint8. float64/int64 appear only in imported
# programs (the device has no 64-bit engines) and are kept as-is, not narrowed.
_SHORT = {"float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64",
          "float8_e4m3": "f8e4m3", "float8_e5m2": "f8e5m2", "int8": "i8", "int16": "i16",
          "int32": "i32", "int64": "i64", "uint8": "u8", "uint16": "u16", "uint32": "u32",
          "uint64": "u64",
          "bool": "bool"}
_DTYPES: dict[str, tuple[str, np.dtype]] = {
    name: (short, np.dtype(np.bool_) if name == "bool" else device_dtypes.to_numpy(name))
    for name, short in _SHORT.items()}

DTYPES: tuple[str, ...] = tuple(_DTYPES)
_SHORT_TO_NAME = {short: name for name, (short, _) in _DTYPES.items()}
_NUMPY_TO_NAME = {np_dt: name for name, (_, np_dt) in _DTYPES.items()}

# Float types narrower than f32: references compute in f32 and round once per op (like XLA:CPU).
LOW_PRECISION_FLOATS = frozenset({"float16", "bfloat16", "float8_e4m3", "float8_e5m2"})


def canonical_dtype(dtype) -> str:
    """Return the canonical dtype name for a name, short name or NumPy dtype.

        >>> canonical_dtype(np.float32), canonical_dtype("i32"), canonical_dtype("bool")
        ('float32', 'int32', 'bool')
    """
    if isinstance(dtype, str):
        if dtype in _DTYPES:
            return dtype
        if dtype in _SHORT_TO_NAME:
            return _SHORT_TO_NAME[dtype]
    else:
        try:
            np_dt = np.dtype(dtype)
        except TypeError:
            np_dt = None
        if np_dt in _NUMPY_TO_NAME:
            return _NUMPY_TO_NAME[np_dt]
    raise GraphError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")


def numpy_dtype(dtype: str) -> np.dtype:
    """The NumPy (or ml_dtypes) dtype that stores values of ``dtype``.

        >>> numpy_dtype("bfloat16").name
        'bfloat16'
    """
    return _DTYPES[canonical_dtype(dtype)][1]


def short_name(dtype: str) -> str:
    """The short spelling of a dtype in printed IR: ``short_name('float32') == 'f32'``."""
    return _DTYPES[canonical_dtype(dtype)][0]


def is_float(dtype: str) -> bool:
    """True for floating-point dtypes (including bf16 and fp8)."""
    return canonical_dtype(dtype).startswith(("float", "bfloat"))


def is_int(dtype: str) -> bool:
    """True for signed and unsigned integer dtypes (not bool)."""
    return canonical_dtype(dtype).startswith(("int", "uint"))


@dataclass(frozen=True)
class TensorType:
    """The type of an SSA value: a static shape and a dtype name.

        >>> TensorType((4, 1), "bfloat16")
        TensorType(shape=(4, 1), dtype='bfloat16')
        >>> TensorType((), "bool").rank
        0
    """

    shape: tuple[int, ...]
    dtype: str

    def __post_init__(self):
        # Normalise so that equal types compare equal whatever the caller passed (lists, np ints).
        try:
            shape = tuple(int(d) for d in self.shape)
        except TypeError:
            raise GraphError(f"shape must be a sequence of ints, got {self.shape!r}") from None
        if any(d < 0 for d in shape):
            raise GraphError(f"shape {list(shape)} has a negative dimension")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", canonical_dtype(self.dtype))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of elements (1 for a scalar)."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def np_dtype(self) -> np.dtype:
        return numpy_dtype(self.dtype)

    def with_shape(self, shape) -> "TensorType":
        return TensorType(tuple(shape), self.dtype)

    def with_dtype(self, dtype) -> "TensorType":
        return TensorType(self.shape, dtype)

    def __str__(self) -> str:
        return f"{short_name(self.dtype)}[{','.join(str(d) for d in self.shape)}]"
