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
