"""HLO text import: JAX-generated modules evaluated against jax.jit, the TF/XLA long form,
and every error path by its message. All HLO text is generated here or written inline."""
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowering import HloImportError, evaluate, parse_hlo

BF16 = ml_dtypes.bfloat16


def hlo_of(f, *args) -> str:
    return jax.jit(f).lower(*args).as_text(dialect="hlo")


def check_against_jax(f, *args, rtol=1e-5, atol=1e-6):
    graph = parse_hlo(hlo_of(f, *args))
    graph.verify()
    ours = evaluate(graph, *args)
    theirs = jax.jit(f)(*args)
    theirs = list(theirs) if isinstance(theirs, (tuple, list)) else [theirs]
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        t = np.asarray(t)
        assert o.shape == t.shape and o.dtype == t.dtype
        np.testing.assert_allclose(o.astype(np.float64), t.astype(np.float64), rtol=rtol,
                                   atol=atol)
    return graph


def randn(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------ JAX programs

def mlp(x, w, b):
    return jnp.exp(x @ w + b)


def softmax(x):
    e = jnp.exp(x - jnp.max(x, axis=-1, keepdims=True))
    return e / jnp.sum(e, axis=-1, keepdims=True)


def layernorm(x, g, b):
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + 1e-5) * g + b


def attention(q, k, v):
    s = q @ k.T / np.sqrt(q.shape[-1]).astype(np.float32)
    mask = jnp.tril(jnp.ones((q.shape[0], k.shape[0]), bool))
    s = jnp.where(mask, s, -1e9)
    return jax.nn.softmax(s, axis=-1) @ v


def test_mlp_exp(rng):
    x, w, b = randn(rng, 200, 300) * 0.05, randn(rng, 300, 700) * 0.05, randn(rng, 700) * 0.1
    graph = check_against_jax(mlp, x, w, b)
    assert [op.opcode for op in graph.ops][0] == "dot"


def test_softmax_with_max_and_sum_reductions(rng):
    graph = check_against_jax(softmax, randn(rng, 7, 300))
    assert {op.attrs.get("kind") for op in graph.ops if op.opcode == "reduce"} == {"max", "add"}
    assert graph.prune() == 0  # the reduce init constants were never emitted


def test_layernorm_and_gelu_mlp(rng):
    check_against_jax(layernorm, randn(rng, 4, 16), randn(rng, 16), randn(rng, 16))
    gelu_mlp = lambda x, w: jax.nn.gelu(x @ w, approximate=True)
    check_against_jax(gelu_mlp, randn(rng, 4, 8), randn(rng, 8, 16))


def test_attention_with_call_iota_compare_select(rng):
    graph = check_against_jax(attention, randn(rng, 6, 8), randn(rng, 6, 8), randn(rng, 6, 8))
    opcodes = {op.opcode for op in graph.ops}
    assert {"iota", "compare", "select", "transpose"} <= opcodes


def test_reshape_transpose(rng):
    f = lambda x: jnp.transpose(x.reshape(6, 5, 4), (2, 0, 1)).reshape(4, 30) * 2.0
    check_against_jax(f, randn(rng, 3, 2, 20))


def test_bf16_inputs(rng):
    f = lambda x, w, b: jax.nn.relu(x @ w + b)
    x, w = randn(rng, 16, 32, dtype=BF16), randn(rng, 32, 8, dtype=BF16)
    b = randn(rng, 8, dtype=BF16)
    graph = check_against_jax(f, x, w, b, rtol=2e-2, atol=2e-2)
    assert "bf16[16,32]" in str(graph)


def test_batched_dot_general_via_einsum(rng):
    f = lambda a, b: jnp.einsum("bij,bjk->bik", a, b) + jnp.einsum("bij,bjk->bik", a, b)
    graph = check_against_jax(f, randn(rng, 2, 3, 4), randn(rng, 2, 4, 5))
    dot = next(op for op in graph.ops if op.opcode == "dot")
    assert dot.attrs["lhs_batch"] == (0,) and dot.attrs["rhs_contract"] == (1,)
    g2 = lambda a, b: jnp.einsum("ikb,kjb->bij", a, b)  # batch dim last: non-trivial layout
    check_against_jax(g2, randn(rng, 3, 4, 2), randn(rng, 4, 5, 2))


def test_multiple_outputs_from_root_tuple(rng):
    f = lambda x: (jnp.sum(x, axis=0), jnp.max(x, axis=1), jnp.min(x), jnp.prod(x, axis=1))
    graph = check_against_jax(f, randn(rng, 4, 6))
    assert len(graph.outputs) == 4


def test_convert_and_integer_ops(rng):
    f = lambda x, i: ((x * 3).astype(jnp.int32) + i, jnp.abs(-x).astype(jnp.float16))
    check_against_jax(f, randn(rng, 5, 3), np.arange(15, dtype=np.int32).reshape(5, 3))


@given(m=st.sampled_from([1, 7, 200]), k=st.sampled_from([1, 7, 300]),
       n=st.sampled_from([1, 7, 200, 300]), seed=st.integers(0, 1000))
def test_property_exp_of_affine_matches_jax(m, k, n, seed):
    rng = np.random.default_rng(seed)
    scale = np.float32(1 / np.sqrt(k))
    check_against_jax(lambda x, w, b: jnp.tanh(jnp.exp(x @ w * scale + b) - 1.0),
                      randn(rng, m, k), randn(rng, k, n), randn(rng, n), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ TF / XLA long form

LONG_FORM = """\
HloModule a_inference_f_12__.7, entry_computation_layout={(f32[2,3]{1,0}, f32[3]{0})->(f32[2,3]{1,0}, f32[2]{0})}

%sum_reducer.3 (x.4: f32[], y.5: f32[]) -> f32[] {
  %x.4 = f32[] parameter(0)
  %y.5 = f32[] parameter(1)
  ROOT %add.6 = f32[] add(f32[] %x.4, f32[] %y.5)
}

ENTRY %a_inference_f_12__.7 (arg0.1: f32[2,3], arg1.2: f32[3]) -> (f32[2,3], f32[2]) {
  %two.8 = f32[] constant(2), metadata={op_type="Mul" op_name="mul" source_file="f.py" source_line=3}
  %arg1.2 = f32[3]{0} parameter(1), parameter_replication={false}, metadata={op_name="XLA_Args"}
  %arg0.1 = f32[2,3]{1,0} parameter(0), parameter_replication={false}, metadata={op_name="XLA_Args"}
  %bc.9 = f32[2,3]{1,0} broadcast(f32[3]{0} %arg1.2), dimensions={1}
  %bt.10 = f32[2,3]{1,0} broadcast(f32[] %two.8), dimensions={}
  %mul.11 = f32[2,3]{1,0} multiply(f32[2,3]{1,0} %arg0.1, f32[2,3]{1,0} %bt.10), frontend_attributes={a="b"}
  %add.12 = f32[2,3]{1,0} add(f32[2,3]{1,0} %mul.11, f32[2,3]{1,0} %bc.9)
  %init.13 = f32[] constant(1.5)
  %sum.14 = f32[2]{0} reduce(f32[2,3]{1,0} %add.12, f32[] %init.13), dimensions={1}, to_apply=%sum_reducer.3
  %tuple.15 = (f32[2,3]{1,0}, f32[2]{0}) tuple(f32[2,3]{1,0} %add.12, f32[2]{0} %sum.14)
  %gte.16 = f32[2,3]{1,0} get-tuple-element((f32[2,3]{1,0}, f32[2]{0}) %tuple.15), index=0
  %gte.17 = f32[2]{0} get-tuple-element((f32[2,3]{1,0}, /*index=1*/f32[2]{0}) %tuple.15), index=1
  ROOT %out.18 = (f32[2,3]{1,0}, f32[2]{0}) tuple(f32[2,3]{1,0} %gte.16, f32[2]{0} %gte.17)
}

FileNames
1 "f.py"

StackFrames
1 {file_location_id=1 parent_frame_id=1}
"""


def test_long_form_with_sigils_tuples_metadata_and_tables():
    graph = parse_hlo(LONG_FORM)
    graph.verify()
    assert [p.name for p in graph.params] == ["arg0.1", "arg1.2"]  # ordered by parameter(N)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([10, 20, 30], np.float32)
    y, s = evaluate(graph, x, b)
    np.testing.assert_allclose(y, x * 2 + b)
    np.testing.assert_allclose(s, (x * 2 + b).sum(axis=1) + 1.5)  # non-identity init folded in


def test_constant_literals():
    text = """HloModule c
ENTRY e {
  a = f32[2,2]{1,0} constant({ { 1, -2.5 }, { inf, -inf } })
  p = pred[3]{0} constant({true, false, true})
  i = s32[3]{0} iota(), iota_dimension=0
  z = s32[3]{0} constant({0, 0, 0})
  c = s32[3]{0} select(p, i, z)
  ROOT t = (f32[2,2]{1,0}, s32[3]{0}) tuple(a, c)
}"""
    a, c = evaluate(parse_hlo(text))
    np.testing.assert_array_equal(a, [[1, -2.5], [np.inf, -np.inf]])
    np.testing.assert_array_equal(c, [0, 0, 2])


# ------------------------------------------------------------------ error paths

def test_unsupported_opcode_names_opcode_instruction_and_line():
    text = hlo_of(lambda p, x: jax.lax.cond(p, jnp.sin, jnp.cos, x), True,
                  np.ones((4, 5), np.float32))
    with pytest.raises(HloImportError) as e:
        parse_hlo(text)
    line = next(n for n, s in enumerate(text.splitlines(), 1) if " conditional(" in s)
    name = text.splitlines()[line - 1].split("=")[0].replace("ROOT", "").strip()
    assert str(e.value).startswith(f"unsupported HLO opcode 'conditional' in instruction "
                                   f"'{name}' (line {line})")


def test_post_optimization_hlo_gets_a_hint():
    x = np.ones((4, 8), np.float32)
    text = jax.jit(softmax).lower(x).compile().as_text()
    with pytest.raises(HloImportError, match=r"(?s)unsupported HLO opcode .*hint: .*"
                                             r"pre-optimization"):
        parse_hlo(text)


def test_elided_large_constant():
    c = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
    text = jax.jit(lambda x: x @ c).lower(c).compiler_ir("hlo").as_hlo_text()
    assert "constant({...})" in text
    with pytest.raises(HloImportError, match=r"large constants were left out.*"
                                             r"print_large_constants=True"):
        parse_hlo(text)
    full = jax.jit(lambda x: x @ c).lower(c).compiler_ir("hlo").as_hlo_text(
        print_large_constants=True)
    np.testing.assert_allclose(evaluate(parse_hlo(full), c)[0], c @ c, rtol=1e-6)


GOOD = """HloModule m
ENTRY main {
  x = f32[4,8]{1,0} parameter(0)
  ROOT y = f32[4,8]{1,0} exponential(x)
}"""


@pytest.mark.parametrize("old, new, pattern", [
    ("ENTRY main", "main", r"no ENTRY computation found"),
    ("f32[4,8]{1,0} parameter", "f32[4;8]{1,0} parameter",
     r"bad shape: expected ',' or ']' between dimensions but found ';' \(line 3\)\n"
     r"  x = f32\[4;8\]"),
    ("f32[4,8]{1,0} parameter", "g32[4,8]{1,0} parameter", r"'g32' is not an HLO element type"),
    ("exponential(x)", "exponential(w)",
     r"operand 'w' of instruction 'y' is not defined in computation 'main' \(line 4\)"),
    ("exponential(x)", "exponential(x",
     r"unbalanced brackets: '\(' is not closed before '}' on line 5 \(line 4\)"),
    ("(x)\n}", "(x)\n}}", r"unbalanced brackets: unexpected '}' \(line 5\)"),
    ("(x)\n}", "(x)\n", r"unbalanced brackets: '{' is never closed \(line 2\)"),
    ("exponential(x)", "exponential(x), algorithm=fast",
     r"unsupported attribute 'algorithm' on HLO opcode 'exponential' in instruction 'y'"),
    ("f32[4,8]{1,0} exponential", "f32[4,9]{1,0} exponential",
     r"instruction 'y' declares f32\[4,9\] but exp computes f32\[4,8\] \(line 4\)"),
    ("f32[4,8]{1,0} parameter", "c64[4,8]{1,0} parameter", r"element type 'c64' .* not supported"),
])
def test_malformed_text(old, new, pattern):
    assert old in GOOD
    with pytest.raises(HloImportError, match=pattern):
        parse_hlo(GOOD.replace(old, new))


def test_type_error_inside_hlo_is_reported_with_line():
    text = GOOD.replace("ROOT y = f32[4,8]{1,0} exponential(x)",
                        "w = f32[8,4]{1,0} parameter(1)\n"
                        "  ROOT y = f32[4,8]{1,0} add(x, w)")
    with pytest.raises(HloImportError, match=r"instruction 'y' \(add\): add: operand 1 %w has "
                                             r"type f32\[8,4\]; expected f32\[4,8\].*\(line 5\)"):
        parse_hlo(text)


def test_unsupported_reducer_and_variadic_reduce():
    # (argmax and jnp.any import now; a sum-and-product pair and a custom reducer do not)
    pair = hlo_of(lambda x: jax.lax.reduce((x, x), (0.0, 1.0), lambda a, b: (a[0] + b[0],
                                                                           a[1] * b[1]), (1,)),
                  np.ones((4, 6), np.float32))
    with pytest.raises(HloImportError, match="variadic reduce"):
        parse_hlo(pair)
    odd = hlo_of(lambda x: jax.lax.reduce(x, 0.0, lambda a, b: a * 2 + b, (1,)),
                 np.ones((4, 6), np.float32))
    with pytest.raises(HloImportError, match=r"must compute add, maximum, minimum, multiply"):
        parse_hlo(odd)
