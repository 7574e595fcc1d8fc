"""Seed programs for the fuzzer: small JAX functions exported by the tests themselves as XLA HLO
text, StableHLO text and StableHLO portable artifacts (bytecode), plus grammar-made HLO.

Covers every family the importers know: element-wise float and integer arithmetic, compares and
selects, dot and convolution, reductions and argmax (variadic reducers), sort with a comparator,
while loops, slicing, concatenation, padding, gathers, iota, cumulative sums, casts.
"""
from __future__ import annotations

import functools

import numpy as np


def _functions():
    import jax
    import jax.numpy as jnp
    from jax import lax
    f32 = lambda *s: np.ones(s, np.float32)          # noqa: E731
    i32 = lambda *s: np.arange(np.prod(s), dtype=np.int32).reshape(s)   # noqa: E731
    u8 = lambda *s: np.arange(np.prod(s), dtype=np.uint8).reshape(s)    # noqa: E731
    return [
        ("exp_dot", lambda x, w: jnp.exp(x @ w), (f32(4, 8), f32(8, 3))),
        ("softmax", lambda x: jax.nn.softmax(x, axis=-1), (f32(4, 16),)),
        ("int_add_mul", lambda a, b: a * b + a - b, (i32(4, 5), i32(4, 5))),
        ("int_div_rem", lambda a, b: (lax.div(a, b + 1), lax.rem(a, b + 1)), (i32(3, 4), i32(3, 4))),
        ("u8_add", lambda a, b: a + b, (u8(2, 8), u8(2, 8))),
        ("compare_select", lambda x, y: jnp.where(x > y, x, y * 2), (f32(3, 7), f32(3, 7))),
        ("argmax", lambda x: jnp.argmax(x, axis=1), (f32(4, 9),)),
        ("argmin", lambda x: jnp.argmin(x, axis=0), (f32(5, 3),)),
        ("reduce_max", lambda x: jnp.max(x, axis=1) + jnp.sum(x, axis=1), (f32(6, 10),)),
        ("sort", lambda x: jnp.sort(x, axis=-1), (f32(3, 8),)),
        ("while", lambda x: lax.while_loop(lambda s: s[1] < 5, lambda s: (s[0] * 1.5, s[1] + 1),
                                           (x, 0))[0], (f32(2, 3),)),
        ("slice_concat", lambda x: jnp.concatenate([x[:, 1:4], x[:, ::2]], axis=1), (f32(4, 8),)),
        ("pad_transpose", lambda x: jnp.pad(x, ((1, 2), (0, 3))).T, (f32(3, 5),)),
        ("gather", lambda x, i: x[i], (f32(8, 4), np.array([3, 1, 7], np.int32))),
        ("iota_cumsum", lambda x: jnp.cumsum(x, axis=1) + jnp.arange(6, dtype=jnp.float32),
         (f32(2, 6),)),
        ("conv", lambda x, k: lax.conv_general_dilated(x, k, (1,), "SAME"),
         (f32(1, 2, 9), f32(3, 2, 3))),
        ("casts", lambda x: (x * 3.7).astype(jnp.int32).astype(jnp.float32) + x.astype(jnp.bfloat16)
         .astype(jnp.float32), (f32(4, 4),)),
        ("shifts_bits", lambda a, b: (a << (b & 7)) ^ (a >> 2) | (a & b), (i32(4, 4), i32(4, 4))),
        ("reduce_window", lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (2, 2), (1, 1), "SAME"),
         (f32(4, 6),)),
        ("tanh_broadcast", lambda x, b: jnp.tanh(x + b[None, :]), (f32(5, 4), f32(4))),
    ]


@functools.lru_cache(maxsize=None)
def seeds() -> dict:
    """{'hlo': [(name, text)], 'stablehlo': [(name, text)], 'bytecode': [(name, bytes)]}."""
    import jax
    from jax import export
    out = {"hlo": [], "stablehlo": [], "bytecode": []}
    for name, fn, args in _functions():
        low = jax.jit(fn).lower(*args)
        out["hlo"].append((name, low.as_text(dialect="hlo")))
        out["stablehlo"].append((name, low.as_text()))
        try:
            exp = export.export(jax.jit(fn))(*args)
            out["bytecode"].append((name, bytes(exp.mlir_module_serialized)))
        except Exception:          # an exporter limitation is not ours to fuzz
            pass
    return out
