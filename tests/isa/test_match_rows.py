"""The vectorised max8 / find_index8 / match_replace8 helpers equal their per-partition definition.

``match_rows`` finds every partition's 8 values at once and ``top8`` selects before sorting; both
must give exactly what the one-partition-at-a-time definition gives, including repeated values
(ties, 0.0 beside -0.0), NaN (never matched, ranked below every number) and absent values.
"""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from device.isa.vector_stats import _match, match_rows, top8

# few distinct values so that ties and repeats are common
POOL = [0.0, -0.0, 1.0, -1.0, 2.5, np.nan, np.inf, -np.inf, 7.0]


@st.composite
def rows_and_vals(draw):
    P = draw(st.integers(1, 6))
    n = draw(st.integers(8, 80))
    x = np.array(draw(st.lists(st.sampled_from(POOL), min_size=P * n, max_size=P * n)),
                 np.float32).reshape(P, n)
    v = np.array(draw(st.lists(st.sampled_from(POOL + [3.0]), min_size=P * 8, max_size=P * 8)),
                 np.float32).reshape(P, 8)
    return x, v


@given(rows_and_vals(), st.booleans())
def test_match_rows_is_the_per_partition_match(xv, reverse):
    x, v = xv
    order = range(7, -1, -1) if reverse else range(8)
    want = np.stack([_match(x[p], v[p], order) for p in range(x.shape[0])])
    np.testing.assert_array_equal(match_rows(x, v, order), want)


@given(rows_and_vals())
def test_top8_is_the_first_eight_of_a_descending_sort(xv):
    x, _ = xv
    want = -np.sort(-x, axis=1)[:, :8]
    got = top8(x)
    np.testing.assert_array_equal(got, want)          # NaN == NaN here; ±0 compare equal


def test_top8_on_wide_rows_selects_before_sorting():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5000)).astype(np.float32)
    x[1, ::7] = np.nan
    x[2, :] = np.nan
    x[2, 100:104] = [5, 4, 3, 2]
    np.testing.assert_array_equal(top8(x), -np.sort(-x, axis=1)[:, :8])


def test_match_rows_reports_absent_values_and_repeats():
    x = np.array([[1, 2, 2, 3, 9, 9, 9, 0]], np.float32)
    v = np.array([[2, 2, 9, 4, 2, 9, 9, 9]], np.float32)
    # visiting 0..7: the first two 2s take positions 1 and 2, the third finds none; the 9s take
    # 4, 5, 6 and the fourth 9 none; 4 is absent
    np.testing.assert_array_equal(match_rows(x, v, range(8)), [[1, 2, 4, -1, -1, 5, 6, -1]])
