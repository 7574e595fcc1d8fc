"""Import StableHLO (JAX ``lower().as_text()``, TF ``stage='stablehlo'``, ``.mlir`` files, portable
artifacts) into the graph IR, onto the same ops as the HLO text importer.

``func.call`` is inlined, ``chlo`` ops are legalized first, Shardy constraints and "Sharding"
custom calls are identities. Every other op is mapped by one table; an op or attribute we do not
support raises :class:`StableHloImportError` naming it and its source line. All binding calls
go through :mod:`lowering.stablehlo`.

    >>> # g = parse_stablehlo(jax.jit(f).lower(x).as_text())
"""
from __future__ import annotations

import re

import numpy as np

from ..ir.graph import Graph, Value
from ..ir.ops import by_spelling
from ..ir.types import GraphError, TensorType
from . import mlir_adapter as S
from .regions import instruction_loc, Region, RegionOp, arg_reducer, binary_reducer, is_identity, \
    sort_comparator, value_kind
from .exported_forms import probe_arg_reducer
from .mlir_adapter import StableHloImportError
from .stablehlo_exported import ExportedStableHloOps

_PLAIN = by_spelling("stablehlo")   # one-to-one ops (from the op table)
_IDENTITY = {"sdy.sharding_constraint", "stablehlo.optimization_barrier"}
_MAX_DEPTH = 64


def parse_stablehlo(source, name: str | None = None, origin: str = "<stablehlo>", *,
                    trusted: bool = False) -> Graph:
    """Import the ``main`` function of a StableHLO module (text, bytes, ir.Module, Lowered).
    ``origin`` names the module in source locations (a file name). Text and bytes are parsed by a
    checking worker process first unless ``trusted`` (text jax printed in this process): see
    :mod:`lowering.importers.mlir_guard`."""
    ctx, module = S.parse_module(source, trusted)
    with ctx:
        try:
            imp = _Importer(module, name)
            imp.origin = origin
            imp.lines = source.splitlines() if isinstance(source, str) else []
            return imp.run()
        except RecursionError:
            raise StableHloImportError("StableHLO nests regions too deeply to import") from None


class _Const:
    """A constant not emitted yet (emitted at first use, so reduce inits leave nothing)."""

    def __init__(self, array):
        self.array, self.value = array, None


class _TupleValue(tuple):
    """A ``stablehlo.tuple`` (torch_xla returns main's results as one): its elements."""


def _flat(values):
    return [x for v in values for x in (_flat(v) if isinstance(v, _TupleValue) else [v])]


class _Importer(ExportedStableHloOps):
    def __init__(self, module, name):
        self.funcs = S.functions(module)
        self.name = name
        self.g = None
        self._env_stack = []      # the environment of each block being imported

    def run(self) -> Graph:
        main = self.funcs.get("main") or next(
            (f for f in self.funcs.values() if "sym_visibility" not in f.attributes), None)
        if main is None:
            raise StableHloImportError("no public function (expected @main) in the module")
        self.g = Graph(self.name or main.attributes["sym_name"].value)
        blk = S.block(main)
        args = []
        for i, a in enumerate(blk.arguments):
            shape, dt = S.tensor_type(a.type)
            args.append(self.g.param(TensorType(shape, dt), f"arg{i}"))
        outs = _flat(self._block(blk, args, 0))
        self.g.set_outputs([self._value(v) for v in outs])
        self.g.prune()
        return self.g

    # ------------------------------------------------------------ walking
    def _block(self, blk, args, depth, captured=None):
        env = dict(captured or {})
        env.update(zip(blk.arguments, args))
        for op in blk.operations:
            op = op.operation              # the generic Operation (an OpView may rename .name)
            if op.name in ("func.return", "stablehlo.return"):
                return [env[v] for v in op.operands]
            self._env_stack.append(env)
            try:
                outs = self._op(op, [env[v] for v in op.operands], depth)
            except (StableHloImportError, RecursionError):
                raise
            except (ArithmeticError, AttributeError, IndexError, KeyError, LookupError,
                    TypeError, ValueError) as e:
                err = self.error(op, f"{op.name} could not be imported: {type(e).__name__}: {e}")
                err.unvalidated = True           # a catch-all, not an explicit check
                raise err from e
            finally:
                self._env_stack.pop()
            for r, v in zip(op.results, outs):
                env[r] = v
        raise StableHloImportError("a block has no return")

    def _value(self, item):
        if isinstance(item, _Const):
            if item.value is None:
                item.value = self.g.add_op("constant", [], {"value": item.array})
            return item.value
        return item

    def loc(self, op):
        """The op's SourceLoc: the Python line when the export carries debug info, else the
        op's line in the module text."""
        m = re.search(r'"([^"]+\.py)":(\d+)', str(op.location))
        return instruction_loc(self.origin, op.name, S.line_of(op), *(m.groups() if m else ()))

    def error(self, op, message) -> StableHloImportError:
        line = S.line_of(op)
        return StableHloImportError(message, line)

    def _emit(self, op, opcode, xs, **attrs):
        try:
            v = self.g.add_op(opcode, [self._value(x) for x in xs], attrs,
                              loc=self.loc(op))
        except GraphError as e:
            raise self.error(op, f"{op.name}: {e}") from None
        return v

    def _out(self, op, k=0) -> TensorType:
        shape, dt = S.tensor_type(op.results[k].type)
        return TensorType(shape, dt)

    def _region(self, op, k=0) -> Region:
        blk = S.block(op, k)
        names = {}

        def nm(v):
            return names.setdefault(v, f"v{len(names)}")
        params = [nm(a) for a in blk.arguments]
        ops, roots = [], []
        for o in blk.operations:
            o = o.operation
            if o.name == "stablehlo.return":
                roots = [nm(v) for v in o.operands]
                continue
            attrs = {}
            if "comparison_direction" in o.attributes:
                attrs["direction"] = S.enum_word(o.attributes["comparison_direction"])
            if o.name == "stablehlo.constant" and len(o.results) == 1:
                shape, dt = S.tensor_type(o.results[0].type)
                if not shape:
                    attrs["value"] = S.dense(o.attributes["value"], shape, dt)
            ops.append(RegionOp(nm(o.results[0]), o.name.split(".", 1)[1],
                                [nm(v) for v in o.operands], attrs))
        return Region(params, ops, roots)

    def _subgraph(self, op, k, leaves, depth, free=(), consts=None, n_carried=None) -> Graph:
        """Import region ``k`` of ``op`` as a graph over ``leaves`` (+ captured values)."""
        outer = self.g
        self.g = Graph(f"{op.name.split('.')[-1]}_{'cond' if k == 0 else 'body'}")
        try:
            params = [self.g.param(v.type, f"arg{i}") for i, v in enumerate(leaves)]
            n = n_carried if n_carried is not None else len(params)
            captured = {v: _Const(c.array) for v, c in (consts or {}).items()}
            captured.update(zip(free, params[n:]))
            outs = self._block(S.block(op, k), params[:n], depth + 1, captured)
            if k == 1:
                outs = list(outs) + params[n:]          # captured values pass through
            self.g.set_outputs([self._value(v) for v in outs])
            self.g.prune()
            return self.g
        finally:
            self.g = outer

    # ------------------------------------------------------------ ops
    def _op(self, op, xs, depth):
        name = op.name
        short = name.split(".", 1)[1] if "." in name else name
        if name == "func.call":
            if depth >= _MAX_DEPTH:
                raise self.error(op, f"calls nested deeper than {_MAX_DEPTH}")
            callee = S.attr(op, "callee")
            fname = str(callee).lstrip("@").strip('"')
            if fname not in self.funcs:
                raise self.error(op, f"func.call to unknown function @{fname}")
            return self._block(S.block(self.funcs[fname]), xs, depth + 1)
        if name in _IDENTITY:
            return list(xs)
        if name == "stablehlo.custom_call":
            target = str(S.attr(op, "call_target_name")).strip('"')
            if target == "Sharding" and len(xs) == 1:
                return list(xs)
            known = self._exported_custom_call(op, target, xs)
            if known is not None:
                return list(known)
            raise self.error(op, f"unsupported custom_call target \"{target}\" (only "
                                 f"\"Sharding\" is understood, as identity)")
        if not name.startswith("stablehlo."):
            raise self.error(op, f"unsupported op '{name}'")
        handler = getattr(self, "_op_" + short, None)
        if short in _PLAIN:
            return [self._emit(op, _PLAIN[short], xs)]
        if handler is None:
            raise self.error(op, f"unsupported StableHLO op '{name}'")
        out = handler(op, xs) if short not in ("while", "case") else handler(op, xs, depth)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def _op_tuple(self, op, xs):
        return [_TupleValue(xs)]

    def _op_get_tuple_element(self, op, xs):
        return xs[0][op.attributes["index"].value]

    def _op_constant(self, op, xs):
        shape, dt = S.tensor_type(op.results[0].type)
        arr = S.dense(op.attributes["value"], shape, dt)
        if dt.startswith(("float", "bfloat")) and getattr(self, "lines", None):
            # MLIR rounds an out-of-range literal to inf while parsing: check the source text
            line = S.line_of(op)
            text = self.lines[line - 1] if line and 0 < line <= len(self.lines) else ""
            big = S.overflowing_literal(text, dt)
            if big is not None:
                raise self.error(op, f"constant {big} overflows {dt} (it would become inf)")
        return _Const(arr)

    def _op_broadcast_in_dim(self, op, xs):
        out = self._out(op)
        dims = S.ints(S.attr(op, "broadcast_dimensions"))
        x = xs[0]
        if isinstance(x, _Const) and x.array.shape == () and out.shape == ():
            return x
        # XLA broadcast needs matching sizes: drop operand dims of size 1 that stretch
        xv = self._value(x)
        keep = [i for i, d in enumerate(dims) if xv.type.shape[i] == out.shape[d]]
        if len(keep) != len(dims):
            xv = self._emit(op, "reshape", [xv], shape=[xv.type.shape[i] for i in keep])
            dims = [dims[i] for i in keep]
        return self._emit(op, "broadcast", [xv], shape=out.shape, dims=dims)

    def _op_reshape(self, op, xs):
        return self._emit(op, "reshape", xs, shape=self._out(op).shape)

    def _op_transpose(self, op, xs):
        return self._emit(op, "transpose", xs, perm=S.ints(S.attr(op, "permutation")))

    def _op_convert(self, op, xs):
        return self._emit(op, "convert", xs, dtype=self._out(op).dtype)

    def _op_bitcast_convert(self, op, xs):
        return self._emit(op, "bitcast_convert", xs, dtype=self._out(op).dtype)

    def _op_compare(self, op, xs):
        ctype = S.attr(op, "compare_type")
        if ctype is not None and S.enum_word(ctype) == "TOTALORDER":
            raise self.error(op, "compare type TOTALORDER is not supported")
        return self._emit(op, "compare", xs,
                          direction=S.enum_word(op.attributes["comparison_direction"]))

    def _op_select(self, op, xs):
        out = self._out(op)
        pred = self._value(xs[0])
        if pred.type.shape != out.shape:
            pred = self._emit(op, "broadcast", [pred], shape=out.shape, dims=[])
        return self._emit(op, "select", [pred, xs[1], xs[2]])

    def _op_clamp(self, op, xs):
        out = self._out(op)
        vals = []
        for v in xs:
            v = self._value(v)
            vals.append(v if v.type.shape == out.shape else
                        self._emit(op, "broadcast", [v], shape=out.shape, dims=[]))
        return self._emit(op, "clamp", vals)

    def _op_iota(self, op, xs):
        out = self._out(op)
        return self._emit(op, "iota", [], shape=out.shape, dtype=out.dtype,
                          dimension=S.int_value(op.attributes["iota_dimension"]))

    def _op_dot_general(self, op, xs):
        lb, rb, lc, rc = S.dot_dims(op.attributes["dot_dimension_numbers"])
        if "algorithm" in op.attributes:
            return self._dot_algorithm(op, xs, lhs_contract=lc, rhs_contract=rc, lhs_batch=lb,
                                       rhs_batch=rb)
        out = self._out(op)
        extra = {"out_dtype": out.dtype} if out.dtype != self._value(xs[0]).type.dtype else {}
        return self._emit(op, "dot", xs, lhs_contract=lc, rhs_contract=rc, lhs_batch=lb,
                          rhs_batch=rb, **extra)

    def _op_dot(self, op, xs):
        lhs = self._value(xs[0])
        out = self._out(op)
        extra = {"out_dtype": out.dtype} if out.dtype != lhs.type.dtype else {}
        return self._emit(op, "dot", xs, lhs_contract=[lhs.type.rank - 1], rhs_contract=[0],
                          **extra)

    def _op_slice(self, op, xs):
        return self._emit(op, "slice", xs, start=S.ints(S.attr(op, "start_indices")),
                          limit=S.ints(S.attr(op, "limit_indices")),
                          stride=S.ints(S.attr(op, "strides")) or None)

    def _op_concatenate(self, op, xs):
        return self._emit(op, "concatenate", xs, dim=S.int_value(op.attributes["dimension"]))

    def _op_pad(self, op, xs):
        return self._emit(op, "pad", xs, low=S.ints(S.attr(op, "edge_padding_low")),
                          high=S.ints(S.attr(op, "edge_padding_high")),
                          interior=S.ints(S.attr(op, "interior_padding")) or None)

    def _op_reverse(self, op, xs):
        return self._emit(op, "reverse", xs, dims=S.ints(S.attr(op, "dimensions")))

    def _op_dynamic_slice(self, op, xs):
        return self._emit(op, "dynamic_slice", xs, sizes=S.ints(S.attr(op, "slice_sizes")))

    def _op_dynamic_update_slice(self, op, xs):
        return self._emit(op, "dynamic_update_slice", xs)

    def _op_gather(self, op, xs):
        return self._emit(op, "gather", xs, slice_sizes=S.ints(S.attr(op, "slice_sizes")),
                          **S.gather_dims(op.attributes["dimension_numbers"]))

    def _op_scatter(self, op, xs):
        if len(xs) != 3:
            raise self.error(op, "variadic scatter is not supported")
        region = self._region(op)
        kind = binary_reducer(region, value_kind(xs[0]))
        if kind is None:
            raise self.error(op, f"scatter: the update computation must be add/multiply/"
                                 f"maximum/minimum or return the update; found: "
                                 f"{region.describe()}")
        return self._emit(op, "scatter", xs, kind=kind,
                          **S.scatter_dims(op.attributes["scatter_dimension_numbers"]))

    def _init_ok(self, init, kind):
        return isinstance(init, _Const) and is_identity(kind, init.array.reshape(()))

    def _op_reduce(self, op, xs):
        n = len(xs) // 2
        region = self._region(op)
        dims = S.ints(S.attr(op, "dimensions"))
        if n == 1:
            kind = binary_reducer(region, value_kind(xs[0]))
            if kind is None or kind == "replace":
                raise self.error(op, f"reduce: the body must be a single add/maximum/minimum/"
                                     f"multiply/and/or; found: {region.describe()}")
            res = self._emit(op, "reduce", [xs[0]], dims=dims, kind=kind)
            if self._init_ok(xs[1], kind):
                return res
            init = self._emit(op, "broadcast", [xs[1]], shape=res.type.shape, dims=[])
            comb = {"add": "add", "max": "maximum", "min": "minimum", "mul": "multiply",
                    "and": "and", "or": "or"}[kind]
            return self._emit(op, comb, [res, init])
        kind = (arg_reducer(region, value_kind(xs[0])) or probe_arg_reducer(region)) \
            if n == 2 else None
        if kind is None or len(dims) != 1:
            raise self.error(op, f"variadic reduce ({n} inputs) is not supported; only single-"
                                 f"input reduce and the argmax/argmin (value, index) pattern; "
                                 f"body ops: {region.describe()}")
        vk = "max" if kind == "argmax" else "min"
        if not self._init_ok(xs[2], vk) or not self._is_iota(xs[1], dims[0]):
            raise self.error(op, "argmax/argmin reduce needs an iota index operand along the "
                                 "reduced dim and the identity as the value init")
        idx_dt = self._out(op, 1).dtype
        return [self._emit(op, "reduce", [xs[0]], dims=dims, kind=vk),
                self._emit(op, kind, [xs[0]], dim=dims[0], index_dtype=idx_dt)]

    def _is_iota(self, v, dim):
        if isinstance(v, _Const):               # a constant folded from a (tiny) iota
            a = v.array
            return a.ndim > dim and bool((a == np.indices(a.shape)[dim]).all())
        if not isinstance(v, Value):
            return False
        prod = next((o for o in self.g.ops if o.result is v), None)
        if prod is not None and prod.opcode == "broadcast":
            src = next((o for o in self.g.ops if o.result is prod.inputs[0]), None)
            if src is None or src.opcode != "iota" or src.result.type.rank != 1:
                return False
            return tuple(prod.attrs["dims"]) == (dim,)
        return prod is not None and prod.opcode == "iota" and prod.attrs["dimension"] == dim

    def _op_reduce_window(self, op, xs):
        if len(xs) != 2:
            raise self.error(op, "variadic reduce_window is not supported")
        region = self._region(op)
        kind = binary_reducer(region, value_kind(xs[0]))
        if kind is None or kind == "replace" or not self._init_ok(xs[1], kind):
            raise self.error(op, f"reduce_window needs a single add/maximum/minimum/multiply "
                                 f"body with its identity as init; found: {region.describe()}")
        return self._emit(op, "reduce_window", [xs[0]], kind=kind,
                          window=S.ints(S.attr(op, "window_dimensions")),
                          strides=S.ints(S.attr(op, "window_strides")) or None,
                          padding=S.int_pairs(S.attr(op, "padding")),
                          base_dilation=S.ints(S.attr(op, "base_dilations")) or None,
                          window_dilation=S.ints(S.attr(op, "window_dilations")) or None)

    def _op_convolution(self, op, xs):
        ll, rl, ol = S.conv_dims(op.attributes["dimension_numbers"])
        if any(S.bools(S.attr(op, "window_reversal"))):
            raise self.error(op, "convolution window_reversal is not supported")
        out = self._out(op)
        extra = {"out_dtype": out.dtype} if out.dtype != self._value(xs[0]).type.dtype else {}
        return self._emit(op, "convolution", xs, lhs_layout=ll, rhs_layout=rl, out_layout=ol,
                          strides=S.ints(S.attr(op, "window_strides")) or None,
                          padding=S.int_pairs(S.attr(op, "padding")),
                          lhs_dilation=S.ints(S.attr(op, "lhs_dilation")) or None,
                          rhs_dilation=S.ints(S.attr(op, "rhs_dilation")) or None,
                          feature_group_count=S.int_value(op.attributes["feature_group_count"]),
                          batch_group_count=S.int_value(op.attributes["batch_group_count"]),
                          **extra)

    def _op_sort(self, op, xs):
        desc = sort_comparator(self._region(op), value_kind(xs[0]) if xs else "float")
        if desc is None:
            raise self.error(op, "sort: the comparator must be a < or > of the first operand")
        res = self._emit(op, "sort", xs, dim=S.int_value(op.attributes["dimension"]),
                         descending=desc)
        return list(res)

    def _op_while(self, op, xs, depth, env=None):
        # Regions may use values defined above the loop: constants are re-emitted inside, other
        # values become extra loop-carried values that the body passes through unchanged.
        free, consts = [], {}
        for v in _free_values(op):
            item = self._env_stack[-1].get(v)
            if isinstance(item, _Const):
                consts[v] = item
            elif item is not None:
                free.append(v)
        leaves = [self._value(x) for x in xs] + [self._value(self._env_stack[-1][v])
                                                 for v in free]
        n = len(xs)
        cond = self._subgraph(op, 0, leaves, depth, free, consts, n)
        body = self._subgraph(op, 1, leaves, depth, free, consts, n)
        return list(self._emit(op, "while", leaves, cond=cond, body=body))[:n]



def _free_values(op) -> list:
    """Values used inside ``op``'s regions but defined outside them (in first-use order)."""
    defined, used = set(), []

    def walk(o):
        for region in o.regions:
            for blk in region.blocks:
                defined.update(blk.arguments)
                for inner in blk.operations:
                    inner = inner.operation
                    for v in inner.operands:
                        if v not in used:
                            used.append(v)
                    defined.update(inner.results)
                    walk(inner)
    walk(op)
    return [v for v in used if v not in defined]


# What the importer accepts (docs/supported_ops.md): one-to-one ops plus handled ops.
SUPPORTED_OPS = frozenset(_PLAIN) | frozenset(
    n[4:] for n in dir(_Importer) if n.startswith("_op_"))
