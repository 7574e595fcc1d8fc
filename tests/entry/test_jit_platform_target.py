"""``@nki.jit(platform_target=...)`` (NKI 2.29+; the newest NKI library decorates kernels with it):
the decorator names the kernel's default target; the environment override still wins."""
import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import UserKernelError

X = np.arange(128 * 8, dtype=np.float32).reshape(128, 8)


def double_body(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=a)
    nisa.tensor_scalar(dst=t, data=t, op0=nl.multiply, operand0=2.0)
    nisa.dma_copy(dst=out, src=t)
    return out


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("NEURON_PLATFORM_TARGET_OVERRIDE", raising=False)
    monkeypatch.delenv("NKI_NC_VERSION", raising=False)
    return monkeypatch


@pytest.mark.parametrize("name, arch, gen", [("trn1", "trn1", 2), ("trn2", "trn2", 3),
                                             ("gen3", "trn2", 3), ("TRN3", "trn3", 4)])
def test_platform_target_is_the_kernel_target_without_an_override(no_env, name, arch, gen):
    k = nki.jit(platform_target=name)(double_body)
    np.testing.assert_array_equal(k(X), 2 * X)
    prog = k.trace(X)
    assert (prog.arch.name, prog.arch.gen) == (arch, gen)
    assert k[2].trace(X).arch.name == arch               # kept by kernel[lnc]


def test_the_environment_override_wins_over_the_decorator(no_env):
    k = nki.jit(platform_target="trn2")(double_body)
    no_env.setenv("NKI_NC_VERSION", "gen4")               # what the NKI library harness sets
    assert k.trace(X).arch.name == "trn3"
    no_env.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", "trn1")
    assert k.trace(X).arch.name == "trn1"
    assert k.trace(X, target="trn2").arch.name == "trn2"  # an explicit call target wins over all


def test_without_platform_target_the_default_is_unchanged(no_env):
    assert nki.jit(double_body).trace(X).arch.name == "inf2"


@pytest.mark.parametrize("bad", ["trn9", "gpu", 3])
def test_unknown_platform_target_is_refused_by_name(bad):
    with pytest.raises(UserKernelError, match=rf"platform_target={bad!r}.*unknown target.*trn2"):
        nki.jit(platform_target=bad)
