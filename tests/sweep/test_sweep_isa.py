"""Coverage contract for nki.isa: every public instruction has a row in the sweep table, and each
row runs a hypothesis test against a NumPy reference over partitions, free sizes, dtypes and
generations (asserting the documented error where an op is not legal on a generation)."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from isa_table import ISA_CASES, isa_public_functions


def test_every_public_isa_instruction_is_in_the_sweep_table():
    names = isa_public_functions()
    table = {n.split("[")[0] for n in ISA_CASES}
    missing, stale = sorted(names - table), sorted(table - names)
    assert not missing, f"public nisa instructions without a sweep row: {missing}"
    assert not stale, f"sweep rows for names nisa no longer has: {stale}"


@pytest.mark.parametrize("name", sorted(ISA_CASES))
@given(data=st.data())
def test_isa_instruction_matches_numpy(name, data):
    ISA_CASES[name](data)
