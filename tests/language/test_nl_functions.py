"""nki.language functions (SPEC 2.5-2.9) against NumPy: element-wise, reductions, composites,
creation ops, data movement, tile_size, and their error paths (message + reported line)."""
import inspect

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import HardwareRuleError, UserKernelError


@nki.jit
def _unary(x, fn_name, dtype=None):
    t = nl.load(x)
    r = getattr(nl, fn_name)(t) if dtype is None else getattr(nl, fn_name)(t, dtype=dtype)
    out = nl.ndarray(r.shape, dtype=r.dtype, buffer=nl.shared_hbm)
    nl.store(out, r)
    return out


@nki.jit
def _binary(x, y, fn_name):
    a = nl.load(x) if not isinstance(x, float) else x
    b = nl.load(y) if not isinstance(y, float) else y
    r = getattr(nl, fn_name)(a, b)
    out = nl.ndarray(r.shape, dtype=r.dtype, buffer=nl.shared_hbm)
    nl.store(out, r)
    return out


BINARY_REF = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide,
    "maximum": np.maximum, "minimum": np.minimum, "power": np.power, "fmod": np.fmod,
    "mod": np.mod,
    "abs_max": lambda x, y: np.where(np.abs(x) > np.abs(y), x, y),
    "abs_min": lambda x, y: np.where(np.abs(x) < np.abs(y), x, y),
    "equal": np.equal, "not_equal": np.not_equal, "less": np.less, "less_equal": np.less_equal,
    "greater": np.greater, "greater_equal": np.greater_equal,
    "logical_and": lambda x, y: (x != 0) & (y != 0), "logical_or": lambda x, y: (x != 0) | (y != 0),
    "logical_xor": lambda x, y: (x != 0) ^ (y != 0),
}


@pytest.mark.parametrize("name", sorted(BINARY_REF))
def test_binary_float_ops(name):
    rng = np.random.default_rng(0)
    x = np.round(rng.uniform(-4, 4, (8, 16)), 1).astype(np.float32)
    y = (np.round(rng.uniform(0.5, 3, (8, 16)), 1) * rng.choice([-1, 1], (8, 16))).astype(np.float32)
    y[0, :4] = x[0, :4]                      # ties for comparisons
    y[1, :4] = -x[1, :4]                     # |x| == |y| ties for abs_max/abs_min (return y)
    if name == "power":
        x = np.abs(x) + 0.5
    want = BINARY_REF[name](x, y).astype(np.float32)
    out = _binary(x, y, name)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name,ref", [("bitwise_and", np.bitwise_and), ("bitwise_or", np.bitwise_or),
                                      ("bitwise_xor", np.bitwise_xor),
                                      ("left_shift", np.left_shift)])
def test_bitwise_ops_on_ints(name, ref):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 1 << 20, (4, 8), dtype=np.int32)
    y = rng.integers(0, 8, (4, 8), dtype=np.int32)
    out = _binary(x, y, name)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, ref(x, y))


def test_right_shift_is_logical_and_invert_flips_bits():
    x = np.array([[-16, 16, 7, -1]], np.int32)
    s = np.array([[2, 2, 1, 28]], np.int32)
    np.testing.assert_array_equal(_binary(x, s, "right_shift"),
                                  (x.view(np.uint32) >> s.view(np.uint32)).view(np.int32))
    np.testing.assert_array_equal(_unary(x, "invert"), ~x)


def test_bitwise_op_on_floats_is_rejected():
    with pytest.raises(HardwareRuleError, match="bitwise op bitwise_and needs integer dtypes"):
        _binary(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32), "bitwise_and")


def test_scalar_operands_and_column_broadcast():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(_binary(x, 2.0, "subtract"), x - 2)
    np.testing.assert_array_equal(_binary(10.0, x, "subtract"), 10 - x)
    col = np.array([[1.0], [2.0], [3.0]], np.float32)
    np.testing.assert_array_equal(_binary(x, col, "multiply"), x * col)
    row = np.ones((1, 4), np.float32)
    with pytest.raises(HardwareRuleError, match="partition-mismatch"):
        _binary(x, row, "add")


UNARY_REF = {
    "abs": np.abs, "square": np.square, "negative": np.negative, "sign": np.sign, "ceil": np.ceil,
    "floor": np.floor, "trunc": np.trunc, "exp": np.exp, "tanh": np.tanh, "sin": np.sin,
    "cos": np.cos, "arctan": np.arctan, "reciprocal": lambda x: 1 / x,
    "relu": lambda x: np.maximum(x, 0), "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "silu": lambda x: x / (1 + np.exp(-x)), "softplus": lambda x: np.log1p(np.exp(x)),
    "logical_not": lambda x: (x == 0).astype(np.float32), "copy": lambda x: x,
}


@pytest.mark.parametrize("name", sorted(UNARY_REF))
def test_unary_ops(name):
    x = np.array([[-2.5, -1.0, -0.3, 0.0, 0.4, 1.0, 1.5, 3.7]], np.float32)
    if name == "reciprocal":
        x[0, 3] = 2.0
    np.testing.assert_allclose(_unary(x, name), UNARY_REF[name](x), rtol=1e-5, atol=1e-6)


def test_positive_domain_unary_ops_and_dtype_argument():
    x = np.array([[0.25, 1.0, 4.0, 9.0]], np.float32)
    np.testing.assert_allclose(_unary(x, "sqrt"), np.sqrt(x), rtol=1e-6)
    np.testing.assert_allclose(_unary(x, "rsqrt"), 1 / np.sqrt(x), rtol=1e-6)
    np.testing.assert_allclose(_unary(x, "log"), np.log(x), rtol=1e-6, atol=1e-7)
    out = _unary(x, "exp", nl.bfloat16)
    assert out.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(out, np.exp(x).astype(ml_dtypes.bfloat16))


@nki.jit
def _reduce(x, fn_name, axis, keepdims):
    t = nl.load(x)
    fn = getattr(nl, fn_name)
    r = fn(t, axis=axis) if fn_name in ("all", "var") else fn(t, axis=axis, keepdims=keepdims)
    out = nl.ndarray(r.shape, dtype=r.dtype, buffer=nl.shared_hbm)
    nl.store(out, r)
    return out


@given(st.sampled_from(["sum", "max", "min", "mean", "prod", "var"]),
       st.lists(st.integers(1, 4), min_size=1, max_size=3), st.booleans(), st.data())
def test_reductions_over_trailing_axes(name, free, keepdims, data):
    shape = (3,) + tuple(free)
    rng = np.random.default_rng(len(free))
    x = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    n = data.draw(st.integers(1, len(free)))
    axes = tuple(range(len(shape) - n, len(shape)))
    ref = {"sum": np.sum, "max": np.max, "min": np.min, "mean": np.mean, "prod": np.prod,
           "var": np.var}[name]
    keep = keepdims or name == "var"                 # var always keeps the reduced dims
    want = ref(x.astype(np.float64), axis=axes, keepdims=keep)
    if want.ndim < 2:
        want = want.reshape(want.shape + (1,) * (2 - want.ndim))
    out = _reduce(x, name, axes, keepdims)
    assert out.shape == want.shape
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)


def test_all_returns_one_or_zero():
    x = np.array([[1, 2, 3], [1, 0, 3]], np.float32)
    np.testing.assert_array_equal(_reduce(x, "all", 1, False), [[1.0], [0.0]])


@pytest.mark.parametrize("axis", [0, [1], [0, 1]])
def test_reduction_axis_rule_names_the_nl_api_and_line(axis):
    x = np.ones((4, 2, 3), np.float32)
    bad = (0,) if axis == 0 else ((1,) if axis == [1] else (0, 1))
    with pytest.raises(HardwareRuleError, match=r"reduce-axis: nl.sum axis .* must be the trailing") as e:
        _reduce(x, "sum", bad, False)
    lines, start = inspect.getsourcelines(_reduce.fn)
    assert e.value.loc.line == start + next(i for i, s in enumerate(lines) if "fn(t, axis" in s)


@nki.jit
def _composites(x, w, cond):
    t, wt, c = nl.load(x), nl.load(w), nl.load(cond)
    outs = [nl.softmax(t, axis=1), nl.rms_norm(t, wt, axis=1, n=t.shape[1]),
            nl.where(c, t, wt), nl.where(c, t, -7.0)]
    res = []
    for r in outs:
        o = nl.ndarray(r.shape, dtype=r.dtype, buffer=nl.shared_hbm)
        nl.store(o, r)
        res.append(o)
    return tuple(res)


def test_softmax_rms_norm_where():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(8, 32)).astype(np.float32)
    w = rng.normal(size=(8, 32)).astype(np.float32)
    c = (rng.random((8, 32)) > 0.5).astype(np.float32)
    sm, rn, wh, ws = _composites(x, w, c)
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(sm, e / e.sum(1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(rn, x / np.sqrt((x * x).mean(1, keepdims=True) + 1e-6) * w,
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(wh, np.where(c > 0, x, w))
    np.testing.assert_array_equal(ws, np.where(c > 0, x, -7.0))


@nki.jit
def _random(x, rate):
    seed = nl.full((1, 1), 42, dtype=nl.int32)
    nl.random_seed(seed)
    a = nl.rand((64, 64), dtype=nl.float32)
    nl.random_seed(seed)
    b = nl.rand((64, 64), dtype=nl.float32)
    d = nl.dropout(nl.load(x), rate)
    outs = []
    for r in (a, b, d):
        o = nl.ndarray(r.shape, dtype=r.dtype, buffer=nl.shared_hbm)
        nl.store(o, r)
        outs.append(o)
    return tuple(outs)


def test_rand_seed_and_dropout():
    x = np.ones((64, 64), np.float32)
    a, b, d = _random(x, 0.25)
    assert ((a >= 0) & (a < 1)).all() and np.array_equal(a, b) and a.std() > 0.2
    assert set(np.unique(d)) <= {0.0, 1.0}
    assert 0.15 < (d == 0).mean() < 0.35


def test_random_seed_rejects_a_python_int():
    @nki.jit
    def k(x):
        nl.random_seed(7)
        return x
    with pytest.raises(UserKernelError, match="seed must be a \\[1, 1\\]"):
        k(np.ones((2, 2), np.float32))


@nki.jit
def _movement(x, sq):
    t = nl.load_transpose2d(x)
    o1 = nl.ndarray(t.shape, dtype=t.dtype, buffer=nl.shared_hbm)
    nl.store(o1, t)
    s = nl.load(sq)
    tp = nl.copy(nl.transpose(s))
    o2 = nl.ndarray(tp.shape, dtype=tp.dtype, buffer=nl.shared_hbm)
    nl.store(o2, tp)
    mm = nl.copy(nl.matmul(s, s, transpose_x=True))
    o3 = nl.ndarray(mm.shape, dtype=mm.dtype, buffer=nl.shared_hbm)
    nl.store(o3, mm)
    row = nl.load(x[0:1, :])
    bc = nl.broadcast_to(row, (4, x.shape[1]))
    o4 = nl.ndarray(bc.shape, dtype=bc.dtype, buffer=nl.shared_hbm)
    nl.store(o4, bc)
    ex = nl.expand_dims(s, 1)
    assert ex.shape == (s.shape[0], 1, s.shape[1])
    ident = nl.copy(nl.shared_identity_matrix(4, dtype=nl.float32))
    z = nl.zeros_like(ident)
    full = nl.full((4, 4), 2.5, dtype=nl.float32)
    comb = nl.add(nl.add(ident, z), full)
    o5 = nl.ndarray(comb.shape, dtype=comb.dtype, buffer=nl.shared_hbm)
    nl.store(o5, comb)
    return o1, o2, o3, o4, o5


def test_data_movement_and_creation():
    x = np.arange(24, dtype=np.float32).reshape(3, 8)
    sq = np.arange(16, dtype=np.float32).reshape(4, 4)
    t, tp, mm, bc, comb = _movement(x, sq)
    np.testing.assert_array_equal(t, x.T)
    np.testing.assert_array_equal(tp, sq.T)
    np.testing.assert_allclose(mm, sq.T @ sq)
    np.testing.assert_array_equal(bc, np.broadcast_to(x[0:1], (4, 8)))
    np.testing.assert_array_equal(comb, np.eye(4) + 2.5)


@nki.jit
def _fori(data, n):
    out = nl.ndarray(data.shape, nl.float32, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=nl.zeros(data.shape, nl.float32))
    n_sb = nl.ndarray((1, 1), nl.int32, buffer=nl.sbuf)
    nisa.dma_copy(dst=n_sb, src=n)
    ub = nisa.register_alloc()
    nisa.register_load(ub, n_sb)
    tmp = nl.ndarray((1, 1), nl.float32, buffer=nl.sbuf)

    def body(i):
        nisa.dma_copy(dst=tmp, src=data.ap([[1, 1], [1, 1]], scalar_offset=i, indirect_dim=1))
        nisa.dma_copy(dst=out.ap([[1, 1], [1, 1]], scalar_offset=i, indirect_dim=1), src=tmp)
    nl.fori_loop(1, ub, body, step=2)

    acc = nl.zeros((1, 1), nl.float32)
    one = nl.full((1, 1), 1, dtype=nl.int32)
    reg = nisa.register_alloc()
    nisa.register_load(reg, n_sb)

    def countdown(r):
        nisa.tensor_tensor(dst=acc, data1=acc, data2=nl.full((1, 1), 0.5, nl.float32), op=nl.add)
        nisa.tensor_tensor(dst=n_sb, data1=n_sb, data2=one, op=nl.subtract)
        nisa.register_load(r, n_sb)
        return r
    nl.while_loop(reg, countdown)
    total = nl.ndarray((1, 1), nl.float32, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=total, src=acc)
    return out, total


@pytest.mark.parametrize("n", [0, 1, 6])
def test_fori_and_while_loops_use_run_time_register_values(n):
    data = np.arange(1, 9, dtype=np.float32).reshape(1, 8)
    out, total = _fori(data, np.array([[n]], np.int32))
    want = np.zeros_like(data)
    want[0, 1:n:2] = data[0, 1:n:2]
    np.testing.assert_array_equal(out, want)
    assert total[0, 0] == 0.5 * n


def test_register_in_python_control_flow_is_a_type_error():
    @nki.jit
    def k(x):
        def body(i):
            if i:
                pass
        nl.fori_loop(0, 4, body)
        return x
    with pytest.raises(TypeError, match="no value while tracing"):
        k(np.ones((1, 1), np.float32))


def test_loops_inside_no_reorder_are_rejected():
    @nki.jit
    def k(x):
        with nl.no_reorder():
            nl.fori_loop(0, 2, lambda i: None)
        return x
    with pytest.raises(UserKernelError, match="cannot be used inside an nl.no_reorder"):
        k(np.ones((1, 1), np.float32))


def test_spmd_queries_and_tile_size(monkeypatch):
    seen = {}

    @nki.jit
    def k(x):
        seen.update(pid=nl.program_id(0), n=nl.num_programs(), nd=nl.program_ndim(),
                    pmax=nl.tile_size.pmax, bank=nl.tile_size.psum_bank_fmax,
                    banks=nl.tile_size.psum_num_banks, st=nl.tile_size.gemm_stationary_fmax,
                    mv=nl.tile_size.gemm_moving_fmax, bn=nl.tile_size.bn_stats_fmax,
                    bytes=nl.tile_size.psum_bank_fmax_bytes)
        return x
    k(np.ones((1, 1), np.float32))
    assert seen == dict(pid=0, n=1, nd=0, pmax=128, bank=512, banks=8, st=128, mv=512, bn=512,
                        bytes=2048)
    monkeypatch.setenv("NKI_DMA_TRANSPOSE_AS_PE_TRANSPOSE", "true")
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", "trn2")
    k(np.ones((2, 1), np.float32))
    assert seen["banks"] == 7


@pytest.mark.parametrize("dt,npdt", [(nl.bfloat16, ml_dtypes.bfloat16), (nl.float8_e4m3, ml_dtypes.float8_e4m3),
                                     (nl.float8_e5m2, ml_dtypes.float8_e5m2), (nl.float16, np.float16),
                                     (nl.int8, np.int8), (nl.uint16, np.uint16)])
def test_dtypes_round_like_ml_dtypes(dt, npdt):
    x = np.array([[0.1, 1.7, -2.3, 100.4]], np.float32)
    out = _unary(x, "copy", dt)
    ints = np.issubdtype(np.dtype(npdt), np.integer)
    want = np.clip(np.rint(x), np.iinfo(npdt).min, np.iinfo(npdt).max).astype(npdt) if ints \
        else x.astype(npdt)
    assert out.dtype == np.dtype(npdt)
    np.testing.assert_array_equal(out, want)


def test_tfloat32_keeps_ten_mantissa_bits():
    x = np.array([[1 + 2 ** -10 + 2 ** -12, 1 + 2 ** -11 + 2 ** -13]], np.float32)
    out = _unary(x, "copy", nl.tfloat32)
    np.testing.assert_array_equal(out, np.array([[1 + 2 ** -10, 1 + 2 ** -10]], np.float32))
