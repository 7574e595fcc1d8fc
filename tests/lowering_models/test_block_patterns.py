"""Transformer-block patterns: multi-head attention in the projections' row layout
(``mh_attention``: no head-split transposes, constant masks folded and whole masked key blocks
skipped) and feed-forward blocks with the hidden activation resident in SBUF (``ffn``). Each is
compared with JAX or with the graph's NumPy oracle, and the structure that makes it fast is
checked on the lowered program."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import neuron
from device.arch import get_arch
from device.errors import UserKernelError
from device.executor import run
from lowering import Graph, TensorType, evaluate, lower_graph
from lowering.ir.ops import OPS, RuleError
from lowering.ir.types import GraphError
from lowering.lower.patterns import fuse_patterns


def mha(x, wqkv, H, causal, mask=None):
    S, E = x.shape
    D = E // H
    q, k, v = jnp.split(x @ wqkv, 3, axis=-1)
    q, k, v = (t.reshape(S, H, D).transpose(1, 0, 2) for t in (q, k, v))
    s = (q @ k.transpose(0, 2, 1)).astype(jnp.float32) / np.sqrt(D)
    if causal:
        s = jnp.where(jnp.tril(jnp.ones((S, S), bool)), s, -1e9)
    if mask is not None:
        s = jnp.where(mask, s, -1e9)
    return (jax.nn.softmax(s, -1).astype(x.dtype) @ v).transpose(1, 0, 2).reshape(S, E)


def _ops(f):
    return [o.opcode for o in fuse_patterns(f.graph).ops]


def _count(prog, name):
    return sum(1 for i in prog.instrs if i.op.name == name)


@pytest.mark.parametrize("dtype,S,E,H,causal", [(jnp.bfloat16, 384, 128, 4, True),
                                                (jnp.bfloat16, 256, 128, 2, True),
                                                (np.float32, 200, 96, 2, False),
                                                (np.float32, 640, 64, 2, True)])
def test_multi_head_attention_in_row_layout_matches_jax(dtype, S, E, H, causal):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((S, E)).astype(dtype)
    w = (rng.standard_normal((E, 3 * E)) / np.sqrt(E)).astype(dtype)
    fn = lambda x, w: mha(x, w, H, causal)
    f = neuron.from_jax(fn).imported(x, w)
    ops = _ops(f)
    assert "mh_attention" in ops and "transpose" not in ops and "slice" not in ops
    assert ops.count("constant") == (1 if causal else 0)         # the folded causal mask
    prog = f.program()
    want = np.asarray(jax.jit(fn)(x, w)).astype(np.float32)
    tol = 2e-5 if dtype == np.float32 else 3e-2
    np.testing.assert_allclose(f(x, w).astype(np.float32), want, rtol=tol, atol=tol)
    np.testing.assert_allclose(f.reference(x, w).astype(np.float32), want, rtol=tol, atol=tol)
    if causal and S <= 512:                    # key blocks above the diagonal are skipped
        blocks = -(-S // 128)
        pv = H * blocks * (blocks + 1) // 2    # P V matmuls: one per (head, kept key block)
        qk = H * blocks
        dot_matmuls = _count(prog, "nc_matmul") - qk - pv
        assert dot_matmuls == -(-E // 128) * -(-3 * E // 512) * blocks


def test_a_fully_masked_row_keeps_the_uniform_softmax():
    """Key blocks are skipped only when every query keeps a key: a row masked everywhere is a
    uniform softmax over all keys, as in JAX."""
    rng = np.random.default_rng(3)
    S, E, H = 256, 64, 2
    x = rng.standard_normal((S, E)).astype(np.float32)
    w = (rng.standard_normal((E, 3 * E)) / 8).astype(np.float32)
    mask = np.tril(np.ones((S, S), bool))
    mask[5] = False
    fn = lambda x, w: mha(x, w, H, False, jnp.asarray(mask))
    f = neuron.from_jax(fn).imported(x, w)
    assert "mh_attention" in _ops(f)
    want = np.asarray(jax.jit(fn)(x, w))
    np.testing.assert_allclose(f(x, w), want, rtol=2e-5, atol=2e-5)


def test_a_mask_that_depends_on_an_argument_is_not_folded():
    rng = np.random.default_rng(4)
    S, E, H = 128, 64, 2
    x = rng.standard_normal((S, E)).astype(np.float32)
    w = (rng.standard_normal((E, 3 * E)) / 8).astype(np.float32)
    m = rng.random((S, S)) < 0.7
    m[:, 0] = True
    fn = lambda x, w, m: mha(x, w, H, False, m)
    f = neuron.from_jax(fn).imported(x, w, m)
    ops = _ops(f)
    assert "mh_attention" in ops and "constant" not in ops
    np.testing.assert_allclose(f(x, w, m), np.asarray(jax.jit(fn)(x, w, m)), rtol=2e-5,
                               atol=2e-5)


def _mh_graph(S, C, H, D, dtype="bfloat16"):
    g = Graph("mha")
    x = g.param(TensorType((S, C), dtype), "qkv")
    g.set_outputs([g.add_op("mh_attention", [x, x, x], {
        "heads": H, "head_dim": D, "offsets": (0, H * D, 2 * H * D), "divide": 8.0,
        "score_dtype": dtype, "prob_dtype": dtype, "out_dtype": dtype})])
    return g


def test_mh_attention_refuses_what_does_not_fit_in_sbuf():
    g = _mh_graph(8192, 3 * 1024, 16, 64)
    with pytest.raises(UserKernelError, match=r"mh_attention: .*16 heads x 8192 keys need "
                                              r"\d+ B of SBUF per partition"):
        lower_graph(g, "trn1")


@pytest.mark.parametrize("build,msg", [
    (lambda: _mh_graph(16, 20, 2, 4), r"mh_attention: operand 2 %qkv has type bf16\[16,20\] "
                                      r"\(a 2-D operand with columns \[16, 24\) for 2 heads x 4"),
    (lambda: _mh_graph(16, 24, 0, 4), r"mh_attention: heads and head_dim must be >= 1, got 0"),
])
def test_mh_attention_type_rule_errors(build, msg):
    with pytest.raises(GraphError, match=msg):
        build()


def test_mh_attention_mask_and_value_errors():
    t = lambda *s, d="float32": TensorType(s, d)  # noqa: E731
    rule = OPS["mh_attention"].type_rule
    a = {"heads": 2, "head_dim": 4, "offsets": (0, 0, 0), "out_dtype": "float32"}
    with pytest.raises(RuleError, match=r"keys f32\[16,8\] and values f32\[12,8\] differ"):
        rule([t(16, 8), t(16, 8), t(12, 8)], a)
    with pytest.raises(RuleError, match=r"the mask must be bool\[10,16\]"):
        rule([t(10, 8), t(16, 8), t(16, 8), t(10, 16, d="float32")], a)
    with pytest.raises(RuleError, match=r"takes q, k, v and an optional mask, got 2 operands"):
        rule([t(10, 8), t(16, 8)], a)


def test_ffn_type_rule_errors():
    t = lambda *s: TensorType(s, "float32")  # noqa: E731
    rule = OPS["ffn"].type_rule
    base = {"act": "tanh", "h_dtype": "float32", "y_dtype": "float32", "out_dtype": "float32",
            "residual": False, "norm_eps": None}
    with pytest.raises(RuleError, match=r"do not chain as \[S, D\] @ \[D, F\] @ \[F, E\]"):
        rule([t(8, 4), t(5, 16), t(16, 4)], base)
    with pytest.raises(RuleError, match=r"activation 'add' is not a one-operand ScalarE"):
        rule([t(8, 4), t(4, 16), t(16, 4)], dict(base, act="add"))
    with pytest.raises(RuleError, match=r"residual .* must be \[8, 4\]"):
        rule([t(8, 4), t(4, 16), t(16, 4), t(8, 5)], dict(base, residual=True))
    with pytest.raises(RuleError, match=r"ffn takes x, w1, w2, residual, got 3 operands"):
        rule([t(8, 4), t(4, 16), t(16, 4)], dict(base, residual=True))
    with pytest.raises(RuleError, match=r"layer norm scale / offset must be f32\[4\]"):
        rule([t(8, 4), t(4, 16), t(16, 4), t(5)], dict(base, norm_eps=1e-5))
    with pytest.raises(RuleError, match=r"norm_dot shapes f32\[8,4\] and f32\[5,16\] do not "
                                        r"chain"):
        OPS["norm_dot"].type_rule([t(8, 4), t(5, 16)], {"eps": 1e-5, "out_dtype": "float32"})


def _ffn_graph(S, D, F, E, dtype, act, residual):
    g = Graph("mlp")
    x = g.param(TensorType((S, D), dtype), "x")
    w1, w2 = g.param(TensorType((D, F), dtype), "w1"), g.param(TensorType((F, E), dtype), "w2")
    dot = lambda a, b: g.add_op("dot", [a, b], {"lhs_contract": [1], "rhs_contract": [0]})  # noqa
    y = dot(g.add_op(act, [dot(x, w1)]), w2)
    if residual:
        r = g.param(TensorType((S, E), dtype), "r")
        y = g.add_op("add", [r, y])
    g.set_outputs([y])
    return g


@settings(max_examples=8, deadline=None)
@given(S=st.integers(1, 300), D=st.integers(1, 200), F=st.integers(1, 300),
       E=st.integers(1, 600), dtype=st.sampled_from(["float32", "bfloat16"]),
       act=st.sampled_from(["tanh", "gelu_tanh", "silu", "exp"]), residual=st.booleans())
def test_ffn_matches_the_chain_it_replaces(S, D, F, E, dtype, act, residual):
    g = _ffn_graph(S, D, F, E, dtype, act, residual)
    assert [o.opcode for o in fuse_patterns(g).ops] == ["ffn"]
    rng = np.random.default_rng(S * 7 + D)
    xs = [(rng.standard_normal(p.type.shape) / np.sqrt(max(p.type.shape[0], 1)))
          .astype(p.type.np_dtype) for p in g.params]
    prog = lower_graph(g, "trn1")
    got = run(prog, xs)[0].reshape(S, E).astype(np.float32)
    want = evaluate(g, *xs)[0].astype(np.float32)
    tol = 1e-4 if dtype == "float32" else 2e-2
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_ffn_keeps_the_hidden_activation_on_chip():
    S, D, F, E = 256, 128, 512, 128
    prog = lower_graph(_ffn_graph(S, D, F, E, "bfloat16", "gelu_tanh", True), "trn1")
    hbm = [s for s in prog.storages if s.buffer.name.endswith("hbm") and s.kind == "tile"
           and int(np.prod(s.shape)) >= S * F]
    assert hbm == []
    assert _count(prog, "nc_transpose") == (S // 128) * (D // 128)     # only x is transposed


def test_ffn_too_big_for_sbuf_is_lowered_as_its_chain():
    small = dataclasses.replace(get_arch("trn1"), sbuf_usable_bytes_per_partition=4096)
    g = _ffn_graph(130, 64, 300, 70, "float32", "tanh", True)
    prog = lower_graph(g, small)
    scratch = [s for s in prog.storages if s.buffer.name.endswith("hbm") and s.kind == "tile"
               and tuple(s.shape) == (130, 300)]
    assert scratch                                   # the hidden activation goes through HBM
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal(p.type.shape).astype(np.float32) / 8 for p in g.params]
    np.testing.assert_allclose(run(prog, xs)[0].reshape(130, 70), evaluate(g, *xs)[0],
                               rtol=1e-4, atol=1e-4)


def test_a_hidden_activation_used_elsewhere_is_not_fused():
    g = Graph("mlp")
    x = g.param(TensorType((64, 32), "float32"), "x")
    w1, w2 = g.param(TensorType((32, 48), "float32"), "w1"), \
        g.param(TensorType((48, 32), "float32"), "w2")
    h = g.add_op("tanh", [g.add_op("dot", [x, w1], {"lhs_contract": [1], "rhs_contract": [0]})])
    y = g.add_op("dot", [h, w2], {"lhs_contract": [1], "rhs_contract": [0]})
    g.set_outputs([y, h])
    assert "ffn" not in [o.opcode for o in fuse_patterns(g).ops]


def _block(S, E, H, F):
    def ln(x, g, b):
        x32 = x.astype(jnp.float32)
        mu = x32.mean(-1, keepdims=True)
        var = ((x32 - mu) ** 2).mean(-1, keepdims=True)
        return ((x32 - mu) * jax.lax.rsqrt(var + 1e-5) * g + b).astype(x.dtype)

    def block(x, wqkv, wo, w1, w2, g1, b1, g2, b2):
        x = x + mha(ln(x, g1, b1), wqkv, H, True) @ wo
        return x + jax.nn.gelu(ln(x, g2, b2) @ w1) @ w2
    return block


def test_a_pre_norm_transformer_block_is_five_ops_and_matches_jax():
    """GPT-2's block shape, small: both layer norms fold into the products they feed, the
    attention runs in the row layout, the MLP keeps its hidden activation on chip."""
    S, E, H, F = 256, 128, 2, 512
    rng = np.random.default_rng(5)
    bf = jnp.bfloat16
    w = lambda *s: (rng.standard_normal(s) / np.sqrt(s[0])).astype(bf)  # noqa: E731
    args = [rng.standard_normal((S, E)).astype(bf), w(E, 3 * E), w(E, E), w(E, F), w(F, E),
            (1 + rng.standard_normal(E) / 4).astype(np.float32),
            rng.standard_normal(E).astype(np.float32) / 4]
    args += [args[5], args[6]]
    block = _block(S, E, H, F)
    f = neuron.from_jax(block).imported(*args)
    assert _ops(f) == ["norm_dot", "constant", "mh_attention", "dot", "add", "ffn"]
    prog = f.program("trn1")
    scratch = sorted(int(np.prod(s.shape)) for s in prog.storages
                     if s.buffer.name.endswith("hbm") and s.kind == "tile")
    assert scratch == [S * E] * 3 + [S * 3 * E]      # attention, x1, the output; qkv
    want = np.asarray(jax.jit(block)(*args)).astype(np.float32)
    np.testing.assert_allclose(f(*args).astype(np.float32), want, rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("sbuf", [None, 2048])
def test_layer_norms_folded_into_products_match_the_oracle(sbuf):
    """norm_dot and an ffn with a folded norm, resident and (SBUF too small) as their chains."""
    arch = get_arch("trn1")
    if sbuf:
        arch = dataclasses.replace(arch, sbuf_usable_bytes_per_partition=sbuf)
    g = Graph("prenorm")
    f32 = lambda *s: TensorType(s, "float32")  # noqa: E731
    x, w, sc, of = (g.param(f32(*s), n) for s, n in [((130, 96), "x"), ((96, 200), "w"),
                                                     ((96,), "g"), ((96,), "b")])
    w1, w2 = g.param(f32(96, 160), "w1"), g.param(f32(160, 96), "w2")
    dot = lambda a, b: g.add_op("dot", [a, b], {"lhs_contract": [1], "rhs_contract": [0]})  # noqa
    ln = lambda: g.add_op("layer_norm", [x, sc, of], {"eps": 1e-5, "out_dtype": "float32"})  # noqa
    y = g.add_op("add", [dot(g.add_op("silu", [dot(ln(), w1)]), w2), x])
    g.set_outputs([dot(ln(), w), y])
    assert sorted(o.opcode for o in fuse_patterns(g).ops) == ["ffn", "norm_dot"]
    rng = np.random.default_rng(6)
    xs = [rng.standard_normal(p.type.shape).astype(np.float32) / 4 for p in g.params]
    prog = lower_graph(g, arch)
    ln_scratch = [s for s in prog.storages if s.buffer.name.endswith("hbm") and
                  s.kind == "tile" and tuple(s.shape) == (130, 96) and s not in prog.outputs]
    assert len(ln_scratch) == (2 if sbuf else 0)     # the chains write the norms to HBM
    outs = run(prog, xs)
    for got, want in zip(outs, evaluate(g, *xs)):
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- convolution

def _conv_fn(strides, pad, rhs_dil, groups, fmt):
    dn = ("NCHW", "OIHW", "NCHW") if fmt == "NCHW" else ("NHWC", "HWIO", "NHWC")
    return lambda x, w: jax.lax.conv_general_dilated(
        x, w, strides, pad, rhs_dilation=rhs_dil, dimension_numbers=dn,
        feature_group_count=groups)


@settings(max_examples=10, deadline=None)
@given(fmt=st.sampled_from(["NCHW", "NHWC"]), n=st.integers(1, 2), hw=st.integers(3, 12),
       cg=st.integers(1, 5), og=st.integers(1, 6), groups=st.sampled_from([1, 1, 2]),
       k=st.integers(1, 3), stride=st.integers(1, 2), dil=st.integers(1, 2),
       pad=st.integers(0, 2), dtype=st.sampled_from([np.float32, jnp.bfloat16]))
def test_direct_convolution_matches_jax(fmt, n, hw, cg, og, groups, k, stride, dil, pad,
                                        dtype):
    assume((k - 1) * dil + 1 <= hw + 2 * pad)   # at least one output position
    rng = np.random.default_rng(hw * 31 + cg)
    C, O = cg * groups, og * groups
    xs = (n, C, hw, hw + 1) if fmt == "NCHW" else (n, hw, hw + 1, C)
    ws = (O, cg, k, k) if fmt == "NCHW" else (k, k, cg, O)
    x = rng.standard_normal(xs).astype(dtype)
    w = (rng.standard_normal(ws) / k).astype(dtype)
    fn = _conv_fn((stride, 1), [(pad, pad), (pad, 0)], (dil, 1), groups, fmt)
    f = neuron.from_jax(fn).imported(x, w)
    prog = f.program("trn1")
    ops = [i.op.name for i in prog.instrs]
    if cg == 1 and groups > 1:             # depthwise: per-tap multiply-adds on the VectorE
        assert "nc_matmul" not in ops and ops.count("tensor_scalar") == n * og
    else:
        assert ops.count("nc_matmul") > 0
    assert not [s for s in prog.storages if s.buffer.name.endswith("hbm") and s.kind == "tile"
                and s not in prog.outputs]             # no HBM scratch between taps
    want = np.asarray(jax.jit(fn)(x, w)).astype(np.float32)
    tol = 1e-5 if dtype == np.float32 else 2e-2
    np.testing.assert_allclose(f(x, w).astype(np.float32), want, rtol=tol, atol=tol)


def test_every_conv_schedule_in_the_space_gives_the_same_result():
    from lowering.lower.driver import groups_of
    from lowering.lower.rules.conv import ConvSchedule
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 6, 9, 8)).astype(np.float32)
    w = rng.standard_normal((3, 3, 8, 20)).astype(np.float32) / 3
    fn = _conv_fn((1, 1), "SAME", (1, 1), 1, "NHWC")
    graph = neuron.from_jax(fn).imported(x, w).graph
    (group,) = [g for g in groups_of(graph) if g.root.opcode == "convolution"]
    arch = get_arch("trn1")
    space = ConvSchedule.space(group.problem(), arch)
    assert space[0] == ConvSchedule(rows=6, o_tile=20, direct=True, pos_major=True)
    assert ConvSchedule(direct=False) in space and len(space) > 6
    want = np.asarray(jax.jit(fn)(x, w))
    for sched in space[:8]:
        prog = lower_graph(graph, arch, schedules={group.key: sched})
        np.testing.assert_allclose(run(prog, [x, w])[0].reshape(want.shape), want, rtol=1e-5,
                                   atol=1e-5, err_msg=str(sched))
    bad = ConvSchedule(rows=20, pos_major=True)
    assert "rows=20 x 9 output columns = 180 exceed 128 (partitions)" in \
        bad.check(group.problem(), arch)


def test_einsum_style_attention_with_a_scaled_query_is_one_row_layout_kernel():
    """Equinox / Flax write heads as [S, H, D] einsums with the query scaled first."""
    S, E, H = 192, 128, 4
    D = E // H
    rng = np.random.default_rng(9)
    x = rng.standard_normal((S, E)).astype(np.float32)
    ws = [(rng.standard_normal((E, E)) / np.sqrt(E)).astype(np.float32) for _ in range(3)]

    def fn(x, wq, wk, wv):
        q, k, v = ((x @ w).reshape(S, H, D) for w in (wq, wk, wv))
        s = jnp.einsum("shd,Shd->hsS", q / np.sqrt(D).astype(np.float32), k)
        o = jnp.einsum("hsS,Shd->hsd", jax.nn.softmax(s, -1), v)
        return o.transpose(1, 0, 2).reshape(S, E)
    f = neuron.from_jax(fn).imported(x, *ws)
    ops = _ops(f)
    assert ops.count("mh_attention") == 1 and "transpose" not in ops
    np.testing.assert_allclose(f(x, *ws), np.asarray(jax.jit(fn)(x, *ws)), rtol=2e-5,
                               atol=2e-5)
