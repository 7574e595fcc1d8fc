"""Whole LNC=2 kernels in the style of the nki-library TKG norms, against NumPy, plus the timing
model's view of the two cores.

``layer_norm_shard_on_h`` shards the hidden dimension: each core normalises its half of the
columns, but mean and variance need the whole row, so the cores exchange their partial
sum(x) / sum(x^2) with one sendrecv of a packed [rows, 2] tile (layernorm_tkg's shard_on_h scheme).
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device.timing import schedule


@nki.jit(target="trn2")
def layer_norm_shard_on_h(x, gamma, beta, eps=1e-5):
    rows, H = x.shape
    h = H // 2
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    pid = nl.program_id(0)
    cols = slice(pid * h, (pid + 1) * h)
    xt = nl.ndarray((rows, h), nl.float32, buffer=nl.sbuf)
    g = nl.ndarray((rows, h), nl.float32, buffer=nl.sbuf)
    b = nl.ndarray((rows, h), nl.float32, buffer=nl.sbuf)
    nisa.dma_copy(dst=xt, src=x[:, cols])
    nisa.dma_copy(dst=g, src=gamma.ap([[0, rows], [1, h]], offset=pid * h))   # row broadcast
    nisa.dma_copy(dst=b, src=beta.ap([[0, rows], [1, h]], offset=pid * h))
    # partial statistics of this core's columns, packed for one exchange
    packed = nl.ndarray((rows, 2), nl.float32, buffer=nl.sbuf)
    remote = nl.ndarray((rows, 2), nl.float32, buffer=nl.sbuf)
    sq = nl.ndarray((rows, h), nl.float32, buffer=nl.sbuf)
    nisa.tensor_reduce(dst=packed[:, 0:1], op=nl.add, data=xt, axis=1)
    nisa.tensor_tensor(dst=sq, data1=xt, data2=xt, op=nl.multiply)
    nisa.tensor_reduce(dst=packed[:, 1:2], op=nl.add, data=sq, axis=1)
    nisa.sendrecv(src=packed, dst=remote, send_to_rank=1 - pid, recv_from_rank=1 - pid, pipe_id=0)
    nisa.tensor_tensor(dst=packed, data1=packed, data2=remote, op=nl.add)
    # mean = s/H, var = s2/H - mean^2, rstd = 1/sqrt(var + eps)
    stats = nl.ndarray((rows, 2), nl.float32, buffer=nl.sbuf)
    nisa.tensor_scalar(dst=stats, data=packed, op0=nl.multiply, operand0=1.0 / H)
    var = nl.ndarray((rows, 1), nl.float32, buffer=nl.sbuf)
    nisa.tensor_tensor(dst=var, data1=stats[:, 0:1], data2=stats[:, 0:1], op=nl.multiply)
    nisa.tensor_tensor(dst=var, data1=stats[:, 1:2], data2=var, op=nl.subtract)
    nisa.tensor_scalar(dst=var, data=var, op0=nl.add, operand0=float(eps))
    rstd = nl.ndarray((rows, 1), nl.float32, buffer=nl.sbuf)
    nisa.activation(dst=rstd, op=nl.rsqrt, data=var)
    y = nl.ndarray((rows, h), x.dtype, buffer=nl.sbuf)
    nisa.tensor_scalar(dst=xt, data=xt, op0=nl.subtract, operand0=stats[:, 0:1],
                       op1=nl.multiply, operand1=rstd)
    nisa.tensor_tensor(dst=xt, data1=xt, data2=g, op=nl.multiply)
    nisa.tensor_tensor(dst=y, data1=xt, data2=b, op=nl.add)
    nisa.dma_copy(dst=out[:, cols], src=y)
    return out


def _layer_norm(x, g, b, eps=1e-5):
    x = x.astype(np.float64)
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(x.var(-1, keepdims=True) + eps) * g + b


@given(rows=st.integers(1, 128), half=st.integers(1, 96), seed=st.integers(0, 2**16))
def test_layer_norm_sharded_on_hidden_matches_numpy(rows, half, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 2 * half)).astype(np.float32) * 3 + 1
    g = rng.standard_normal((1, 2 * half)).astype(np.float32)
    b = rng.standard_normal((1, 2 * half)).astype(np.float32)
    out = layer_norm_shard_on_h[2](x, g, b)
    np.testing.assert_allclose(out, _layer_norm(x, g, b), rtol=2e-4, atol=2e-4)


def test_bf16_layer_norm_rounds_like_the_output_dtype():
    import ml_dtypes
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 3072)).astype(ml_dtypes.bfloat16)
    g = rng.standard_normal((1, 3072)).astype(ml_dtypes.bfloat16)
    b = rng.standard_normal((1, 3072)).astype(ml_dtypes.bfloat16)
    out = layer_norm_shard_on_h[2](x, g, b)
    ref = _layer_norm(x.astype(np.float32), g.astype(np.float32), b.astype(np.float32))
    assert out.dtype == ml_dtypes.bfloat16
    np.testing.assert_allclose(out.astype(np.float32), ref, rtol=2e-2, atol=2e-2)


def test_timing_puts_the_two_cores_on_their_own_engines():
    x = np.zeros((8, 64), np.float32)
    g = np.zeros((1, 64), np.float32)
    prog = layer_norm_shard_on_h[2].trace(x, g, g)
    t = schedule(prog)
    cores = {e.core for e in t.events}
    assert cores == {0, 1}
    assert t.count["DVE"] == t.count["DVE@1"] > 0 and t.busy_ns["ACT@1"] > 0
    sends = [e for e in t.events if prog.instrs[e.index].op.name == "sendrecv"]
    assert len(sends) == 2 and all(e.engine.startswith("DMA") for e in sends)
    # symmetric cores: the same work, so neither core's timeline is much longer than the other's
    end = {c: max(e.done for e in t.events if e.core == c) for c in (0, 1)}
    assert 0.5 < end[0] / end[1] < 2.0


@nki.jit(target="trn2")
def two_outputs_as_list(a):
    o1 = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    o2 = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    pid = nl.program_id(0)
    t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=a)
    for _ in nl.range(2):                  # nl.range is Python's range (nki-library spelling)
        nisa.tensor_tensor(dst=t, data1=t, data2=t, op=nl.add)
    nisa.dma_copy(dst=o1 if pid == 0 else o2, src=t)
    nisa.core_barrier(o1, (0, 1))
    return [o1, o2]


@pytest.mark.parametrize("lnc", [2])
def test_a_kernel_may_return_a_list_of_outputs(lnc):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    res = two_outputs_as_list[lnc](a)
    assert isinstance(res, list) and len(res) == 2
    np.testing.assert_array_equal(res[0], 4 * a)
    np.testing.assert_array_equal(res[1], 4 * a)
    assert nl.range is range
