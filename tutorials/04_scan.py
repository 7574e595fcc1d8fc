"""Tutorial 4: scans on VectorE, from a cumulative sum to a Mamba-style selective scan.

What you learn
--------------
* ``nisa.tensor_tensor_scan(dst, data0, data1, initial, op0, op1)`` runs a recurrence along the
  free axis of every partition at once: ``r_i = op1(op0(data0_i, r_{i-1}), data1_i)`` with
  ``r_{-1} = initial``. With ``op0=multiply, op1=add`` that is ``r_i = a_i * r_{i-1} + b_i``, the
  linear recurrence at the heart of state-space models.
* Long sequences are scanned in chunks: the last column of one chunk is the ``initial`` of the next
  (a ``(P, 1)`` view, no copy).
* A selective scan (Mamba): channels on the partitions, time on the free axis, a loop over the small
  state dimension, ScalarE computing ``exp(delta * A)`` with a per-partition ``scale``.

Run it:  ``python tutorials/04_scan.py``
"""
import numpy as np

import nki
import nki.isa as nisa
import nki.language as nl

P = 128


# ## Step 1: cumulative sum, chunk by chunk
#
# ``data0`` is all ones, so ``r_i = 1 * r_{i-1} + x_i``: a running sum. Each chunk of ``F`` columns
# starts from the previous chunk's last value.


@nki.jit
def cumsum_rows(x, F=256):
    rows, L = x.shape
    out = nl.ndarray((rows, L), nl.float32, buffer=nl.shared_hbm)
    ones = nl.ndarray((P, F), nl.float32, buffer=nl.sbuf)
    nisa.memset(dst=ones, value=1.0)
    prev = None
    for c in range(L // F):
        t = nl.ndarray((P, F), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=x[:, c * F:(c + 1) * F])
        s = nl.ndarray((P, F), nl.float32, buffer=nl.sbuf)
        nisa.tensor_tensor_scan(dst=s, data0=ones, data1=t,
                                initial=0.0 if prev is None else prev[:, F - 1:F],
                                op0=nl.multiply, op1=nl.add)
        nisa.dma_copy(dst=out[:, c * F:(c + 1) * F], src=s)
        prev = s
    return out


# ## Step 2: a selective scan (Mamba)
#
# For channel ``c``, state ``n`` and time ``t``:
#
#     h[c, n, t] = exp(delta[c, t] * A[c, n]) * h[c, n, t-1] + delta[c, t] * B[n, t] * u[c, t]
#     y[c, t]    = sum_n C[n, t] * h[c, n, t]
#
# The channels (128) sit on the partitions and time on the free axis. For each state ``n``:
#
# 1. ScalarE computes ``exp(delta * A[:, n])``, using the column ``A[:, n]`` as a per-partition
#    ``scale``;
# 2. VectorE multiplies ``delta * u`` by the row ``B[n]``, broadcast to every partition by the DMA;
# 3. ``tensor_tensor_scan`` runs the recurrence;
# 4. the result is weighted by ``C[n]`` and accumulated into ``y``.


@nki.jit
def selective_scan(delta, u, A, B, C):
    channels, L = delta.shape
    n_state = A.shape[1]
    y_out = nl.ndarray((channels, L), nl.float32, buffer=nl.shared_hbm)
    d = nl.ndarray((P, L), nl.float32, buffer=nl.sbuf)
    x = nl.ndarray((P, L), nl.float32, buffer=nl.sbuf)
    a = nl.ndarray((P, n_state), nl.float32, buffer=nl.sbuf)
    nisa.dma_copy(dst=d, src=delta)
    nisa.dma_copy(dst=x, src=u)
    nisa.dma_copy(dst=a, src=A)
    du = nl.ndarray((P, L), nl.float32, buffer=nl.sbuf)
    nisa.tensor_tensor(dst=du, data1=d, data2=x, op=nl.multiply)          # delta * u, once
    y = nl.ndarray((P, L), nl.float32, buffer=nl.sbuf)
    nisa.memset(dst=y, value=0.0)
    for n in range(n_state):
        decay = nl.ndarray((P, L), nl.float32, buffer=nl.sbuf)
        nisa.activation(dst=decay, op=nl.exp, data=d, scale=a[:, n:n + 1])   # exp(delta * A_n)
        b_row = nl.ndarray((P, L), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=b_row, src=B[n:n + 1, :].broadcast_to((P, L)))
        drive = nl.ndarray((P, L), nl.float32, buffer=nl.sbuf)
        nisa.tensor_tensor(dst=drive, data1=du, data2=b_row, op=nl.multiply)
        h = nl.ndarray((P, L), nl.float32, buffer=nl.sbuf)
        nisa.tensor_tensor_scan(dst=h, data0=decay, data1=drive, initial=0.0,
                                op0=nl.multiply, op1=nl.add)
        c_row = nl.ndarray((P, L), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=c_row, src=C[n:n + 1, :].broadcast_to((P, L)))
        nisa.tensor_tensor(dst=h, data1=h, data2=c_row, op=nl.multiply)
        nisa.tensor_tensor(dst=y, data1=y, data2=h, op=nl.add)
    nisa.dma_copy(dst=y_out, src=y)
    return y_out


def selective_scan_ref(delta, u, A, B, C):
    channels, L = delta.shape
    h = np.zeros((channels, A.shape[1]), np.float64)
    y = np.zeros((channels, L), np.float64)
    for t in range(L):
        h = np.exp(delta[:, t:t + 1] * A) * h + (delta[:, t] * u[:, t])[:, None] * B[:, t][None, :]
        y[:, t] = h @ C[:, t]
    return y


def main():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((P, 1024)).astype(np.float32)
    cs = cumsum_rows(x)
    np.testing.assert_allclose(cs, np.cumsum(x.astype(np.float64), axis=1), rtol=1e-4, atol=1e-4)
    print(f"cumsum_rows:    matches NumPy (max |err| = "
          f"{np.abs(cs - np.cumsum(x, axis=1)).max():.1e})")

    L, n_state = 256, 4
    delta = rng.uniform(0.01, 0.2, (P, L)).astype(np.float32)
    u = rng.standard_normal((P, L)).astype(np.float32)
    A = -rng.uniform(0.5, 2.0, (P, n_state)).astype(np.float32)
    B = rng.standard_normal((n_state, L)).astype(np.float32)
    C = rng.standard_normal((n_state, L)).astype(np.float32)
    y = selective_scan(delta, u, A, B, C)
    want = selective_scan_ref(delta, u, A, B, C)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    print(f"selective_scan: matches NumPy (max |err| = {np.abs(y - want).max():.1e})")
    return cs, y


if __name__ == "__main__":
    main()
