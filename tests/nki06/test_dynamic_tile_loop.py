"""The run-time tile loop of the NKI library's dynamic flash attention (2.31+ attention_tkg with
``max_context_len``), written in our own words: a trip count computed on the device from an HBM
int32 (add / right_shift / max on VectorE), loaded into a register, a ``nl.fori_loop`` whose body
mutates SBUF counters in place and loads each tile with a run-time ``scalar_offset`` through
``dge_mode.hwdge``; plus the descriptor-generation rules that loop must follow."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import HardwareRuleError

from source_errors import expect_error, line_of


def _tile_sum_kernel(T, dge=nisa.dge_mode.hwdge):
    shift = T.bit_length() - 1

    @nki.jit
    def tile_sum(data, max_len):
        """out = sum over tiles i < ceil(max_len/T) - 1 of (data[i*T:(i+1)*T] + i*T)."""
        out = nl.ndarray((T, 4), dtype=nl.float32, buffer=nl.shared_hbm)
        acc = nl.ndarray((T, 4), dtype=nl.float32, buffer=nl.sbuf)
        nisa.memset(acc, value=0.0)
        n = nl.ndarray((1, 1), dtype=nl.int32, buffer=nl.sbuf)
        nisa.dma_copy(dst=n, src=max_len)
        nisa.tensor_scalar(dst=n, data=n, op0=nl.add, operand0=T - 1)
        nisa.tensor_scalar(dst=n, data=n, op0=nl.right_shift, operand0=shift)
        nisa.tensor_scalar(dst=n, data=n, op0=nl.add, operand0=-1, op1=nl.maximum, operand1=0)
        trips = nisa.register_alloc()
        nisa.register_load(trips, n)
        row = nl.ndarray((1, 1), dtype=nl.int32, buffer=nl.sbuf)       # DMA offset (rows)
        nisa.memset(row, value=0)
        bias = nl.ndarray((T, 1), dtype=nl.float32, buffer=nl.sbuf)    # same offset as a bias
        nisa.memset(bias, value=0.0)

        def body(_):
            t = nl.ndarray((T, 4), dtype=nl.float32, buffer=nl.sbuf)
            nisa.dma_copy(dst=t, src=data.ap(pattern=[[4, T], [1, 4]], offset=0, scalar_offset=row,
                                             indirect_dim=0), dge_mode=dge)
            nisa.activation(dst=t, op=nl.copy, data=t, bias=bias, scale=1.0)
            nisa.tensor_tensor(dst=acc, data1=acc, data2=t, op=nl.add)
            nisa.tensor_scalar(dst=row, data=row, op0=nl.add, operand0=T)
            nisa.tensor_scalar(dst=bias, data=bias, op0=nl.add, operand0=float(T))

        nl.fori_loop(0, trips, body)
        nisa.dma_copy(dst=out, src=acc)
        return out
    return tile_sum


@given(log_t=st.integers(3, 6), max_len=st.integers(0, 256), seed=st.integers(0, 3))
def test_trip_count_computed_on_device_drives_a_scalar_offset_tile_loop(log_t, max_len, seed):
    T = 1 << log_t
    data = np.random.default_rng(seed).standard_normal((256, 4)).astype(np.float32)
    got = _tile_sum_kernel(T)(data, np.array([[max_len]], np.int32))
    trips = max(-(-max_len // T) - 1, 0)
    want = np.zeros((T, 4), np.float32)
    for i in range(trips):
        want += data[i * T:(i + 1) * T] + i * T
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-5)


def test_dge_none_with_a_run_time_offset_is_refused_at_the_copy():
    k = _tile_sum_kernel(16, dge=nisa.dge_mode.none)
    e = expect_error(lambda: k(np.zeros((64, 4), np.float32), np.array([[40]], np.int32)),
                     HardwareRuleError, where=line_of(k, "nisa.dma_copy(dst=t, src=data.ap"),
                     says=("dma_copy operand 'src' has a run-time address (scalar offset)",
                           "dge_mode=none", "use dge_mode=hwdge"))
    assert (e.rule, e.operand, e.value) == ("dge-mode", "src", "none")


@nki.jit
def static_copy_in_loop(a, count, mode):
    out = nl.ndarray(a.shape, nl.float32, buffer=nl.shared_hbm)
    t = nl.ndarray(a.shape, nl.float32, buffer=nl.sbuf)
    c = nl.ndarray((1, 1), nl.int32, buffer=nl.sbuf)
    nisa.dma_copy(dst=c, src=count, dge_mode=nisa.dge_mode.none)      # outside a loop: fine
    reg = nisa.register_alloc()
    nisa.register_load(reg, c)

    def body(_):
        nisa.dma_copy(dst=t, src=a, dge_mode=mode)

    if mode == nisa.dge_mode.swdge:                                     # nested: loop in a loop
        nl.fori_loop(0, reg, lambda _: nl.fori_loop(0, reg, body))
    else:
        nl.fori_loop(0, reg, body)
    nisa.dma_copy(dst=out, src=t)
    return out


@nki.jit
def copy_in_while(a, count):
    out = nl.ndarray(a.shape, nl.float32, buffer=nl.shared_hbm)
    t = nl.ndarray(a.shape, nl.float32, buffer=nl.sbuf)
    c = nl.ndarray((1, 1), nl.int32, buffer=nl.sbuf)
    nisa.dma_copy(dst=c, src=count)
    reg = nisa.register_alloc()
    nisa.register_load(reg, c)

    def body(r):
        nisa.dma_copy(dst=t, src=a, dge_mode=nisa.dge_mode.none)
        nxt = nisa.register_alloc(0)
        return nxt

    nl.while_loop(reg, body)
    nisa.dma_copy(dst=out, src=t)
    return out


def test_dge_none_inside_a_device_loop_is_refused_at_the_copy():
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    one = np.array([[1]], np.int32)
    for mode in (nisa.dge_mode.hwdge, nisa.dge_mode.unknown, nisa.dge_mode.swdge):
        np.testing.assert_array_equal(static_copy_in_loop(a, one, mode), a)
    e = expect_error(lambda: static_copy_in_loop(a, one, nisa.dge_mode.none), HardwareRuleError,
                     where=line_of(static_copy_in_loop, "nisa.dma_copy(dst=t, src=a, dge_mode=mode)"),
                     says=("dma_copy with dge_mode=none is inside nl.fori_loop",
                           "trip count is known only at run time", "use dge_mode=hwdge"))
    assert (e.rule, e.operand) == ("dge-mode", "dge_mode")
    expect_error(lambda: copy_in_while(a, one), HardwareRuleError,
                 where=line_of(copy_in_while, "nisa.dma_copy(dst=t, src=a, dge_mode=nisa.dge_mode.none)"),
                 says=("dge_mode=none is inside nl.while_loop",))
