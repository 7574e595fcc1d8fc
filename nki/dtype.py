"""``nki.dtype``: NKI dtypes are plain strings (``DType = str`` in NKI 0.6).

Kernels use ``nki.dtype`` as a parameter annotation (``compute_dtype: nki.dtype = nl.bfloat16``),
evaluated when their module is imported, so it only has to exist. The names below are the same
strings as ``nki.language.float32`` etc.: hashable, and ``str(dt)`` is stable (library code
switches on ``str(dtype) == 'bfloat16'``).
"""
from device.dtypes import ALL as _ALL

DType = str

bool_ = "bool_"
int8, int16, int32 = "int8", "int16", "int32"
uint8, uint16, uint32 = "uint8", "uint16", "uint32"
float16, bfloat16, tfloat32, float32 = "float16", "bfloat16", "tfloat32", "float32"
float8_e4m3, float8_e4m3fn, float8_e5m2 = "float8_e4m3", "float8_e4m3fn", "float8_e5m2"
float8_e8m0fnu = "float8_e8m0fnu"
# The packed MX dtypes (four fp8/fp4 values per 32-bit element): library kernels import them from
# here (``from nki.dtype import float8_e4m3fn_x4``); same strings as ``nki.language``'s.
float8_e5m2_x4, float8_e4m3fn_x4, float4_e2m1fn_x4 = "float8_e5m2_x4", "float8_e4m3fn_x4", "float4_e2m1fn_x4"


def is_dtype(x) -> bool:
    """True for the names this emulator stores (the packed x4 MX names included)."""
    return isinstance(x, str) and x in _ALL
