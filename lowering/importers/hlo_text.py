"""Import XLA HLO text (pre-optimization) into the graph IR.

One table maps HLO opcodes to graph ops; anything else raises :class:`HloImportError` naming
the opcode, the instruction and the line. Nothing is skipped silently: unknown attributes
that could change the meaning of an op are errors too. ``call`` is inlined; ``tuple`` and
``get-tuple-element`` are resolved at import time (the graph IR has no tuples), and a tuple at
the ROOT becomes the graph's list of outputs.

    >>> g = parse_hlo('''
    ... HloModule m
    ... ENTRY main {
    ...   x = f32[2,3]{1,0} parameter(0)
    ...   ROOT e = f32[2,3]{1,0} exponential(x)
    ... }''')
    >>> print(g)
    graph m(%x: f32[2,3]) {
      %0 = exp(%x) : f32[2,3]
      return %0
    }
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Value
from ..ir.ops import REDUCE_KINDS, by_spelling
from ..ir.types import GraphError, TensorType
from .hlo_exported import EXPORTED_TUPLE_OPS, KNOWN_ATTRS_EXPORTED, ExportedHloOps
from .hlo_more import KNOWN_ATTRS_MORE, TUPLE_OPS, MoreOps
from .hlo_syntax import HloImportError, Instr, Module, is_decimal, parse_literal, parse_module
from .regions import binary_reducer, instruction_loc, is_identity, value_kind
from .validate import check_literal, check_operand_count, internal_error

__all__ = ["parse_hlo", "HloImportError"]

HLO_DTYPES = {
    "pred": "bool", "s8": "int8", "s16": "int16", "s32": "int32", "s64": "int64",
    "u8": "uint8", "u16": "uint16", "u32": "uint32", "u64": "uint64", "f16": "float16",
    "bf16": "bfloat16",
    "f32": "float32", "f64": "float64", "f8e4m3": "float8_e4m3", "f8e5m2": "float8_e5m2",
}
_PLAIN = by_spelling("hlo")       # opcodes that map one-to-one onto a graph op (from the op table)

# Attributes that never change the values computed (debug info, placement, precision hints).
_HARMLESS = frozenset({"metadata", "sharding", "frontend_attributes", "backend_config",
                       "parameter_replication", "operand_precision", "statistics_viz",
                       "origin", "result_accuracy"})
# Attributes each opcode understands (everything else is an error, never ignored).
_KNOWN_ATTRS = {
    "broadcast": {"dimensions"}, "transpose": {"dimensions"}, "compare": {"direction", "type"},
    "reduce": {"dimensions", "to_apply"}, "get-tuple-element": {"index"}, "call": {"to_apply"},
    "iota": {"iota_dimension"},
    "dot": {"lhs_contracting_dims", "rhs_contracting_dims", "lhs_batch_dims", "rhs_batch_dims"},
    **KNOWN_ATTRS_MORE,
    **KNOWN_ATTRS_EXPORTED,
}
_HINTS = {
    "fusion": "this looks like post-optimization HLO; export the pre-optimization module "
              "(jax: jax.jit(f).lower(...).as_text(dialect='hlo'); tf: stage='hlo')",
}
_MAX_CALL_DEPTH = 64


def parse_hlo(text: str, source: str = "<hlo>") -> Graph:
    """Parse HLO text (JAX short form or TF/XLA long form) and import its ENTRY computation.

        >>> import jax, numpy as np                                     # doctest: +SKIP
        >>> x = np.ones(3, np.float32)                                  # doctest: +SKIP
        >>> text = jax.jit(lambda x: x * 2).lower(x).as_text(dialect="hlo")  # doctest: +SKIP
        >>> evaluate(parse_hlo(text), x)                                # doctest: +SKIP
        [array([2., 2., 2.], dtype=float32)]

    Raises HloImportError for malformed text and for opcodes/attributes we do not support.
    """
    module = parse_module(text)
    try:
        return _Importer(module, source).run()
    except RecursionError:
        raise HloImportError("HLO nests computations or tuples too deeply to import (a "
                             "computation that calls itself?)") from None


class _Importer(MoreOps, ExportedHloOps):
    def __init__(self, module: Module, source: str = "<hlo>"):
        self.m = module
        self.g = Graph(module.name)
        self.source = source

    def loc(self, ins: Instr):
        """The instruction's SourceLoc (JAX's source_file/source_line metadata when present)."""
        toks = [t.text for t in ins.attrs.get("metadata", ())]
        meta = {toks[i - 1]: toks[i + 1].strip('"') for i, t in enumerate(toks)
                if t == "=" and 0 < i < len(toks) - 1}
        return instruction_loc(self.source, ins.name, ins.line, meta.get("source_file"),
                               meta.get("source_line"))

    def run(self) -> Graph:
        entry = self.m.entry
        params = sorted(((self._param_number(i), i) for i in entry.instrs
                         if i.opcode == "parameter"), key=lambda p: p[0])
        for expected, (number, ins) in enumerate(params):
            if number != expected:
                raise self.m.error(f"ENTRY parameters must be numbered 0..{len(params) - 1}; "
                                   f"parameter({number}) in '{ins.name}' breaks the sequence",
                                   ins.line)
        args = [self.g.param(self._tensor_type(ins), name=ins.name) for _, ins in params]
        root = self._computation(entry, args, depth=0)
        self.g.set_outputs([self._value(v) for v in _flatten(root)])
        self.g.prune()  # drop values that only HLO needed (reduce init constants, dead code)
        return self.g

    # ------------------------------------------------------------ computations
    def _computation(self, comp, args, depth):
        """Import every instruction of ``comp`` with its parameters bound to ``args``."""
        env: dict[str, object] = {}
        numbers: dict[int, Instr] = {}
        for ins in comp.instrs:
            self._check_attrs(ins)
            if ins.opcode == "parameter":
                number = self._param_number(ins)
                if number in numbers:
                    raise self.m.error(f"parameter({number}) is declared twice in computation "
                                       f"'{comp.name}' ('{numbers[number].name}' and "
                                       f"'{ins.name}')", ins.line)
                numbers[number] = ins
                if number >= len(args):
                    raise self.m.error(f"parameter({number}) of '{comp.name}' has no argument "
                                       f"(called with {len(args)})", ins.line)
                arg = args[number]
                got = arg.type if isinstance(arg, Value) else (
                    self._tensor_type(arg.ins) if isinstance(arg, _Literal) else None)
                if got is not None and got != self._tensor_type(ins):
                    raise self.m.error(f"'{comp.name}' parameter({number}) is declared "
                                       f"{self._tensor_type(ins)} but receives {got}", ins.line)
                env[ins.name] = arg
            else:
                xs = self._operands(ins, comp, env)
                check_operand_count(self.m, ins, len(xs))
                try:
                    env[ins.name] = self._instruction(ins, xs, depth)
                except (HloImportError, RecursionError):
                    raise
                except (ArithmeticError, AttributeError, IndexError, KeyError, LookupError,
                        TypeError, ValueError) as e:
                    raise internal_error(self.m, ins, e) from e
        return env[comp.root.name]

    def _operands(self, ins: Instr, comp, env):
        values = []
        for name in ins.operands:
            if name not in env:
                later = any(i.name == name for i in comp.instrs)
                why = "is used before it is defined" if later else "is not defined"
                raise self.m.error(f"operand '{name}' of instruction '{ins.name}' {why} in "
                                   f"computation '{comp.name}'", ins.line)
            values.append(env[name])
        return values

    # ------------------------------------------------------------ instructions
    def _instruction(self, ins: Instr, xs: list, depth: int):
        op = ins.opcode
        if op not in _SUPPORTED:
            raise self._unsupported(ins)
        if op == "tuple":
            return tuple(xs)
        if op == "get-tuple-element":
            index = self._int_attr(ins, "index")
            if not isinstance(xs[0], tuple) or not 0 <= index < len(xs[0]):
                raise self.m.error(f"get-tuple-element index {index} is out of range in "
                                   f"'{ins.name}'", ins.line)
            return xs[0][index]
        if op == "call":
            if depth >= _MAX_CALL_DEPTH:
                raise self.m.error(f"calls nested deeper than {_MAX_CALL_DEPTH}", ins.line)
            return self._computation(self._called(ins), xs, depth + 1)
        if op == "constant":
            return _Literal(ins, self._literal(ins))  # emitted at first use: see _value
        if op in EXPORTED_TUPLE_OPS:
            return self._exported_tuple_op(ins, xs)
        if op in TUPLE_OPS:
            return self._tuple_op(ins, xs, depth)
        if op == "reduce-window":
            return self._op_reduce_window(ins, xs)
        xs = [self._value(x) for x in xs]
        for i, x in enumerate(xs):
            if not isinstance(x, Value):
                raise self.m.error(f"operand {i} of '{ins.name}' is a tuple; '{op}' needs an "
                                   f"array (tuples are only supported through tuple, "
                                   f"get-tuple-element and call)", ins.line)
        out = self._tensor_type(ins)
        if op in _PLAIN:
            return self._emit(ins, _PLAIN[op], xs)
        handler = getattr(self, "_op_" + op.replace("-", "_"), None)
        if handler is not None:
            return handler(ins, xs)
        if op in ("convert", "bitcast-convert"):
            return self._emit(ins, op.replace("-", "_"), xs, dtype=out.dtype)
        if op == "broadcast":
            return self._emit(ins, "broadcast", xs, shape=out.shape, dims=self._dims(ins))
        if op == "reshape":
            return self._emit(ins, "reshape", xs, shape=out.shape)
        if op == "transpose":
            return self._emit(ins, "transpose", xs, perm=self._dims(ins))
        if op == "iota":
            return self._emit(ins, "iota", xs, shape=out.shape, dtype=out.dtype,
                              dimension=self._int_attr(ins, "iota_dimension"))
        if op == "compare":
            return self._compare(ins, xs)
        if op == "select":
            return self._emit(ins, "select", xs)
        if op == "dot":
            get = lambda key: self._dims(ins, key, required=key.endswith("contracting_dims"))
            if "algorithm" in ins.attrs:
                return self._dot_algorithm(ins, xs, lhs_contract=get("lhs_contracting_dims"),
                                           rhs_contract=get("rhs_contracting_dims"),
                                           lhs_batch=get("lhs_batch_dims"),
                                           rhs_batch=get("rhs_batch_dims"))
            extra = {"out_dtype": out.dtype} if out.dtype != xs[0].type.dtype else {}
            return self._emit(ins, "dot", xs, lhs_contract=get("lhs_contracting_dims"),
                              rhs_contract=get("rhs_contracting_dims"),
                              lhs_batch=get("lhs_batch_dims"), rhs_batch=get("rhs_batch_dims"),
                              **extra)
        raise self._unsupported(ins)

    def _emit(self, ins: Instr, opcode: str, xs, **attrs) -> Value:
        """Add one graph op and check its type against the shape the HLO text declares."""
        try:
            v = self.g.add_op(opcode, xs, attrs, loc=self.loc(ins))
        except GraphError as e:
            raise self.m.error(f"instruction '{ins.name}' ({ins.opcode}): {e}", ins.line) from None
        declared = self._tensor_type(ins)
        if v.type != declared:
            raise self.m.error(f"instruction '{ins.name}' declares {declared} but {opcode} "
                               f"computes {v.type}", ins.line)
        return v

    def _value(self, item):
        """Emit a pending constant the first time something uses it; pass other items through.

        Constants are emitted lazily so that a reduce whose init is the identity leaves no
        unused constant behind, and each constant sits next to its first user in the graph.
        """
        if isinstance(item, _Literal):
            if item.value is None:
                item.value = self._emit(item.ins, "constant", [], value=item.array)
            return item.value
        return item

    def _literal(self, ins: Instr) -> np.ndarray:
        out = self._tensor_type(ins)
        try:
            literal = parse_literal(ins.literal)
        except HloImportError as e:
            raise self.m.error(f"constant '{ins.name}': {e.reason}",
                               ins.line) from None
        if literal is Ellipsis:
            raise self.m.error(
                f"constant '{ins.name}' was elided as {{...}}: large constants were left out when "
                "this HLO text was printed. Export with print_large_constants=True (jax: "
                "lowered.compiler_ir('hlo').as_hlo_text(print_large_constants=True)) or pass "
                "the weights as parameters", ins.line)
        value = check_literal(self.m, ins, literal, out)
        if value.shape != out.shape:
            raise self.m.error(f"constant '{ins.name}' literal has shape {list(value.shape)} but "
                               f"the instruction declares {out}", ins.line)
        return value

    def _compare(self, ins: Instr, xs) -> Value:
        cmp_type = self._word_attr(ins, "type", required=False)
        if cmp_type == "TOTALORDER":
            raise self.m.error(f"compare type TOTALORDER in '{ins.name}' is not supported",
                               ins.line)
        dt = xs[0].type.dtype if xs and isinstance(xs[0], Value) else "bool"
        natural = ("FLOAT" if dt.startswith(("float", "bfloat")) else "UNSIGNED"
                   if dt.startswith("uint") or dt == "bool" else "SIGNED")
        if cmp_type is not None and cmp_type != natural and dt != "bool":
            raise self.m.error(f"compare type={cmp_type} on {dt} operands in '{ins.name}' is not "
                               f"supported (only the natural type={natural})", ins.line)
        return self._emit(ins, "compare", xs, direction=self._word_attr(ins, "direction"))

    def _reduce(self, ins: Instr, xs) -> Value:
        if len(xs) != 2:
            raise self.m.error(f"variadic reduce '{ins.name}' ({len(xs) // 2} inputs) is not "
                               "supported; only single-input reduce", ins.line)
        x, init = self._value(xs[0]), xs[1]
        if not isinstance(x, Value) or isinstance(init, tuple):
            raise self.m.error(f"reduce '{ins.name}' has a tuple operand; only arrays are "
                               "supported", ins.line)
        reducer = self._called(ins)
        region = self._region(reducer)
        kind = binary_reducer(region, value_kind(x))
        if kind is None or kind == "replace":
            raise self.m.error(f"reduce '{ins.name}': to_apply={reducer.name} must compute add, "
                               f"maximum, minimum, multiply, and or or of its two parameters; "
                               f"found: {region.describe()}", ins.line)
        result = self._emit(ins, "reduce", [x], dims=self._dims(ins), kind=kind)
        if isinstance(init, _Literal) and is_identity(kind, init.array):
            return result  # the usual case: the init is the reduction's identity
        # A non-identity init is folded in once: kind(reduce(x), init), broadcast to the result.
        loc = self.loc(ins)
        try:
            init_b = self.g.add_op("broadcast", [self._value(init)],
                                   {"shape": result.type.shape, "dims": ()}, loc=loc)
            return self.g.add_op(REDUCE_KINDS[kind].combine, [result, init_b], loc=loc)
        except GraphError as e:
            raise self.m.error(f"reduce '{ins.name}': init value: {e}", ins.line) from None

    # ------------------------------------------------------------ attributes and types
    def _check_attrs(self, ins: Instr):
        known = _KNOWN_ATTRS.get(ins.opcode, set())
        for key in ins.attrs:
            if key not in known and key not in _HARMLESS:
                if ins.opcode not in _SUPPORTED:
                    raise self._unsupported(ins)
                raise self.m.error(f"unsupported attribute '{key}' on HLO opcode '{ins.opcode}' "
                                   f"in instruction '{ins.name}'", ins.line)

    def _unsupported(self, ins: Instr) -> HloImportError:
        return self.m.error(f"unsupported HLO opcode '{ins.opcode}' in instruction "
                            f"'{ins.name}'", ins.line, _HINTS.get(ins.opcode))

    def _tensor_type(self, ins: Instr) -> TensorType:
        shape = ins.shape
        if shape.tuple is not None:
            raise self.m.error(f"'{ins.name}' has tuple shape {shape}; tuples are only supported "
                               "through tuple/get-tuple-element/call", ins.line)
        if shape.etype not in HLO_DTYPES:
            raise self.m.error(f"element type '{shape.etype}' of '{ins.name}' is not supported "
                               f"(supported: {', '.join(HLO_DTYPES)})", ins.line)
        return TensorType(shape.dims, HLO_DTYPES[shape.etype])

    def _param_number(self, ins: Instr) -> int:
        if len(ins.literal) != 1 or not is_decimal(ins.literal[0].text) \
                or len(ins.literal[0].text) > 6:
            raise self.m.error(f"parameter '{ins.name}' needs a number, as in parameter(0)",
                               ins.line)
        return int(ins.literal[0].text)

    def _called(self, ins: Instr):
        name = self._word_attr(ins, "to_apply").lstrip("%")
        if name not in self.m.computations:
            raise self.m.error(f"'{ins.name}' refers to unknown computation '{name}'", ins.line)
        return self.m.computations[name]

    def _raw(self, ins: Instr, key: str, required: bool = True):
        if key not in ins.attrs:
            if required:
                raise self.m.error(f"'{ins.opcode}' instruction '{ins.name}' is missing "
                                   f"attribute '{key}'", ins.line)
            return None
        return ins.attrs[key]

    def _word_attr(self, ins, key, required=True):
        toks = self._raw(ins, key, required)
        if toks is None:
            return None
        if len(toks) != 1:
            raise self.m.error(f"attribute {key} of '{ins.name}' should be one word", ins.line)
        return toks[0].text

    def _int_attr(self, ins, key) -> int:
        word = self._word_attr(ins, key)
        if not is_decimal(word) or len(word) > 12:
            raise self.m.error(f"attribute {key} of '{ins.name}' should be an integer, got "
                               f"'{word}'", ins.line)
        return int(word)

    def _dims(self, ins, key="dimensions", required=True) -> tuple[int, ...]:
        toks = self._raw(ins, key, required)
        if toks is None:
            return ()
        texts = [t.text for t in toks]
        if texts[0] != "{" or texts[-1] != "}" or not all(
                is_decimal(t) and len(t) < 13 for t in texts[1:-1:2]) or any(t != "," for t in texts[2:-1:2]):
            raise self.m.error(f"attribute {key} of '{ins.name}' should look like {{0,1}}, "
                               f"got {''.join(texts)}", ins.line)
        return tuple(int(t) for t in texts[1:-1:2])


_SUPPORTED = (set(_PLAIN) | set(_KNOWN_ATTRS)
              | {"parameter", "constant", "convert", "bitcast-convert", "reshape", "select", "tuple"})


class _Literal:
    """A parsed HLO constant that has not been emitted into the graph yet."""

    def __init__(self, ins: Instr, array: np.ndarray):
        self.ins, self.array, self.value = ins, array, None


def _flatten(item) -> list:
    if isinstance(item, tuple):
        return [v for sub in item for v in _flatten(sub)]
    return [item]


SUPPORTED_OPCODES = frozenset(_SUPPORTED)   # what the importer accepts (docs/supported_ops.md)
