"""Fusion of element-wise chains and dot epilogues (lowering/fusion.py): the fused lowering must
give bit-identical results to the op-by-op lowering, keep the graph IR unchanged, and actually
remove the HBM round trips of single-use intermediates."""
import warnings

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

from device.executor import run, run_reference
from device.profile import profile
from lowering import evaluate
from lowering import plan
from lowering.ir.graph import Graph
from lowering import broadcast_binary
from lowering import lower_graph
from lowering.ir.types import TensorType

BF16 = "bfloat16"


def lower_run(g, xs, fuse):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = lower_graph(g, "trn1", fuse=fuse)
        return prog, run(prog, xs)


def assert_bits_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes(), np.abs(x.astype(np.float64) - y.astype(np.float64)).max()


def both(g, xs):
    """Run fused and unfused; assert bit equality and an unchanged graph; return the fused run."""
    text = str(g)
    p0, r0 = lower_run(g, xs, fuse=False)
    p1, r1 = lower_run(g, xs, fuse=True)
    assert str(g) == text
    assert_bits_equal(r0, r1)
    return p0, p1, r1


def data(rng, shape, dt):
    return (rng.standard_normal(shape) * 0.5).astype(ml_dtypes.bfloat16 if dt == BF16 else dt)


def mm_graph(M, K, N, dt, epilogue, batch=0):
    g = Graph("f")
    lead = (batch,) if batch else ()
    x = g.param(TensorType(lead + (M, K), dt), "x")
    w = g.param(TensorType(lead + (K, N), dt), "w")
    b = g.param(TensorType((N,), dt), "b")
    attrs = {"lhs_contract": [len(lead) + 1], "rhs_contract": [len(lead)]}
    if batch:
        attrs.update(lhs_batch=[0], rhs_batch=[0])
    y = g.add_op("dot", [x, w], attrs)
    g.set_outputs([epilogue(g, y, b)])
    return g


def exp_bias(g, y, b):
    return g.add_op("exp", [broadcast_binary(g, "add", y, b)])


def tanh_times_2(g, y, b):
    return broadcast_binary(g, "multiply", g.add_op("tanh", [y]), 2.0)


dims = st.integers(1, 160)


@pytest.mark.parametrize("epilogue", [exp_bias, tanh_times_2])
@given(M=dims, K=st.integers(1, 300), N=st.integers(1, 600), dt=st.sampled_from(["float32", BF16]))
def test_dot_epilogue_bit_identical(epilogue, M, K, N, dt):
    g = mm_graph(M, K, N, dt, epilogue)
    rng = np.random.default_rng(M * 1000 + N)
    xs = [data(rng, (M, K), dt), data(rng, (K, N), dt), data(rng, (N,), dt)]
    _, _, out = both(g, xs)
    ref = evaluate(g, *xs)[0]
    np.testing.assert_allclose(out[0].reshape(ref.shape).astype(np.float32), ref.astype(np.float32),
                               rtol=2e-2 if dt == BF16 else 1e-4, atol=1e-3)


@given(B=st.integers(1, 3), M=st.integers(1, 70), N=st.integers(1, 130))
def test_batched_dot_epilogue_bit_identical(B, M, N):
    g = mm_graph(M, 40, N, "float32", exp_bias, batch=B)
    rng = np.random.default_rng(B + M + N)
    both(g, [data(rng, (B, M, 40), "float32"), data(rng, (B, 40, N), "float32"),
             data(rng, (N,), "float32")])


def softmax_graph(R, C, dt):
    g = Graph("softmax")
    x = g.param(TensorType((R, C), dt), "x")
    m = g.add_op("reduce", [x], {"dims": [1], "kind": "max"})
    e = g.add_op("exp", [broadcast_binary(g, "subtract", x, g.add_op("reshape", [m], {"shape": [R, 1]}))])
    s = g.add_op("reduce", [e], {"dims": [1], "kind": "add"})
    y = broadcast_binary(g, "divide", e, g.add_op("reshape", [s], {"shape": [R, 1]}))
    g.set_outputs([g.add_op("convert", [y], {"dtype": "float32"}) if dt != "float32" else y])
    return g


@given(R=st.integers(1, 300), C=st.integers(1, 700), dt=st.sampled_from(["float32", BF16]))
def test_softmax_chain_bit_identical(R, C, dt):
    g = softmax_graph(R, C, dt)
    xs = [data(np.random.default_rng(R * C), (R, C), dt)]
    _, _, out = both(g, xs)
    np.testing.assert_allclose(out[0].reshape(R, C), evaluate(g, *xs)[0].astype(np.float32),
                               rtol=2e-2, atol=1e-3)


def chain_graph(shape, dt):
    """relu via compare/select, converts, a NaN-producing log and a column-vector broadcast."""
    g = Graph("chain")
    x = g.param(TensorType(shape, dt), "x")
    c = g.param(TensorType(shape[:1], dt), "c")
    zero = broadcast_binary(g, "multiply", x, 0.0)
    pos = g.add_op("compare", [x, zero], {"direction": "GT"})
    relu = g.add_op("select", [pos, x, zero])
    h = g.add_op("convert", [g.add_op("log", [g.add_op("negate", [relu])])], {"dtype": BF16})
    cb = g.add_op("broadcast", [c], {"shape": list(shape), "dims": [0]})
    y = g.add_op("add", [g.add_op("convert", [h], {"dtype": dt}), cb])
    g.set_outputs([g.add_op("tanh", [y])])
    return g


@given(shape=st.lists(st.integers(1, 90), min_size=1, max_size=3).map(tuple),
       dt=st.sampled_from(["float32", BF16]))
def test_elementwise_chain_bit_identical(shape, dt):
    g = chain_graph(shape, dt)
    rng = np.random.default_rng(len(shape))
    xs = [data(rng, shape, dt), data(rng, shape[:1], dt)]
    _, _, out = both(g, xs)
    ref = evaluate(g, *xs)[0]
    np.testing.assert_allclose(out[0].reshape(ref.shape).astype(np.float32),
                               ref.astype(np.float32), rtol=2e-2, atol=1e-2, equal_nan=True)


def test_plan_groups_single_use_chains_only():
    g = Graph("f")
    x = g.param(TensorType((4, 8), "float32"), "x")
    w = g.param(TensorType((8, 16), "float32"), "w")
    y = g.add_op("dot", [x, w], {"lhs_contract": [1], "rhs_contract": [0]})
    t = g.add_op("tanh", [y])                  # two users: materialised
    a = g.add_op("exp", [t])
    b = g.add_op("abs", [t])
    s = g.add_op("add", [a, b])
    out2 = g.add_op("negate", [s])             # s is also an output: not fused into out2
    g.set_outputs([s, out2])
    groups = [[op.opcode for op in grp.ops] for grp in plan(g)]
    assert groups == [["dot", "tanh"], ["exp", "abs", "add"], ["negate"]]


@pytest.mark.parametrize("combine", ["add", "multiply"])
def test_plan_keeps_one_matmul_loop_per_group(combine):
    """Two dots meet in one group only as a sum (one PSUM accumulation group: lowering/lower/
    dot_sum.py); any other op of two dots keeps one of them in a group of its own."""
    g = Graph("f")
    x = g.param(TensorType((4, 8), "float32"), "x")
    w = g.param(TensorType((8, 4), "float32"), "w")
    d1 = g.add_op("dot", [x, w], {"lhs_contract": [1], "rhs_contract": [0]})
    d2 = g.add_op("dot", [x, w], {"lhs_contract": [1], "rhs_contract": [0]})
    g.set_outputs([g.add_op(combine, [d1, d2])])
    want = [["dot", "dot", "add"]] if combine == "add" else [["dot"], ["dot", "multiply"]]
    assert [[op.opcode for op in grp.ops] for grp in plan(g)] == want
    rng = np.random.default_rng(1)
    xs = [data(rng, (4, 8), "float32"), data(rng, (8, 4), "float32")]
    # bits on the reference executor (the fast path may run the sum's group as one GEMM)
    assert_bits_equal(*(run_reference(lower_graph(g, "trn1", fuse=f), xs) for f in (False, True)))


def test_fused_dot_epilogue_reads_psum_and_stores_once():
    g = mm_graph(256, 256, 512, "float32", exp_bias)
    p0, p1, _ = both(g, [np.ones((256, 256), np.float32), np.ones((256, 512), np.float32) / 256,
                         np.zeros(512, np.float32)])
    hbm = [s for s in p1.storages if not s.buffer.on_chip and s.kind == "tile"]
    assert [s.shape for s in hbm] == [(256, 512)]          # only the output, no intermediates
    add = next(i for i in p1.instrs if i.op.name == "tensor_tensor")
    assert add.args["data1"].buffer.kind == "psum"        # epilogue applied at eviction
    r0, r1 = profile(p0), profile(p1)
    assert r1.hbm_write_bytes == 256 * 512 * 4 < r0.hbm_write_bytes
    assert r1.total_ns < r0.total_ns


def test_bf16_dot_rounds_before_epilogue():
    g = mm_graph(64, 64, 64, BF16, tanh_times_2)
    rng = np.random.default_rng(2)
    _, p1, _ = both(g, [data(rng, (64, 64), BF16), data(rng, (64, 64), BF16), data(rng, (64,), BF16)])
    act = next(i for i in p1.instrs if i.op.name == "activation")
    assert act.args["data"].buffer.kind == "sbuf" and act.args["data"].dtype == "bfloat16"


def test_unfusable_broadcast_is_materialised():
    # a broadcast whose view cannot be merged to the (B, M, N) tiles of the dot: [1, 0] swaps
    g = Graph("f")
    x = g.param(TensorType((2, 3, 4), "float32"), "x")
    w = g.param(TensorType((4, 5), "float32"), "w")
    c = g.param(TensorType((5, 3), "float32"), "c")
    y = g.add_op("dot", [x, w], {"lhs_contract": [2], "rhs_contract": [0]})
    cb = g.add_op("broadcast", [c], {"shape": [2, 3, 5], "dims": [2, 1]})
    g.set_outputs([g.add_op("add", [y, cb])])
    rng = np.random.default_rng(3)
    xs = [data(rng, (2, 3, 4), "float32"), data(rng, (4, 5), "float32"), data(rng, (5, 3), "float32")]
    _, _, out = both(g, xs)
    np.testing.assert_allclose(out[0].reshape(2, 3, 5), evaluate(g, *xs)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("M,K,N", [(0, 4, 5), (3, 0, 5), (3, 4, 0)])
def test_empty_dot_epilogue(M, K, N):
    g = mm_graph(M, K, N, "float32", exp_bias)
    rng = np.random.default_rng(4)
    xs = [data(rng, (M, K), "float32"), data(rng, (K, N), "float32"), data(rng, (N,), "float32")]
    _, _, out = both(g, xs)
    np.testing.assert_allclose(out[0].reshape(M, N), evaluate(g, *xs)[0], rtol=1e-6)


def test_scalar_and_column_broadcasts_load_one_column():
    """A column-vector leaf is loaded once per row block as [rows, 1], not as 4-byte DMA rows."""
    g = softmax_graph(256, 4096, "float32")
    p0, p1, _ = both(g, [data(np.random.default_rng(5), (256, 4096), "float32")])
    cols = [i for i in p1.instrs if i.op.name == "dma_copy" and i.args["dst"].shape[-1] == 1
            and i.args["src"].buffer.kind == "hbm"]
    assert len(cols) == 2 * 2                      # max and sum columns, for 2 row blocks each
    assert profile(p1).total_ns * 5 < profile(p0).total_ns


def test_fusion_docstring_examples():
    import doctest
    import lowering.lower.fusion
    assert doctest.testmod(lowering.lower.fusion).failed == 0


def test_row_vector_bias_loaded_once_per_n_tile():
    g = mm_graph(512, 128, 1024, "float32", exp_bias)     # 4 M tiles x 2 N tiles
    rng = np.random.default_rng(6)
    _, p1, _ = both(g, [data(rng, (512, 128), "float32"), data(rng, (128, 1024), "float32"),
                        data(rng, (1024,), "float32")])
    bias = [i for i in p1.instrs if i.op.name == "dma_copy" and i.args["src"].storage.name == "b"]
    assert len(bias) == 2
