"""Legacy (``neuronxcc.nki.language``) dtypes: NumPy / ml_dtypes objects, as in neuronx-cc, and
``nl.fp32``-style aliases that also carry ``finfo`` limits (``nl.fp32.min``)."""
import ml_dtypes
import numpy as np

from device import dtypes as device_dtypes

bool_ = np.bool_
int8, int16, int32, int64 = np.int8, np.int16, np.int32, np.int64
uint8, uint16, uint32, uint64 = np.uint8, np.uint16, np.uint32, np.uint64
float16, float32 = np.float16, np.float32
bfloat16 = np.dtype(ml_dtypes.bfloat16)
float8_e4m3 = np.dtype(ml_dtypes.float8_e4m3)        # legacy FP8 (IEEE-style, has inf)
float8_e4m3fn = np.dtype(ml_dtypes.float8_e4m3fn)
float8_e5m2 = np.dtype(ml_dtypes.float8_e5m2)
tfloat32 = "tfloat32"


class _FloatAlias:
    """``nl.fp32`` / ``nl.fp16`` / ``nl.bf16``: a dtype (``np.dtype(nl.fp32)`` works, it compares
    equal to ``np.float32``) that also carries the ``finfo`` limits legacy kernels read as
    ``nl.fp32.min``."""

    def __init__(self, dt):
        self.dtype = np.dtype(dt)
        fi = ml_dtypes.finfo(self.dtype)
        self.min, self.max = float(fi.min), float(fi.max)
        self.eps, self.tiny = float(fi.eps), float(fi.tiny)
        self.name = device_dtypes.normalize(self.dtype)

    def __getattribute__(self, name):
        if name in ("min", "max"):
            from . import report
            report.note("finfo")
        return object.__getattribute__(self, name)

    def __eq__(self, other):
        try:
            return np.dtype(other) == self.dtype
        except TypeError:
            return False

    def __hash__(self):
        return hash(self.dtype)

    def __repr__(self):
        return f"nl.{self.name}"


fp32, fp16, bf16 = _FloatAlias(float32), _FloatAlias(float16), _FloatAlias(bfloat16)


def finfo(dtype):
    """``nl.finfo(dtype)``: machine limits of a float dtype (``.min``, ``.max``, ``.eps``...)."""
    from . import report
    report.note("finfo")
    return ml_dtypes.finfo(device_dtypes.to_numpy(device_dtypes.normalize(dtype)))
