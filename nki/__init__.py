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
from .isa import constants as _isa_constants  # noqa: F401  (nki.isa.constants)
from .tracing import ArraySpec, Kernel, jit, simulate

__version__ = "0.6.0"
__all__ = ["jit", "simulate", "Kernel", "ArraySpec", "language", "isa", "typing", "dtype", "tensor",
           "compiler", "collectives"]
