"""A StableHLO artifact whose function name is not UTF-8 (a fuzzer find: jaxlib's bindings raised
a bare RuntimeError) is refused with a named import error."""
import jax
import jax.numpy as jnp
import pytest
from jax import export

import neuron
from lowering import StableHloImportError


def test_a_function_name_that_is_not_utf8_is_refused_by_name():
    exp = export.export(jax.jit(lambda x: x + 1))(jax.ShapeDtypeStruct((4,), jnp.float32))
    good = bytes(exp.mlir_module_serialized)
    assert b"main" in good
    bad = good.replace(b"main", b"\xff\xfe\xfd\xfc")
    with pytest.raises(StableHloImportError, match="a func.func name is not valid UTF-8 text"):
        neuron.load_stablehlo(bad)
