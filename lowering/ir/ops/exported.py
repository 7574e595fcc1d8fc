"""Element-wise ops that framework exporters emit beyond the HLO basics: ``erf`` (torch_xla's
exact GELU arrives as ``custom_call @mhlo.erf``; XLA HLO spells it ``erf``) and ``tan``
(``stablehlo.tan``, HLO ``tan``). Both map onto ScalarE's activation table (``erf``, ``tan``).

    >>> from lowering.ir.ops.table import OPS
    >>> OPS['erf'].hlo, OPS['erf'].act, OPS['tan'].stablehlo
    ('erf', 'erf', 'tan')
"""
from __future__ import annotations

import math

import numpy as np

from .table import define, floats, unary_ref

_erf = np.vectorize(math.erf, otypes=[np.float64])

# StableHLO has no erf op (it is chlo.erf, legalised to a polynomial, or custom_call @mhlo.erf):
# an empty stablehlo spelling keeps it out of the one-to-one table.
define("erf", 1, {}, floats, unary_ref(lambda x: _erf(x.astype(np.float64))),
       "elementwise error function", hlo="erf", stablehlo="", act="erf")
define("tan", 1, {}, floats, unary_ref(np.tan), "elementwise tangent", hlo="tan", act="tan")

# Activations the pattern pass (lowering.lower.patterns) forms from exported element-wise chains;
# each is one ScalarE function-table entry. No HLO spelling: they are never imported directly.


def _gelu_tanh(x):
    x = x.astype(np.float64)
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


define("gelu_tanh", 1, {}, floats, unary_ref(_gelu_tanh),
       "x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (jax.nn.gelu's default)",
       act="gelu_apprx_tanh")
define("gelu", 1, {}, floats, unary_ref(lambda x: 0.5 * x * (1 + _erf(x.astype(np.float64) /
                                                                    math.sqrt(2)))),
       "x/2 (1 + erf(x / sqrt(2))) (torch.nn.GELU's default, jax.nn.gelu(approximate=False))",
       act="gelu")
define("silu", 1, {}, floats, unary_ref(lambda x: x / (1 + np.exp(-x.astype(np.float64)))),
       "x * sigmoid(x)", act="silu")
