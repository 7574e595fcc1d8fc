"""Tile bodies of the element-wise ops exporters emit beyond the basics: ``erf`` and ``tan``
(one ScalarE activation each: both are entries of the activation function table, like exp and
tanh) and ``atan2`` (ScalarE arctan of y / x plus a quadrant fix on VectorE).

atan2 follows the usual identity: atan(y / x), plus pi when x < 0 and y >= 0, minus pi when
x < 0 and y < 0; 0/0 gives 0 (numpy/XLA give +-0 or +-pi by the signs of the zeros, which fp32
arithmetic on the engines does not see; infinities in both operands are the other case the
identity does not cover and they give NaN).
"""
from __future__ import annotations

import math

from ...ir.ops import OPS
from ..registry import tile_rule


@tile_rule("erf", "tan", "gelu", "gelu_tanh", "silu", psum_reader=True)
def table_activation(lw, op, t, d):
    lw.emit("activation", dst=d, op=OPS[op.opcode].act, data=t[0])


@tile_rule("atan2")
def atan2(lw, op, t, d):
    y, x = t
    q, adj, m = (lw.sb(x.shape, "float32") for _ in range(3))
    lw.emit("tensor_tensor", dst=q, data1=y, data2=x, op="divide")
    lw.emit("activation", dst=q, op="arctan", data=q)
    # adj = (y >= 0 ? pi : -pi) * (x < 0)
    lw.emit("tensor_scalar", dst=adj, data=y, op0="greater_equal", operand0=0.0,
            op1="multiply", operand1=2 * math.pi)
    lw.emit("tensor_scalar", dst=adj, data=adj, op0="subtract", operand0=math.pi)
    lw.emit("tensor_scalar", dst=m, data=x, op0="less", operand0=0.0)
    lw.emit("tensor_tensor", dst=adj, data1=adj, data2=m, op="multiply")
    lw.emit("tensor_tensor", dst=q, data1=q, data2=adj, op="add")
    # 0 / 0 is NaN on the engines; atan2(0, 0) is 0
    zx, zy = lw.sb(x.shape, "bool"), lw.sb(x.shape, "bool")
    lw.emit("tensor_scalar", dst=zx, data=x, op0="equal", operand0=0.0)
    lw.emit("tensor_scalar", dst=zy, data=y, op0="equal", operand0=0.0)
    lw.emit("tensor_tensor", dst=zx, data1=zx, data2=zy, op="logical_and")
    lw.emit("memset", dst=m, value=0.0)
    lw.emit("tensor_copy_predicated", dst=q, src=m, predicate=zx)
    lw.emit("tensor_copy", dst=d, src=q)
