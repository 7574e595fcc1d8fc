"""Dtype legality: TensorE input/output dtypes (per generation), bitwise ops on integers only, and
memset values that fit the destination. One test per rule case."""
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from rules_helpers import expect_rule, marker_line, ones


def matmul_kernel(in_dtype, out_dtype=nl.float32):
    @nki.jit
    def kernel(a):
        out = nl.ndarray((4, 4), nl.float32, buffer=nl.shared_hbm)
        st = nl.ndarray((128, 64), in_dtype, buffer=nl.sbuf)
        mv = nl.ndarray((128, 64), in_dtype, buffer=nl.sbuf)
        ps = nl.ndarray((64, 64), out_dtype, buffer=nl.psum)
        nisa.memset(dst=st, value=1)
        nisa.memset(dst=mv, value=1)
        nisa.nc_matmul(dst=ps, stationary=st, moving=mv)  # <- mm
        return out
    return kernel


def test_matmul_inputs_are_floats():
    k = matmul_kernel(nl.int32)
    e = expect_rule(lambda: k(ones(4, 4)), rule="dtype", operand="stationary", value="int32",
                    limit=sorted(["bfloat16", "float16", "float32", "float8_e4m3", "float8_e5m2",
                                  "tfloat32"]), where=marker_line(k, "mm"),
                    says=("dtype int32", "TensorE inputs must be"))
    assert "float8_e4m3fn" not in e.limit


@pytest.mark.parametrize("target, ok", [("trn2", False), ("trn3", True)])
def test_ocp_fp8_matmul_needs_neuroncore_v4(monkeypatch, target, ok):
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", target)
    k = matmul_kernel(nl.float8_e4m3fn)
    if ok:
        k(ones(4, 4))
    else:
        expect_rule(lambda: k(ones(4, 4)), rule="dtype", operand="stationary",
                    value="float8_e4m3fn", limit=sorted(["bfloat16", "float16", "float32",
                                                         "float8_e4m3", "float8_e5m2", "tfloat32"]),
                    where=marker_line(k, "mm"), says=("dtype float8_e4m3fn",))


@pytest.mark.parametrize("target, ok", [("trn1", False), ("trn3", True)])
def test_bf16_psum_results_need_neuroncore_v4(monkeypatch, target, ok):
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", target)
    k = matmul_kernel(nl.bfloat16, nl.bfloat16)
    if ok:
        k(ones(4, 4))
    else:
        expect_rule(lambda: k(ones(4, 4)), rule="dtype", operand="dst", value="bfloat16",
                    limit=["float32"], where=marker_line(k, "mm"),
                    says=("matmul results are written to PSUM as: float32",))


@nki.jit
def bitwise_on_floats(a):
    out = nl.ndarray((128, 8), nl.float32, buffer=nl.shared_hbm)
    x = nl.ndarray((128, 8), nl.float32, buffer=nl.sbuf)
    nisa.memset(dst=x, value=1.0)
    nisa.tensor_tensor(dst=x, data1=x, data2=x, op=nl.bitwise_and)  # <- op
    nisa.dma_copy(dst=out, src=x)
    return out


def test_bitwise_ops_need_integers():
    e = expect_rule(lambda: bitwise_on_floats(ones(4, 4)), rule="dtype", operand="dst",
                    value="float32", limit=sorted(__import__("device.dtypes").dtypes.INTS),
                    where=marker_line(bitwise_on_floats, "op"),
                    says=("bitwise op bitwise_and needs integer dtypes", "int32"))
    assert "float32" not in e.limit


@nki.jit
def fractional_memset_of_ints(a):
    x = nl.ndarray((128, 8), nl.int32, buffer=nl.sbuf)
    nisa.memset(dst=x, value=0.5)  # <- memset
    return a


def test_memset_value_must_fit_an_integer_destination():
    expect_rule(lambda: fractional_memset_of_ints(ones(4, 4)), rule="dtype", operand="value",
                value=0.5, limit="int32", where=marker_line(fractional_memset_of_ints, "memset"),
                says=("value 0.5 is a float", "integer dtype int32"))


def test_x4_packed_dtypes_memset_zero_only_and_no_dma_conversion():
    import numpy as np
    import pytest
    import nki
    import nki.isa as nisa
    import nki.language as nl
    from device.errors import HardwareRuleError

    def mk(value, convert):
        @nki.jit(target="trn3")
        def k(a):
            t = nl.ndarray((32, 4), nl.float8_e4m3fn_x4, buffer=nl.sbuf)
            nisa.memset(dst=t, value=value)
            if convert:
                f = nl.ndarray((32, 4), nl.float32, buffer=nl.sbuf)
                nisa.dma_copy(dst=f, src=t)
            return a
        return k
    mk(0, False)(np.zeros((2, 2), np.float32))
    with pytest.raises(HardwareRuleError, match="accepts only 0"):
        mk(1.0, False)(np.zeros((2, 2), np.float32))
    with pytest.raises(HardwareRuleError, match="x4-packed"):
        mk(0, True)(np.zeros((2, 2), np.float32))
