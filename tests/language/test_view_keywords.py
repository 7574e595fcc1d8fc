"""NkiTensor view methods called with keyword arguments, as the newest NKI library writes them.

Releases after 2026-04 moved the library's kernels (rmsnorm_tkg, norm_tkg_utils, ...) from its
own TensorView class onto the native NkiTensor methods, spelled with keywords:
``t.flatten_dims(start_dim=0, end_dim=1)``, ``t.slice(dim=1, start=a, end=b)``,
``t.reshape_dim(dim=1, shape=[h0, h1])``, ``t.permute(dims=[1, 0, 2])``, ``t.expand_dim(dim=2)``,
``t.broadcast(dim=2, size=n)``, ``t.squeeze_dim(dim=2)``, ``t.select(dim=0, index=0)``.
Each chain below is checked against NumPy on the same data.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.errors import HardwareRuleError, UserKernelError
from device.memory import Memory
from device.tensor import HBM, SBUF, Storage, View


def _tensor(shape, buffer=HBM):
    mem = Memory(warn_uninit=False)
    v = View.whole(Storage(shape, "float32", buffer, name="t"))
    data = np.arange(math.prod(shape), dtype=np.float64).reshape(shape)
    mem.write(v, data)
    return mem, v, data


def test_library_keyword_chains_match_numpy():
    # the rms-norm loads: [B, S, H] -> [B*S, H] -> [B*S, H0, H1] -> [H0, B*S, H1]
    mem, x, arr = _tensor((2, 3, 8 * 4))
    v = x.flatten_dims(start_dim=0, end_dim=1).reshape_dim(dim=1, shape=[8, 4]).permute(dims=[1, 0, 2])
    np.testing.assert_array_equal(mem.read(v), arr.reshape(6, 8, 4).transpose(1, 0, 2))
    s = x.flatten_dims(start_dim=0, end_dim=1).slice(dim=0, start=2, end=5)
    np.testing.assert_array_equal(mem.read(s), arr.reshape(6, 32)[2:5])
    g = x.select(dim=0, index=1).reshape_dim(dim=1, shape=[8, 4]).select(dim=1, index=3)
    np.testing.assert_array_equal(mem.read(g), arr[1].reshape(3, 8, 4)[:, 3])
    # negative dims count from the end, as in NumPy
    np.testing.assert_array_equal(mem.read(x.flatten_dims(start_dim=-2, end_dim=-1)),
                                  arr.reshape(2, 96))


def test_on_chip_keyword_chains_keep_the_partition_axis():
    mem, t, arr = _tensor((4, 6, 5), SBUF)
    b = t.slice(dim=2, start=0, end=1).squeeze_dim(dim=2).expand_dim(dim=2).broadcast(dim=2, size=3)
    np.testing.assert_array_equal(mem.read(b), np.broadcast_to(arr[:, :, 0:1], (4, 6, 3)))
    f = t.flatten_dims(start_dim=1, end_dim=2).reshape_dim(dim=1, shape=[3, 10])
    np.testing.assert_array_equal(mem.read(f), arr.reshape(4, 3, 10))
    np.testing.assert_array_equal(mem.read(t.flatten_dims(start_dim=0, end_dim=0)), arr)


@given(st.lists(st.integers(1, 4), min_size=2, max_size=5), st.data())
def test_flatten_dims_is_numpy_reshape(shape, data):
    mem, v, arr = _tensor(tuple(shape))
    a = data.draw(st.integers(0, len(shape) - 1))
    b = data.draw(st.integers(a, len(shape) - 1))
    want = arr.reshape(arr.shape[:a] + (math.prod(arr.shape[a:b + 1]),) + arr.shape[b + 1:])
    np.testing.assert_array_equal(mem.read(v.flatten_dims(start_dim=a, end_dim=b)), want)
    np.testing.assert_array_equal(mem.read(v.flatten_dims(a, b)), want)   # positional too


def test_flatten_dims_errors_name_the_rule_and_the_dims():
    _, v, _ = _tensor((4, 2, 3), SBUF)
    with pytest.raises(UserKernelError, match=r"flatten_dims\(start_dim=2, end_dim=1\) of t: "
                                              r"need 0 <= start_dim <= end_dim < 3"):
        v.flatten_dims(start_dim=2, end_dim=1)
    with pytest.raises(UserKernelError, match=r"end_dim=3\) of t"):
        v.flatten_dims(start_dim=1, end_dim=3)
    with pytest.raises(HardwareRuleError, match="partition-flatten"):
        v.flatten_dims(start_dim=0, end_dim=1)
    with pytest.raises(UserKernelError, match="incompatible layout"):
        v.slice(dim=2, start=0, end=2).flatten_dims(start_dim=1, end_dim=2)
