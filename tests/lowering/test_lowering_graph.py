"""Graph IR: building, printed text, type errors, verification, evaluation."""
import numpy as np
import pytest

from lowering import OPS, Graph, GraphError, TensorType, broadcast_binary, evaluate
from lowering.ir.graph import Op, Value

F32 = "float32"


def t(*shape, dtype=F32):
    return TensorType(shape, dtype)


def mlp_graph():
    g = Graph("main")
    x = g.param(t(200, 300), "x")
    w = g.param(t(300, 700), "w")
    y = g.add_op("dot", [x, w], {"lhs_contract": [1], "rhs_contract": [0]})
    g.set_outputs([g.add_op("exp", [y])])
    return g


def test_printed_text_is_stable():
    assert str(mlp_graph()) == (
        "graph main(%x: f32[200,300], %w: f32[300,700]) {\n"
        "  %0 = dot(%x, %w) {lhs_contract=[1], rhs_contract=[0], lhs_batch=[], rhs_batch=[]}"
        " : f32[200,700]\n"
        "  %1 = exp(%0) : f32[200,700]\n"
        "  return %1\n"
        "}")
    assert str(mlp_graph()) == str(mlp_graph())  # same construction, same text


def test_printed_attrs_constants_and_locs():
    g = Graph("k")
    x = g.param(t(2, 3, dtype="bfloat16"))
    c = g.add_op("constant", [], {"value": np.array([1, 2, 3], np.int32)}, loc="f.py:3")
    big = g.add_op("constant", [], {"value": np.arange(100, dtype=np.float32)})
    y = g.add_op("convert", [x], {"dtype": "int32"})
    m = g.add_op("compare", [y, g.add_op("broadcast", [c], {"shape": [2, 3], "dims": [1]})],
                 {"direction": "LT"})
    g.set_outputs([m, big])
    text = g.format(show_locs=True)
    assert "graph k(%arg0: bf16[2,3]) {" in text
    assert "%0 = constant() {value=[1, 2, 3]} : i32[3]  // f.py:3" in text
    assert "%1 = constant() {value=<f32[100] sha1:" in text
    assert "%2 = convert(%arg0) {dtype=i32} : i32[2,3]" in text
    assert "compare(%2, %3) {direction=LT} : bool[2,3]" in text
    assert text.endswith("  return %4, %1\n}")
    assert "//" not in str(g)


def test_add_shape_mismatch_names_op_operand_value_and_expected():
    g = Graph()
    a = g.param(t(3, 4), "a")
    b = g.param(t(3, 5), "b")
    with pytest.raises(GraphError) as e:
        g.add_op("add", [a, b])
    msg = str(e.value)
    assert msg.startswith("add: operand 1 %b has type f32[3,5]; expected f32[3,4]")
    assert "broadcast_binary" in msg


def test_dot_contracting_size_mismatch():
    g = Graph()
    x = g.param(t(200, 300), "x")
    w = g.param(t(299, 700), "w")
    with pytest.raises(GraphError, match=r"dot: operand 1 %w has type f32\[299,700\]; "
                                         r"expected size 300 \(lhs dim 1\)"):
        g.add_op("dot", [x, w], {"lhs_contract": [1], "rhs_contract": [0]}, loc="model.py:7")
    with pytest.raises(GraphError, match=r"\[at model.py:7\]"):
        g.add_op("dot", [x, w], {"lhs_contract": [1], "rhs_contract": [0]}, loc="model.py:7")


@pytest.mark.parametrize("opcode, inputs, attrs, pattern", [
    ("nope", [], {}, "unknown opcode 'nope'"),
    ("exp", [], {}, "exp: takes 1 operand"),
    ("transpose", ["x"], {}, "missing required attribute 'perm'"),
    ("transpose", ["x"], {"perm": [0, 1], "axes": 1}, r"unknown attribute\(s\) \['axes'\]"),
    ("transpose", ["x"], {"perm": [0, 0]}, "not a permutation"),
    ("reshape", ["x"], {"shape": [5]}, "cannot reshape 6 elements"),
    ("broadcast", ["x"], {"shape": [2, 4], "dims": [0, 1]}, "maps to result dim 1 of size 4"),
    ("reduce", ["x"], {"dims": [2], "kind": "add"}, "distinct dims in"),
    ("reduce", ["x"], {"dims": [0], "kind": "mean"}, "kind 'mean'"),
    ("convert", ["x"], {"dtype": "complex64"}, "unknown dtype 'complex64'"),
    ("compare", ["x", "x"], {"direction": "LTE"}, "direction 'LTE'"),
    ("select", ["x", "x", "x"], {}, "predicate must be bool"),
    ("log", ["i"], {}, "expected a float dtype"),
])
def test_type_rule_errors(opcode, inputs, attrs, pattern):
    g = Graph()
    vals = {"x": g.param(t(2, 3), "x"), "i": g.param(t(2, 3, dtype="int32"), "i")}
    with pytest.raises(GraphError, match=pattern):
        g.add_op(opcode, [vals[n] for n in inputs], attrs)


def test_values_must_belong_to_the_graph():
    g1, g2 = Graph("one"), Graph("two")
    x = g1.param(t(2), "x")
    with pytest.raises(GraphError, match="not a value of graph two"):
        g2.add_op("exp", [x])
    with pytest.raises(GraphError, match="already used"):
        g1.param(t(2), "x")


def test_verify_catches_hand_edited_graphs():
    g = mlp_graph()
    g.verify()
    g.ops.reverse()  # now %1 = exp(%0) comes before %0 is defined
    with pytest.raises(GraphError, match="operand 0 %0 is used before it is defined"):
        g.verify()
    g = mlp_graph()
    bad = g.ops[1]
    g.ops[1] = Op(bad.opcode, bad.inputs, bad.attrs, Value("1", t(1)), None)
    with pytest.raises(GraphError, match="result type is f32\\[1\\] but the type rule of exp"):
        g.verify()
    empty = Graph("empty")
    with pytest.raises(GraphError, match="no outputs"):
        empty.verify()


def test_evaluate_matches_numpy(rng):
    g = mlp_graph()
    x = rng.standard_normal((200, 300), dtype=np.float32) * 0.05
    w = rng.standard_normal((300, 700), dtype=np.float32) * 0.05
    (out,) = evaluate(g, x, w)
    assert out.dtype == np.float32 and out.shape == (200, 700)
    np.testing.assert_allclose(out, np.exp(x.astype(np.float64) @ w), rtol=1e-5)


def test_evaluate_checks_arguments():
    g = mlp_graph()
    with pytest.raises(GraphError, match="takes 2 argument"):
        evaluate(g, np.zeros((200, 300)))
    with pytest.raises(GraphError, match=r"argument 1 for %w: shape \[300, 7\]"):
        evaluate(g, np.zeros((200, 300)), np.zeros((300, 7)))


def test_broadcast_binary_inserts_explicit_broadcasts(rng):
    g = Graph()
    x = g.param(t(4, 1, 3), "x")
    b = g.param(t(5, 1), "b")
    y = broadcast_binary(g, "add", x, b)
    z = broadcast_binary(g, "multiply", y, 2.0)
    g.set_outputs([z])
    g.verify()
    assert y.type == t(4, 5, 3)
    assert [op.opcode for op in g.ops] == ["reshape", "broadcast", "reshape", "broadcast", "add",
                                           "constant", "broadcast", "multiply"]
    xs, bs = rng.standard_normal((4, 1, 3)), rng.standard_normal((5, 1))
    np.testing.assert_allclose(evaluate(g, xs, bs)[0], (xs + bs) * 2, rtol=1e-5, atol=1e-6)
    with pytest.raises(GraphError, match="do not broadcast"):
        broadcast_binary(g, "add", x, g.param(t(2, 4), "c"))


def test_graph_from_existing_lists_can_be_extended_and_verified():
    g = mlp_graph()
    h = Graph("copy", g.params, g.ops, g.outputs)
    h.verify()
    h.set_outputs([h.add_op("negate", [h.outputs[0]])])
    assert str(h).splitlines()[3] == "  %2 = negate(%1) : f32[200,700]"
    h.verify()


def test_prune_removes_dead_ops():
    g = Graph()
    x = g.param(t(3), "x")
    g.add_op("exp", [x])
    live = g.add_op("negate", [x])
    g.set_outputs([live])
    assert g.prune() == 1
    assert [op.opcode for op in g.ops] == ["negate"]
    g.verify()


def test_every_op_has_type_rule_reference_and_lower_slot():
    for name, opdef in OPS.items():
        assert opdef.name == name and callable(opdef.type_rule) and callable(opdef.reference)
        assert opdef.lower is None or callable(opdef.lower)  # filled in by the lowering rules
