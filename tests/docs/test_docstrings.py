"""Every public nl / nisa callable has a docstring with an example, and every example runs.

The examples run inside a kernel body on the emulator (``nki.docs.run_examples``), with
warnings as errors, at the oldest generation the docstring claims; that claim is checked too.
"""
import inspect
import warnings

import pytest

import nki.isa as nisa
import nki.language as nl
from nki.doc_examples import ExampleFailure, run_examples
from nki.docs import FIXTURES
from nki.isa.examples import ISA

_TARGET = {2: "inf2", 3: "trn2", 4: "trn3"}
_LNC2 = {"sendrecv", "core_barrier"}           # examples written for a kernel[2] launch


def public(mod):
    """Names a user reaches as ``nl.X`` / ``nisa.X``: defined in nki (not re-exported helpers)."""
    out = {}
    for n in dir(mod):
        v = getattr(mod, n)
        if n.startswith("_") or inspect.ismodule(v) or not callable(v):
            continue
        m = getattr(v, "__module__", "") or ""
        if isinstance(v, nl.OpToken) or (m.startswith("nki.") and m != "nki.tracing"):
            out[n] = v
    return out


CALLABLES = [(f"{p}.{n}", v) for p, mod in (("nl", nl), ("nisa", nisa))
             for n, v in sorted(public(mod).items())]
FUNCTIONS = [(n, v) for n, v in CALLABLES if not inspect.isclass(v)]


def test_every_public_callable_has_a_docstring():
    missing = [n for n, v in CALLABLES if not (v.__doc__ or "").strip()]
    assert not missing, f"public callables without a docstring: {missing}"
    assert len(FUNCTIONS) > 150          # the lists are not silently empty


def test_every_public_function_has_an_example():
    missing = [n for n, v in FUNCTIONS if ">>>" not in (v.__doc__ or "")]
    assert not missing, f"public functions without a >>> example in their docstring: {missing}"


def _gen(name, fn):
    return getattr(fn, "min_gen", 2)


@pytest.mark.parametrize("name, fn", FUNCTIONS, ids=[n for n, _ in FUNCTIONS])
def test_example_runs(name, fn):
    short = name.split(".", 1)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # an example that reads unwritten data fails
        run_examples(fn, name, target=_TARGET[_gen(name, fn)], lnc=2 if short in _LNC2 else 1)


@pytest.mark.parametrize("name", [n for n, e in ISA.items() if e[2] > 2])
def test_generation_claim_holds(name):
    """'NeuronCore-vN and newer only': the previous generation refuses the example."""
    fn = getattr(nisa, name)
    assert f"NeuronCore-v{ISA[name][2]} and newer only" in fn.__doc__
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ExampleFailure, match="NeuronCore-v"):
            run_examples(fn, name, target=_TARGET[ISA[name][2] - 1], lnc=2 if name in _LNC2 else 1)


def test_docstrings_carry_the_table_facts():
    from device.arch import get_arch
    from device.isa import OPS
    d = nisa.nc_matmul.__doc__
    assert "Engine: TensorE (PE)" in d and "writes dst; reads stationary, moving" in d
    assert f"moving free size <= {get_arch('trn1').gemm_moving_fmax}" in d
    assert OPS["tensor_tensor"].doc in nisa.tensor_tensor.__doc__
    assert "NumPy: ``np.exp``" in nl.exp.__doc__ and "ScalarE" in nl.exp.__doc__
    assert "identity is 0.0" in nl.add.__doc__
    assert "``out``: float32[128, 512] in sbuf, unwritten" in nisa.tensor_tensor.__doc__
    assert set(FIXTURES) >= {"a", "b", "out", "ps", "w", "x"}


def test_a_failing_example_is_reported():
    def f():
        """>>> nisa.tensor_tensor(dst=out, data1=a, data2=col, op=nl.add)
        <nisa.tensor_tensor on DVE>
        """
    with pytest.raises(ExampleFailure, match="tensor_tensor"):
        run_examples(f, "f")
