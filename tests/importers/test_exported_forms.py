"""What real exporters emit beyond the basics (issue 12): dot algorithms, batch norm, argmax in
TensorFlow's reducer form, custom_call @mhlo.erf, tan, atan2, sort/top-k on the device.

Reference numbers come from JAX (the framework) on the same inputs; forms JAX cannot print
(batch norm, mhlo.erf, the HLO long form TF writes) are written here in the exact shape the
exporters emit and compared with the JAX computation they stand for."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import neuron
from lowering import HloImportError
from importer_helpers import check_both, hlo_text, stablehlo_text


def _dot_bf16(a, b):
    return lax.dot(a, b, precision=lax.DotAlgorithmPreset.BF16_BF16_F32)


def test_dot_algorithm_bf16_bf16_f32_rounds_operands_like_the_algorithm_says(rng):
    x = rng.standard_normal((8, 32)).astype(np.float32)
    w = rng.standard_normal((32, 16)).astype(np.float32)
    # XLA:CPU runs this algorithm in f32; the algorithm's meaning is bf16 operands, f32 sums:
    want = np.asarray(lax.dot(x.astype(jnp.bfloat16), w.astype(jnp.bfloat16),
                              preferred_element_type=jnp.float32))
    hlo = hlo_text(_dot_bf16, x, w)
    shlo = stablehlo_text(_dot_bf16, x, w)
    assert "algorithm=dot_bf16_bf16_f32" in hlo and "lhs_precision_type = bf16" in shlo
    for f in (neuron.load_hlo(hlo), neuron.load_stablehlo(shlo)):
        np.testing.assert_allclose(f.reference(x, w), want, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(f(x, w), want, rtol=1e-5, atol=1e-4)


def test_dot_algorithm_multi_pass_is_refused_by_name(rng):
    x = np.ones((4, 8), np.float32)
    f = lambda a, b: lax.dot(a, b, precision=lax.DotAlgorithmPreset.BF16_BF16_F32_X3)
    with pytest.raises(HloImportError, match="dot_bf16_bf16_f32_x3 is not supported"):
        neuron.load_hlo(hlo_text(f, x, x.T))
    with pytest.raises(HloImportError, match="algorithm .* is not supported"):
        neuron.load_stablehlo(stablehlo_text(f, x, x.T))


def _tf_argmax(x):
    """XLA's ArgMinMax reducer (what TensorFlow's tf.argmax lowers to): Ge/select, then Eq with
    a min of the indices to break ties."""
    def reducer(a, b):
        (lv, li), (rv, ri) = a, b
        ge = lv >= rv
        idx = lax.select(lv == rv, jnp.minimum(li, ri), lax.select(ge, li, ri))
        return lax.select(ge, lv, rv), idx
    ids = lax.broadcasted_iota(jnp.int32, x.shape, 1)
    return lax.reduce((x, ids), (np.float32(-np.inf), np.int32(0)), reducer, (1,))[1]


def test_variadic_reduce_in_tensorflow_argmax_form(rng):
    x = np.round(rng.standard_normal((6, 40)) * 2).astype(np.float32) / 2  # many ties
    check_both(_tf_argmax, x)


def test_variadic_reduce_that_is_not_an_argmax_is_refused(rng):
    def not_arg(x):
        ids = lax.broadcasted_iota(jnp.int32, x.shape, 1)
        return lax.reduce((x, ids), (np.float32(0), np.int32(0)),
                          lambda a, b: (a[0] + b[0], a[1] + b[1]), (1,))[1]
    x = np.ones((2, 8), np.float32)
    with pytest.raises(HloImportError, match="variadic reduce"):
        neuron.load_stablehlo(stablehlo_text(not_arg, x))


_BN_HLO = """HloModule bn
ENTRY %main (x: f32[2,3,4,5], s: f32[3], o: f32[3], m: f32[3], v: f32[3]) -> (f32[2,3,4,5], f32[2,3,4,5], f32[3], f32[3]) {
  %x = f32[2,3,4,5]{3,2,1,0} parameter(0)
  %s = f32[3]{0} parameter(1)
  %o = f32[3]{0} parameter(2)
  %m = f32[3]{0} parameter(3)
  %v = f32[3]{0} parameter(4)
  %bi = f32[2,3,4,5]{3,2,1,0} batch-norm-inference(f32[2,3,4,5]{3,2,1,0} %x, f32[3]{0} %s, f32[3]{0} %o, f32[3]{0} %m, f32[3]{0} %v), epsilon=0.001, feature_index=1
  %bt = (f32[2,3,4,5]{3,2,1,0}, f32[3]{0}, f32[3]{0}) batch-norm-training(f32[2,3,4,5]{3,2,1,0} %x, f32[3]{0} %s, f32[3]{0} %o), epsilon=0.001, feature_index=1
  %y = f32[2,3,4,5]{3,2,1,0} get-tuple-element(%bt), index=0
  %bm = f32[3]{0} get-tuple-element(%bt), index=1
  %bv = f32[3]{0} get-tuple-element(%bt), index=2
  ROOT %t = (f32[2,3,4,5]{3,2,1,0}, f32[2,3,4,5]{3,2,1,0}, f32[3]{0}, f32[3]{0}) tuple(%bi, %y, %bm, %bv)
}"""

_BN_STABLEHLO = """module @bn {
  func.func public @main(%x: tensor<2x3x4x5xf32>, %s: tensor<3xf32>, %o: tensor<3xf32>,
                         %m: tensor<3xf32>, %v: tensor<3xf32>)
      -> (tensor<2x3x4x5xf32>, tensor<2x3x4x5xf32>, tensor<3xf32>, tensor<3xf32>) {
    %0 = "stablehlo.batch_norm_inference"(%x, %s, %o, %m, %v) {epsilon = 1.000000e-03 : f32, feature_index = 1 : i64} : (tensor<2x3x4x5xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<2x3x4x5xf32>
    %1:3 = "stablehlo.batch_norm_training"(%x, %s, %o) {epsilon = 1.000000e-03 : f32, feature_index = 1 : i64} : (tensor<2x3x4x5xf32>, tensor<3xf32>, tensor<3xf32>) -> (tensor<2x3x4x5xf32>, tensor<3xf32>, tensor<3xf32>)
    return %0, %1#0, %1#1, %1#2 : tensor<2x3x4x5xf32>, tensor<2x3x4x5xf32>, tensor<3xf32>, tensor<3xf32>
  }
}"""


def _bn_jax(x, s, o, m, v):
    b = lambda a: a[None, :, None, None]
    inf = (x - b(m)) * lax.rsqrt(b(v) + 1e-3) * b(s) + b(o)
    mu, var = jnp.mean(x, (0, 2, 3)), jnp.var(x, (0, 2, 3))
    train = (x - b(mu)) * lax.rsqrt(b(var) + 1e-3) * b(s) + b(o)
    return inf, train, mu, var


@pytest.mark.parametrize("form", ["hlo", "stablehlo"])
def test_batch_norm_inference_and_training(rng, form):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    s, o, m = (rng.standard_normal(3).astype(np.float32) for _ in range(3))
    v = rng.uniform(0.5, 2.0, 3).astype(np.float32)
    f = neuron.load_hlo(_BN_HLO) if form == "hlo" else neuron.load_stablehlo(_BN_STABLEHLO)
    want = [np.asarray(w) for w in jax.jit(_bn_jax)(x, s, o, m, v)]
    for got in (f.reference(x, s, o, m, v), f(x, s, o, m, v)):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=2e-5)


def test_batch_norm_with_a_wrong_vector_is_refused():
    bad = _BN_HLO.replace("f32[3]{0} %v), epsilon", "f32[3]{0} %m), epsilon").replace(
        "feature_index=1\n  %bt", "feature_index=2\n  %bt")
    with pytest.raises(HloImportError, match=r"batch-norm-inference 'bi'.*f32\[4\]"):
        neuron.load_hlo(bad)


_ERF = """module @m {
  func.func public @main(%x: tensor<4x33xf32>) -> tensor<4x33xf32> {
    %0 = stablehlo.custom_call @mhlo.erf(%x) {mhlo.attributes = {}, mhlo.version = 1 : i64} : (tensor<4x33xf32>) -> tensor<4x33xf32>
    return %0 : tensor<4x33xf32>
  }
}"""


def test_custom_call_mhlo_erf_is_erf_on_scalar_engine(rng):
    x = (rng.standard_normal((4, 33)) * 2).astype(np.float32)
    f = neuron.load_stablehlo(_ERF)
    want = np.asarray(jax.scipy.special.erf(x))
    np.testing.assert_allclose(f(x), want, rtol=1e-6, atol=1e-6)
    assert "activation[ACT]" in str(f.program()) and "op=erf" in str(f.program())


def test_unknown_custom_call_is_still_refused():
    with pytest.raises(HloImportError, match='custom_call target "mhlo.nope"'):
        neuron.load_stablehlo(_ERF.replace("mhlo.erf", "mhlo.nope"))


def test_tan_and_atan2_import_and_run_on_the_device(rng):
    x = rng.uniform(-1.4, 1.4, (8, 40)).astype(np.float32)
    y = rng.standard_normal((8, 40)).astype(np.float32)
    check_both(jnp.tan, x, dev_rtol=1e-5, dev_atol=1e-5)
    y[0, :4], x[0, :4] = 0.0, [0.0, 1.0, -1.0, 0.0]      # axis cases
    y[0, 3] = -2.0
    check_both(jnp.arctan2, y, x)


@pytest.mark.parametrize("fn", [lambda a: jnp.sort(a, axis=-1), lambda a: jnp.sort(a, axis=0),
                                lambda a: jnp.argsort(a, axis=-1),
                                lambda a: jnp.argsort(-a, axis=-1, stable=True),
                                lambda a: lax.top_k(a, 5)],
                         ids=["sort", "sort_dim0", "argsort", "argsort_desc", "top_k"])
def test_sort_lowers_to_top8_passes(rng, fn):
    x = np.round(rng.standard_normal((5, 21)) * 3).astype(np.float32)   # ties: stability
    f = check_both(fn, x)[1]
    assert "max8" in str(f.program()) and "nc_find_index8" in str(f.program())


def test_sort_bf16_keys_and_int_payload(rng):
    x = rng.standard_normal((3, 64)).astype(jnp.bfloat16)
    check_both(lambda a: lax.sort((a, lax.broadcasted_iota(jnp.int32, a.shape, 1) * 3),
                                  num_keys=1), x)
