"""Docstrings for ``nki.isa`` and ``nki.language``, built from the tables where the facts live.

The engine, operands written and read, the meaning and the per-generation limits of an ISA call
come from the device instruction table (``device.isa.OPS``) and the hardware tables
(``device.arch``); the meaning of an ``nl`` math function comes from the ALU / activation tables
(``device.alu``). Only the one-line summary and the example are written by hand, in the
``examples`` modules next to each namespace, so the facts cannot drift from the code that runs.

Examples run inside a kernel body, with a few ready tiles (``FIXTURES``) in scope;
``nki.doc_examples.run_examples(fn)`` traces and executes them on the emulator (the test suite
does so for every public callable):

    >>> import nki.isa as nisa
    >>> print(nisa.tensor_tensor.__doc__.splitlines()[0])
    Element-wise ``dst = data1 <op> data2`` of two tiles of the same shape.
"""
from __future__ import annotations

import inspect
import re

import numpy as np

from device.alu import ACT, ALU
from device.arch import get_arch

_ENGINES = {"PE": "TensorE (PE)", "ACT": "ScalarE (ACT)", "DVE": "VectorE (DVE)",
            "POOL": "GpSimd (POOL)", "SP": "the sync engine (SP)", "DMA": "a DMA queue"}
_TARGETS = ("inf2", "trn2", "trn3")          # one target per NeuronCore generation v2, v3, v4

# name -> (shape, dtype, buffer, description); inputs are filled with values in [0.5, 1.5)
FIXTURES = {
    "a": ((128, 512), "float32", "sbuf", True),
    "b": ((128, 512), "float32", "sbuf", True),
    "out": ((128, 512), "float32", "sbuf", False),
    "col": ((128, 1), "float32", "sbuf", True),
    "ps": ((128, 512), "float32", "psum", False),
    "w": ((128, 128), "bfloat16", "sbuf", True),
    "x": ((128, 512), "bfloat16", "sbuf", True),
    "n": ((128, 512), "int32", "sbuf", True),
    "hbm_in": ((128, 512), "float32", "hbm", True),
    "hbm_out": ((128, 512), "float32", "shared_hbm", False),
}


def _fixture_text(example: str) -> str:
    code = "\n".join(ln.split("#")[0] for ln in example.splitlines())     # not the comments
    used = [k for k in FIXTURES if re.search(rf"\b{k}\b", code)]
    if not used:
        return "Example (inside a kernel body)::"
    parts = []
    for k in used:
        shape, dt, buf, filled = FIXTURES[k]
        parts.append(f"``{k}``: {dt}{list(shape)} in {buf}" + ("" if filled else ", unwritten"))
    return "Example (inside a kernel body; " + "; ".join(parts) + ")::"


def _limits(fields) -> str:
    """'name v2/v3/v4' facts from device.arch, collapsed when every generation agrees."""
    out = []
    for label, attr in fields:
        vals = [getattr(get_arch(t), attr) for t in _TARGETS]
        if len(set(vals)) == 1:
            out.append(f"{label} {vals[0]}")
        else:
            out.append(f"{label} " + " / ".join(f"{v} (NeuronCore-v{g})" for v, g in
                                                 zip(vals, (2, 3, 4))))
    return "; ".join(out)


_COMMON_LIMITS = (("partitions per tile <=", "partitions"),
                  ("free elements per instruction <=", "sbuf_max_free_elems"),
                  ("in PSUM <=", "psum_max_free_elems"))
_OP_LIMITS = {
    "nc_matmul": (("stationary free size <=", "gemm_stationary_fmax"),
                  ("moving free size <=", "gemm_moving_fmax")),
    "bn_stats": (("data free size <=", "bn_stats_fmax"),),
    "nc_transpose": (("VectorE transpose block <=", "vector_transpose_max"),),
}


def _gen_text(min_gen: int) -> str:
    if min_gen <= 2:
        return "every generation (NeuronCore-v2 inf2/trn1, v3 trn2, v4 trn3)"
    names = {3: "trn2, trn3", 4: "trn3"}[min_gen]
    return f"NeuronCore-v{min_gen} and newer only ({names}); earlier targets refuse it"


def isa_doc(fn, opname: str | None, summary: str, example: str, min_gen: int = 2) -> str:
    """The docstring of an ``nki.isa`` function (facts from ``device.isa.OPS`` and ``device.arch``)."""
    from device.isa import OPS
    own = inspect.getdoc(fn) or ""
    lines = [summary, ""]
    if own and own.splitlines()[0].strip() != summary:
        lines += [own, ""]
    op = OPS.get(opname) if opname else None
    if op is not None:
        if op.doc:
            lines += [f"Meaning (the emulator's instruction table): {op.doc}", ""]
        params = inspect.signature(fn).parameters
        eng = f"Engine: {_ENGINES.get(op.engine, op.engine)}"
        if "engine" in params:
            eng += "; ``engine=nisa.engine.*`` may pick another capable engine"
        lines.append(eng + ".")
        rw = [f"writes {', '.join(o for o in op.outputs if not o.startswith('_'))}"
              if any(not o.startswith("_") for o in op.outputs) else "",
              f"reads {', '.join(i for i in op.inputs if not i.startswith('_'))}"
              if any(not i.startswith("_") for i in op.inputs) else ""]
        rw = [t for t in rw if t]
        if rw:
            lines.append("Operands: " + "; ".join(rw) + ".")
        lines.append("Limits (device/arch.py): " + _limits(_COMMON_LIMITS + _OP_LIMITS.get(opname, ())) + ".")
    lines.append(f"Available on {_gen_text(min_gen)}.")
    lines += ["", _example_block(example, min_gen)]
    return "\n".join(lines)


def _example_block(example: str, min_gen: int) -> str:
    head = _fixture_text(example)
    if min_gen > 2:
        head = head[:-3] + f"; target={_TARGETS[min_gen - 2]!r})::"
    body = "\n".join("    " + ln for ln in example.strip("\n").splitlines())
    return f"{head}\n\n{body}\n"


def math_meaning(name: str) -> str:
    """What an ``nl`` math token computes, from the ALU / activation tables."""
    if name in ALU:
        op = ALU[name]
        kind = {"arith": "arithmetic in fp32", "bitvec": "on the raw integer bits",
                "bypass": "passes its input through"}.get(op.kind, op.kind)
        ident = f"; as a reduction its identity is {op.identity}" if op.identity is not None else ""
        np_name = getattr(op.fn, "__name__", "")
        ref = f" (NumPy: ``np.{np_name}``)" if hasattr(np, np_name) else ""
        return f"ALU op ``{name}``{ref}, {kind}{ident}"
    if name in ACT:
        np_name = getattr(ACT[name], "__name__", "")
        ref = f" (NumPy: ``np.{np_name}``)" if hasattr(np, np_name) else ""
        return f"ScalarE activation function ``{name}``{ref}, evaluated in fp32"
    return ""


def nl_doc(fn, summary: str, example: str, min_gen: int = 2, extra: str = "") -> str:
    """The docstring of an ``nki.language`` callable (math facts from ``device.alu``)."""
    own = inspect.getdoc(fn) if not hasattr(fn, "op_name") else ""
    lines = [summary, ""]
    if own and own.splitlines()[0].strip() != summary:
        lines += [own, ""]
    if extra:
        lines += [extra, ""]
    if min_gen > 2:
        lines += [f"Available on {_gen_text(min_gen)}.", ""]
    lines.append(_example_block(example, min_gen))
    return "\n".join(lines)


def document_isa(namespace: dict, table: dict, classes: dict):
    """Give each ``nki.isa`` callable in ``namespace`` its table-derived docstring.

    A function missing from ``table`` keeps its own docstring (the test suite requires it to have
    one with a runnable example).
    """
    for name, entry in table.items():
        fn = namespace.get(name)
        if fn is None:
            continue
        summary, example, min_gen = entry[:3]
        opname = entry[3] if len(entry) > 3 else name
        fn.__doc__ = isa_doc(fn, opname or None, summary, example, min_gen)
        fn.min_gen = min_gen
    for name, text in classes.items():
        if name in namespace:
            namespace[name].__doc__ = text


def document_nl(namespace: dict, table: dict, token_only: dict, binary, int_ops, classes: dict):
    """Give each ``nki.language`` callable its docstring: math tokens from the ALU / activation
    tables, the rest from ``table`` (summary + example) on top of the function's own text."""
    for name, obj in list(namespace.items()):
        if name.startswith("_") or not hasattr(obj, "op_name") or name in table:
            continue
        meaning = math_meaning(obj.op_name)
        if name in token_only:
            summary = f"The ``op=nl.{name}`` token of ISA calls (not callable on tiles)."
            example = token_only[name]
        else:
            summary = (f"Element-wise ``{name}`` of {'two tiles (or a tile and a scalar)' if name in binary else 'a tile'}"
                       f"; also the ``op=nl.{name}`` token of ISA calls.")
            src = "n" if name in int_ops else "a"
            args = f"{src}, {'3' if name in int_ops else 'b'}" if name in binary else src
            shape = "((128, 512), 'int32')" if name in int_ops else "((128, 512), 'float32')"
            example = f">>> y = nl.{name}({args})\n>>> y.shape, y.dtype\n{shape}\n"
        extra = (f"Meaning: {meaning}. On whole HBM tensors (a model rather than a tile kernel) "
                 f"it records a graph op that is tiled automatically.") if meaning else ""
        obj.__doc__ = nl_doc(obj, summary, example, extra=extra)
    for name, entry in table.items():
        obj = namespace.get(name)
        if obj is None:
            continue
        summary, example = entry[:2]
        min_gen = entry[2] if len(entry) > 2 else 2
        meaning = math_meaning(getattr(obj, "op_name", ""))
        obj.__doc__ = nl_doc(obj, summary, example, min_gen,
                             extra=f"Meaning: {meaning}." if meaning else "")
    for name, text in classes.items():
        if name in namespace:
            namespace[name].__doc__ = text
