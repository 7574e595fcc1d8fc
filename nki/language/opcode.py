"""``nki.language.opcode``: the operator tokens (``maximum``, ``add``, ``exp``, ...) as a module.

Newer NKI releases document the ``op``/``reduce_op`` arguments of ISA calls against this module
(``range_select(..., reduce_op=<function maximum>)``) and library kernels import from it
directly. The names are the very objects ``nki.language`` exports, so either spelling works
anywhere an operator is expected:

    from nki.language.opcode import maximum
    nisa.range_select(dst, on_true_tile=t, ..., reduce_op=maximum, reduce_res=m)
    assert maximum is nl.maximum
"""
from .ops import TOKENS as _TOKENS

globals().update(_TOKENS)

__all__ = sorted(_TOKENS)
