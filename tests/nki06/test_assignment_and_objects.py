"""NKI 0.6 front-end pieces: ``t[...] = x``, NKIObject configs, ``nl.NkiTensor``/``nl.DType``,
``nl.is_sbuf(buffer=)``, ``nki.cpu_simulate`` and ``NKI_NC_VERSION`` (each against NumPy)."""
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import UserKernelError
from device.tensor import View

from source_errors import expect_error, line_of


@nki.jit
def assign_rows(a, k, fill):
    """acc[...] = 2a (tensor value), acc[0:k, :] = a[0:k, :] (rows), acc[:, -1:] = fill (scalar)."""
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    t[...] = a                                  # HBM -> SBUF: a dma_copy
    two = nl.ndarray(a.shape, nl.float32, buffer=nl.sbuf)
    nisa.tensor_scalar(dst=two, data=t, op0=nl.multiply, operand0=2.0)
    acc = nl.ndarray(a.shape, nl.float32, buffer=nl.sbuf)
    acc[...] = two
    acc[0:k, :] = t[0:k, :]
    acc[:, a.shape[1] - 1:] = fill
    out[...] = acc                              # SBUF -> HBM: a dma_copy
    return out


@given(p=st.integers(2, 64), f=st.integers(1, 24), data=st.data())
def test_assignment_into_tiles_matches_numpy(p, f, data):
    k = data.draw(st.integers(1, p))
    fill = data.draw(st.sampled_from([0.0, -1.5, 7]))
    a = np.random.default_rng(p * f).standard_normal((p, f)).astype(np.float32)
    want = 2 * a
    want[:k] = a[:k]
    want[:, -1] = fill
    np.testing.assert_array_equal(assign_rows(a, k, fill), want)


def test_assignment_emits_copy_instructions():
    prog = assign_rows.trace(np.zeros((8, 4), np.float32), 3, 0.0)
    ops = [i.op.name for i in prog.instrs]
    assert ops == ["dma_copy", "tensor_scalar", "tensor_copy", "tensor_copy", "memset", "dma_copy"]


@nki.jit
def bad_shape(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    t[0:2, :] = a                              # 2 rows <- all rows
    return out


@nki.jit
def bad_value(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    t[...] = np.ones(a.shape, np.float32)      # host data is not a tensor
    return out


@nki.jit
def scalar_into_hbm(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    out[0:1, :] = 3.0
    return out


def test_assignment_errors_name_shapes_values_and_lines():
    a = np.zeros((4, 8), np.float32)
    expect_error(lambda: bad_shape(a), UserKernelError, where=line_of(bad_shape, "t[0:2, :] = a"),
                 says=("has shape [4, 8]", "has shape [2, 8]", "shapes must be equal"))
    expect_error(lambda: bad_value(a), UserKernelError, where=line_of(bad_value, "t[...] ="),
                 says=("cannot assign a ndarray", "nl.shared_constant"))
    expect_error(lambda: scalar_into_hbm(a), UserKernelError,
                 where=line_of(scalar_into_hbm, "out[0:1, :] = 3.0"),
                 says=("is in shared_hbm", "only be written into SBUF or PSUM"))


def test_assignment_outside_a_kernel_is_refused():
    from device.storage import SBUF, Storage
    v = View.whole(Storage((2, 2), "float32", SBUF, name="x"))
    with pytest.raises(UserKernelError, match="only be called inside a kernel"):
        v[...] = 1.0


# ---- NKIObject ---------------------------------------------------------------------------------
class Tiling(nl.NKIObject):
    rows: int = 128
    cols: int
    scale = 1.0            # a plain class attribute is a field too

    def area(self):        # methods are not fields
        return self.rows * self.cols


def test_nkiobject_keyword_and_positional_construction():
    t = Tiling(cols=64, scale=0.5)
    assert (t.rows, t.cols, t.scale, t.area()) == (128, 64, 0.5, 128 * 64)
    assert Tiling(32, 16).area() == 512
    assert Tiling(cols=3) == Tiling(128, 3) and hash(Tiling(cols=3)) == hash(Tiling(128, 3))
    assert Tiling(cols=3) != Tiling(cols=4)


def test_nkiobject_errors_name_the_class_and_fields():
    with pytest.raises(TypeError, match=r"Tiling\(\) got an unexpected keyword argument 'colz'; "
                                        r"its declared fields are: rows, cols, scale"):
        Tiling(colz=3)
    t = Tiling(rows=4)                           # a field left out is unset, not an error
    with pytest.raises(AttributeError, match="cols"):
        t.area()
    with pytest.raises(TypeError, match=r"takes 2 positional field\(s\) \(rows, cols\) but 3"):
        Tiling(1, 2, 3)
    with pytest.raises(TypeError, match="multiple values for field 'rows'"):
        Tiling(1, rows=2, cols=3)


@nki.jit
def scaled(a, cfg):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=a)
    nisa.tensor_scalar(dst=t, data=t, op0=nl.multiply, operand0=cfg.scale)
    nisa.dma_copy(dst=out, src=t)
    return out


def test_nkiobject_configs_key_the_trace_cache_by_value():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(scaled(a, Tiling(cols=1, scale=3.0)), 3 * a)
    n = len(scaled._cache)
    np.testing.assert_array_equal(scaled(a, Tiling(cols=1, scale=3.0)), 3 * a)
    assert len(scaled._cache) == n                       # an equal config reuses the program
    np.testing.assert_array_equal(scaled(a, Tiling(cols=1, scale=-1.0)), -a)
    assert len(scaled._cache) == n + 1


from dataclasses import dataclass  # noqa: E402


@dataclass
class Dims(nl.NKIObject):
    rows: int
    cols: int
    note: str = "x"


def test_dataclass_configs_leave_omitted_fields_unset_and_refuse_their_use():
    d = Dims(rows=2, cols=3)
    assert (d.rows, d.cols, d.note) == (2, 3, "x") and Dims(2, 3) == d
    partial = Dims(rows=2)                       # NKI traces configs leniently: no TypeError
    assert partial.rows == 2
    with pytest.raises(UserKernelError, match=r"field Dims.cols was never given a value: the "
                                              r"Dims\(\.\.\.\) call at .*test_assignment_and_"
                                              r"objects.py:\d+ left it out"):
        partial.cols * 2
    partial.cols = 5                             # assigning it later is fine
    assert partial.cols * 2 == 10


@dataclass
class Section(nl.NKIObject):                     # plain class attributes under @dataclass
    index = None
    offset = 0
    width: int = 8


@nki.jit
def section_kernel(a):
    s = Section(index=2, offset=3)               # NKI: every declared attribute is a field
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=a)
    nisa.tensor_scalar(dst=t, data=t, op0=nl.add, operand0=float(s.index * s.offset + s.width))
    nisa.dma_copy(dst=out, src=t)
    return out


def test_dataclass_configs_take_plain_class_attributes_as_keyword_fields():
    s = Section(index=1, offset=4, width=2)
    assert (s.index, s.offset, s.width) == (1, 4, 2)
    assert (Section().index, Section().offset, Section(width=3).width) == (None, 0, 3)
    np.testing.assert_array_equal(section_kernel(np.zeros((2, 2), np.float32)),
                                  np.full((2, 2), 14.0, np.float32))
    with pytest.raises(TypeError, match=r"Section\(\) got an unexpected keyword argument "
                                        r"'idx'; its declared fields are: width, index, offset"):
        Section(idx=1)


# ---- small API names ------------------------------------------------------------------------
@nki.jit
def buffers(a):
    out = nl.ndarray((1, 4), nl.int32, buffer=nl.shared_hbm)
    t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    p = nl.ndarray(a.shape, nl.float32, buffer=nl.psum)
    flags = (nl.is_sbuf(buffer=t.buffer), nl.is_psum(buffer=p), nl.is_hbm(buffer=a.buffer),
             nl.is_on_chip(buffer=p.buffer))
    assert isinstance(t, nl.NkiTensor) and isinstance(t.dtype, nl.DType)
    r = nl.ndarray((1, 4), nl.int32, buffer=nl.sbuf)
    for k, f in enumerate(flags):
        nisa.memset(dst=r[:, k:k + 1], value=int(f))
    nisa.dma_copy(dst=out, src=r)
    return out


def test_buffer_queries_take_the_buffer_keyword_and_types_are_exported():
    assert buffers(np.zeros((2, 2), np.float32)).tolist() == [[1, 1, 1, 1]]
    assert nl.NkiTensor is View and nl.DType is str
    with pytest.raises(TypeError, match="unexpected keyword argument 'buf'"):
        nl.is_sbuf(buf=nl.sbuf)


def add_one(a):                       # an undecorated function, as the library harness passes
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=a)
    nisa.tensor_scalar(dst=t, data=t, op0=nl.add, operand0=1.0)
    nisa.dma_copy(dst=out, src=t)
    return out


@pytest.mark.parametrize("gen,target", [("gen2", "trn1"), ("gen3", "trn2"), ("gen4", "trn3")])
def test_cpu_simulate_with_nki_nc_version(monkeypatch, gen, target):
    monkeypatch.delenv("NEURON_PLATFORM_TARGET_OVERRIDE", raising=False)
    monkeypatch.setenv("NKI_NC_VERSION", gen)
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    k = nki.cpu_simulate(add_one)
    np.testing.assert_array_equal(k[1](a=a), a + 1)
    from device.arch import get_arch
    assert k.trace(a).arch is get_arch(target)
    if gen != "gen2":                                   # LNC=2 core pairs are v3+
        np.testing.assert_array_equal(k[2](a=a), a + 1)  # [lnc] then keyword inputs


def test_platform_override_wins_over_nki_nc_version(monkeypatch):
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", "trn2")
    monkeypatch.setenv("NKI_NC_VERSION", "gen4")
    from device.arch import get_arch
    assert get_arch().name == "trn2"
    monkeypatch.setenv("NKI_NC_VERSION", "gen9")
    monkeypatch.delenv("NEURON_PLATFORM_TARGET_OVERRIDE")
    with pytest.raises(ValueError, match="unknown target 'gen9'"):
        get_arch()
    assert os.environ["NKI_NC_VERSION"] == "gen9"
