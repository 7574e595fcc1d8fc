"""Importers: XLA HLO text (our parser) and StableHLO (behind the one jaxlib-MLIR adapter).

Both are validating translators onto graph ops: anything they do not understand is refused with
an error naming the instruction and its line, never skipped.

    >>> from lowering.importers import parse_hlo
    >>> g = parse_hlo('''HloModule m
    ... ENTRY e {
    ...   x = f32[4] parameter(0)
    ...   ROOT y = f32[4] exponential(x)
    ... }''')
    >>> [op.opcode for op in g.ops]
    ['exp']
"""
from .hlo_syntax import HloImportError
from .hlo_text import parse_hlo
from .mlir_adapter import StableHloImportError
from .stablehlo import parse_stablehlo

__all__ = ["HloImportError", "StableHloImportError", "parse_hlo", "parse_stablehlo"]
