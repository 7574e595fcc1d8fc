"""Coverage contract for nki.language: every public callable has a row in the sweep table, and
each row runs a hypothesis test against a NumPy reference over shapes, dtypes and generations."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nl_table import NL_CASES, nl_public_callables


def test_every_public_nl_callable_is_in_the_sweep_table():
    names = nl_public_callables()
    table = {n.split("[")[0] for n in NL_CASES}
    missing, stale = sorted(names - table), sorted(table - names)
    assert not missing, f"public nl callables without a sweep row: {missing}"
    assert not stale, f"sweep rows for names nl no longer has: {stale}"


@pytest.mark.parametrize("name", sorted(NL_CASES))
@given(data=st.data())
def test_nl_function_matches_numpy(name, data):
    NL_CASES[name](data)
