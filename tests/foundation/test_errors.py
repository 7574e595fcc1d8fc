"""Issue 2: bad input gets a clear error naming rule, operand, value, limit and the user's line."""
import inspect

import numpy as np
import pytest

import neuron
import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import HardwareRuleError
from lowering import HloImportError


def _line_of(fn, marker):
    src, start = inspect.getsourcelines(fn)
    for i, line in enumerate(src):
        if marker in line:
            return start + i
    raise AssertionError(marker)


def test_partition_dimension_over_128():
    @nki.jit
    def k(a):
        t = nl.ndarray((256, 512), nl.float32, buffer=nl.sbuf)  # MARK-P
        nisa.dma_copy(dst=t, src=a)
        return a
    with pytest.raises(HardwareRuleError) as e:
        k(np.zeros((256, 512), np.float32))
    msg = str(e.value)
    assert "partition-limit" in msg and "256" in msg and "128" in msg
    assert e.value.loc.line == _line_of(k.fn, "MARK-P")
    assert f"test_errors.py:{e.value.loc.line}" in msg


def test_psum_tile_wider_than_one_bank():
    @nki.jit
    def k(a, b):
        ps = nl.ndarray((128, 1024), nl.float32, buffer=nl.psum)
        x = nl.load(a)
        y = nl.load(b)
        nisa.nc_matmul(dst=ps, stationary=x, moving=y)  # MARK-B
        return a
    with pytest.raises(HardwareRuleError) as e:
        k(np.zeros((128, 128), np.float32), np.zeros((128, 1024), np.float32))
    msg = str(e.value)
    assert e.value.rule in ("matmul-size", "psum-bank")
    assert "1024" in msg or "4096" in msg
    assert e.value.loc.line == _line_of(k.fn, "MARK-B")


def test_psum_bank_rule_on_dst_width():
    @nki.jit
    def k(a, b):
        ps = nl.ndarray((128, 2, 512), nl.float32, buffer=nl.psum)
        x = nl.load(a)
        y = nl.load(b)
        nisa.nc_matmul(dst=ps.reshape((128, 1024))[:, 0:512], stationary=x, moving=y)
        nisa.nc_matmul(dst=ps[:, 0, 256:512], stationary=x, moving=y[:, 0:256])
        z = nl.ndarray((128, 256, 4), nl.float32, buffer=nl.psum)
        nisa.nc_matmul(dst=z[:, 0:128, 0], stationary=x, moving=y[:, 0:128])  # fine: strided
        return a
    k(np.zeros((128, 128), np.float32), np.zeros((128, 512), np.float32))


def test_matmul_reading_psum_is_refused():
    @nki.jit
    def k(a, b):
        x = nl.load(a)
        y = nl.ndarray((128, 512), nl.float32, buffer=nl.psum)
        ps = nl.ndarray((128, 512), nl.float32, buffer=nl.psum)
        nisa.nc_matmul(dst=ps, stationary=x, moving=y)  # MARK-R
        return a
    with pytest.raises(HardwareRuleError) as e:
        k(np.zeros((128, 128), np.float32), np.zeros((128, 512), np.float32))
    msg = str(e.value)
    assert e.value.rule == "buffer" and "moving" in msg and "PSUM" in msg and "SBUF" in msg
    assert e.value.loc.line == _line_of(k.fn, "MARK-R")


def test_shape_mismatch():
    @nki.jit
    def k(a, b):
        x = nl.load(a)
        y = nl.load(b)
        z = nl.ndarray((128, 512), nl.float32, buffer=nl.sbuf)
        nisa.tensor_tensor(dst=z, data1=x, data2=y, op=nl.add)  # MARK-S
        return a
    with pytest.raises(HardwareRuleError) as e:
        k(np.zeros((128, 512), np.float32), np.zeros((128, 256), np.float32))
    msg = str(e.value)
    assert e.value.rule == "shape-mismatch" and "[128, 256]" in msg and "[128, 512]" in msg
    assert e.value.loc.line == _line_of(k.fn, "MARK-S")


def test_wrong_dtype_for_instruction():
    @nki.jit
    def k(a, b):
        x = nl.load(a)
        y = nl.load(b)
        ps = nl.ndarray((128, 512), nl.float32, buffer=nl.psum)
        nisa.nc_matmul(dst=ps, stationary=x, moving=y)  # MARK-D
        return a
    with pytest.raises(HardwareRuleError) as e:
        k(np.zeros((128, 128), np.int32), np.zeros((128, 512), np.int32))
    msg = str(e.value)
    assert e.value.rule == "dtype" and "int32" in msg and "bfloat16" in msg
    assert e.value.loc.line == _line_of(k.fn, "MARK-D")


def test_bitwise_op_needs_ints():
    @nki.jit
    def k(a):
        x = nl.load(a)
        z = nl.ndarray((128, 4), nl.float32, buffer=nl.sbuf)
        nisa.tensor_tensor(dst=z, data1=x, data2=x, op=nl.bitwise_and)
        return a
    with pytest.raises(HardwareRuleError, match="bitwise op bitwise_and needs integer dtypes"):
        k(np.zeros((128, 4), np.float32))


def test_unsupported_hlo_opcode_is_named():
    text = """HloModule m
ENTRY main {
  x = f32[8] parameter(0)
  ROOT s = f32[8] sort(x), dimensions={0}
}"""
    with pytest.raises(HloImportError) as e:
        neuron.load_hlo(text)
    assert "sort" in str(e.value)


def test_malformed_hlo_text():
    with pytest.raises(HloImportError) as e:
        neuron.load_hlo("HloModule m\nENTRY main {\n  x = f32[8 parameter(0)\n}")
    assert "line" in str(e.value)
    with pytest.raises(HloImportError):
        neuron.load_hlo("this is not HLO at all")


def test_model_shape_mismatch_in_graph_mode():
    @neuron.jit
    def f(x, w):
        return nl.matmul(x, w)
    with pytest.raises(Exception) as e:
        f(np.zeros((4, 5), np.float32), np.zeros((6, 7), np.float32))
    assert "5" in str(e.value) and "6" in str(e.value)


def test_output_must_be_shared_hbm():
    @nki.jit
    def k(a):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)  # MARK-O
        nisa.dma_copy(dst=out, src=a)
        return out
    with pytest.raises(HardwareRuleError) as e:
        k(np.zeros((4, 4), np.float32))
    assert e.value.rule == "output-buffer" and "shared_hbm" in str(e.value)
    assert e.value.loc.line == _line_of(k.fn, "MARK-O")
