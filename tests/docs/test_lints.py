"""Lints warn about valid but likely-wrong kernels, each with its own filterable warning class."""
import warnings

import numpy as np
import pytest

import neuron
import nki
import nki.isa as nisa
import nki.language as nl


def _rmsnorm(reduce_cmd):
    @nki.jit
    def rmsnorm(x):
        out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
        t = nl.load(x)
        sq = nl.ndarray(x.shape, nl.float32, buffer=nl.sbuf)
        ssum = nl.ndarray((x.shape[0], 1), nl.float32, buffer=nl.sbuf)
        kw = {} if reduce_cmd is None else {"reduce_cmd": reduce_cmd}
        nisa.activation(dst=sq, op=nl.square, data=t, reduce_op=nl.add, reduce_res=ssum, **kw)  # L
        r = nl.rsqrt(nl.add(nl.multiply(ssum, 1.0 / x.shape[1]), 1e-6))
        nl.store(out, nl.multiply(t, r))
        return out
    return rmsnorm


def test_rmsnorm_with_idle_reduce_warns_and_names_the_fix():
    x = np.random.default_rng(0).standard_normal((128, 64)).astype(np.float32)
    with pytest.warns(neuron.ReduceRegisterWarning) as rec:
        got = _rmsnorm(None)(x)
    msg = str(rec[0].message)
    assert "activation copies the ScalarE accumulator registers into reduce_res='ssum'" in msg
    assert "with reduce_cmd=idle, but no earlier instruction reset or reduced into them" in msg
    assert "reduce_cmd=nisa.reduce_cmd.reset_reduce" in msg
    assert rec[0].filename.endswith("test_lints.py")          # the user's activation line
    ref = x / np.sqrt((x * x).mean(1, keepdims=True) + 1e-6)
    assert np.abs(got).max() > 100 * np.abs(ref).max()          # the silent wrong answer it flags


def test_rmsnorm_with_reset_reduce_is_right_and_silent():
    x = np.random.default_rng(1).standard_normal((128, 64)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", neuron.KernelLintWarning)
        got = _rmsnorm(nisa.reduce_cmd.reset_reduce)(x)
    ref = x / np.sqrt((x * x).mean(1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_idle_after_a_reduce_is_not_flagged():
    @nki.jit
    def k(x):
        out = nl.ndarray((x.shape[0], 1), nl.float32, buffer=nl.shared_hbm)
        t = nl.load(x)
        y = nl.ndarray(x.shape, nl.float32, buffer=nl.sbuf)
        s = nl.ndarray((x.shape[0], 1), nl.float32, buffer=nl.sbuf)
        nisa.activation(dst=y, op=nl.copy, data=t, reduce_op=nl.add,
                        reduce_cmd=nisa.reduce_cmd.reset_reduce)
        nisa.activation(dst=y, op=nl.copy, data=t, reduce_op=nl.add, reduce_res=s,
                        reduce_cmd=nisa.reduce_cmd.reduce)
        nisa.activation(dst=y, op=nl.copy, data=t, reduce_res=s)        # idle readout: fine
        nl.store(out, s)
        return out
    x = np.ones((128, 8), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", neuron.KernelLintWarning)
        np.testing.assert_array_equal(k(x), 16.0)


def test_partly_written_output_warns_with_tensor_region_and_line():
    @nki.jit
    def first_rows_only(a):
        result = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)     # ALLOC
        t = nl.load(a[0:128])
        nl.store(result[0:128], t)
        return result
    a = np.ones((200, 16), np.float32)
    with pytest.warns(neuron.UnwrittenOutputWarning) as rec:
        first_rows_only(a)
    msg = str(rec[0].message)
    assert "the kernel returns 'result'" in msg
    assert "1152 of its 3200 elements were never written: region [128:200, 0:16] of [0:200, 0:16]" in msg
    assert "allocated at test_lints.py:" in msg


def test_uninitialised_read_names_the_users_variable():
    @nki.jit
    def k(a):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        partial = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=partial[:, 0:4], src=a[:, 0:4])
        nisa.dma_copy(dst=out, src=partial)
        return out
    with pytest.warns(neuron.UninitializedReadWarning) as rec:
        k(np.ones((128, 8), np.float32))
    msg = str(rec[0].message)
    assert "read of 512 uninitialized element(s) of 'partial' (tensor 't" in msg
    assert "nothing wrote them, so the emulator's fill values are read (NaN for floats" in msg


def test_lints_can_be_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", neuron.KernelLintWarning)
        with pytest.raises(neuron.ReduceRegisterWarning):
            _rmsnorm(None)(np.ones((128, 8), np.float32))
    assert issubclass(neuron.UnwrittenOutputWarning, neuron.KernelLintWarning)
    assert issubclass(neuron.UninitializedReadWarning, neuron.KernelLintWarning)


def test_exponential_with_idle_and_reduce_res_warns_that_nothing_is_written():
    @nki.jit
    def k(x):
        out = nl.ndarray((x.shape[0], 1), nl.float32, buffer=nl.shared_hbm)
        t = nl.load(x)
        e = nl.ndarray(x.shape, nl.float32, buffer=nl.sbuf)
        rowsum = nl.zeros((x.shape[0], 1), nl.float32)
        nisa.exponential(dst=e, src=t, reduce_res=rowsum)
        nl.store(out, rowsum)
        return out
    with pytest.warns(neuron.ReduceRegisterWarning) as rec:
        k.trace(np.ones((128, 8), np.float32), target="trn3")
    assert "exponential with reduce_cmd=idle sums nothing and does not write reduce_res='rowsum'" \
        in str(rec[0].message)


def test_select_reduce_idle_readout_is_its_own_result_and_not_flagged():
    @nki.jit
    def k(x):
        out = nl.ndarray((x.shape[0], 1), nl.float32, buffer=nl.shared_hbm)
        t = nl.load(x)
        m = nl.greater(t, 0.0, dtype=nl.uint8)
        d = nl.ndarray(x.shape, nl.float32, buffer=nl.sbuf)
        s = nl.ndarray((x.shape[0], 1), nl.float32, buffer=nl.sbuf)
        nisa.select_reduce(dst=d, predicate=m, on_true=t, on_false=0.0, reduce_res=s)
        nl.store(out, s)
        return out
    x = np.arange(128 * 8, dtype=np.float32).reshape(128, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", neuron.KernelLintWarning)
        np.testing.assert_array_equal(k(x)[:, 0], x.max(1))
