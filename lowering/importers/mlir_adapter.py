"""The one adapter module over the MLIR Python bindings that ship in jaxlib (unstable API).

Everything in this process that touches ``jax.extend.mlir`` lives here: context set-up, parsing
text / modules / portable artifacts, running ``chlo-legalize-to-stablehlo``, and reading types,
attributes and constants into plain Python and NumPy. :mod:`lowering.importers.stablehlo` maps
the ops onto the graph IR using only these helpers. Untrusted text and bytes reach this
process's jaxlib only after :mod:`lowering.importers.mlir_guard`'s checking worker (the other
program that uses the bindings, in its own process) has parsed them.

    >>> # g = parse_stablehlo(jax.jit(f).lower(x).as_text())
"""
from __future__ import annotations

import json
import re

import numpy as np

from .mlir_guard import StableHloImportError, check_in_worker, prescan, warm_up

_ELEMENT = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "f64": "float64",
            "i1": "bool", "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64",
            "ui8": "uint8", "ui16": "uint16", "ui32": "uint32", "ui64": "uint64",
            "f8E4M3": "float8_e4m3", "f8E5M2": "float8_e5m2"}


def _mlir():
    try:
        from jax.extend.mlir import ir, passmanager
        from jax.extend.mlir.dialects import stablehlo
        from jax.interpreters import mlir as jax_mlir
    except ImportError as e:          # jax is an optional dependency of the emulator
        raise StableHloImportError(f"the StableHLO importer needs jax and jaxlib: pip install "
                                   f"'neuron-emu[jax]' ({e})")
    return ir, passmanager, stablehlo, jax_mlir


def parse_module(source, trusted: bool = False):
    """(context, module) from MLIR text, bytes (a portable artifact), an ``ir.Module``, or a
    ``jax.stages.Lowered``. CHLO ops are legalized to StableHLO.

    Text and bytes are untrusted unless ``trusted``: they are pre-scanned and parsed by a
    checking worker process first (:mod:`lowering.importers.mlir_guard`), so input that crashes
    jaxlib's parser is an error here, not the end of this process. jaxlib objects (``Lowered``,
    ``ir.Module``) and ``trusted`` text (printed by jax in this process) are parsed directly."""
    if not trusted and (isinstance(source, str) or isinstance(source, (bytes, bytearray))
                        and bytes(source[:4]) == b"ML\xefR"):
        warm_up()                              # the worker's jax import overlaps ours
    ir, passmanager, stablehlo, jax_mlir = _mlir()
    if hasattr(source, "compiler_ir"):                       # jax.stages.Lowered
        source, trusted = source.as_text(), True
    if isinstance(source, ir.Module):
        source, trusted = str(source.operation), True        # re-parse in our own context
    if isinstance(source, (bytes, bytearray)):
        check_bytecode(bytes(source))          # a malformed artifact must not crash us
    elif isinstance(source, str):
        if not trusted:
            prescan(source)
            check_in_worker(source, bytecode=False)
    else:
        raise StableHloImportError(f"expected StableHLO text, bytes or a module, got "
                                   f"{type(source).__name__}")
    ctx = jax_mlir.make_ir_context()
    with ctx:
        try:
            if isinstance(source, (bytes, bytearray)):
                module = stablehlo.deserialize_portable_artifact(ctx, bytes(source))
            else:
                module = ir.Module.parse(source)
        except Exception as e:                # MLIRError: diagnostics carry file:line:col
            msg = str(e).strip()
            m = re.search(r":(\d+):\d+:", msg)
            raise StableHloImportError(f"cannot parse StableHLO: {msg[:600]}",
                                       int(m.group(1)) if m else None) from None
        stablehlo.register_stablehlo_passes()
        pm = passmanager.PassManager.parse(
            "builtin.module(func.func(chlo-legalize-to-stablehlo))")
        pm.run(module.operation)
    return ctx, module


def functions(module) -> dict:
    """sym_name -> func.func operation."""
    ops = [op.operation for op in module.body.operations]
    out = {}
    for op in ops:
        if op.name == "func.func":
            try:
                out[op.attributes["sym_name"].value] = op
            except (RuntimeError, UnicodeDecodeError):     # nanobind: bytes that are not UTF-8
                raise StableHloImportError("a func.func name is not valid UTF-8 text") from None
    return out


def block(op, region=0):
    return op.regions[region].blocks[0]


def tensor_type(t):
    """(shape, dtype name) of a ranked tensor type."""
    et = str(t.element_type)
    if et not in _ELEMENT:
        raise StableHloImportError(f"element type '{et}' is not supported (supported: "
                                   f"{', '.join(_ELEMENT)})")
    if not hasattr(t, "shape"):
        raise StableHloImportError(f"type {t} is not a ranked tensor")
    return tuple(int(d) for d in t.shape), _ELEMENT[et]


def line_of(op) -> int | None:
    """The source line of an op when its location is a file location (text input)."""
    m = re.search(r":(\d+):\d+", str(op.location))
    return int(m.group(1)) if m else None


def attr(op, name, default=None):
    return op.attributes[name] if name in op.attributes else default


def ints(a) -> list[int]:
    """A DenseI64ArrayAttr / DenseIntElementsAttr / ArrayAttr of ints as a flat list."""
    if a is None:
        return []
    try:
        return [int(v) for v in np.asarray(a).reshape(-1)]
    except Exception:
        return [int(v) for v in a]


def int_pairs(a):
    return [tuple(int(x) for x in row) for row in np.asarray(a).reshape(-1, 2)] if a is not None \
        else None


def int_value(a) -> int:
    return int(a.value)


def bools(a) -> list[bool]:
    return [bool(v) for v in np.asarray(a).reshape(-1)] if a is not None else []


def enum_word(a) -> str:
    """``#stablehlo<comparison_direction GT>`` -> ``'GT'``."""
    text = str(a)
    m = re.search(r"\b([A-Z][A-Z_]*)>?$", text.rstrip(">").strip())
    return m.group(1) if m else text


def dot_dims(a):
    _, _, stablehlo, _ = _mlir()
    d = stablehlo.DotDimensionNumbers(a)
    return (list(d.lhs_batching_dimensions), list(d.rhs_batching_dimensions),
            list(d.lhs_contracting_dimensions), list(d.rhs_contracting_dimensions))


def conv_dims(a):
    _, _, stablehlo, _ = _mlir()
    d = stablehlo.ConvDimensionNumbers(a)
    lhs = (d.input_batch_dimension, d.input_feature_dimension, *d.input_spatial_dimensions)
    rhs = (d.kernel_output_feature_dimension, d.kernel_input_feature_dimension,
           *d.kernel_spatial_dimensions)
    out = (d.output_batch_dimension, d.output_feature_dimension, *d.output_spatial_dimensions)
    return lhs, rhs, out


def gather_dims(a) -> dict:
    _, _, stablehlo, _ = _mlir()
    d = stablehlo.GatherDimensionNumbers(a)
    return dict(offset_dims=list(d.offset_dims), collapsed_slice_dims=list(d.collapsed_slice_dims),
                operand_batching_dims=list(d.operand_batching_dims),
                start_indices_batching_dims=list(d.start_indices_batching_dims),
                start_index_map=list(d.start_index_map), index_vector_dim=d.index_vector_dim)


def scatter_dims(a) -> dict:
    _, _, stablehlo, _ = _mlir()
    d = stablehlo.ScatterDimensionNumbers(a)
    return dict(update_window_dims=list(d.update_window_dims),
                inserted_window_dims=list(d.inserted_window_dims),
                input_batching_dims=list(d.input_batching_dims),
                scatter_indices_batching_dims=list(d.scatter_indices_batching_dims),
                scatter_dims_to_operand_dims=list(d.scattered_dims_to_operand_dims),
                index_vector_dim=d.index_vector_dim)


def _bits_text(bits: int, np_dt, width: int) -> str:
    v = float(np.frombuffer((bits & ((1 << 8 * width) - 1)).to_bytes(width, "little"),
                            dtype=np_dt)[0])
    return "NaN" if v != v else "Infinity" if v == np.inf else "-Infinity" if v == -np.inf \
        else repr(v)


def check_bytecode(data: bytes) -> None:
    """An untrusted portable artifact is deserialized by the checking worker process first:
    jaxlib's C++ deserializer can crash (segfault) on corrupted bytecode, which would take the
    caller down. A crash, overrun or failure there is a StableHloImportError; an artifact that
    deserializes cleanly is remembered (by digest) and then read in-process."""
    if not data.startswith(b"ML\xefR"):
        raise StableHloImportError("bytes that are not a StableHLO portable artifact (no 'ML\\xefR' "
                                   "magic): pass MLIR text as str")
    check_in_worker(data, bytecode=True)


def dense(a, shape, dtype: str) -> np.ndarray:
    """A DenseElementsAttr as a NumPy array (bf16/fp8 through the printed form); its size is
    checked against NEURON_EMU_MAX_CONSTANT_ELEMENTS first, and a float literal that overflows
    ``dtype`` is refused (it would silently become inf)."""
    from device.limits import ResourceLimitError, check_elements
    try:
        check_elements("stablehlo.constant", shape)
    except ResourceLimitError as e:
        raise StableHloImportError(str(e)) from None
    arr = _dense(a, shape, dtype)
    if dtype.startswith(("float", "bfloat")) and arr.size:
        wide = _dense_wide(a, shape, dtype)
        if wide is not None:
            bad = np.isfinite(wide) & ~np.isfinite(arr.astype(np.float64))
            if bad.any():
                raise StableHloImportError(f"constant {float(wide[bad].flat[0])!r} overflows "
                                           f"{dtype} (it would become inf)")
    return arr


def overflowing_literal(line: str, dtype: str):
    """The first decimal literal inside ``dense<...>`` on ``line`` that is finite but beyond the
    largest finite ``dtype`` value, or None."""
    from ..ir.types import numpy_dtype
    m = re.search(r"dense<(.*?)>", line)
    if not m:
        return None
    import ml_dtypes
    top = float(ml_dtypes.finfo(numpy_dtype(dtype)).max)
    for tok in re.findall(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", m.group(1)):
        v = float(tok)
        if np.isfinite(v) and abs(v) > top:
            return tok
    return None


def _dense_wide(a, shape, dtype):
    """The literal's values before rounding to ``dtype`` (float64), when they are printed."""
    m = re.match(r"dense<(.*)>\s*:", str(a)[:10_000_000], re.S)
    if not m or m.group(1).strip().startswith(("0x", '"0x')):
        return None
    body = re.sub(r"\binf\b", "Infinity", re.sub(r"\bnan\b", "NaN", m.group(1).strip()))
    body = body.replace("true", "1").replace("false", "0")
    try:
        vals = json.loads(body.replace("(", "[").replace(")", "]"))
        return np.asarray(vals, np.float64)
    except (ValueError, TypeError):
        return None


def _dense(a, shape, dtype: str) -> np.ndarray:
    from ..ir.types import numpy_dtype
    np_dt = numpy_dtype(dtype)
    if dtype not in ("bfloat16", "float8_e4m3", "float8_e5m2", "float16"):
        try:
            arr = np.array(a)
            return np.broadcast_to(arr, shape).astype(np_dt) if arr.shape != tuple(shape) \
                else arr.astype(np_dt)
        except Exception:
            pass
    text = str(a)
    m = re.match(r'dense<"0x([0-9A-Fa-f]*)">', text)
    if m:                                  # raw little-endian bytes
        raw = np.frombuffer(bytes.fromhex(m.group(1)), dtype=np_dt)
        return np.broadcast_to(raw.reshape(()), shape).copy() if raw.size == 1 \
            else raw.reshape(shape)
    m = re.match(r"dense<(.*)>\s*:", text, re.S)
    if not m:
        raise StableHloImportError(f"cannot read constant {text[:100]}")
    body = m.group(1).strip()
    if body.startswith("0x"):              # a splat written as bits
        bits = int(body, 16)
        width = np.dtype(np_dt).itemsize
        raw = np.frombuffer(bits.to_bytes(width, "little"), dtype=np_dt)
        return np.broadcast_to(raw.reshape(()), shape).copy()
    body = body.replace("true", "1").replace("false", "0")
    body = re.sub(r"\binf\b", "Infinity", re.sub(r"\bnan\b", "NaN", body))
    width = np.dtype(np_dt).itemsize
    body = re.sub(r"0x[0-9A-Fa-f]+", lambda h: _bits_text(int(h.group(0), 16), np_dt, width),
                  body)                    # MLIR prints inf/NaN of narrow floats as bit patterns
    try:
        vals = json.loads(body.replace("(", "[").replace(")", "]"))
    except ValueError as e:
        raise StableHloImportError(f"cannot read constant {text[:100]}: {e}") from None
    arr = np.array(vals, dtype=np.float64 if dtype.startswith(("float", "bfloat")) else None)
    return np.broadcast_to(arr.astype(np_dt), shape).copy()

