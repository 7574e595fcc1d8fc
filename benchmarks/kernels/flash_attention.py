"""A flash-attention NKI kernel: softmax(q k^T * scale) v per head in one pass over the keys with
a running max and a running sum, so the [S, S] score matrix never leaves the chip. Written for
this repository; it lives outside the packages so that its instructions carry these source
lines, as a user's kernel would.

Layout (chosen so the PE never transposes the inputs): ``q_t`` and ``k_t`` are [heads, d, seq]
(the head dim on the partitions: the contraction of q k^T), ``v`` is [heads, seq, d]. d <= 128,
seq a multiple of 128. The result is [heads, seq, d] in ``v``'s dtype.

    >>> import numpy as np
    >>> q = np.random.rand(1, 64, 128).astype(np.float32)
    >>> out = flash_attention(q, q, q.transpose(0, 2, 1).copy())
    >>> out.shape
    (1, 128, 64)
"""
from __future__ import annotations

import math

import nki
import nki.language as nl

BLOCK = 128


@nki.jit
def flash_attention(q_t, k_t, v):
    heads, d, seq = q_t.shape
    out = nl.ndarray((heads, seq, d), v.dtype, buffer=nl.shared_hbm)
    scale = 1.0 / math.sqrt(d)
    for h in range(heads):
        for qb in range(seq // BLOCK):
            q_tile = nl.load(q_t[h, :, qb * BLOCK:(qb + 1) * BLOCK])          # [d, 128 q]
            run_max = nl.full((BLOCK, 1), -1e30, nl.float32)
            run_sum = nl.zeros((BLOCK, 1), nl.float32)
            acc = nl.zeros((BLOCK, d), nl.float32)
            for kb in range(seq // BLOCK):
                k_tile = nl.load(k_t[h, :, kb * BLOCK:(kb + 1) * BLOCK])      # [d, 128 k]
                v_tile = nl.load(v[h, kb * BLOCK:(kb + 1) * BLOCK, :])         # [128 k, d]
                scores = nl.multiply(nl.matmul(q_tile, k_tile, transpose_x=True), scale)
                new_max = nl.maximum(run_max, nl.max(scores, axis=1, keepdims=True))
                probs = nl.exp(nl.subtract(scores, new_max))                   # [128 q, 128 k]
                alpha = nl.exp(nl.subtract(run_max, new_max))                  # rescale old sums
                run_sum = nl.add(nl.multiply(run_sum, alpha),
                                 nl.sum(probs, axis=1, keepdims=True))
                probs_t = nl.copy(nl.transpose(probs))                         # [128 k, 128 q]
                acc = nl.add(nl.multiply(acc, alpha),
                             nl.matmul(probs_t, v_tile, transpose_x=True))     # [128 q, d]
                run_max = new_max
            res = nl.divide(acc, run_sum)
            nl.store(out[h, qb * BLOCK:(qb + 1) * BLOCK, :], nl.copy(res, dtype=v.dtype))
    return out
