"""The public face: ``neuron.jit`` (alias of ``nki.jit``), ``neuron.load_hlo``, profiles, testing.

    import neuron, nki.language as nl

    @neuron.jit
    def model(x, w):
        return nl.exp(nl.matmul(x, w))      # whole HBM tensors: lowered like imported HLO

    y = model(x, w)                          # NumPy in, NumPy out (emulator)
    print(model.lower(x, w))                 # graph IR + device program
    print(model.profile(x, w))               # modelled timing report
"""
from device.errors import (DuplicateScatterWarning, HardwareRuleError, KernelLintWarning,
                           ReduceRegisterWarning, SpillWarning, UninitializedReadWarning,
                           UnwrittenOutputWarning, UserKernelError)
from nki.core_races import CrossCoreRaceWarning
from nki.tracing import ArraySpec, Kernel, jit, simulate

from .autotune import Autotuner, autotune
from .imported import ImportedFunction, JaxFunction, from_jax, load_hlo, load_stablehlo
from .jax_kernel import JaxKernel, jax_kernel
from .torch_import import TorchFunction, from_torch
from .torch_kernel import TorchKernel, torch_kernel

__version__ = "0.1.0"
__all__ = ["jit", "simulate", "Kernel", "ArraySpec", "load_hlo", "load_stablehlo", "from_jax",
           "autotune", "Autotuner", "from_torch", "TorchFunction", "jax_kernel",
           "JaxKernel", "torch_kernel", "TorchKernel",
           "ImportedFunction", "JaxFunction", "HardwareRuleError", "UserKernelError", "SpillWarning",
           "KernelLintWarning", "UninitializedReadWarning", "ReduceRegisterWarning",
           "UnwrittenOutputWarning", "CrossCoreRaceWarning", "DuplicateScatterWarning"]
