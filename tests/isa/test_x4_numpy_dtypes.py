"""nl's MX x4 dtype names are NumPy dtypes (device.x4_numpy): ``np.zeros(s, dtype=nl.float8_e4m3fn_x4)``
makes an array of raw containers whose ``str(dtype)`` is the NKI name, kernels take such arrays as
x4 tensors (bits unchanged), return x4 results in that dtype and write in-place results back into
them. The names themselves stay plain strings (NKI: ``nl.float8_e4m3fn_x4 == 'float8_e4m3fn_x4'``)."""
import pickle

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device import dtypes as D
from device import x4_numpy
from device.isa.mx import quantize

X4 = {"float8_e5m2_x4": (4, np.uint32), "float8_e4m3fn_x4": (4, np.uint32),
      "float4_e2m1fn_x4": (2, np.uint16)}


@pytest.mark.parametrize("name", sorted(X4))
def test_nl_names_are_strings_and_numpy_dtypes(name):
    nl_dt = getattr(nl, name)
    assert isinstance(nl_dt, str) and nl_dt == name and str(nl_dt) == name
    a = np.zeros((3, 5), dtype=nl_dt)
    size, raw = X4[name]
    assert str(a.dtype) == name and a.dtype.name == name and a.itemsize == size
    assert a.dtype == name and a.dtype == np.dtype(name) and a.dtype == D.host_x4(name)
    assert D.normalize(a.dtype) == name and D.normalize(a.dtype.type) == name
    assert D.raw_bits(a).dtype == raw and not D.raw_bits(a).any()
    assert x4_numpy.DTYPES[name] == a.dtype


def test_plain_nl_dtypes_stay_as_they_were():
    assert np.dtype(nl.bfloat16) == ml_dtypes.bfloat16 and np.dtype(nl.float32) == np.float32
    assert nl.float8_e4m3fn_x4 != nl.float8_e5m2_x4
    assert {nl.float8_e4m3fn_x4: 1}["float8_e4m3fn_x4"] == 1     # hashable as the string
    with pytest.raises(TypeError, match="not understood"):
        np.dtype(nl.tfloat32)               # no NumPy type: tf32 is fp32 storage in NKI


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=40), st.integers(1, 3))
def test_containers_keep_their_bits_through_views_copies_and_strides(bits, step):
    raw = np.array(bits, np.uint32)
    a = raw.view("float8_e4m3fn_x4")
    assert [a[i] for i in range(len(a))] == bits            # an element reads as its container
    np.testing.assert_array_equal(D.raw_bits(a.copy()), raw)
    np.testing.assert_array_equal(D.raw_bits(a[::step].copy()), raw[::step])   # strided copy
    b = np.empty_like(a[::step])
    b[...] = a[::step]
    np.testing.assert_array_equal(D.raw_bits(b), raw[::step])
    c = np.concatenate([a, a[::-1]])
    np.testing.assert_array_equal(D.raw_bits(c), np.concatenate([raw, raw[::-1]]))
    back = pickle.loads(pickle.dumps(a))
    assert back.dtype == a.dtype
    np.testing.assert_array_equal(D.raw_bits(back), raw)


def test_ints_are_stored_as_containers():
    a = np.array([7, 2**32 - 1], dtype="float8_e5m2_x4")
    np.testing.assert_array_equal(D.raw_bits(a), [7, 2**32 - 1])
    b = np.zeros(2, "float4_e2m1fn_x4")
    b[1] = 0xABCD
    assert D.raw_bits(b).tolist() == [0, 0xABCD] and np.count_nonzero(b) == 1


def test_no_numeric_casts_or_arithmetic():
    a = np.zeros(4, nl.float8_e4m3fn_x4)
    # the library's output validator relies on this TypeError to pick its x4 unpacker
    with pytest.raises(TypeError, match=r"Cannot cast array data from dtype\(float8_e4m3fn_x4\)"):
        a.astype(np.float32)
    with pytest.raises(TypeError):
        a + a


@pytest.mark.parametrize("value", [1.5, 2**32, -1, "abc"])
def test_a_value_that_is_not_a_container_is_refused(value, capfd):
    with pytest.raises(SystemError):
        np.array([value], dtype="float8_e5m2_x4")
    err = capfd.readouterr().err
    assert ("float8_e5m2_x4 elements are raw 32-bit containers of 4 packed values: store an int "
            f"in [0, 4294967296) or pack floats with device.dtypes.pack_x4, got {value!r}") in err


def test_structured_fallback_still_names_the_type():
    d = np.dtype((np.uint32, [("float8_e5m2_x4", np.uint32)]))
    a = np.arange(3, dtype=np.uint32).view(d)
    assert D.normalize(d) == "float8_e5m2_x4" and D.raw_bits(a).tolist() == [0, 1, 2]
    with pytest.raises(TypeError, match="unsupported dtype"):
        D.normalize(np.dtype((np.uint16, [("float8_e5m2_x4", np.uint16)])))   # wrong width


def _quantize_kernel():
    @nki.jit(target="trn3")
    def kernel(src, out_data, out_scale):
        P, F = src.shape
        s = nl.ndarray((P, F), src.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=s, src=src)
        d = nl.ndarray((P, F // 4), out_data.dtype, buffer=nl.sbuf)
        sc = nl.ndarray((P, F // 4), nl.uint8, buffer=nl.sbuf)
        nisa.memset(dst=sc, value=0)         # quantize_mx writes only the scale rows
        nisa.quantize_mx(dst=d, src=s, dst_scale=sc)
        nisa.dma_copy(dst=out_data, src=d)
        nisa.dma_copy(dst=out_scale, src=sc)
        fresh = nl.ndarray((P, F // 4), out_data.dtype, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=fresh, src=d)
        return fresh
    return kernel


@pytest.mark.parametrize("name", ["float8_e4m3fn_x4", "float8_e5m2_x4"])
def test_a_kernel_writes_x4_arrays_in_place_and_returns_them_typed(name):
    rng = np.random.default_rng(5)
    src = rng.normal(0, 3, (32, 16)).astype(ml_dtypes.bfloat16)
    out = np.zeros((32, 4), dtype=getattr(nl, name))     # as the NKI library's harness builds it
    scale = np.zeros((32, 4), np.uint8)
    got = _quantize_kernel()(src, out, scale)
    want_data, want_scale = quantize(src.astype(np.float64), name)
    assert str(got.dtype) == name and str(out.dtype) == name
    np.testing.assert_array_equal(D.raw_bits(out), want_data)
    np.testing.assert_array_equal(D.raw_bits(got), want_data)
    np.testing.assert_array_equal(scale[[0, 1, 2, 3]], want_scale)
    assert not scale[4:].any()


def test_the_harness_entry_returns_allocated_x4_results_as_float_containers(monkeypatch):
    monkeypatch.setenv("NKI_NC_VERSION", "gen4")
    monkeypatch.delenv("NEURON_PLATFORM_TARGET_OVERRIDE", raising=False)
    rng = np.random.default_rng(6)
    src = rng.normal(0, 3, (32, 16)).astype(ml_dtypes.bfloat16)
    out = np.zeros((32, 4), dtype=nl.float8_e4m3fn_x4)
    scale = np.zeros((32, 4), np.uint8)

    def kernel(src, out_data, out_scale):
        fresh = _quantize_kernel().fn(src, out_data, out_scale)
        return fresh, out_data

    fresh, aliased = nki.cpu_simulate(kernel)[1](src=src, out_data=out, out_scale=scale)
    want, _ = quantize(src.astype(np.float64), "float8_e4m3fn_x4")
    # the library's mxfp_load golden compares mx_data.view(np.float32) bit for bit
    assert fresh.dtype == np.float32 and (fresh.view(np.uint32) == want).all()
    assert str(aliased.dtype) == "float8_e4m3fn_x4" and (D.raw_bits(aliased) == want).all()
    assert D.as_float_containers(np.zeros(2, "float4_e2m1fn_x4")).dtype == np.float16
    plain = np.zeros(2, np.float32)
    assert D.as_float_containers(plain) is plain


@pytest.mark.parametrize("name", sorted(X4))
def test_x4_scalar_types_equal_their_nki_name(name):
    # NKI treats nl.<name> and the harness's neuron_dtypes.<name> as one dtype: the library's MX
    # goldens key dicts by one spelling and look up the other (get_mx_fp_max(dt.float8_e4m3fn_x4)).
    t = np.dtype(name).type
    other = next(np.dtype(n).type for n in sorted(X4) if n != name)
    assert t == name and name == t and t == getattr(nl, name) and not (t != name)
    assert {getattr(nl, name): "v"}[t] == "v" and {t: "v"}[name] == "v"
    assert t in {name} and name in {t}
    assert t != other and t != other.__name__ and t != "float32" and t != 4
    assert t == t and hash(t) == hash(name)
    assert np.dtype(t) == np.dtype(name) and np.zeros(2, dtype=t).dtype.type is t


def test_x4_type_equality_is_by_name_not_by_spelling_in_other_types():
    t = np.dtype("float8_e4m3fn_x4").type
    assert (t == b"float8_e4m3fn_x4") is False                    # bytes are not names
    assert t == np.dtype("float8_e4m3fn_x4")                       # as np.float32 == np.dtype("float32")
    assert t != np.dtype("float8_e5m2_x4")
    assert (t == None) is False and t is not None                  # noqa: E711
