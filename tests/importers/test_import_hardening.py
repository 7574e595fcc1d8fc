"""Reproducers of issue 9 (in our own words): the importers refuse what XLA rejects, integer ops
give XLA's answers on the emulator, and malformed text is a located HloImportError, never a raw
Python exception."""
from __future__ import annotations

import numpy as np
import pytest

import neuron
from device.errors import NeuronError
from lowering import HloImportError, parse_hlo

I32 = np.iinfo(np.int32)


def hlo(body: str, name="m") -> str:
    return f"HloModule {name}\n\nENTRY main {{\n{body}\n}}\n"


def binop(t, op, n=4):
    return hlo(f"  a = {t}[{n}] parameter(0)\n  b = {t}[{n}] parameter(1)\n"
               f"  ROOT r = {t}[{n}] {op}(a, b)")


def both(text, *xs):
    """Emulator result and graph reference of HLO ``text`` on ``xs``; they must agree."""
    f = neuron.load_hlo(text)
    got, ref = f(*xs), f.reference(*xs)
    np.testing.assert_array_equal(got, ref)
    return got


# ---------------------------------------------------------------- integer semantics (XLA)
@pytest.mark.parametrize("t,op,a,b,want", [
    ("s32", "add", [2**30 + 7], [2**30 + 7], [-2147483634]),          # wraps, never saturates
    ("s32", "divide", [7, -7, I32.min, 5], [0, 0, -1, -2], [-1, -1, I32.min, -2]),
    ("s32", "remainder", [7, -7, I32.min, 5], [0, 0, -1, -2], [7, -7, 0, 1]),
    ("u8", "add", [5], [255], [4]),
    ("u32", "divide", [5, 2**32 - 1], [0, 2], [2**32 - 1, 2**31 - 1]),
    ("u32", "remainder", [5, 2**32 - 1], [0, 2], [5, 1]),
    ("s8", "multiply", [16, -128], [16, -1], [0, -128]),
    ("s16", "subtract", [-32768], [1], [32767]),
    ("u16", "maximum", [65535], [3], [65535]),
])
def test_integer_ops_follow_xla(t, op, a, b, want):
    npdt = {"s32": np.int32, "u8": np.uint8, "u32": np.uint32, "s8": np.int8, "s16": np.int16,
            "u16": np.uint16}[t]
    n = len(a)
    got = both(binop(t, op, n), np.array(a, npdt), np.array(b, npdt))
    assert got.tolist() == np.array(want, npdt).tolist()


def test_int32_compare_is_exact_beyond_fp32():
    text = hlo("  a = s32[2] parameter(0)\n  b = s32[2] parameter(1)\n"
               "  ROOT r = pred[2] compare(a, b), direction=GT")
    got = both(text, np.array([2**24 + 1, -2**31], np.int32), np.array([2**24, 2**31 - 1], np.int32))
    assert got.tolist() == [True, False]


def test_int_to_int_convert_keeps_low_bits():
    text = hlo("  a = s32[3] parameter(0)\n  ROOT r = s8[3] convert(a)")
    assert both(text, np.array([300, -129, 127], np.int32)).tolist() == [44, 127, 127]


def test_64_bit_integer_arithmetic_is_refused_by_name():
    f = neuron.load_hlo(binop("s64", "add", 1))
    with pytest.raises(NeuronError, match="add on int64 is not lowered.*64-bit integer"):
        f(np.array([2**40], np.int64), np.array([1], np.int64))
    assert f.reference(np.array([2**40], np.int64), np.array([1], np.int64)).tolist() == [2**40 + 1]


# ---------------------------------------------------------------- literals (XLA's parser rules)
@pytest.mark.parametrize("t,lit,match", [
    ("s32", "4294967297", "outside the range of int32"),
    ("s32", "2.7", "is not an integer"),
    ("s32", "nan", "is not an integer"),
    ("u8", "-1", "outside the range of uint8"),
    ("bf16", "1e39", "overflows bfloat16"),
    ("f32", "1e39", "overflows float32"),
    ("pred", "2", "not a pred literal"),
])
def test_literals_are_range_checked(t, lit, match):
    with pytest.raises(HloImportError, match=rf"constant 'c': .*{match}.*\(line 4\)"):
        parse_hlo(hlo(f"  ROOT c = {t}[] constant({lit})"))


def test_valid_literals_still_import():
    g = parse_hlo(hlo("  ROOT c = s8[3] constant({-128, 0, 127})"))
    assert "constant" in str(g)
    parse_hlo(hlo("  ROOT c = f32[2] constant({inf, -nan})"))


# ---------------------------------------------------------------- structure
@pytest.mark.parametrize("body,match", [
    ("  a = f32[2] parameter(0)\n  a = f32[2] exponential(a)\n  ROOT r = f32[2] negate(a)",
     "'a' is defined twice"),
    ("  a = f32[2] parameter(0)\n  ROOT b = f32[2] exponential(a)\n  ROOT c = f32[2] negate(a)",
     "2 ROOT instructions"),
    ("  a = f32[2] parameter(0)\n  b = f32[2] parameter(0)\n  ROOT r = f32[2] add(a, b)",
     r"parameter\(0\) in .b. breaks the sequence"),
    ("  a = s32[2] parameter(0)\n  ROOT r = pred[2] compare(a, a), direction=LT, type=UNSIGNED",
     "compare type=UNSIGNED on int32"),
    ("  a = f32[2] parameter(0)\n  ROOT r = f32[2] clamp(a, a)", "clamp.*has 2 operands; it takes 3"),
    ("  a = f32[2,2] parameter(0)\n  ROOT r = f32[2,2] dot(a)", "dot.*has 1 operand; it takes 2"),
    ("  a = f32[1,2,4] parameter(0)\n  ROOT r = f32[1,2,4] convolution(a), dim_labels=b0f_0io->b0f",
     "convolution.*has 1 operand"),
    ("  a = f32[2] parameter(0)\n  ROOT r = f32[2] get-tuple-element(a, a), index=0",
     "get-tuple-element.*has 2 operands"),
    ("  a = f32[2] parameter(0)\n  ROOT r = f32[1] dynamic-slice(a), dynamic_slice_sizes={1}",
     "dynamic-slice.*has 1 operand"),
    ("  a = f32[4] parameter(0)\n  z = f32[] constant(0)\n"
     "  ROOT r = f32[6] pad(a, z), padding=1", "padding"),
    ("  a = f32[4] parameter(0)\n  z = f32[] constant(0)\n"
     "  ROOT r = f32[6] pad(a, z), padding=1__1", "padding"),
    ("  ROOT r = s32[4] iota(), iota_dimension=²", "iota_dimension"),
    ("  ROOT a = f32[9223372036854775808] parameter(0)", "larger than"),
    ("  ROOT a = f32[18446744073709551616] parameter(0)", "larger than"),
    ("  ROOT a = f32[²] parameter(0)", "not a dimension size"),
])
def test_malformed_hlo_is_a_located_import_error(body, match):
    with pytest.raises(HloImportError, match=match) as e:
        parse_hlo(hlo(body))
    assert "(line " in str(e.value) or e.value.line is not None
    assert not getattr(e.value, "unvalidated", False), "only a catch-all caught this"


def test_deeply_nested_tuples_are_refused():
    shape = "f32[]"
    for _ in range(1000):
        shape = f"({shape})"
    with pytest.raises(HloImportError, match="nested deeper than"):
        parse_hlo(hlo(f"  ROOT a = {shape} parameter(0)"))


def test_while_body_that_calls_itself_is_refused():
    text = """HloModule m
body {
  p = (s32[]) parameter(0)
  ROOT w = (s32[]) while(p), condition=cond, body=body
}
cond {
  p = (s32[]) parameter(0)
  ROOT t = pred[] constant(true)
}
ENTRY main {
  a = s32[] parameter(0)
  t = (s32[]) tuple(a)
  ROOT w = (s32[]) while(t), condition=cond, body=body
}
"""
    with pytest.raises(HloImportError):
        parse_hlo(text)


def test_cyclic_sort_comparator_is_refused():
    text = """HloModule m
cmp {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT lt = pred[] compare(x, b), direction=LT
  x = f32[] add(lt, a)
}
ENTRY main {
  p = f32[4] parameter(0)
  ROOT s = f32[4] sort(p), dimensions={0}, to_apply=cmp
}
"""
    with pytest.raises(HloImportError):
        parse_hlo(text)


# ---------------------------------------------------------------- reducers by meaning
def _argmax_hlo(pick_value, pick_index):
    """A JAX-style (value, index) argmax reducer with the given select conditions."""
    return f"""HloModule m
red {{
  v0 = f32[] parameter(0)
  i0 = s32[] parameter(1)
  v1 = f32[] parameter(2)
  i1 = s32[] parameter(3)
  gt = pred[] compare(v0, v1), direction=GT
  isnan = pred[] compare(v0, v0), direction=NE
  notnan = pred[] compare(v0, v0), direction=EQ
  pv = pred[] or({pick_value})
  eq = pred[] compare(v0, v1), direction=EQ
  lt = pred[] compare(i0, i1), direction=LT
  gti = pred[] compare(i0, i1), direction=GT
  tie = pred[] and(eq, {pick_index})
  pi = pred[] or(pv, tie)
  v = f32[] select(pv, v0, v1)
  i = s32[] select(pi, i0, i1)
  ROOT t = (f32[], s32[]) tuple(v, i)
}}
ENTRY main {{
  x = f32[3,5] parameter(0)
  ids = s32[3,5] iota(), iota_dimension=1
  ninf = f32[] constant(-inf)
  zero = s32[] constant(0)
  r = (f32[3], s32[3]) reduce(x, ids, ninf, zero), dimensions={{1}}, to_apply=red
  ROOT idx = s32[3] get-tuple-element(r), index=1
}}
"""


def test_argmax_reducer_recognised_by_meaning():
    x = np.array([[1, 3, 3, 0, 2], [np.nan, 1, np.nan, 5, 5], [-1, -1, -1, -1, -1]], np.float32)
    f = neuron.load_hlo(_argmax_hlo("gt, isnan", "lt"))
    assert f(x).tolist() == [1, 0, 0] == np.argmax(x, axis=1).tolist()
    # the same meaning written in another order is the same reducer
    assert neuron.load_hlo(_argmax_hlo("isnan, gt", "lt"))(x).tolist() == [1, 0, 0]


@pytest.mark.parametrize("pick_value,pick_index", [
    ("gt, isnan", "gti"),          # ties go to the higher index
    ("gt, notnan", "lt"),        # the NaN check inverted
])
def test_argmax_lookalikes_are_refused(pick_value, pick_index):
    with pytest.raises(HloImportError, match="variadic reduce"):
        parse_hlo(_argmax_hlo(pick_value, pick_index))


def test_swapped_select_is_not_argmax():
    text = _argmax_hlo("gt, isnan", "lt").replace("select(pv, v0, v1)", "select(pv, v1, v0)")
    with pytest.raises(HloImportError, match="variadic reduce"):
        parse_hlo(text)


def test_reduce_combiner_by_meaning():
    text = """HloModule m
add_rev {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(b, a)
}
ENTRY main {
  x = f32[2,3] parameter(0)
  z = f32[] constant(0)
  ROOT r = f32[2] reduce(x, z), dimensions={1}, to_apply=add_rev
}
"""
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert neuron.load_hlo(text)(x).tolist() == [3, 12]
    with pytest.raises(HloImportError, match="must compute add"):
        parse_hlo(text.replace("add(b, a)", "subtract(b, a)"))


# ---------------------------------------------------------------- valid input that used to crash
def test_zero_size_dimensions():
    text = hlo("  a = f32[0,4] parameter(0)\n  ROOT r = f32[0,4] exponential(a)")
    out = neuron.load_hlo(text)(np.zeros((0, 4), np.float32))
    assert out.shape == (0, 4)


def test_bf16_reduce_window_max_with_padding():
    import ml_dtypes
    text = """HloModule m
mx {
  a = bf16[] parameter(0)
  b = bf16[] parameter(1)
  ROOT m = bf16[] maximum(a, b)
}
ENTRY main {
  x = bf16[4,6] parameter(0)
  ninf = bf16[] constant(-inf)
  ROOT r = bf16[4,6] reduce-window(x, ninf), window={size=2x2 pad=0_1x0_1}, to_apply=mx
}
"""
    x = np.arange(24, dtype=np.float32).reshape(4, 6).astype(ml_dtypes.bfloat16)
    f = neuron.load_hlo(text)
    np.testing.assert_array_equal(f(x).astype(np.float32), f.reference(x).astype(np.float32))


# ---------------------------------------------------------------- StableHLO
def test_stablehlo_splat_is_bounded_before_materialising():
    import tracemalloc
    from lowering import StableHloImportError
    text = """func.func @main(%a: tensor<30000x30000xf32>) -> tensor<30000x30000xf32> {
  %c = stablehlo.constant dense<1.0> : tensor<30000x30000xf32>
  %r = stablehlo.add %a, %c : tensor<30000x30000xf32>
  return %r : tensor<30000x30000xf32>
}"""
    tracemalloc.start()
    try:
        with pytest.raises(StableHloImportError, match="constant-size: .*900000000 elements.*"
                           "NEURON_EMU_MAX_CONSTANT_ELEMENTS"):
            neuron.load_stablehlo(text)
        assert tracemalloc.get_traced_memory()[1] < 64 << 20
    finally:
        tracemalloc.stop()


def test_stablehlo_bf16_constant_overflow_is_refused_and_inf_reads():
    from lowering import StableHloImportError
    text = """func.func @main(%a: tensor<2xbf16>) -> tensor<2xbf16> {
  %c = stablehlo.constant dense<[1.0, LIT]> : tensor<2xbf16>
  %r = stablehlo.add %a, %c : tensor<2xbf16>
  return %r : tensor<2xbf16>
}"""
    with pytest.raises(StableHloImportError, match=r"constant 1.0e39 overflows bfloat16.*line 2"):
        neuron.load_stablehlo(text.replace("LIT", "1.0e39"))
    import ml_dtypes
    f = neuron.load_stablehlo(text.replace("LIT", "0x7F80"))          # +inf written as bits
    x = np.zeros(2, ml_dtypes.bfloat16)
    assert f(x).astype(np.float32).tolist() == [1.0, float("inf")]


def test_corrupted_bytecode_is_an_import_error_not_a_crash():
    import jax
    from jax import export
    from lowering import StableHloImportError
    art = bytes(export.export(jax.jit(lambda x: x * 2))(np.ones(3, np.float32))
                .mlir_module_serialized)
    np.testing.assert_array_equal(neuron.load_stablehlo(art)(np.ones(3, np.float32)), [2, 2, 2])
    for bad in (art[:len(art) // 3], art[:8] + b"\xff" * 16 + art[24:]):
        with pytest.raises(StableHloImportError, match="artifact"):
            neuron.load_stablehlo(bad)
    with pytest.raises(StableHloImportError, match="not a StableHLO portable artifact"):
        neuron.load_stablehlo(b"garbage")


# ---------------------------------------------------------------- dot, reductions
def _dot(t):
    return hlo(f"  a = {t}[2,4] parameter(0)\n  b = {t}[4,2] parameter(1)\n"
               f"  ROOT r = {t}[2,2] dot(a, b), lhs_contracting_dims={{1}}, "
               f"rhs_contracting_dims={{0}}")


def test_integer_dot_is_refused_by_name():
    f = neuron.load_hlo(_dot("s8"))
    a, b = np.full((2, 4), 64, np.int8), np.full((4, 2), 4, np.int8)
    assert f.reference(a, b).tolist() == [[0, 0], [0, 0]]          # XLA wraps: 4 * 256 = 0 (s8)
    with pytest.raises(NeuronError, match="dot on int8 operands is not lowered"):
        f(a, b)


def test_fp32_overflow_inside_a_dot_is_inf_not_zero():
    f = neuron.load_hlo(hlo("  a = f32[1,2] parameter(0)\n  b = f32[2,1] parameter(1)\n"
                            "  ROOT r = f32[1,1] dot(a, b), lhs_contracting_dims={1}, "
                            "rhs_contracting_dims={0}"))
    a = np.array([[3e38, 3e38]], np.float32)
    assert np.isnan(f(a, np.array([[10], [-10]], np.float32))).all()        # inf + -inf
    assert f(a, np.array([[10], [10]], np.float32)).tolist() == [[np.inf]]


def test_integer_reduce_sum_wraps_exactly():
    text = """HloModule m
add {
  x = s32[] parameter(0)
  y = s32[] parameter(1)
  ROOT s = s32[] add(x, y)
}
ENTRY e {
  a = s32[2,3] parameter(0)
  z = s32[] constant(0)
  ROOT r = s32[2] reduce(a, z), dimensions={1}, to_apply=add
}
"""
    a = np.array([[2**30, 2**30, 2**30], [16777217, 1, 0]], np.int32)
    assert both(text, a).tolist() == [-1073741824, 16777218]


def test_pred_iota_matches_reference():
    f = neuron.load_hlo(hlo("  ROOT r = pred[4] iota(), iota_dimension=0"))
    assert f().tolist() == f.reference().tolist() == [False, True, True, True]


def test_entry_computation_layout_must_agree_with_entry():
    body = "ENTRY main {\n  a = f32[2] parameter(0)\n  ROOT r = f32[2] negate(a)\n}\n"
    ok = "HloModule m, entry_computation_layout={(f32[2]{0})->f32[2]{0}}\n\n" + body
    assert "negate" in str(parse_hlo(ok))
    for layout, match in [("(f32[3]{0})->f32[2]{0}", "declares parameters"),
                          ("(f32[2]{0}, f32[2]{0})->f32[2]{0}", "declares parameters"),
                          ("(f32[2]{0})->s32[2]{0}", "declares the result")]:
        with pytest.raises(HloImportError, match=match):
            parse_hlo(f"HloModule m, entry_computation_layout={{{layout}}}\n\n" + body)


def test_hlo_while_with_constant_true_condition_stops_at_the_budget(monkeypatch):
    from device.limits import ResourceLimitError
    monkeypatch.setenv("NEURON_EMU_MAX_LOOP_TRIPS", "200")
    text = """HloModule m
cond {
  p = (s32[]) parameter(0)
  ROOT t = pred[] constant(true)
}
body {
  p = (s32[]) parameter(0)
  x = s32[] get-tuple-element(p), index=0
  one = s32[] constant(1)
  y = s32[] add(x, one)
  ROOT t = (s32[]) tuple(y)
}
ENTRY main {
  a = s32[] parameter(0)
  t = (s32[]) tuple(a)
  w = (s32[]) while(t), condition=cond, body=body
  ROOT r = s32[] get-tuple-element(w), index=0
}
"""
    f = neuron.load_hlo(text)
    with pytest.raises(ResourceLimitError, match="loop-trips: .*ran 200 iterations.*"
                       "NEURON_EMU_MAX_LOOP_TRIPS"):
        f.reference(np.int32(0))
    with pytest.raises(ResourceLimitError, match="loop-trips: while_loop ran 200 iterations"):
        f(np.int32(0))


def test_gather_dimension_numbers_are_range_checked():
    text = hlo("  x = f32[8,4] parameter(0)\n  i = s32[3,1] parameter(1)\n"
               "  ROOT g = f32[3,4] gather(x, i), offset_dims={1}, collapsed_slice_dims={0}, "
               "start_index_map={2147483648}, index_vector_dim=1, slice_sizes={1,4}")
    with pytest.raises(HloImportError, match=r"start_index_map \[2147483648\] must be distinct "
                       r"dims in \[0, 2\)"):
        parse_hlo(text)
    ok = text.replace("{2147483648}", "{0}")
    x = np.arange(32, dtype=np.float32).reshape(8, 4)
    i = np.array([[3], [0], [7]], np.int32)
    np.testing.assert_array_equal(both(ok, x, i), x[[3, 0, 7]])


def test_tuple_shape_of_a_variadic_reduce_is_checked():
    text = _argmax_hlo("gt, isnan", "lt").replace("r = (f32[3], s32[3]) reduce", "r = () reduce")
    with pytest.raises(HloImportError, match=r"declares the shape \(\), which has no element 1"):
        parse_hlo(text)
