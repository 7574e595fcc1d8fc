"""The MXFP8 "1x32" operand layout built on chip as the newest nki-library builds it: bf16 [F, K] rows
read as fp32 pairs (``.ap(dtype=float32)`` on HBM), two stride-2 PE transposes into PSUM, and the PSUM
tile read back as bf16 (``.ap(dtype=bfloat16)``). Every bit must survive: the result is exactly the
layout whose row p holds K values 4p..4p+3 of each feature f side by side, against NumPy."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import nki.isa as nisa
import nki.language as nl
from isa_helpers import rand, run, store


def _pair_transpose(x):
    F, K = x.shape                      # F == 128 partitions, K bf16 values per row
    Kf = K // 2                         # fp32 words per row

    def k(x):
        s = nl.ndarray((F, Kf), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=s, src=x.ap([[Kf, F], [1, Kf]], offset=0, dtype=nl.float32))
        ps = nl.ndarray((Kf // 2, 2 * F), nl.float32, buffer=nl.psum)
        for i in range(2):              # even / odd fp32 words of each row
            nisa.nc_transpose(dst=ps.ap([[2 * F, Kf // 2], [2, F]], offset=i),
                              data=s.ap([[Kf, F], [2, Kf // 2]], offset=i))
        o = nl.ndarray((Kf // 2, 4 * F), nl.bfloat16, buffer=nl.sbuf)
        nisa.tensor_copy(dst=o, src=ps.ap([[4 * F, Kf // 2], [1, 4 * F]], dtype=nl.bfloat16))
        return store(o)
    return run(k, x, target="trn3")


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 1000), K=st.sampled_from([256, 512]))
def test_fp32_pair_transpose_gives_the_1x32_layout(seed, K):
    x = rand((128, K), "bfloat16", seed)
    got = np.asarray(_pair_transpose(x))
    # row p, column 4f + c holds x[f, 4p + c]
    want = x.T.reshape(K // 4, 4, 128).transpose(0, 2, 1).reshape(K // 4, 512)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))
