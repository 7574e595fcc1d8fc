"""StableHLO handlers for what exporters emit beyond the basics (a mixin of the StableHLO
importer): ``stablehlo.batch_norm_inference`` / ``batch_norm_training``, ``dot_general`` with an
``algorithm`` and custom calls with a graph meaning (``@mhlo.erf``, registered NKI kernels).
The decoding is shared with the HLO text importer in :mod:`lowering.importers.exported_forms`.
"""
from __future__ import annotations

import re

from . import mlir_adapter as S
from .exported_forms import (batch_norm_inference, batch_norm_training, custom_call,
                             dot_with_algorithm, parse_stablehlo_algorithm)
from .hlo_syntax import HloImportError


class ExportedStableHloOps:
    """Handlers used by the StableHLO importer (``self`` is the importer)."""

    def _emitter(self, op):
        def emit(opcode, xs, **attrs):
            return self._emit(op, opcode, xs, **attrs)
        return emit

    def _bn_attrs(self, op):
        return (float(op.attributes["epsilon"].value),
                S.int_value(op.attributes["feature_index"]))

    def _op_batch_norm_inference(self, op, xs):
        xs = [self._value(x) for x in xs]
        try:
            return batch_norm_inference(self._emitter(op), *xs, *self._bn_attrs(op))
        except ValueError as e:
            raise self.error(op, f"{op.name}: {e}") from None

    def _op_batch_norm_training(self, op, xs):
        xs = [self._value(x) for x in xs]
        try:
            return list(batch_norm_training(self._emitter(op), *xs, *self._bn_attrs(op)))
        except ValueError as e:
            raise self.error(op, f"{op.name}: {e}") from None

    def _dot_algorithm(self, op, xs, **dims):
        try:
            alg = parse_stablehlo_algorithm(str(op.attributes["algorithm"]))
            return dot_with_algorithm(self._emitter(op), self._value(xs[0]),
                                      self._value(xs[1]), alg, self._out(op).dtype, **dims)
        except HloImportError as e:
            raise self.error(op, f"{op.name}: {e.reason}") from None

    def _exported_custom_call(self, op, target, xs):
        """Graph values of a custom call with a meaning, or None."""
        fa = S.attr(op, "mhlo.frontend_attributes")
        fattrs = dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', str(fa))) if fa is not None else {}
        outs = [self._out(op, k) for k in range(len(op.results))]
        try:
            return custom_call(target, self._emitter(op), [self._value(x) for x in xs], outs,
                               fattrs)
        except HloImportError as e:
            raise self.error(op, f"custom_call @{target}: {e.reason}") from None
