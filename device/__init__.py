"""The emulated NeuronCore: hardware tables, tile IR, instruction table, executor, timing model.

Nothing here imports from lowering/, nki/ or neuron/ (they sit above it).
"""
from .arch import Arch, get_arch
from .errors import (HardwareRuleError, KernelLintWarning, NeuronError, ReduceRegisterWarning,
                     SourceLoc, SpillWarning, UninitializedReadWarning, UnwrittenOutputWarning,
                     UserKernelError)
from .executor import run
from .isa import OPS
from .memory import Memory
from .program import Instr, Program
from .tensor import HBM, PSUM, SBUF, SHARED_HBM, Buffer, Storage, View
from .timing import Timeline, schedule

__all__ = ["Arch", "get_arch", "HardwareRuleError", "NeuronError", "SourceLoc", "UserKernelError",
           "run", "OPS", "Memory", "UninitializedReadWarning", "Instr", "Program", "HBM", "PSUM",
           "SBUF", "SHARED_HBM", "SpillWarning", "KernelLintWarning", "ReduceRegisterWarning",
           "UnwrittenOutputWarning", "Buffer", "Storage", "View", "Timeline", "schedule"]
