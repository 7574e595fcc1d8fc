"""Kernel API holes: every bad argument or shape is a located error naming the argument."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import nki
import nki.language as nl
from device.errors import HardwareRuleError, NeuronError, UserKernelError
from device.limits import ResourceLimitError
from nki.arguments import KERNEL_DTYPES

HERE = "test_argument_errors.py"


@nki.jit
def copy(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    nl.store(out, nl.load(a))
    return out


@pytest.mark.parametrize("dt,advice", [(np.float64, "x.astype(np.float32)"),
                                       (np.int64, "x.astype(np.int32)"),
                                       (np.uint64, "x.astype(np.uint32)")])
def test_64_bit_inputs_are_refused_not_downcast(dt, advice):
    # 1 + 1e-12 would come back as 1.0 through an fp32 kernel; 2**40 + 1 would lose the 1
    x = np.array([[1 + 1e-12 if np.dtype(dt).kind == "f" else 2**40 + 1]], dt)
    with pytest.raises(HardwareRuleError, match=rf"kernel-argument-dtype: argument 'a' of copy has "
                       rf"dtype {np.dtype(dt).name}; kernel tensors hold one of .*float32.*"
                       rf"{advice.replace('(', '[(]').replace(')', '[)]')}") as e:
        copy(x)
    assert HERE in str(e.value)


@pytest.mark.parametrize("arr", [np.array([[1j]], np.complex64), np.array([[1]], object),
                                 np.array([[1]], np.longdouble), np.array([["s"]])],
                         ids=["complex64", "object", "longdouble", "str"])
def test_unsupported_dtypes_name_the_argument(arr):
    with pytest.raises(HardwareRuleError, match=r"argument 'a' of copy has dtype") as e:
        copy(arr)
    assert HERE in str(e.value)


@pytest.mark.parametrize("dt", [np.float32, np.float16, ml_dtypes.bfloat16, np.int32, np.uint8,
                                np.int16, np.bool_])
def test_supported_dtypes_still_run(dt):
    x = np.arange(6).reshape(2, 3).astype(dt)
    np.testing.assert_array_equal(copy(x), x)
    assert "float32" in KERNEL_DTYPES and "float64" not in KERNEL_DTYPES


@pytest.mark.parametrize("arg", [None, "abc", 3])
def test_constant_where_a_tensor_is_expected(arg):
    with pytest.raises(UserKernelError, match=rf"copy: AttributeError: .* argument 'a' is "
                       rf"{repr(arg).replace('(', '[(]')}, a compile-time constant rather than a "
                       rf"tensor") as e:
        copy(arg)
    assert HERE in str(e.value) or "copy" in str(e.value)


@pytest.mark.parametrize("shape,match", [
    ((128, -4), r"dimension 1 is -4; dimensions are non-negative integers"),
    ((128, 64.5), r"dimension 1 is 64.5 \(float\)"),
    ((128, "8"), r"dimension 1 is '8' \(str\)"),
    ((128, None), r"dimension 1 is None"),
    ((True, 4), r"dimension 0 is True \(bool\)"),
    (-3, r"dimension 0 is -3"),
])
def test_bad_shapes_are_refused_with_the_user_line(shape, match):
    @nki.jit
    def k(a):
        out = nl.ndarray(shape, a.dtype, buffer=nl.shared_hbm)
        return out
    with pytest.raises(ResourceLimitError, match=r"shape: nl.ndarray shape .*" + match) as e:
        k(np.zeros((1, 1), np.float32))
    assert HERE in str(e.value)


def test_numpy_integer_dims_are_fine():
    @nki.jit
    def k(a):
        out = nl.ndarray((np.int64(2), np.int32(3)), a.dtype, buffer=nl.shared_hbm)
        nl.store(out, nl.load(a))
        return out
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(k(x), x)


def test_errors_are_ours():
    assert issubclass(ResourceLimitError, NeuronError)
