"""NkiTensor views (device.tensor.View) against NumPy views of the same data (SPEC 2.4).

Each test fills a storage with ``arange`` through emulated memory, builds a view, reads it back and
compares with NumPy indexing of the same array, plus the partition-axis rules for on-chip tensors.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.errors import HardwareRuleError, UserKernelError
from device.memory import Memory
from device.tensor import HBM, SBUF, Storage, View


def _tensor(shape, buffer=HBM, dtype="float32"):
    mem = Memory(warn_uninit=False)
    v = View.whole(Storage(shape, dtype, buffer, name="t"))
    data = np.arange(math.prod(shape), dtype=np.float64).reshape(shape)
    mem.write(v, data)
    return mem, v, data


shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple)


@st.composite
def index_for(draw, shape, allow_ellipsis=True):
    """A NumPy-style index: ints (maybe negative), in-bounds slices with steps, one Ellipsis."""
    key = []
    for d in shape:
        kind = draw(st.sampled_from(["int", "slice", "slice", "full"]))
        if kind == "int":
            key.append(draw(st.integers(-d, d - 1)))
        elif kind == "slice":
            a = draw(st.integers(0, d - 1))
            b = draw(st.integers(a + 1, d))
            step = draw(st.integers(1, 3))
            if draw(st.booleans()):
                a, b = a - d, (b - d if b < d else b)    # negative bounds, same range
            key.append(slice(a, b, step))
        else:
            key.append(slice(None))
    n = draw(st.integers(0, len(key)))
    key = key[:n]
    if allow_ellipsis and draw(st.booleans()):
        pos = draw(st.integers(0, len(key)))
        key.insert(pos, Ellipsis)
    return tuple(key)


@given(st.data(), shapes)
def test_hbm_getitem_equals_numpy(data, shape):
    mem, v, arr = _tensor(shape)
    key = data.draw(index_for(shape))
    got = v[key]
    want = arr[key]
    assert got.shape == want.shape
    np.testing.assert_array_equal(mem.read(got), want)


def _onchip_expected(arr, key):
    """The on-chip rule: an int on P keeps a size-1 dim; results stay >= 2-D."""
    full = list(key)
    if Ellipsis in full:
        i = full.index(Ellipsis)
        full[i:i + 1] = [slice(None)] * (arr.ndim - (len(full) - 1))
    full += [slice(None)] * (arr.ndim - len(full))
    if isinstance(full[0], int):
        p = full[0] % arr.shape[0]
        full[0] = slice(p, p + 1)
    out = arr[tuple(full)]
    if out.ndim < 2:
        out = out.reshape(out.shape + (1,))
    return out


@given(st.data(), st.integers(1, 8), st.lists(st.integers(1, 5), min_size=1, max_size=3))
def test_sbuf_getitem_keeps_partition_axis(data, p, free):
    shape = (p,) + tuple(free)
    mem, v, arr = _tensor(shape, SBUF)
    key = data.draw(index_for(shape, allow_ellipsis=False))
    if key and isinstance(key[0], slice) and key[0].step not in (None, 1):
        key = (slice(key[0].start, key[0].stop),) + key[1:]
    got = v[key]
    want = _onchip_expected(arr, key)
    assert got.shape == want.shape
    assert got.ndim >= 2
    np.testing.assert_array_equal(mem.read(got), want)


@given(shapes, st.randoms(use_true_random=False))
def test_permute_matches_numpy_transpose(shape, rnd):
    mem, v, arr = _tensor(shape)
    dims = list(range(len(shape)))
    rnd.shuffle(dims)
    np.testing.assert_array_equal(mem.read(v.permute(tuple(dims))), arr.transpose(dims))


def _factor(n, rnd):
    out = []
    while n > 1 and len(out) < 3:
        divs = [d for d in range(2, n + 1) if n % d == 0]
        d = rnd.choice(divs)
        out.append(d)
        n //= d
    return out + ([n] if n > 1 else [])


@given(st.data(), shapes, st.randoms(use_true_random=False))
def test_reshape_is_a_view_exactly_when_numpy_can_view(data, shape, rnd):
    mem, v, arr = _tensor(shape)
    key = data.draw(index_for(shape, allow_ellipsis=False))
    sub, asub = v[key], arr[key]
    new = tuple(_factor(asub.size, rnd)) or (1,)
    probe = asub.view()
    try:
        probe.shape = new            # NumPy refuses when a copy would be needed
        numpy_can = True
    except AttributeError:
        numpy_can = False
    if numpy_can:
        np.testing.assert_array_equal(mem.read(sub.reshape(new)), asub.reshape(new))
    else:
        with pytest.raises(UserKernelError, match="incompatible layout"):
            sub.reshape(new)


def test_reshape_element_count_and_partition_rules():
    _, v, _ = _tensor((4, 6), SBUF)
    with pytest.raises(UserKernelError, match=r"24 elements\) into \(5, 5\)"):
        v.reshape((5, 5))
    with pytest.raises(HardwareRuleError, match="partition-reshape"):
        v.reshape((8, 3))
    assert v.reshape((4, 2, 3)).shape == (4, 2, 3)


def test_flatten_reshape_dim_expand_squeeze_broadcast():
    mem, v, arr = _tensor((4, 2, 3, 5), SBUF)
    np.testing.assert_array_equal(mem.read(v.flatten_dims(1, 2)), arr.reshape(4, 6, 5))
    np.testing.assert_array_equal(mem.read(v.reshape_dim(3, (5, -1))), arr.reshape(4, 2, 3, 5, 1))
    np.testing.assert_array_equal(mem.read(v.flatten_dims(2, 3).reshape_dim(2, (3, 5))), arr)
    e = v.expand_dim(2)
    assert e.shape == (4, 2, 1, 3, 5)
    np.testing.assert_array_equal(mem.read(e.squeeze_dim(2)), arr)
    b = v[:, 0:1].broadcast(1, 3)
    np.testing.assert_array_equal(mem.read(b), np.broadcast_to(arr[:, 0:1], (4, 3, 3, 5)))
    for bad, rule in ((lambda: v.flatten_dims(0, 1), "partition-flatten"),
                      (lambda: v.expand_dim(0), "partition-expand"),
                      (lambda: v[0:1].squeeze_dim(0), "partition-squeeze"),
                      (lambda: v.permute((1, 0, 2, 3)), "partition-permute"),
                      (lambda: v[0:1].broadcast(0, 4), "partition-broadcast"),
                      (lambda: v.reshape_dim(0, (2, 2)), "partition-reshape"),
                      (lambda: v[:, :, 0:1].flatten_dims(1, 3), "incompatible layout"),
                      (lambda: v.flatten_dims(1, 3).reshape_dim(1, (7, -1)), "reshape_dim")):
        with pytest.raises((HardwareRuleError, UserKernelError), match=rule):
            bad()


def test_hbm_partition_rules_do_not_apply():
    mem, v, arr = _tensor((4, 6))
    np.testing.assert_array_equal(mem.read(v.permute((1, 0))), arr.T)
    np.testing.assert_array_equal(mem.read(v.reshape((8, 3))), arr.reshape(8, 3))
    assert v[2].shape == (6,) and v[2, 3].shape == ()


def test_select_slice_and_ds():
    import nki.language as nl
    mem, v, arr = _tensor((4, 8, 6), SBUF)
    np.testing.assert_array_equal(mem.read(v.select(1, 3)), arr[:, 3])
    np.testing.assert_array_equal(mem.read(v.slice(2, 1, 6, 2)), arr[:, :, 1:6:2])
    np.testing.assert_array_equal(mem.read(v[:, nl.ds(2, 3)]), arr[:, 2:5])
    with pytest.raises(HardwareRuleError, match="access-out-of-bound"):
        v.slice(1, 4, 9)
    with pytest.raises(HardwareRuleError, match="access-out-of-bound"):
        v[:, 0:9]
    with pytest.raises(HardwareRuleError, match="access-out-of-bound"):
        v[:, -9]
    with pytest.raises(HardwareRuleError, match="partition-stride"):
        v[0:4:2]


def test_view_dtype_reinterprets_bytes():
    mem, v, arr = _tensor((2, 4), SBUF, "float32")
    b = v.view("uint8")
    assert b.shape == (2, 16)
    np.testing.assert_array_equal(mem.read(b), arr.astype(np.float32).view(np.uint8))
    np.testing.assert_array_equal(mem.read(b.view("float32")), arr)
    np.testing.assert_array_equal(mem.read(v.view("int32")), arr.astype(np.float32).view(np.int32))


@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.randoms(use_true_random=False))
def test_rearrange_matches_numpy(h, w, c, rnd):
    mem, v, arr = _tensor((3, h * w, c), SBUF)
    got = v.rearrange(("p", ("h", "w"), "c"), ("p", "c", "w", "h"), {"h": h})
    want = arr.reshape(3, h, w, c).transpose(0, 3, 2, 1)
    np.testing.assert_array_equal(mem.read(got), want)
    merged = v.rearrange(("p", "x", "c"), ("p", ("x", "c")))
    np.testing.assert_array_equal(mem.read(merged), arr.reshape(3, -1))
    with pytest.raises(UserKernelError, match="same"):
        v.rearrange(("p", "x", "c"), ("p", "x"))


def test_ap_composes_with_the_view_offset_and_checks_bounds():
    mem, v, arr = _tensor((4, 12), SBUF)
    win = v.ap([[12, 4], [4, 3], [1, 2]])
    np.testing.assert_array_equal(mem.read(win), arr.reshape(4, 3, 4)[:, :, 0:2])
    shifted = v[:, 2:].ap([[12, 4], [1, 3]])               # starts where the view starts
    np.testing.assert_array_equal(mem.read(shifted), arr[:, 2:5])
    np.testing.assert_array_equal(mem.read(v.ap([[12, 4], [1, 3]], offset=5)), arr[:, 5:8])
    with pytest.raises(HardwareRuleError, match="ap-partition-stride"):
        v.ap([[6, 4], [1, 6]])
    over = v.ap([[12, 4], [1, 13]])         # a descriptor: overrunning is an error only on use
    with pytest.raises(HardwareRuleError, match=r"access-out-of-bound.*\[0, 48\].*has 48"):
        mem.read(over)


def test_attributes_and_queries():
    _, v, _ = _tensor((4, 6, 2), SBUF)
    s = v[:, 1:5, :]
    assert (s.shape, s.strides, s.offset, s.ndim, s.size) == ((4, 4, 2), (12, 2, 1), 2, 3, 32)
    assert s.is_contiguous() and not v[:, ::2].is_contiguous()
    assert s.get_pattern() == [[12, 4], [2, 4], [1, 2]]
    assert not s.is_indirect()
