"""The lowering regression corpus: graphs whose default-schedule device programs are golden.

Each case builds a graph through public entry points (the graph builder, the HLO/StableHLO
importers, ``@neuron.jit`` models) and lowers it with the default schedules. The printed program,
without source locations, is stored under ``programs/<case>.txt``; ``test_golden_programs.py``
compares every case with its file. Regenerate (only when a change of the default programs is
intended, and say so in the commit) with::

    python -m tests.lowering.golden.corpus --write
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import ml_dtypes
import numpy as np

HERE = Path(__file__).parent
PROGRAMS = HERE / "programs"
SAMPLES = HERE / "hlo"
_LOC = re.compile(r"  # [^\n]*$", re.M)


def program_text(program) -> str:
    """The printed program without source locations (those are metadata, not the program)."""
    return _LOC.sub("", str(program)) + "\n"


# ---------------------------------------------------------------- graph builder cases

def _lower(graph, target="inf2", fuse=True):
    from lowering import lower_graph
    return lower_graph(graph, target, fuse=fuse)


def _graph(name, params):
    from lowering import Graph, TensorType
    g = Graph(name)
    return g, [g.param(TensorType(s, d), f"p{i}") for i, (s, d) in enumerate(params)]


def _unary(opcode, shape, dtype):
    def build():
        g, (x,) = _graph(opcode, [(shape, dtype)])
        g.set_outputs([g.add_op(opcode, [x])])
        return _lower(g)
    return build


def _binary(opcode, shape, dtype, **attrs):
    def build():
        g, (a, b) = _graph(opcode, [(shape, dtype), (shape, dtype)])
        g.set_outputs([g.add_op(opcode, [a, b], attrs)])
        return _lower(g)
    return build


def _dot(m, k, n, dtype, batch=0, out_dtype=None, target="inf2"):
    def build():
        lhs = ((batch,) if batch else ()) + (m, k)
        rhs = ((batch,) if batch else ()) + (k, n)
        g, (a, b) = _graph("dot", [(lhs, dtype), (rhs, dtype)])
        bd = [0] if batch else []
        g.set_outputs([g.add_op("dot", [a, b], {
            "lhs_contract": [len(lhs) - 1], "rhs_contract": [len(bd)], "lhs_batch": bd,
            "rhs_batch": bd, "out_dtype": out_dtype})])
        return _lower(g, target)
    return build


def _dot_transposed_lhs():
    g, (a, b) = _graph("dot_t", [((300, 200), "float32"), ((300, 130), "float32")])
    g.set_outputs([g.add_op("dot", [a, b], {"lhs_contract": [0], "rhs_contract": [0]})])
    return _lower(g)


def _reduce(kind, shape, dims, dtype):
    def build():
        g, (x,) = _graph("reduce", [(shape, dtype)])
        g.set_outputs([g.add_op("reduce", [x], {"dims": dims, "kind": kind})])
        return _lower(g)
    return build


def _arg(opcode, shape, dim):
    def build():
        g, (x,) = _graph(opcode, [(shape, "float32")])
        g.set_outputs([g.add_op(opcode, [x], {"dim": dim})])
        return _lower(g)
    return build


def _layout(name, shape, dtype, opcode, attrs, extra=()):
    def build():
        g, ps = _graph(name, [(shape, dtype), *extra])
        g.set_outputs([g.add_op(opcode, ps, attrs)])
        return _lower(g)
    return build


def _exp_affine(fuse):
    def build():
        from lowering import broadcast_binary
        g, (x, w, b) = _graph("exp_affine", [((300, 260), "float32"), ((260, 700), "float32"),
                                              ((700,), "float32")])
        y = g.add_op("dot", [x, w], {"lhs_contract": [1], "rhs_contract": [0]})
        g.set_outputs([g.add_op("exp", [broadcast_binary(g, "add", y, b)])])
        return _lower(g, fuse=fuse)
    return build


def _softmax(fuse):
    def build():
        from lowering import broadcast_binary
        g, (x,) = _graph("softmax", [((200, 1000), "float32")])
        m = g.add_op("reduce", [x], {"dims": [1], "kind": "max"})
        m = g.add_op("reshape", [m], {"shape": [200, 1]})
        e = g.add_op("exp", [broadcast_binary(g, "subtract", x, m)])
        s = g.add_op("reshape", [g.add_op("reduce", [e], {"dims": [1], "kind": "add"})],
                     {"shape": [200, 1]})
        g.set_outputs([broadcast_binary(g, "divide", e, s)])
        return _lower(g, fuse=fuse)
    return build


def _mlp_bf16():
    g, (x, w1, w2) = _graph("mlp", [((256, 384), "bfloat16"), ((384, 640), "bfloat16"),
                                    ((640, 256), "bfloat16")])
    h = g.add_op("tanh", [g.add_op("dot", [x, w1], {"lhs_contract": [1], "rhs_contract": [0]})])
    g.set_outputs([g.add_op("dot", [h, w2], {"lhs_contract": [1], "rhs_contract": [0]})])
    return _lower(g, "trn2")


def _two_outputs():
    g, (a, b) = _graph("two_out", [((130, 70), "float32"), ((130, 70), "float32")])
    s = g.add_op("add", [a, b])
    g.set_outputs([g.add_op("exp", [s]), g.add_op("multiply", [s, s]), a])
    return _lower(g)


def _while_counter():
    from lowering import Graph, TensorType
    i32 = TensorType((), "int32")
    vec = TensorType((64,), "float32")
    cond = Graph("cond")
    ci, _ = cond.param(i32, "i"), cond.param(vec, "v")
    lim = cond.add_op("constant", [], {"value": np.int32(5)})
    cond.set_outputs([cond.add_op("compare", [ci, lim], {"direction": "LT"})])
    body = Graph("body")
    bi, bv = body.param(i32, "i"), body.param(vec, "v")
    one = body.add_op("constant", [], {"value": np.int32(1)})
    body.set_outputs([body.add_op("add", [bi, one]), body.add_op("exp", [bv])])
    g, (i0, v0) = _graph("loop", [((), "int32"), ((64,), "float32")])
    res = g.add_op("while", [i0, v0], {"cond": cond, "body": body})
    g.set_outputs([res[1]])
    return _lower(g)


CASES: dict = {}
for _op in ["exp", "log", "tanh", "sqrt", "rsqrt", "abs", "negate", "floor", "ceil", "logistic",
            "cosine", "sign", "sine", "round_nearest_even", "round_nearest_afz", "log1p", "expm1",
            "is_finite"]:
    CASES[f"unary_{_op}"] = _unary(_op, (200, 300), "float32")
CASES["unary_exp_bf16_long"] = _unary("exp", (3, 5000), "bfloat16")
CASES["unary_tanh_scalar"] = _unary("tanh", (), "float32")
for _op in ["add", "subtract", "multiply", "divide", "maximum", "minimum", "power", "remainder"]:
    CASES[f"binary_{_op}"] = _binary(_op, (130, 2100), "float32")
CASES["binary_add_int32"] = _binary("add", (40, 50), "int32")
for _op in ["and", "or", "xor"]:
    CASES[f"logic_{_op}_bool"] = _binary(_op, (16, 33), "bool")
    CASES[f"logic_{_op}_int32"] = _binary(_op, (16, 33), "int32")
CASES["not_bool"] = _unary("not", (16, 33), "bool")
for _op in ["shift_left", "shift_right_logical", "shift_right_arithmetic"]:
    CASES[f"shift_{_op}"] = _binary(_op, (16, 33), "int32")
CASES["compare_lt"] = _binary("compare", (129, 64), "float32", direction="LT")


def _select():
    g, (p, a, b) = _graph("select", [((70, 90), "bool"), ((70, 90), "float32"),
                                     ((70, 90), "float32")])
    g.set_outputs([g.add_op("select", [p, a, b])])
    return _lower(g)


def _clamp():
    g, (lo, x, hi) = _graph("clamp", [((70, 90), "float32")] * 3)
    g.set_outputs([g.add_op("clamp", [lo, x, hi])])
    return _lower(g)


CASES["select"] = _select
CASES["clamp"] = _clamp
CASES["convert_f32_bf16"] = _layout("cvt", (100, 300), "float32", "convert", {"dtype": "bfloat16"})
CASES["convert_f32_i32"] = _layout("cvt", (100, 300), "float32", "convert", {"dtype": "int32"})
CASES["convert_f32_bool"] = _layout("cvt", (100, 30), "float32", "convert", {"dtype": "bool"})
CASES["dot_2d_f32"] = _dot(200, 300, 700, "float32")
CASES["dot_2d_bf16_blocked"] = _dot(600, 300, 1100, "bfloat16")
CASES["dot_2d_bf16_out_f32"] = _dot(130, 260, 520, "bfloat16", out_dtype="float32")
CASES["dot_long_k"] = _dot(64, 5000, 64, "bfloat16")
CASES["dot_skinny"] = _dot(1, 1024, 1024, "float32")
CASES["dot_batched"] = _dot(70, 130, 90, "float32", batch=3)
CASES["dot_trn2"] = _dot(256, 256, 512, "bfloat16", target="trn2")
CASES["dot_transposed_lhs"] = _dot_transposed_lhs
CASES["reduce_add_rows"] = _reduce("add", (300, 5000), [1], "float32")
CASES["reduce_max_cols"] = _reduce("max", (300, 70), [0], "float32")
CASES["reduce_mul_3d"] = _reduce("mul", (4, 30, 20), [0, 2], "float32")
CASES["reduce_min_bf16"] = _reduce("min", (130, 33), [1], "bfloat16")
CASES["argmax"] = _arg("argmax", (130, 5000), 1)
CASES["argmin_dim0"] = _arg("argmin", (70, 40), 0)
CASES["transpose"] = _layout("tr", (30, 40, 50), "float32", "transpose", {"perm": [2, 0, 1]})
CASES["reshape"] = _layout("rs", (30, 40), "float32", "reshape", {"shape": [1200]})
CASES["broadcast"] = _layout("bc", (40,), "float32", "broadcast", {"shape": [30, 40], "dims": [1]})
CASES["slice_strided"] = _layout("sl", (30, 40), "float32", "slice",
                                 {"start": [1, 2], "limit": [29, 40], "stride": [2, 3]})
CASES["reverse"] = _layout("rev", (30, 40), "float32", "reverse", {"dims": [1]})
CASES["pad_interior"] = _layout("pad", (10, 12), "float32", "pad",
                                {"low": [1, -2], "high": [2, 3], "interior": [1, 0]},
                                extra=[((), "float32")])
CASES["concatenate"] = _layout("cat", (10, 12), "float32", "concatenate", {"dim": 1},
                               extra=[((10, 5), "float32")])
CASES["dynamic_slice"] = _layout("ds", (30, 40), "float32", "dynamic_slice", {"sizes": [4, 5]},
                                 extra=[((), "int32"), ((), "int32")])
CASES["dynamic_update_slice"] = _layout("dus", (30, 40), "float32", "dynamic_update_slice", {},
                                        extra=[((4, 5), "float32"), ((), "int32"),
                                               ((), "int32")])
CASES["reduce_window_max"] = _layout("rw", (1, 16, 16, 3), "float32", "reduce_window", {
    "kind": "max", "window": [1, 3, 3, 1], "strides": [1, 2, 2, 1],
    "padding": [[0, 0], [1, 1], [1, 1], [0, 0]]})
CASES["convolution_nhwc"] = _layout("conv", (2, 10, 10, 3), "float32", "convolution", {
    "lhs_layout": [0, 3, 1, 2], "rhs_layout": [3, 2, 0, 1], "out_layout": [0, 3, 1, 2],
    "strides": [1, 1], "padding": [[1, 1], [1, 1]]}, extra=[((3, 3, 3, 8), "float32")])
CASES["gather_rows"] = _layout("gather", (50, 16), "float32", "gather", {
    "offset_dims": [1], "collapsed_slice_dims": [0], "start_index_map": [0],
    "index_vector_dim": 1, "slice_sizes": [1, 16]}, extra=[((7, 1), "int32")])
CASES["scatter_add"] = _layout("scatter", (50, 16), "float32", "scatter", {
    "update_window_dims": [1], "inserted_window_dims": [0], "scatter_dims_to_operand_dims": [0],
    "index_vector_dim": 1, "kind": "add"}, extra=[((3, 1), "int32"), ((3, 16), "float32")])
CASES["iota_constant"] = lambda: _iota_constant()
CASES["while_counter"] = _while_counter
CASES["fused_exp_affine"] = _exp_affine(True)
CASES["unfused_exp_affine"] = _exp_affine(False)
CASES["fused_softmax"] = _softmax(True)
CASES["unfused_softmax"] = _softmax(False)
CASES["mlp_bf16_trn2"] = _mlp_bf16
CASES["two_outputs"] = _two_outputs


def _iota_constant():
    g, (x,) = _graph("iota", [((20, 30), "int32")])
    io = g.add_op("iota", [], {"shape": [20, 30], "dtype": "int32", "dimension": 1})
    c = g.add_op("broadcast", [g.add_op("constant", [], {"value": np.int32(3)})],
                 {"shape": [20, 30], "dims": []})
    g.set_outputs([g.add_op("add", [g.add_op("multiply", [io, c]), x])])
    return _lower(g)


# ---------------------------------------------------------------- imported samples

def _hlo(path):
    def build():
        import neuron
        f = neuron.load_hlo(path) if path.suffix == ".txt" else neuron.load_stablehlo(path)
        return f.program("inf2")
    return build


for _p in sorted(SAMPLES.iterdir()):
    CASES["sample_" + _p.name.split(".")[0] + ("_stablehlo" if _p.suffix == ".mlir" else "")] = \
        _hlo(_p)


# ---------------------------------------------------------------- @neuron.jit models

def _model(kind):
    def build():
        import neuron
        import nki.language as nl
        if kind == "exp_affine":
            f = neuron.jit(lambda x, w, b: nl.exp(nl.add(nl.matmul(x, w), b)))
            args = [np.zeros((256, 384), np.float32), np.zeros((384, 512), np.float32),
                    np.zeros((1, 512), np.float32)]
        elif kind == "mlp":
            f = neuron.jit(lambda x, w1, w2: nl.matmul(nl.tanh(nl.matmul(x, w1)), w2))
            args = [np.zeros((128, 256), ml_dtypes.bfloat16),
                    np.zeros((256, 512), ml_dtypes.bfloat16),
                    np.zeros((512, 256), ml_dtypes.bfloat16)]
        else:
            f = neuron.jit(lambda x: nl.exp(nl.subtract(x, nl.max(x, axis=1, keepdims=True))))
            args = [np.zeros((200, 600), np.float32)]
        return f.trace(*args)
    return build


for _k in ["exp_affine", "mlp", "softmax_numerator"]:
    CASES[f"model_{_k}"] = _model(_k)


def main(argv):
    write = "--write" in argv
    PROGRAMS.mkdir(exist_ok=True)
    for name, build in CASES.items():
        text = program_text(build())
        path = PROGRAMS / f"{name}.txt"
        if write:
            path.write_text(text)
        elif not path.exists() or path.read_text() != text:
            print("DIFFERS", name)
    print(f"{len(CASES)} cases", "written" if write else "checked")


if __name__ == "__main__":
    main(sys.argv[1:])
