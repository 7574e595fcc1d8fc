"""``nki.install_neuronxcc_alias()``: explicit opt-in for kernels that still import ``neuronxcc.nki``
(nki-library's router_topk does ``import neuronxcc.nki.typing as nt``)."""
import subprocess
import sys
import textwrap
import types

import pytest

import nki

NAMES = ("neuronxcc", "neuronxcc.nki", "neuronxcc.nki.typing", "neuronxcc.nki.language",
         "neuronxcc.nki.isa")


@pytest.fixture
def clean_modules():
    saved = {n: sys.modules.pop(n) for n in NAMES if n in sys.modules}
    yield
    for n in NAMES:
        sys.modules.pop(n, None)
    sys.modules.update(saved)


def test_nothing_is_aliased_until_asked():
    code = textwrap.dedent("""
        import sys, nki, nki.language, nki.isa, nki.typing
        assert not any(n.startswith("neuronxcc") for n in sys.modules), sorted(sys.modules)
        try:
            import neuronxcc.nki.typing
        except ImportError:
            print("refused")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "refused"


def test_alias_points_at_our_modules(clean_modules):
    nki.install_neuronxcc_alias()
    import neuronxcc
    import neuronxcc.nki as legacy
    import neuronxcc.nki.isa as nisa
    import neuronxcc.nki.language as nl
    import neuronxcc.nki.typing as nt
    from neuronxcc.nki.typing import mutable_tensor
    assert legacy is nki and neuronxcc.nki is nki
    assert (nt, nl, nisa) == (nki.typing, nki.language, nki.isa)
    assert mutable_tensor is nki.typing.mutable_tensor and nt.mutable_tensor[4, 8] is mutable_tensor
    nki.install_neuronxcc_alias()                 # idempotent
    assert sys.modules["neuronxcc.nki.isa"] is nki.isa


def test_a_real_neuronxcc_is_not_shadowed(clean_modules):
    sys.modules["neuronxcc"] = types.ModuleType("neuronxcc")
    with pytest.raises(ImportError, match="a real 'neuronxcc' package is already imported"):
        nki.install_neuronxcc_alias()
    assert "neuronxcc.nki" not in sys.modules


def test_kernel_annotated_with_legacy_typing_runs(clean_modules):
    import numpy as np
    nki.install_neuronxcc_alias()
    import neuronxcc.nki.typing as nt
    import nki.isa as nisa
    import nki.language as nl

    @nki.jit
    def inplace(a: nt.mutable_tensor):
        t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a)
        nisa.tensor_scalar(dst=t, data=t, op0=nl.add, operand0=1.0)
        nisa.dma_copy(dst=a, src=t)

    a = np.zeros((2, 3), np.float32)
    inplace(a)
    np.testing.assert_array_equal(a, np.ones((2, 3)))
