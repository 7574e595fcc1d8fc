"""u64 in imported programs: jax.random's threefry counts its counters in u64 (iota of the
shape, shifted and split into u32 halves). Those fold to constants at import, the 32-bit rounds
run on the device and the bits match jax's own; a u64 value that depends on a run-time input is
refused with the rule, the op and the module line."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuron
from lowering import HloImportError


def bits(key_data, x):
    return jax.random.bits(jax.random.wrap_key_data(key_data), (4, 6)) ^ x


def test_threefry_bits_with_a_run_time_key_match_jax():
    x = np.arange(24, dtype=np.uint32).reshape(4, 6)
    lowered = jax.jit(bits).lower(np.zeros(2, np.uint32), x).as_text()
    assert "ui64" in lowered                       # what the export really holds
    f = neuron.from_jax(bits)
    for key in (np.array([0, 42], np.uint32), np.array([7, 2**32 - 1], np.uint32)):
        want = np.asarray(jax.jit(bits)(key, x))
        imp = f.imported(key, x)
        assert "u64" not in str(imp.graph)        # folded at import
        np.testing.assert_array_equal(imp.reference(key, x), want)
        np.testing.assert_array_equal(f(key, x), want)


def test_u64_counters_fold_in_hlo_text_too():
    text = """HloModule m
ENTRY main {
  x = u32[4,6]{1,0} parameter(0)
  i0 = u64[4]{0} iota(), iota_dimension=0
  b0 = u64[4,6]{1,0} broadcast(i0), dimensions={0}
  c6 = u64[] constant(6)
  s6 = u64[4,6]{1,0} broadcast(c6), dimensions={}
  m = u64[4,6]{1,0} multiply(b0, s6)
  i1 = u64[6]{0} iota(), iota_dimension=0
  b1 = u64[4,6]{1,0} broadcast(i1), dimensions={1}
  n = u64[4,6]{1,0} add(m, b1)
  c32 = u64[] constant(32)
  s32 = u64[4,6]{1,0} broadcast(c32), dimensions={}
  hi = u64[4,6]{1,0} shift-right-logical(n, s32)
  lo32 = u32[4,6]{1,0} convert(n)
  hi32 = u32[4,6]{1,0} convert(hi)
  y = u32[4,6]{1,0} add(lo32, hi32)
  ROOT r = u32[4,6]{1,0} xor(y, x)
}
"""
    f = neuron.load_hlo(text)
    assert "u64" not in str(f.graph)
    x = np.full((4, 6), 5, np.uint32)
    np.testing.assert_array_equal(f(x), np.arange(24, dtype=np.uint32).reshape(4, 6) ^ 5)


def test_a_run_time_u64_value_is_refused_with_its_line():
    text = """HloModule m
ENTRY main {
  x = u32[4]{0} parameter(0)
  w = u64[4]{0} convert(x)
  c = u64[] constant(40)
  s = u64[4]{0} broadcast(c), dimensions={}
  sh = u64[4]{0} shift-left(w, s)
  ROOT r = u32[4]{0} convert(sh)
}
"""
    with pytest.raises(HloImportError, match=r"rule 64-bit-integers: convert .*needs u64 value "
                                             r"%\w+ \(u64\[4\]\) at run time.*no 64-bit integer "
                                             r"engines") as e:
        neuron.load_hlo(text)
    assert e.value.line == 4


def test_x64_jax_program_with_run_time_u64_is_refused():
    jax.config.update("jax_enable_x64", True)
    try:
        lowered = jax.jit(lambda x: (x.astype(jnp.uint64) << 40).astype(jnp.uint32)).lower(
            np.ones(4, np.uint32))
        text = lowered.as_text()
    finally:
        jax.config.update("jax_enable_x64", False)
    with pytest.raises(HloImportError, match="rule 64-bit-integers"):
        neuron.load_stablehlo(text)
