"""HLO text opcodes beyond the basics: a mixin of ``_op_<opcode>`` handlers for
:class:`lowering.hlo_text._Importer` (slice, pad, gather, convolution, while, sort...).

Each handler decodes its attributes and emits graph ops; anything it cannot map exactly raises
HloImportError naming the opcode, the attribute and the line.
"""
from __future__ import annotations

import re

import numpy as np

from ..ir.graph import Graph, Value
from ..ir.types import GraphError, TensorType
from .hlo_syntax import Instr
from .exported_forms import probe_arg_reducer
from .regions import (Region, RegionOp, arg_reducer, binary_reducer, conv_layouts,
                              is_identity, sort_comparator)

_GATHER = ("offset_dims", "collapsed_slice_dims", "start_index_map", "index_vector_dim",
           "slice_sizes", "operand_batching_dims", "start_indices_batching_dims",
           "indices_are_sorted", "unique_indices")
_SCATTER = ("update_window_dims", "inserted_window_dims", "scatter_dims_to_operand_dims",
            "index_vector_dim", "input_batching_dims", "scatter_indices_batching_dims",
            "indices_are_sorted", "unique_indices", "to_apply")
KNOWN_ATTRS_MORE = {
    "slice": {"slice"}, "concatenate": {"dimensions"}, "pad": {"padding"},
    "reverse": {"dimensions"}, "dynamic-slice": {"dynamic_slice_sizes"},
    "dynamic-update-slice": set(), "gather": set(_GATHER), "scatter": set(_SCATTER),
    "reduce-window": {"window", "to_apply"}, "while": {"condition", "body"},
    "convolution": {"window", "dim_labels", "feature_group_count", "batch_group_count"},
    "custom-call": {"custom_call_target", "api_version"}, "opt-barrier": set(),
    "sort": {"dimensions", "is_stable", "to_apply"}, "topk": {"k", "largest"},
    "clamp": set(),
}
TUPLE_OPS = {"while", "opt-barrier", "custom-call", "sort", "topk", "reduce"}
_WINDOW_KEYS = ("size", "stride", "pad", "lhs_dilate", "rhs_dilate", "rhs_reversal")


class MoreOps:
    """Handlers used by the HLO text importer (``self`` is the importer)."""

    # ---------------------------------------------------------------- attribute decoding
    def _joined(self, ins, key, required=True):
        toks = self._raw(ins, key, required)
        return None if toks is None else "".join(t.text for t in toks)

    def _window(self, ins, rank):
        text = self._joined(ins, "window", required=False) or "{}"
        found = dict(re.findall(r"(%s)=([-0-9x_]+)" % "|".join(_WINDOW_KEYS), text))
        if not found and text not in ("{}",):
            raise self.m.error(f"cannot read window={text} of '{ins.name}'", ins.line)

        def ints(key, default):
            if key not in found:
                return [default] * rank
            return [int(v) for v in found[key].split("x")]
        pads = ([tuple(int(p) for p in v.split("_")) for v in found["pad"].split("x")]
                if "pad" in found else [(0, 0)] * rank)
        w = dict(size=ints("size", 1), stride=ints("stride", 1), pad=pads,
                 lhs_dilate=ints("lhs_dilate", 1), rhs_dilate=ints("rhs_dilate", 1))
        if any(ints("rhs_reversal", 0)):
            raise self.m.error(f"window rhs_reversal in '{ins.name}' is not supported", ins.line)
        if any(len(v) != rank for v in w.values()):
            raise self.m.error(f"window={text} of '{ins.name}' needs {rank} dims", ins.line)
        return w

    def _region(self, comp) -> Region:
        """A computation as a neutral Region for the shared classifiers."""
        params = sorted((i for i in comp.instrs if i.opcode == "parameter"),
                        key=self._param_number)
        ops = []
        for i in comp.instrs:
            if i.opcode in ("parameter", "tuple"):
                continue
            attrs = {"direction": self._word_attr(i, "direction")} if "direction" in i.attrs \
                else {}
            ops.append(RegionOp(i.name, i.opcode, list(i.operands), attrs))
        root = comp.root
        roots = list(root.operands) if root.opcode == "tuple" else [root.name]
        return Region([p.name for p in params], ops, roots)

    def _comp_attr(self, ins, key):
        name = self._word_attr(ins, key).lstrip("%")
        if name not in self.m.computations:
            raise self.m.error(f"'{ins.name}' refers to unknown computation '{name}'", ins.line)
        return self.m.computations[name]

    def _scalar_broadcast(self, ins, v: Value, like: TensorType) -> Value:
        if v.type.shape == like.shape:
            return v
        return self._emit_raw(ins, "broadcast", [v], shape=like.shape, dims=())

    def _emit_raw(self, ins, opcode, xs, **attrs):
        """An op whose type is not the instruction's declared shape (an intermediate)."""
        try:
            return self.g.add_op(opcode, xs, attrs, loc=self.loc(ins))
        except GraphError as e:
            raise self.m.error(f"instruction '{ins.name}' ({ins.opcode}): {e}", ins.line) from None

    # ---------------------------------------------------------------- array handlers
    def _op_clamp(self, ins, xs):
        out = self._tensor_type(ins)
        lo, x, hi = (self._scalar_broadcast(ins, v, out) for v in xs)
        return self._emit(ins, "clamp", [lo, x, hi])

    def _op_slice(self, ins, xs):
        text = self._joined(ins, "slice")
        parts = re.findall(r"\[(-?\d+):(-?\d+)(?::(\d+))?\]", text)
        return self._emit(ins, "slice", xs, start=[int(a) for a, _, _ in parts],
                          limit=[int(b) for _, b, _ in parts],
                          stride=[int(s or 1) for _, _, s in parts])

    def _op_concatenate(self, ins, xs):
        dims = self._dims(ins)
        if len(dims) != 1:
            raise self.m.error(f"concatenate '{ins.name}' needs one dimension", ins.line)
        return self._emit(ins, "concatenate", xs, dim=dims[0])

    def _op_pad(self, ins, xs):
        text = self._joined(ins, "padding")
        lo, hi, interior = [], [], []
        for part in text.split("x"):
            nums = [int(v) for v in part.split("_")]
            lo.append(nums[0])
            hi.append(nums[1])
            interior.append(nums[2] if len(nums) > 2 else 0)
        if xs[0].type.rank == 0:
            lo, hi, interior = [], [], []
        return self._emit(ins, "pad", xs, low=lo, high=hi, interior=interior)

    def _op_reverse(self, ins, xs):
        return self._emit(ins, "reverse", xs, dims=self._dims(ins))

    def _op_dynamic_slice(self, ins, xs):
        return self._emit(ins, "dynamic_slice", xs, sizes=self._dims(ins, "dynamic_slice_sizes"))

    def _op_dynamic_update_slice(self, ins, xs):
        return self._emit(ins, "dynamic_update_slice", xs)

    def _op_gather(self, ins, xs):
        attrs = {k: self._dims(ins, k, required=k in _GATHER[:3] + _GATHER[4:5])
                 for k in _GATHER[:7] if k != "index_vector_dim"}
        attrs["index_vector_dim"] = self._int_attr(ins, "index_vector_dim")
        return self._emit(ins, "gather", xs, **attrs)

    def _op_scatter(self, ins, xs):
        if len(xs) != 3:
            raise self.m.error(f"variadic scatter '{ins.name}' is not supported", ins.line)
        region = self._region(self._called(ins))
        kind = binary_reducer(region)
        if kind is None:
            raise self.m.error(f"scatter '{ins.name}': to_apply must be add/multiply/maximum/"
                               f"minimum of its parameters or return the update; found: "
                               f"{region.describe()}", ins.line)
        attrs = {k: self._dims(ins, k, required=k in _SCATTER[:3])
                 for k in _SCATTER[:6] if k != "index_vector_dim"}
        attrs["index_vector_dim"] = self._int_attr(ins, "index_vector_dim")
        return self._emit(ins, "scatter", xs, kind=kind, **attrs)

    def _op_reduce_window(self, ins, xs):
        if len(xs) != 2:
            raise self.m.error(f"variadic reduce-window '{ins.name}' is not supported", ins.line)
        region = self._region(self._called(ins))
        kind = binary_reducer(region)
        init = xs[1]
        if kind is None or kind == "replace":
            raise self.m.error(f"reduce-window '{ins.name}': to_apply must be a single add/"
                               f"maximum/minimum/multiply; found: {region.describe()}", ins.line)
        if not (hasattr(init, "array") and is_identity(kind, init.array)):
            raise self.m.error(f"reduce-window '{ins.name}': the init value must be the "
                               f"identity of {kind} (e.g. 0 for add, -inf for max)", ins.line)
        x = self._value(xs[0])
        w = self._window(ins, x.type.rank)
        return self._emit(ins, "reduce_window", [x], kind=kind, window=w["size"],
                          strides=w["stride"], padding=w["pad"], base_dilation=w["lhs_dilate"],
                          window_dilation=w["rhs_dilate"])

    def _op_convolution(self, ins, xs):
        lhs, rhs = xs
        w = self._window(ins, lhs.type.rank - 2)
        try:
            ll, rl, ol = conv_layouts(self._joined(ins, "dim_labels"))
        except ValueError:
            raise self.m.error(f"cannot read dim_labels of '{ins.name}'", ins.line) from None
        groups = int(self._word_attr(ins, "feature_group_count", required=False) or 1)
        bgroups = int(self._word_attr(ins, "batch_group_count", required=False) or 1)
        out = self._tensor_type(ins)
        extra = {"out_dtype": out.dtype} if out.dtype != lhs.type.dtype else {}
        return self._emit(ins, "convolution", xs, lhs_layout=ll, rhs_layout=rl, out_layout=ol,
                          strides=w["stride"], padding=w["pad"], lhs_dilation=w["lhs_dilate"],
                          rhs_dilation=w["rhs_dilate"], feature_group_count=groups,
                          batch_group_count=bgroups, **extra)

    # ---------------------------------------------------------------- tuple-level handlers
    def _tuple_op(self, ins, xs, depth):
        op = ins.opcode
        if op == "opt-barrier":
            return xs[0] if len(xs) == 1 else tuple(xs)
        if op == "custom-call":
            target = self._word_attr(ins, "custom_call_target").strip('"')
            if target in ("Sharding", "SPMDFullToShardShape", "SPMDShardToFullShape") \
                    and len(xs) == 1:
                return xs[0]
            known = self._exported_custom_call(ins, target, xs)
            if known is not None:
                return known
            raise self.m.error(f"unsupported custom-call target \"{target}\" in instruction "
                               f"'{ins.name}' (only \"Sharding\" is understood, as identity)",
                               ins.line)
        if op == "while":
            return self._while(ins, xs, depth)
        if op == "sort":
            return self._sort(ins, xs)
        if op == "topk":
            return self._topk(ins, xs)
        if op == "reduce":
            return self._reduce_any(ins, xs)
        raise self._unsupported(ins)

    def _reduce_any(self, ins, xs):
        if len(xs) == 2:
            return self._reduce(ins, xs)
        region = self._region(self._called(ins))
        kind = (arg_reducer(region) or probe_arg_reducer(region)) if len(xs) == 4 else None
        if kind is None:
            raise self.m.error(f"variadic reduce '{ins.name}' ({len(xs) // 2} inputs) is not "
                               f"supported; only single-input reduce and the argmax/argmin "
                               f"(value, index) pattern; reducer ops: {region.describe()}",
                               ins.line)
        x, ids = self._value(xs[0]), xs[1]
        dims = self._dims(ins)
        if len(dims) != 1 or not self._is_iota_along(ids, dims[0]):
            raise self.m.error(f"variadic reduce '{ins.name}': the argmax/argmin pattern needs "
                               f"one reduced dim and an iota index operand along it", ins.line)
        for init, k in ((xs[2], "max" if kind == "argmax" else "min"),):
            if not (hasattr(init, "array") and is_identity(k, init.array)):
                raise self.m.error(f"variadic reduce '{ins.name}': the value init must be "
                                   f"the identity of {k}", ins.line)
        vals = self._emit_raw(ins, "reduce", [x], dims=dims,
                              kind="max" if kind == "argmax" else "min")
        idx = self._emit_raw(ins, kind, [x], dim=dims[0],
                             index_dtype=self._tensor_type(self._tuple_elem(ins, 1)).dtype)
        return (vals, idx)

    def _tuple_elem(self, ins, k):
        return Instr(ins.name, ins.shape.tuple[k], ins.opcode, [], [], {}, ins.line)

    def _is_iota_along(self, v, dim: int) -> bool:
        if hasattr(v, "array"):                  # a constant folded from a (tiny) iota
            a = v.array
            return a.ndim > dim and bool((a == np.indices(a.shape)[dim]).all())
        op = next((o for o in self.g.ops if o.result is v), None)
        if op is None:
            return False
        if op.opcode == "iota":
            return op.attrs["dimension"] == dim
        if op.opcode == "broadcast":
            src = next((o for o in self.g.ops if o.result is op.inputs[0]), None)
            return (src is not None and src.opcode == "iota" and src.result.type.rank == 1
                    and tuple(op.attrs["dims"]) == (dim,))
        return False

    def _sort(self, ins, xs):
        xs = [self._value(x) for x in xs]
        region = self._region(self._called(ins))
        desc = sort_comparator(region)
        if desc is None:
            raise self.m.error(f"sort '{ins.name}': the comparator must be a < or > of the "
                               f"first operand's two parameters; found: {region.describe()}",
                               ins.line)
        dims = self._dims(ins)
        res = self._emit_raw(ins, "sort", xs, dim=dims[0], descending=desc)
        return res if len(xs) > 1 else res[0]

    def _topk(self, ins, xs):
        x = self._value(xs[0])
        k = self._int_attr(ins, "k")
        largest = (self._word_attr(ins, "largest", required=False) or "true") == "true"
        d = x.type.rank - 1
        ids = self._emit_raw(ins, "iota", [], shape=x.type.shape, dtype="int32", dimension=d)
        vals, idx = self._emit_raw(ins, "sort", [x, ids], dim=d, descending=largest)
        lim = list(x.type.shape[:-1]) + [k]
        start = [0] * x.type.rank
        return (self._emit_raw(ins, "slice", [vals], start=start, limit=lim),
                self._emit_raw(ins, "slice", [idx], start=start, limit=lim))

    def _while(self, ins, xs, depth):
        init = xs[0]
        leaves = [self._value(v) for v in _leaves(init)]
        cond = self._subgraph(self._comp_attr(ins, "condition"), init, leaves, depth)
        body = self._subgraph(self._comp_attr(ins, "body"), init, leaves, depth)
        res = self._emit_raw(ins, "while", leaves, cond=cond, body=body)
        return _rebuild(init, iter(res))

    def _subgraph(self, comp, template, leaves, depth) -> Graph:
        """Import ``comp`` (one tuple parameter shaped like ``template``) as its own graph."""
        outer = self.g
        self.g = Graph(comp.name.replace("%", ""))
        try:
            params = [self.g.param(v.type, name=f"arg{i}") for i, v in enumerate(leaves)]
            arg = _rebuild(template, iter(params))
            root = self._computation(comp, [arg], depth + 1)
            self.g.set_outputs([self._value(v) for v in _leaves(root)])
            self.g.prune()
            return self.g
        finally:
            self.g = outer


def _leaves(item):
    if isinstance(item, tuple):
        return [v for sub in item for v in _leaves(sub)]
    return [item]


def _rebuild(template, it):
    if isinstance(template, tuple):
        return tuple(_rebuild(t, it) for t in template)
    return next(it)
