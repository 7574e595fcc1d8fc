"""Tile-level integer arithmetic per engine and dtype, as the NKI documentation describes it.

Sources (nki.isa.tensor_tensor, nki.api.shared 'Type Casting', SPEC 3.2 / 4.x):
- Vector engine, arithmetic ops: inputs are cast to fp32, the op runs in fp32 and the result is
  cast to the destination dtype, rounding to nearest even and saturating (SPEC: "fp32 -> int casts
  round to nearest (ties to even) and saturate").
- tensor_tensor with every tile int32/uint32 (and none in PSUM) defaults to GpSimd, "which uses
  native integer arithmetic ... exact results for all 32-bit integer values"; like any native
  32-bit ALU (and like nki.isa.NkiScalar, documented to wrap: "adding 1 to the largest nl.int32
  yields the smallest"), a result outside the type wraps modulo 2**32.
- Bitvec ops (Vector engine only) work on raw bits; right_shift is logical.
"""
from __future__ import annotations

import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device.alu import wrap_int

I32 = np.iinfo(np.int32)

# (engine, op, dtype, a, b, expected, why)
TABLE = [
    # GpSimd native int32/uint32: exact, wrapping
    ("default", "add", "int32", I32.max, 1, I32.min, "GpSimd native int: wraps"),
    ("default", "subtract", "int32", I32.min, 1, I32.max, "GpSimd native int: wraps"),
    ("default", "multiply", "int32", 100000, 100000, 1410065408, "GpSimd native int: wraps"),
    ("default", "add", "int32", 2**24 + 1, 0, 2**24 + 1, "GpSimd native int: exact beyond 2^24"),
    ("default", "maximum", "int32", 2**30 + 3, 2**30 + 1, 2**30 + 3, "GpSimd native int: exact"),
    ("default", "subtract", "uint32", 0, 1, 2**32 - 1, "GpSimd native uint: wraps"),
    ("default", "add", "uint32", 2**32 - 1, 2, 1, "GpSimd native uint: wraps"),
    ("gpsimd", "add", "int32", I32.max, I32.max, -2, "GpSimd native int: wraps"),
    # Vector engine: through fp32, round-to-nearest-even, saturate
    ("vector", "add", "int32", I32.max, 1, I32.max, "Vector fp32 path: saturates"),
    ("vector", "add", "int32", 2**24 + 1, 0, 2**24, "Vector fp32 path: 24-bit mantissa"),
    ("vector", "subtract", "int32", I32.min, 1, I32.min, "Vector fp32 path: saturates"),
    ("vector", "add", "uint32", 2**32 - 1, 2, 2**32 - 1, "Vector fp32 path: saturates"),
    ("default", "add", "int8", 100, 100, 127, "int8 runs on Vector (fp32): saturates"),
    ("default", "subtract", "int8", -100, 100, -128, "int8 runs on Vector (fp32): saturates"),
    ("default", "add", "uint8", 5, 255, 255, "uint8 runs on Vector (fp32): saturates"),
    ("default", "subtract", "uint8", 3, 5, 0, "uint8 runs on Vector (fp32): saturates at 0"),
    ("default", "multiply", "int16", 300, 300, 32767, "int16 runs on Vector (fp32): saturates"),
    ("default", "divide", "int16", 7, 2, 4, "fp32 divide 3.5 rounds half to even"),
    ("default", "divide", "int16", 5, 2, 2, "fp32 divide 2.5 rounds half to even"),
    # bitvec: raw bits on the Vector engine
    ("default", "left_shift", "int8", 64, 1, -128, "bitvec: raw bits, no saturation"),
    ("default", "right_shift", "int8", -128, 1, 64, "bitvec: logical right shift"),
    ("default", "bitwise_xor", "uint32", 2**32 - 1, 1, 2**32 - 2, "bitvec: raw bits"),
]

ENGINES = {"default": nisa.engine.unknown, "vector": nisa.engine.vector,
           "gpsimd": nisa.engine.gpsimd}


@nki.jit
def _tt(a, b, op, engine):
    ta = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    tb = nl.ndarray(b.shape, b.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=ta, src=a)
    nisa.dma_copy(dst=tb, src=b)
    r = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    nisa.tensor_tensor(dst=r, data1=ta, data2=tb, op=getattr(nl, op), engine=engine)
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=r)
    return out


@pytest.mark.parametrize("engine,op,dt,a,b,want,why", TABLE,
                         ids=[f"{e}-{o}-{d}-{w.split(':')[0]}" for e, o, d, _, _, _, w in TABLE])
def test_integer_tensor_tensor_table(engine, op, dt, a, b, want, why):
    npdt = np.dtype(dt)
    x = np.full((2, 3), a, npdt)
    y = np.full((2, 3), b, npdt)
    got = _tt(x, y, op, ENGINES[engine])
    assert got.dtype == npdt
    assert got.tolist() == np.full((2, 3), want, npdt).tolist(), why


def test_int32_tile_add_matches_numpy_wrapping_on_gpsimd():
    """nl.add of int32 tiles (GpSimd by default) agrees with NumPy's wrapping int32 add."""
    rng = np.random.default_rng(0)
    x = rng.integers(I32.min, I32.max, (4, 64), dtype=np.int32, endpoint=True)
    y = rng.integers(I32.min, I32.max, (4, 64), dtype=np.int32, endpoint=True)

    @nki.jit
    def add(a, b):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        nl.store(out, nl.add(nl.load(a), nl.load(b)))
        return out
    np.testing.assert_array_equal(add(x, y), x + y)


def test_int32_psum_operand_falls_back_to_vector_and_saturates():
    """GpSimd cannot reach PSUM, so an int32 add with a PSUM operand runs on Vector (fp32)."""
    @nki.jit
    def k(a):
        t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a)
        p = nl.ndarray(a.shape, a.dtype, buffer=nl.psum)
        nisa.tensor_copy(dst=p, src=t)
        r = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
        nisa.tensor_tensor(dst=r, data1=p, data2=t, op=nl.add)
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=r)
        return out
    got = k(np.full((2, 2), I32.max, np.int32))
    assert (got == I32.max).all()


def test_wrap_int_is_two_complement():
    v = np.array([2**31, -2**31 - 1, 2**32 + 5, -1])
    assert wrap_int(v, np.dtype(np.int32)).tolist() == [-2**31, 2**31 - 1, 5, -1]
    assert wrap_int(v, np.dtype(np.uint32)).tolist() == [2**31, 2**31 - 1, 5, 2**32 - 1]
