"""Drop-in for the public ``nki`` package (NKI 0.6), backed by the NeuronCore emulator.

    import nki, nki.language as nl, nki.isa as nisa

    @nki.jit
    def add(a, b):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        nl.store(out, nl.add(nl.load(a), nl.load(b)))
        return out
"""
from . import isa, language, typing  # noqa: F401
from . import collectives, compiler, dtype, tensor  # noqa: F401  (names kernels reference)
from .tracing import ArraySpec, Kernel, cpu_simulate, jit, simulate
from .benchmark import benchmark  # noqa: E402  (legacy nki.benchmark, modelled latencies)

__version__ = "0.6.0"


def install_neuronxcc_alias() -> None:
    """Opt in to legacy imports: make ``import neuronxcc.nki...`` resolve to this package.

    Some nki-library kernels still write ``import neuronxcc.nki.typing as nt``. After this call the
    modules ``neuronxcc``, ``neuronxcc.nki``, ``neuronxcc.nki.typing``, ``neuronxcc.nki.language``
    and ``neuronxcc.nki.isa`` are entries of ``sys.modules`` pointing at ``nki`` and its modules.
    Nothing is registered unless you call it, and a real ``neuronxcc`` that is already imported
    is left alone (an error says so).
    For kernels written against the LEGACY API (NKI 0.1: return-style ISA, nl.arange, mask=) call ``nki.legacy.install()`` instead.
    """
    import sys
    import types
    have = sys.modules.get("neuronxcc")
    if have is not None and not getattr(have, "_nki_alias", False):
        raise ImportError("install_neuronxcc_alias(): a real 'neuronxcc' package is already "
                          "imported; the alias would shadow it")
    root = have or types.ModuleType("neuronxcc", "Alias of the nki package (install_neuronxcc_alias)")
    root._nki_alias = True
    root.__path__ = []                       # a package, so submodule imports are looked up
    root.nki = sys.modules[__name__]
    sys.modules["neuronxcc"] = root
    sys.modules["neuronxcc.nki"] = sys.modules[__name__]
    for sub, mod in (("typing", typing), ("language", language), ("isa", isa)):
        sys.modules[f"neuronxcc.nki.{sub}"] = mod
__all__ = ["install_neuronxcc_alias", "jit", "simulate", "cpu_simulate", "Kernel", "ArraySpec", "language", "isa", "typing", "dtype", "tensor",
           "compiler", "collectives"]
