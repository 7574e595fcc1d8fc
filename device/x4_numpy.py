"""The MX x4 containers as real NumPy dtypes: ``np.zeros(shape, dtype="float8_e4m3fn_x4")``.

NKI names its packed MX types with strings (``nl.float8_e4m3fn_x4 == 'float8_e4m3fn_x4'``), and
the NKI library's tests build host arrays with them (``np.zeros((P, F // 4),
dtype=nl.float8_e4m3fn_x4)``), then switch on ``str(arr.dtype)``. So, as ml_dtypes does for
bfloat16, the three names are registered with NumPy as user dtypes:

* ``float8_e5m2_x4`` and ``float8_e4m3fn_x4``: four fp8 values in one 32-bit container;
  ``float4_e2m1fn_x4``: four fp4 values in one 16-bit container. Lane j sits in byte (nibble) j
  counted from the least significant end (``device.dtypes.pack_x4``).
* An array of one holds the raw containers: ``a.view(np.uint32)`` (``np.uint16`` for fp4) reads
  the bits, ``bits.view(dtype)`` tags them. ``str(a.dtype)`` is the NKI name.
* There is deliberately no cast to or from numbers: ``a.astype(np.float32)`` raises TypeError
  (the library's output validator relies on that to pick its x4 unpacker), and so do
  arithmetic and comparisons. Reading one element gives the container as a Python int; storing
  one takes an int in range (anything else is refused: NumPy raises SystemError and the reason
  is printed on stderr, since an element function reached through ctypes cannot raise).

    >>> import numpy as np
    >>> a = np.zeros((2, 3), dtype="float8_e4m3fn_x4")
    >>> str(a.dtype), a.itemsize, a.view(np.uint32).sum()
    ('float8_e4m3fn_x4', 4, np.uint64(0))

NumPy has no Python API for new dtypes, so this registers them through its C API
(``PyArray_RegisterDataType``, the route ml_dtypes takes in C) with ctypes: a prototype
descriptor and the four element functions NumPy requires (get, set, copy one, copy n). If that
is impossible (another Python, a NumPy with a different C API), ``DTYPES`` is empty and
``device.dtypes.host_x4`` falls back to a structured uint32/uint16 dtype named by its field.
"""
from __future__ import annotations

import ctypes
import sys

import numpy as np

# name -> bytes of the container
SIZES = {"float8_e5m2_x4": 4, "float8_e4m3fn_x4": 4, "float4_e2m1fn_x4": 2}
_CTYPES = {4: ctypes.c_uint32, 2: ctypes.c_uint16}

# NumPy C API facts (numpy/_core/include/numpy/ndarraytypes.h, __multiarray_api.h); identical in
# NumPy 1.x and 2.x: the legacy descriptor prototype, the ArrFuncs table and the API slot.
_NPY_NTYPES_ABI_COMPATIBLE, _NPY_NSORTS = 21, 3
_NPY_USE_GETITEM, _NPY_USE_SETITEM = 0x20, 0x40
_API_REGISTER_DATA_TYPE = 192
_FN = ctypes.c_void_p


class _ArrFuncs(ctypes.Structure):
    _fields_ = [("cast", _FN * _NPY_NTYPES_ABI_COMPATIBLE), ("getitem", _FN), ("setitem", _FN),
                ("copyswapn", _FN), ("copyswap", _FN), ("compare", _FN), ("argmax", _FN),
                ("dotfunc", _FN), ("scanfunc", _FN), ("fromstr", _FN), ("nonzero", _FN),
                ("fill", _FN), ("fillwithscalar", _FN), ("sort", _FN * _NPY_NSORTS),
                ("argsort", _FN * _NPY_NSORTS), ("castdict", ctypes.c_void_p),
                ("scalarkind", _FN), ("cancastscalarkindto", ctypes.c_void_p),
                ("cancastto", ctypes.c_void_p), ("unused1", _FN), ("unused2", _FN),
                ("unused3", _FN), ("argmin", _FN)]


class _DescrProto(ctypes.Structure):
    _fields_ = [("ob_refcnt", ctypes.c_ssize_t), ("ob_type", ctypes.c_void_p),
                ("typeobj", ctypes.c_void_p), ("kind", ctypes.c_char), ("type", ctypes.c_char),
                ("byteorder", ctypes.c_char), ("flags", ctypes.c_ubyte), ("type_num", ctypes.c_int),
                ("elsize", ctypes.c_int), ("alignment", ctypes.c_int),
                ("subarray", ctypes.c_void_p), ("fields", ctypes.c_void_p),
                ("names", ctypes.c_void_p), ("f", ctypes.POINTER(_ArrFuncs)),
                ("metadata", ctypes.c_void_p), ("c_metadata", ctypes.c_void_p),
                ("hash", ctypes.c_ssize_t)]


_GETITEM = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_void_p)
_SETITEM = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_void_p, ctypes.c_void_p)
_COPYSWAPN = ctypes.PYFUNCTYPE(None, ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_void_p,
                               ctypes.c_ssize_t, ctypes.c_ssize_t, ctypes.c_int, ctypes.c_void_p)
_COPYSWAP = ctypes.PYFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
_NONZERO = ctypes.PYFUNCTYPE(ctypes.c_ubyte, ctypes.c_void_p, ctypes.c_void_p)


class X4Type(type):
    """Metaclass of the x4 scalar types: each type equals (and hashes like) its NKI name.

    In NKI the language's ``nl.float8_e4m3fn_x4`` and the harness's ``neuron_dtypes`` (or
    ``private_api``) type of that name are one dtype, and the library relies on it: its MX goldens
    key dicts by one spelling and look up the other (``get_mx_fp_max(dt.float8_e4m3fn_x4)`` in a
    dict keyed by ``nl.float8_e4m3fn_x4``). Our ``nl`` names are strings, so the type compares
    equal to the string of its name.

    >>> from device.x4_numpy import float8_e4m3fn_x4
    >>> {"float8_e4m3fn_x4": 7}[float8_e4m3fn_x4]
    7
    """

    def __eq__(cls, other):
        if isinstance(other, str):
            return other == cls.__name__
        return super().__eq__(other)

    def __ne__(cls, other):
        eq = X4Type.__eq__(cls, other)
        return eq if eq is NotImplemented else not eq

    def __hash__(cls):
        return hash(cls.__name__)


class X4Scalar(np.generic, metaclass=X4Type):
    """Base of the x4 scalar types (only their type objects are used: elements read as ints)."""
    nki_x4 = True


def _element_functions(name: str, size: int):
    ctype = _CTYPES[size]
    limit = 1 << (8 * size)

    def getitem(data, _arr):
        return int(ctype.from_address(data).value)

    def setitem(value, data, _arr):
        # Only a container's raw bits (an int) may be stored: a float has no single x4 encoding.
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and \
                0 <= int(value) < limit:
            ctype.from_address(data).value = int(value)
            return 0
        # A ctypes callback cannot leave a Python exception set (ctypes clears it), so NumPy
        # reports the -1 as a SystemError; the reason goes to stderr just before it.
        sys.stderr.write(f"TypeError: {name} elements are raw {8 * size}-bit containers of 4 "
                         f"packed values: store an int in [0, {limit}) or pack floats with "
                         f"device.dtypes.pack_x4, got {value!r}\n")
        return -1

    def copyswap(dst, src, _swap, _arr):
        if src:                          # NULL src: byte-swap in place; containers never swap
            ctypes.memmove(dst, src, size)

    def copyswapn(dst, dstride, src, sstride, n, _swap, _arr):
        if not src:
            return
        if dstride == size and sstride == size:
            ctypes.memmove(dst, src, n * size)
            return
        for i in range(n):
            ctypes.memmove(dst + i * dstride, src + i * sstride, size)

    def nonzero(data, _arr):
        return 1 if ctype.from_address(data).value else 0

    return [_GETITEM(getitem), _SETITEM(setitem), _COPYSWAPN(copyswapn), _COPYSWAP(copyswap),
            _NONZERO(nonzero)]


_KEEP: list = []        # prototypes and callbacks NumPy points at: alive for the process


def _register(name: str, size: int):
    """The scalar type of ``name``, registered once per process (a reload of this module finds
    the first registration in NumPy's type dictionary rather than making a second dtype)."""
    known = np.sctypeDict.get(name)
    if known is not None:
        return known
    # NumPy's C API table is published only as the ``_ARRAY_API`` capsule of its extension
    # module: the one every C extension's import_array() reads (ml_dtypes included). There is no
    # public Python name for it, so this is the single place the project touches NumPy privates;
    # if the name moves, the ImportError/AttributeError falls back to the structured dtype.
    try:
        from numpy._core import _multiarray_umath as mu   # NumPy 2
    except ImportError:                                   # NumPy 1.x
        from numpy.core import _multiarray_umath as mu
    scalar = type(name, (X4Scalar,), {"__module__": __name__, "__doc__":
                                      f"NumPy scalar type of NKI's {name} (raw containers)"})
    funcs = _element_functions(name, size)
    f = _ArrFuncs()
    f.getitem, f.setitem, f.copyswapn, f.copyswap, f.nonzero = (
        ctypes.cast(c, ctypes.c_void_p) for c in funcs)
    proto = _DescrProto(ob_refcnt=1, ob_type=id(np.dtype), typeobj=id(scalar), kind=b"V",
                        type=b"X", byteorder=b"|", flags=_NPY_USE_GETITEM | _NPY_USE_SETITEM,
                        elsize=size, alignment=size, f=ctypes.pointer(f))
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    api = ctypes.cast(get_pointer(mu._ARRAY_API, None), ctypes.POINTER(ctypes.c_void_p))
    register = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.POINTER(_DescrProto))(
        api[_API_REGISTER_DATA_TYPE])
    _KEEP.extend([scalar, funcs, f, proto])
    if register(ctypes.byref(proto)) < 0:
        raise RuntimeError(f"NumPy refused to register {name}")
    np.sctypeDict[name] = scalar
    return scalar


def _register_all() -> dict:
    try:
        types = {name: _register(name, size) for name, size in SIZES.items()}
        got = {name: np.dtype(t) for name, t in types.items()}
    except Exception:                    # no C API to reach: device.dtypes falls back
        return {}
    ok = all(str(d) == n and d.itemsize == SIZES[n] for n, d in got.items())
    return got if ok else {}


DTYPES: dict = _register_all()          # NKI name -> np.dtype
globals().update({n: d.type for n, d in DTYPES.items()})   # picklable: device.x4_numpy.<name>
