"""``device.dynamic.gather`` reads a vector-offset view in one NumPy fancy index (the DMA gathers
of the library's MXFP8 loaders read hundreds of rows per instruction). It must give exactly what
reading each resolved row's view gives, and hand anything unusual back to the row-by-row path
(None): rows out of bounds, scalar or static views, unwritten elements."""
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from device import dynamic
from device.errors import HardwareRuleError
from device.memory import Memory, UninitializedReadWarning
from device.tensor import HBM, SBUF, Storage, View


def _setup(R, F, idx, seed=0):
    m = Memory()
    table = View.whole(Storage((R, F), "float32", HBM))
    m.write(table, np.random.default_rng(seed).standard_normal((R, F)).astype(np.float32))
    iv = View.whole(Storage(idx.shape, "int32", SBUF))
    m.write(iv, idx)
    return m, table, iv


def _row_by_row(m, v):
    return np.concatenate([m.read(w) for _, w in dynamic.rows(m, v)], axis=0).reshape(v.shape)


@given(R=st.integers(1, 40), F=st.integers(1, 12), P=st.integers(1, 6), C=st.integers(1, 4),
       sub=st.integers(1, 12), step=st.integers(1, 2), seed=st.integers(0, 50))
def test_gather_equals_reading_each_row(R, F, P, C, sub, step, seed):
    rng = np.random.default_rng(seed)
    width = min(F, sub * step) // step or 1           # a strided sub-row that stays in the row
    idx = rng.integers(0, R, (P, C)).astype(np.int32)  # repeats allowed
    m, table, iv = _setup(R, F, idx, seed)
    n = P * C
    v = table.ap([[F, n], [step, width]], vector_offset=iv, indirect_dim=0)
    got = dynamic.gather(m, v)
    assert got is not None and got.shape == v.shape
    np.testing.assert_array_equal(got, _row_by_row(m, v))
    data = m.read(table)
    np.testing.assert_array_equal(got, data[idx.reshape(-1, order="F")][:, :width * step:step])
    np.testing.assert_array_equal(m.read(v), got)      # Memory.read of the view takes this path


def test_out_of_bounds_rows_fall_back_to_the_row_path_and_its_error():
    m, table, iv = _setup(4, 3, np.array([[1], [9]], np.int32))
    v = table.ap([[3, 2], [1, 3]], vector_offset=iv, indirect_dim=0)
    assert dynamic.gather(m, v) is None
    with pytest.raises(HardwareRuleError, match=r"dynamic offset 9 \(vector_offset\[1\]\) makes the "
                                                r"access reach elements \[27, 29\]"):
        m.read(v)


def test_unwritten_elements_fall_back_so_the_read_still_warns():
    m = Memory()
    table = View.whole(Storage((4, 2), "float32", HBM))
    m.write(table[0:2, :], np.ones((2, 2), np.float32))          # rows 2, 3 never written
    iv = View.whole(Storage((2, 1), "int32", SBUF))
    m.write(iv, [[0], [3]])
    v = table.ap([[2, 2], [1, 2]], vector_offset=iv, indirect_dim=0)
    assert dynamic.gather(m, v) is None
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        m.read(v)
    assert any(issubclass(x.category, UninitializedReadWarning) for x in w)
    m.write(iv, [[1], [0]])                                      # only written rows: fast path
    np.testing.assert_array_equal(dynamic.gather(m, v), np.ones((2, 2), np.float32))


def test_other_views_are_left_to_the_existing_paths():
    m, table, iv = _setup(4, 4, np.array([[2], [0], [1]], np.int32))
    assert dynamic.gather(m, table) is None                                   # static view
    assert dynamic.gather(m, table.ap([[4, 1], [1, 4]], scalar_offset=iv[0:1, :])) is None
