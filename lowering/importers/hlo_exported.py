"""HLO text handlers for what exporters emit beyond the basics (a mixin of the HLO importer):
``batch-norm-inference``, ``batch-norm-training``, ``dot ... algorithm=...`` and custom calls
with a graph meaning. The decoding itself is shared with StableHLO in
:mod:`lowering.importers.exported_forms`.
"""
from __future__ import annotations

from .exported_forms import (batch_norm_inference, batch_norm_training, custom_call,
                             dot_with_algorithm, parse_hlo_algorithm)
from .hlo_syntax import HloImportError

_BN = {"epsilon", "feature_index"}
KNOWN_ATTRS_EXPORTED = {
    "batch-norm-inference": _BN, "batch-norm-training": _BN,
    "dot": {"lhs_contracting_dims", "rhs_contracting_dims", "lhs_batch_dims", "rhs_batch_dims",
            "algorithm"},
    "custom-call": {"custom_call_target", "api_version", "custom_call_has_side_effect",
                    "output_to_operand_aliasing", "custom_call_schedule",
                    "operand_layout_constraints"},
}
EXPORTED_TUPLE_OPS = {"batch-norm-training"}


class ExportedHloOps:
    """Handlers used by the HLO text importer (``self`` is the importer)."""

    def _emitter(self, ins):
        def emit(opcode, xs, **attrs):
            return self._emit_raw(ins, opcode, xs, **attrs)
        return emit

    def _bn_attrs(self, ins):
        try:
            eps = float(self._word_attr(ins, "epsilon"))
        except ValueError:
            raise self.m.error(f"epsilon of '{ins.name}' should be a number", ins.line) from None
        return eps, self._int_attr(ins, "feature_index")

    def _op_batch_norm_inference(self, ins, xs):
        if len(xs) != 5:
            raise self.m.error(f"batch-norm-inference '{ins.name}' takes 5 operands (operand, "
                               f"scale, offset, mean, variance), got {len(xs)}", ins.line)
        eps, feature = self._bn_attrs(ins)
        try:
            y = batch_norm_inference(self._emitter(ins), *xs, eps, feature)
        except ValueError as e:
            raise self.m.error(f"batch-norm-inference '{ins.name}': {e}", ins.line) from None
        return self._checked(ins, y)

    def _exported_tuple_op(self, ins, xs):
        xs = [self._value(x) for x in xs]
        if ins.opcode == "batch-norm-training":
            if len(xs) != 3:
                raise self.m.error(f"batch-norm-training '{ins.name}' takes 3 operands "
                                   f"(operand, scale, offset), got {len(xs)}", ins.line)
            eps, feature = self._bn_attrs(ins)
            try:
                return batch_norm_training(self._emitter(ins), *xs, eps, feature)
            except ValueError as e:
                raise self.m.error(f"batch-norm-training '{ins.name}': {e}", ins.line) from None
        raise self._unsupported(ins)

    def _dot_algorithm(self, ins, xs, **dims):
        try:
            alg = parse_hlo_algorithm(self._word_attr(ins, "algorithm"))
            y = dot_with_algorithm(self._emitter(ins), xs[0], xs[1], alg,
                                   self._tensor_type(ins).dtype, **dims)
        except HloImportError as e:
            raise self.m.error(f"dot '{ins.name}': {e.reason}", ins.line) from None
        return self._checked(ins, y)

    def _exported_custom_call(self, ins, target, xs):
        """Graph values for a custom call with a meaning, or None."""
        toks = [t.text for t in ins.attrs.get("frontend_attributes", ())]
        fattrs = {toks[i - 1]: toks[i + 1].strip('"') for i, t in enumerate(toks)
                  if t == "=" and 0 < i < len(toks) - 1}
        shape = ins.shape
        outs = ([self._tensor_type(self._tuple_elem(ins, k)) for k in range(len(shape.tuple))]
                if shape.tuple is not None else [self._tensor_type(ins)])
        try:
            res = custom_call(target, self._emitter(ins), [self._value(x) for x in xs], outs,
                              fattrs)
        except HloImportError as e:
            raise self.m.error(f"custom-call '{ins.name}': {e.reason}", ins.line) from None
        if res is None:
            return None
        return tuple(res) if shape.tuple is not None else res[0]

    def _checked(self, ins, v):
        declared = self._tensor_type(ins)
        if v.type != declared:
            raise self.m.error(f"instruction '{ins.name}' declares {declared} but computes "
                               f"{v.type}", ins.line)
        return v
